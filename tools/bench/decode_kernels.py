#!/usr/bin/env python3
"""Launch shapes of the fused decode kernels (eaglet_engine.generate.fused_decode), searched on this
GPU, and the step they make, side by side with the compiled step the fast path runs without them,
in one run, for a decode step (`--tokens 1`) or a verification (`--tokens 5`: N = 4):

  1. each kernel alone, over the 7B text decoder's 32 layers (one launch per layer with that layer's
     weights, captured in a CUDA graph: every launch reads its weights from memory, as a step
     does), for a grid of launch shapes; time per launch and bytes read over the copy bandwidth;
  2. a whole step (32 layers, final norm, lm_head, argmax) with the best shapes searched, with
     those `FusedDecodeLayer.tune` picks at start-up from its short list, with the library
     defaults (`fused_decode.Config.default`), and with torch.compile's functions
     (`static_target.pre_attention`/`post_attention`, one token through
     `decode_compile.one_token_compiled`; cuDNN attention for one query, split_kv_attention for
     several), and the floor: the step's weight and KV bytes over the copy bandwidth;
  3. the fused layer against the reference functions in bf16 (largest difference, relative).

    PYTHONPATH=packages/engine/python:tools/bench python tools/bench/decode_kernels.py --tokens 1 --out "$OUT"

Random bf16 weights of Qwen2-7B's shapes (qwen2_audio_7b.py); the step's last token at position 853
of a 1024-position KV bucket (the 790-token prompt plus half of 128 new tokens, as decode.py).
Writes decode-kernels-<tokens>.json to --out after every section.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from eaglet_engine.generate import fused_decode as fd
from eaglet_engine.generate.decode_compile import one_token_compiled
from eaglet_engine.generate.static_cache import attention_bias, cached_attention
from eaglet_engine.generate.split_kv_attention import split_kv_attention
from eaglet_engine.generate.static_target import LayerWeights, post_attention, pre_attention, rms_norm
from gpu_timing import copy_bandwidth_tbs
from qwen2_audio_7b import QWEN2_AUDIO_7B

TEXT = QWEN2_AUDIO_7B["text_config"]
LAYERS, HIDDEN, INTER = TEXT["num_hidden_layers"], TEXT["hidden_size"], TEXT["intermediate_size"]
HEADS, KV_HEADS = TEXT["num_attention_heads"], TEXT["num_key_value_heads"]
D = HIDDEN // HEADS
VOCAB = TEXT["vocab_size"]
EPS = TEXT["rms_norm_eps"]


def graph_ms(fn) -> float:
    """Milliseconds of one replay of fn captured as a CUDA graph (the engine's tuning clock)."""
    return 1e3 * fd.graph_seconds(fn, replays=20, batches=5)


class Bench:
    def __init__(self, args) -> None:
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.args = args
        self.dev = torch.device("cuda")
        self.tokens = args.tokens
        self.cls = fd.token_class(args.tokens)
        self.result: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": f"python tools/bench/decode_kernels.py --tokens {args.tokens}", "tokens": args.tokens, "errors": {}}
        self.t0 = time.perf_counter()

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", flush=True)

    def save(self) -> None:
        (self.out / f"decode-kernels-{self.tokens}.json").write_text(json.dumps(self.result, indent=1))

    def section(self, name: str, fn) -> None:
        self.log(f"-- {name}")
        try:
            self.result[name] = fn()
        except Exception:  # noqa: BLE001 - record it; the other sections still run
            self.result["errors"][name] = traceback.format_exc()[-3000:]
            self.log(traceback.format_exc())
        self.save()

    def machine(self) -> dict:
        import triton

        return {
            "device": torch.cuda.get_device_name(),
            "torch": torch.__version__,
            "triton": triton.__version__,
            "copyBandwidthTBs": copy_bandwidth_tbs(self.dev),
        }

    def build(self) -> dict:
        torch.manual_seed(0)
        bf, dev = torch.bfloat16, self.dev
        r = lambda *s, scale=0.02: torch.randn(*s, device=dev, dtype=bf) * scale  # noqa: E731
        self.layers = [
            LayerWeights(1 + r(HIDDEN), EPS, r((HEADS + 2 * KV_HEADS) * D, HIDDEN), r((HEADS + 2 * KV_HEADS) * D), r(HIDDEN, HEADS * D), 1 + r(HIDDEN), EPS, r(2 * INTER, HIDDEN), r(HIDDEN, INTER))
            for _ in range(LAYERS)
        ]  # fmt: skip
        self.norm = 1 + r(HIDDEN)
        self.lm_head = r(VOCAB, HIDDEN)
        self.capacity = 2048
        self.kv = torch.randn(LAYERS, 2, KV_HEADS, self.capacity, D, device=dev, dtype=bf)
        ang = torch.arange(self.capacity, device=dev)[:, None].float() * (10000.0 ** (-torch.arange(0, D, 2, device=dev).float() / D))[None]
        self.cos = torch.cat([ang.cos(), ang.cos()], -1).to(bf)
        self.sin = torch.cat([ang.sin(), ang.sin()], -1).to(bf)
        self.bucket, self.position = 1024, 853
        self.pos = torch.arange(self.position - self.tokens + 1, self.position + 1, device=dev)
        self.x = torch.randn(self.tokens, HIDDEN, device=dev, dtype=bf)
        self.scale = D**-0.5
        weight_bytes = sum(t.numel() * 2 for w in self.layers for t in (w.ln1, w.w_qkv, w.b_qkv, w.w_o, w.ln2, w.w_gate_up, w.w_down)) + 2 * (self.norm.numel() + self.lm_head.numel())
        kv_bytes = LAYERS * 2 * KV_HEADS * (self.position + 1) * D * 2
        self.bw = self.result["machine"]["copyBandwidthTBs"] * 1e12
        return {"weightBytes": weight_bytes, "kvBytes": kv_bytes, "floorMs": 1e3 * (weight_bytes + kv_bytes) / self.bw, "bucket": self.bucket, "position": self.position}

    # -- 1. each kernel alone ------------------------------------------------------------------

    def _per_launch(self, launch) -> float:
        """ms per launch of `launch(i)` over the 32 layers, captured together."""
        return graph_ms(lambda: [launch(i) for i in range(LAYERS)]) / LAYERS

    def kernels(self) -> dict:
        x, pos, kv = self.x, self.pos, self.kv
        t = self.tokens
        layer = fd.FusedDecodeLayer(HEADS, KV_HEADS, D, HIDDEN, INTER)
        w = self.layers
        q = layer.qkv(x, w[0].ln1, w[0].eps1, w[0], kv[0], pos, self.cos, self.sin, layer.configs[self.cls].qkv)
        attn = torch.randn(HEADS, t, D, device=self.dev, dtype=torch.bfloat16)
        act = torch.randn(t, INTER, device=self.dev, dtype=torch.bfloat16) * 0.1

        def grid(name, paired):
            """One token: shapes whose fp32 accumulators (rows x block, twice when paired) fit in
            64 registers a thread (more spills). Several: tensor-core tiles of >= 16 rows whose
            pipelined weight tiles fit in shared memory."""
            tiles = 2 if paired else 1
            if self.cls == 1:
                blocks, stages = ((128, 256, 512), (2, 3, 4)) if paired else ((256, 512, 1024), (1, 2, 3))
                for r, bk, warps, st in itertools.product((4, 8, 16, 32), blocks, (4, 8), stages):
                    if r * bk * tiles <= 64 * 32 * warps:
                        yield fd.Launch(r, bk, warps, st)
            else:
                for r, bk, warps, st in itertools.product((16, 32, 64, 128), (64, 128, 256), (4, 8), (3, 4)):
                    if r * bk * tiles * st * 2 <= 192 * 1024 and fd.fits(name, fd.Launch(r, bk, warps, st), D):
                        yield fd.Launch(r, bk, warps, st)

        products = {
            "qkv": (lambda c: lambda i: layer.qkv(x, w[i].ln1, w[i].eps1, w[i], kv[i], pos, self.cos, self.sin, c), True, (HEADS + 2 * KV_HEADS) * D * HIDDEN * 2),
            "o": (lambda c: lambda i: layer.o(attn, w[i], x, c), False, HIDDEN * HEADS * D * 2),
            "gate_up": (lambda c: lambda i: layer.gate_up(x, w[i], c), True, 2 * INTER * HIDDEN * 2),
            "down": (lambda c: lambda i: layer.down(act, w[i], x, c), False, HIDDEN * INTER * 2),
        }
        out = {}
        self.best = {}
        for name, (make, paired, nbytes) in products.items():
            rows_out = []
            for c in grid(name, paired):
                try:
                    ms = self._per_launch(make(c))
                except Exception as e:  # noqa: BLE001 - a shape this GPU cannot run (registers, shared memory)
                    rows_out.append({"launch": c.__dict__, "error": str(e)[:200]})
                    continue
                rows_out.append({"launch": c.__dict__, "us": 1e3 * ms, "ofCopyBandwidth": nbytes / (ms / 1e3) / self.bw})
            ok = [row for row in rows_out if "us" in row]
            top = min(ok, key=lambda row: row["us"])
            self.best[name] = fd.Launch(**top["launch"])
            out[name] = {"bytes": nbytes, "floorUs": 1e6 * nbytes / self.bw, "best": top, "rows": rows_out}
            self.log(f"{name}: best {top['launch']} {top['us']:.2f} us ({100 * top['ofCopyBandwidth']:.1f}% of copy bandwidth) of {len(ok)} shapes")
            self.save_partial("kernels", out)

        if self.cls != 1:  # several queries run split_kv_attention, tuned on its own (split_size)
            return out
        # attention: one query over keys 0..position of the bucket, with its merge
        att = []
        for split, block, warps in itertools.product((64, 128, 256), (32, 64, 128), (1, 2, 4)):
            if block > split:
                continue
            c = fd.AttentionLaunch(split, block, warps)
            try:
                ms = self._per_launch(lambda i, c=c: layer.attend(q, kv[i], pos, self.bucket, self.scale, c))
            except Exception as e:  # noqa: BLE001
                att.append({"launch": c.__dict__, "error": str(e)[:200]})
                continue
            att.append({"launch": c.__dict__, "us": 1e3 * ms})
        nbytes = 2 * KV_HEADS * (self.position + 1) * D * 2
        ok = [a for a in att if "us" in a]
        top = min(ok, key=lambda a: a["us"])
        self.best["attention"] = fd.AttentionLaunch(**top["launch"])
        bias = attention_bias(torch.arange(self.capacity, device=self.dev), pos, self.bucket, torch.bfloat16)
        cudnn = self._per_launch(lambda i: cached_attention(q, kv[i], self.bucket, bias, self.scale))
        out["attention"] = {"bytes": nbytes, "floorUs": 1e6 * nbytes / self.bw, "best": top, "rows": att, "torchSdpaUs": 1e3 * cudnn}
        self.log(f"attention: best {top} (with its merge); torch's SDPA over the bucket {1e3 * cudnn:.2f} us")
        return out

    def save_partial(self, key, value) -> None:
        self.result[key] = value
        self.save()

    # -- 2. whole decode steps -----------------------------------------------------------------

    def _fused_step(self, config: fd.Config):
        layer = fd.FusedDecodeLayer(HEADS, KV_HEADS, D, HIDDEN, INTER, {self.cls: config})

        def step():
            x = self.x
            for i, w in enumerate(self.layers):
                x = layer(x, w, self.kv[i], self.pos, self.cos, self.sin, self.bucket, self.scale)
            return F.linear(rms_norm(x, self.norm, EPS), self.lm_head).argmax(-1)

        return step

    def _compiled_step(self):
        pre = one_token_compiled(torch.compile(pre_attention), pre_attention, 0, self.dev)
        post = one_token_compiled(torch.compile(post_attention), post_attention, 0, self.dev)
        key_index = torch.arange(self.capacity, device=self.dev)

        def step():
            x = self.x
            cos, sin = self.cos.index_select(0, self.pos), self.sin.index_select(0, self.pos)
            bias = attention_bias(key_index, self.pos, self.bucket, torch.bfloat16)
            for i, w in enumerate(self.layers):
                q, kv = pre(x, w.ln1, w.eps1, w.w_qkv, w.b_qkv, cos, sin, HEADS, KV_HEADS)
                self.kv[i].index_copy_(2, self.pos, kv)
                if self.tokens > 1:
                    attn = split_kv_attention(q, self.kv[i], self.pos, self.bucket, self.scale)
                else:
                    attn = cached_attention(q, self.kv[i], self.bucket, bias, self.scale)
                x = post(x, attn, w.w_o, w.ln2, w.eps2, w.w_gate_up, w.w_down)
            return F.linear(rms_norm(x, self.norm, EPS), self.lm_head).argmax(-1)

        return step

    def steps(self) -> dict:
        floor = self.result["build"]["floorMs"]
        searched = fd.Config(**self.best)
        startup = fd.FusedDecodeLayer(HEADS, KV_HEADS, D, HIDDEN, INTER)
        t = time.perf_counter()
        tuning = startup.tune(self.layers, self.kv, self.cos, self.sin, self.bucket, self.scale, tokens=self.tokens)
        tuned = startup.configs[self.cls]
        out = {
            "floorMs": floor,
            "searchedConfig": dataclasses.asdict(searched),
            "startupConfig": dataclasses.asdict(tuned),
            "startupTuning": tuning,
            "startupTuningSeconds": time.perf_counter() - t,
        }
        with torch.inference_mode():
            variants = (
                ("fusedSearched", self._fused_step(searched)),
                ("fusedStartupTuned", self._fused_step(tuned)),
                ("fusedDefault", self._fused_step(fd.Config.default(self.tokens, D))),
                ("compiled", None),
            )
            for name, step in variants:
                if step is None:
                    t = time.perf_counter()
                    step = self._compiled_step()
                    step()
                    out["compiledBuildSeconds"] = time.perf_counter() - t
                ms = graph_ms(step)
                out[f"{name}Ms"] = ms
                out[f"{name}OverFloor"] = ms / floor
                self.log(f"step {name}: {ms:.3f} ms = {ms / floor:.3f}x the floor {floor:.3f} ms")
                self.save_partial("steps", out)
            out["profileFusedStartupTuned"] = self._profile(self._fused_step(tuned))
        return out

    def _profile(self, step) -> list[dict]:
        """GPU time per kernel name of one uncaptured step (mean of 3), largest first."""
        from torch.profiler import ProfilerActivity, profile

        step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                step()
            torch.cuda.synchronize()
        time_of = lambda e: getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)  # noqa: E731
        rows = [{"name": e.key[:80], "usPerStep": time_of(e) / 3, "callsPerStep": e.count / 3} for e in prof.key_averages() if time_of(e) > 0]
        return sorted(rows, key=lambda r: -r["usPerStep"])[:25]

    # -- 3. correctness -------------------------------------------------------------------------

    def parity(self) -> dict:
        """The fused layer vs the reference functions (eager, bf16) on layer 0, several positions."""
        rows = []
        layer = fd.FusedDecodeLayer(HEADS, KV_HEADS, D, HIDDEN, INTER)
        w = self.layers[0]
        with torch.inference_mode():
            for position, bucket in ((self.tokens - 1, 256), (853, 1024), (1500, 1536), (2047, 2048)):
                pos = torch.arange(position - self.tokens + 1, position + 1, device=self.dev)
                kv_ref, kv_got = self.kv[0].clone(), self.kv[0].clone()
                x = torch.randn(self.tokens, HIDDEN, device=self.dev, dtype=torch.bfloat16)
                q, kvn = pre_attention(x, w.ln1, w.eps1, w.w_qkv, w.b_qkv, self.cos[pos], self.sin[pos], HEADS, KV_HEADS)
                kv_ref.index_copy_(2, pos, kvn)
                attn = cached_attention(q, kv_ref, bucket, attention_bias(torch.arange(self.capacity, device=self.dev), pos, bucket, torch.bfloat16), self.scale)
                want = post_attention(x, attn, w.w_o, w.ln2, w.eps2, w.w_gate_up, w.w_down).float()
                got = layer(x, w, kv_got, pos, self.cos, self.sin, bucket, self.scale).float()
                rows.append({
                    "position": position, "bucket": bucket,
                    "relativeError": ((got - want).norm() / want.norm()).item(),
                    "maxAbsError": (got - want).abs().max().item(),
                    "kvMaxAbsError": (kv_got[:, :, pos] - kv_ref[:, :, pos]).abs().max().item(),
                })  # fmt: skip
        return {"rows": rows}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--tokens", type=int, default=1, help=f"tokens per step: 1 (decode) or 2..{fd.MAX_TOKENS} (a verification of N + 1)")
    args = p.parse_args()
    bench = Bench(args)
    for name, fn in (("machine", bench.machine), ("build", bench.build), ("parity", bench.parity), ("kernels", bench.kernels), ("steps", bench.steps)):
        bench.section(name, fn)
    return 1 if bench.result["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
