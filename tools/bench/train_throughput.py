"""Training throughput of eaglet's online Eagle3 trainer on the full Qwen2-Audio-7B architecture
with random weights (a benchmark, not a test).

The target is built directly on the GPU from Qwen2-Audio-7B's config (Whisper-large-v3 encoder +
Qwen2-7B text model, bf16, frozen); the draft is REFERENCE.md's (hidden 4096, 32 heads / 4 kv
heads, intermediate 11008, draft vocabulary 32000). Each sample is one record of exactly the given
length: a short prompt, one 30 s clip (750 audio tokens), and an assistant reply filling the rest,
every reply token counted by the loss (the worst case for the loss head: a random target's argmax
is put in the draft vocabulary at every position). Batch 1, TTT 7.

A step is the trainer's own ``train_step`` through the real pipeline (Arrow shard -> collate ->
log-mel features on the GPU -> target forward with hooks -> target signals -> draft TTT forward
and backward -> gradient clip -> fused AdamW). Reported per length: sequence tokens per second of
whole steps, the target's and the draft's share, peak GPU memory, or OOM. After ``--warmup``
steps, ``--steps`` run with the device synchronised around each step and its target phase (the
phase split, ``synced_tokens_per_s``), then ``--pipelined-steps`` run as training runs them,
unsynchronised, the host queueing a step while the GPU finishes the last: their span over their
count is ``tokens_per_s``'s step (``gpu_timing.step_figures``), and the card's SM clock and power
over them (``DeviceMonitor``) go into the row.

``--floor`` adds the step's arithmetic floor on this card, in the same run: the step's FLOPs as
torch counts them over one eager step (``counted_step_flops``), at the rate the card sustains on
the step's dominant product once it sits at its power limit (``gpu_timing.sustained_matmul_tflops``).

    python tools/bench/train_throughput.py --lengths 2048,4096,8192,16384
    python tools/bench/train_throughput.py --tiny --lengths 1024,2048   # the same code path on CPU
    torchrun --standalone --nproc-per-node 2 tools/bench/train_throughput.py --parallel ddp   # per GPU, data parallel
    python tools/bench/train_throughput.py --offline --lengths 4096   # capture, then train from the capture
    python tools/bench/train_throughput.py --lengths 4096 --target-fp8 both   # bf16 target, then FP8 (targetFp8), same run
    python tools/bench/train_throughput.py --lengths 4096 --variant flash,all-rows,flash2   # A/B of two levers, same run
    python tools/bench/train_throughput.py --lengths 4096 --pipelined-steps 32 --floor   # and the floor on this card

``--offline`` first captures ``--capture-records`` records of each length with the capture module
(``eaglet data capture``'s engine side: target forward, bf16 shards written to disk; after one
warm-up record), frees the target, then trains from the captures without it: capture tokens/s and
bytes per token are reported beside the offline step (its "target" part is reading the captured
states and computing the target's logits from the final hidden state).

``--target-fp8 on`` trains with the config's ``targetFp8`` (the target decoder's linears as FP8
products); ``both`` runs every length with the bf16 target first, then converts the same target
and runs them again, so the two are measured side by side on one card in one process.

Under torchrun every rank holds the whole target and one record per step (data parallel, the
draft wrapped in DDP or FSDP2 as the trainer does it); tokens/s is reported per GPU and in total.

``--reference PYTHON_OR_SITE`` then measures the reference trainer (AngelSlim 0.5.0's own step,
reference_throughput.py) on the same lengths in the same run, in its own environment (a Python
that has it, or a folder of its packages put first on PYTHONPATH for that process alone), and
prints the two side by side:

    python tools/bench/train_throughput.py --lengths 4096 --reference ~/.cache/eaglet/angelslim-venv/bin/python
    python3 tools/bench/train_throughput.py --lengths 4096 --reference /tmp/site-ref   # the GPU machine (reference_bundle.sh)

Needs the engine and the Qwen2-Audio adapter on PYTHONPATH (packages/engine/python,
plugins/qwen2-audio/python).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "packages/engine/python"), str(ROOT / "plugins/qwen2-audio/python")]

from eaglet_engine import config as config_mod  # noqa: E402
from eaglet_engine import distributed as dist_env  # noqa: E402
from eaglet_engine import events  # noqa: E402
from eaglet_engine import kernels  # noqa: E402
from eaglet_engine.capture import MANIFEST, Capture  # noqa: E402
from eaglet_engine.config import EngineTarget  # noqa: E402
from eaglet_engine.signals import StopRequested  # noqa: E402
from eaglet_engine.trainer import Trainer  # noqa: E402
from eaglet_engine.vocab import save_vocab  # noqa: E402
from eaglet_qwen2_audio import Qwen2AudioTarget  # noqa: E402
from gpu_timing import DeviceMonitor, StepClock, step_figures, sustained_matmul_tflops  # noqa: E402
from qwen2_audio_7b import AUX_LAYER_IDS_7B, DRAFT_VOCAB_7B, QWEN2_AUDIO_7B  # noqa: E402
from qwen2_audio_7b import DRAFT_7B as REFERENCE_DRAFT  # noqa: E402
from tests.fixtures import write_prepared  # noqa: E402  (the engine tests' shard writer)

SAMPLE_RATE = 16000
CLIP_SECONDS = 30

DRAFT_7B = {**REFERENCE_DRAFT, "torch_dtype": "bfloat16"}  # the trainer's draftConfig

TINY = {
    "audio_config": {**QWEN2_AUDIO_7B["audio_config"], "d_model": 16, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32},
    "text_config": {**QWEN2_AUDIO_7B["text_config"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 8, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 1024},
    "audio_token_index": 1000,
}
DRAFT_TINY = {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "torch_dtype": "float32"}
DRAFT_VOCAB_TINY = 512
AUX_LAYER_IDS_TINY = [2, 4, 5]  # 8 layers


def target_block(spec: dict) -> dict:
    """The engine's target block `eaglet train` would build for this architecture."""
    layers = spec["text_config"]["num_hidden_layers"]
    return {
        "id": "qwen2-audio",
        "adapter": "eaglet_qwen2_audio",
        "model": "(random weights)",
        "architecture": "Qwen2AudioForConditionalGeneration",
        "auxLayerIds": AUX_LAYER_IDS_7B if layers == 32 else AUX_LAYER_IDS_TINY,
        "audioTokenId": spec["audio_token_index"],
    }


def resolved_draft_config(draft_cfg: dict, spec: dict, draft_vocab: int) -> dict:
    """The draft config as `eaglet train` resolves it: sizes, the mapping's vocab sizes, aux ids."""
    return {
        **draft_cfg,
        "vocab_size": spec["text_config"]["vocab_size"],
        "draft_vocab_size": draft_vocab,
        "rope_theta": 10000,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
        "eagle_aux_hidden_state_layer_ids": target_block(spec)["auxLayerIds"],
    }


def build_target(spec: dict, device: torch.device, dtype: torch.dtype) -> Qwen2AudioTarget:
    """Random weights, built where they will run (no CPU copy of 8B parameters)."""
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor

    cfg = Qwen2AudioConfig(**spec)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2AudioForConditionalGeneration._from_config(cfg, attn_implementation="sdpa", dtype=dtype)
    finally:
        torch.set_default_dtype(previous)
    return Qwen2AudioTarget(model, WhisperFeatureExtractor(feature_size=128), config_mod.from_dict(EngineTarget, target_block(spec)))


class BenchTrainer(Trainer):
    """The real trainer with a prebuilt target, timing its stages (with device synchronisation)."""

    target_obj: Qwen2AudioTarget | None  # None: offline, the trainer reads the captures
    all_rows: bool = True

    def build_target(self):
        return self.target_obj if self.target_obj is not None else super().build_target()

    def _sync(self) -> None:
        if self.env.device.type == "cuda":
            torch.cuda.synchronize()

    def prepare(self, batch):
        """The data thread's work on a batch, timed on the host (``prepare_ms``): run beside the
        step, it must keep up with it, or pipelined steps wait for their batches."""
        t0 = time.perf_counter()
        out = super().prepare(batch)
        self.timings["prepare"].append(time.perf_counter() - t0)
        return out

    def target_step(self, batch):
        timed = self.clock.synced(self.step)  # pipelined steps time only whole steps
        if timed:
            self._sync()
            t0 = time.perf_counter()
        out = super().target_step(batch)
        if self.all_rows:
            out.target_in_draft = out.valid.clone()  # every assistant position counts (worst case)
        if timed:
            self._sync()
            self.timings["target"].append(time.perf_counter() - t0)
        return out

    def train_step(self, micro_batches, all_counts):
        index = self.step
        if not self.clock.synced(index):  # pipelined: as training runs (gpu_timing.step_figures)
            if not self.timings["start"]:
                self.timings["wall"].append(time.time())  # the window DeviceMonitor summarises
            self.timings["start"].append(time.perf_counter())
            stats = super().train_step(micro_batches, all_counts)
            if self.clock.last(index):
                self._sync()
                self.timings["end"].append(time.perf_counter())
                self.timings["wall"].append(time.time())
            return stats
        self._sync()
        t0 = time.perf_counter()
        stats = super().train_step(micro_batches, all_counts)
        self._sync()
        self.timings["step"].append(time.perf_counter() - t0)
        return stats


def make_record(target: Qwen2AudioTarget, length: int, vocab: int, rng: np.random.Generator, index: int = 0) -> dict:
    clip = (0.05 * rng.standard_normal(SAMPLE_RATE * CLIP_SECONDS)).astype(np.float32)
    n_audio = int(target.audio_tokens(target.media_inputs([clip], torch.device("cpu"))["feature_attention_mask"].sum(-1))[0])
    audio_id = target.audio_token_id
    high = min(vocab, audio_id, 150000)  # ordinary text ids, never the audio placeholder
    prompt = [int(x) for x in rng.integers(0, high, 12)]
    ids = prompt[:4] + [audio_id] * n_audio + prompt[4:]
    reply = [int(x) for x in rng.integers(0, high, length - len(ids))]
    return {
        "id": f"len{length}-{index}",
        "input_ids": ids + reply,
        "loss_mask": [0] * len(ids) + [1] * len(reply),
        "audio": [clip],
        "audio_token_counts": [n_audio],
        "line": 1,
    }


def capture_length(target, length: int, args, work: Path, spec: dict, denv: dist_env.DistEnv) -> tuple[Path, dict]:
    """Captures ``--capture-records`` records of ``length`` tokens (one per shard, so ranks share
    them) after a warm-up record; returns the capture folder and its figures."""
    rng = np.random.default_rng(length)
    records = [make_record(target, length, spec["text_config"]["vocab_size"], rng, i) for i in range(args.capture_records)]

    def capture(name: str, part: list[dict]) -> tuple[Path, dict]:
        cfg = config_mod.parse(
            {
                "target": target_block(spec),
                "data": [str(write_prepared(work / f"data-{name}", part))],
                "out": str(work / f"capture-{name}"),
                "shardTokens": length,
                "batchTokens": length,
                "precision": "bf16" if denv.device.type == "cuda" else "fp32",
                "compile": "off" if args.no_compile else "auto",
                "device": denv.device.type,
                "nprocPerNode": denv.world_size,
                "distTimeoutSeconds": 1800,
                "overwrite": True,
            },
            "capture",
        )
        return Path(cfg.out), Capture(cfg, denv, StopRequested(), adapter=target).run()

    capture(f"warmup-{length}", records[:1])
    folder, result = capture(str(length), records)
    manifest = json.loads((folder / MANIFEST).read_text())
    return folder, {
        "capture_records": len(records),
        "capture_tokens_per_s": result["tokensPerSecond"],  # all ranks together
        "capture_bytes_per_token": manifest["bytesPerToken"],
        "capture_head_bytes": manifest["head"]["bytes"],
    }


def every_row(rows_plan):
    """The ``all-rows`` variant: the TTT unroll on every row of the record, as before it skipped
    the rows ahead of the first one a loss reads (same losses and gradients, more work)."""

    def plan_from_row_0(batch):
        firsts, _, _ = rows_plan(batch)
        return firsts, 0, batch.input_ids.shape[1]

    return plan_from_row_0


@contextlib.contextmanager
def attention_backend(variant: str, device: torch.device):
    """The ``flash2`` variant: the draft's attention on flash attention 2 where cuDNN's would run."""
    if variant != "flash2" or device.type != "cuda":
        yield
        return
    key = torch.device("cuda", torch.cuda.current_device())
    before = kernels._cudnn_agrees(key)
    kernels._CUDNN_AGREES[key] = False
    try:
        yield
    finally:
        kernels._CUDNN_AGREES[key] = before


def run_length(
    target,
    length: int,
    args,
    work: Path,
    vocab_path: Path,
    spec: dict,
    draft_cfg: dict,
    denv: dist_env.DistEnv,
    captured: Path | None = None,
    target_fp8: bool = False,
    variant: str = "flash",
    monitor: DeviceMonitor | None = None,
    count_flops: bool = False,
) -> dict:
    """``draft_cfg``: the resolved draft config; ``spec``: the target's architecture; ``captured``:
    train offline from this capture (``target`` is then None); ``target_fp8``: the config's
    targetFp8 (converts ``target`` in place); ``monitor``: the card's clock and power over the
    pipelined steps go into the row; ``count_flops``: instead of timing, one step run eagerly
    under torch's FLOP counter (``counted_step_flops``)."""
    device = denv.device
    vocab_size = spec["text_config"]["vocab_size"]
    suffix = "-fp8" if target_fp8 else ""
    if captured is not None:
        data = captured
    else:
        rng = np.random.default_rng(length)
        # one record per rank and step: every rank builds the same shard, the planner deals it out
        records = [make_record(target, length, vocab_size, rng, i) for i in range(denv.world_size)]
        data = write_prepared(work / f"data-{length}-{variant}{suffix}", records)
    clock = StepClock(args.warmup, args.steps, args.pipelined_steps)
    steps = clock.total
    cfg = config_mod.parse(
        {
            "target": target_block(spec),
            "draftConfig": draft_cfg,
            "trainData": [str(data)],
            "evalData": [],
            "outputDir": str(work / f"out-{length}-{variant}{suffix}"),
            "maxLength": length,
            "vocab": str(vocab_path),
            "ttt": {"steps": args.ttt, "lossDecay": 0.8, "attention": "eager" if variant == "eager" else "flash"},
            "optimizer": {"lr": 1e-4, "weightDecay": 0.0, "betas": [0.9, 0.999], "eps": 1e-8, "gradClip": 1.0},
            "schedule": {"kind": "constant", "warmupSteps": 0, "minLrRatio": 0.0},
            "batching": {"maxTokens": length, "maxRecords": 1, "gradAccumulation": 1},
            "epochs": steps,
            "maxSteps": steps,
            "logEvery": 1000,
            "evalEvery": 0,
            "saveEvery": 0,
            "keepCheckpoints": 1,
            "precision": "bf16" if device.type == "cuda" else "fp32",
            "targetFp8": target_fp8,
            "compile": "off" if args.no_compile or count_flops else "auto",
            "device": device.type,
            "nprocPerNode": denv.world_size,
            "parallel": args.parallel,
            "resume": False,
            "export": {"formats": ["vllm"], "speculativeTokens": 3},
            "plot": False,
            "seed": 0,
        },
        "train",
    )
    result: dict = {"length": length, "variant": variant, "target_fp8": target_fp8, "offline": captured is not None, "gpus": denv.world_size, "parallel": args.parallel if denv.distributed else "single"}
    trainer = BenchTrainer.__new__(BenchTrainer)
    Trainer.__init__(trainer, cfg, env=denv)
    trainer.target_obj = target
    trainer.timings = {"target": [], "step": [], "start": [], "end": [], "prepare": [], "wall": []}
    trainer.clock = clock
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        with attention_backend(variant, device):
            trainer.build()
            if variant == "unfused":
                trainer.objective.fused = False
            if variant == "all-rows":
                trainer.objective._rows_plan = every_row(trainer.objective._rows_plan)
            if variant == "cast-per-step":
                trainer.objective.weights_dtype = None
            trainer.save_checkpoint = lambda: None  # not part of a step; a 7B-draft checkpoint is minutes of disk
            trainer.export = lambda: {}
            if count_flops:
                result.update(counted_step_flops(trainer))
            else:
                trainer.train()
    except torch.OutOfMemoryError as e:
        result["oom"] = True
        result["error"] = str(e).split("\n")[0][:200]
    finally:
        timings = trainer.timings
        del trainer
        gc.collect()
    if device.type == "cuda":
        result["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
        torch.cuda.empty_cache()
    if not result.get("oom") and not count_flops:
        result.update(step_figures(timings, args.warmup, length, denv.world_size))
        result["prepare_ms"] = [round(1e3 * x, 1) for x in timings["prepare"]]
        if monitor is not None and len(timings["wall"]) == 2:
            result.update(monitor.window(*timings["wall"]))
    return result


def counted_step_flops(trainer: BenchTrainer) -> dict:
    """The FLOPs of one training step as torch counts them (``torch.utils.flop_counter``: matrix
    products, the audio encoder's convolutions among them, and attention, forward and backward),
    in TFLOP: ``step_tflop_matmul`` and ``step_tflop_attention``. The step runs eagerly (the
    counter sees aten operators, not compiled kernels; the FLOPs are the same). The data thread's
    part of the step, the audio encoder, is counted by preparing the same batch again here: a
    dispatch mode sees one thread.
    Attention is counted as if every score were computed (the counter ignores causal masking), so
    ``step_tflop_attention`` is about twice what causal kernels do; elementwise work and the TTT
    merge's Triton kernels are not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    inputs = trainer._step_inputs()
    _, _, batches, counts = next(inputs)
    inputs.close()
    mine, _ = trainer.planner.step_batches(0, 0)
    aten = torch.ops.aten
    attention = {  # with grouped key/value heads, which torch 2.11's own formulas refuse (2.15's count them)
        **dict.fromkeys([aten._scaled_dot_product_cudnn_attention, aten._scaled_dot_product_flash_attention, aten._scaled_dot_product_efficient_attention], _attention_flops),
        **dict.fromkeys(
            [aten._scaled_dot_product_cudnn_attention_backward, aten._scaled_dot_product_flash_attention_backward, aten._scaled_dot_product_efficient_attention_backward],
            _attention_backward_flops,
        ),
    }
    with FlopCounterMode(display=False, custom_mapping=attention) as counter:
        for idx in mine:
            trainer.prepare(trainer.train_data.collate(idx))
        trainer.train_step(batches, counts)
    by_op = counter.get_flop_counts()["Global"]
    attention = sum(n for op, n in by_op.items() if "attention" in str(op))
    matmul = sum(by_op.values()) - attention
    return {"step_tflop_matmul": float(f"{matmul / 1e12:.4g}"), "step_tflop_attention": float(f"{attention / 1e12:.4g}")}


def _attention_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """Scores and output of ``[b, h, s_q, d]`` queries over ``s_k`` keys, every head of the
    queries' (key/value heads shared by groups of them), causal masking ignored as torch does."""
    b, h, s_q, d = query_shape
    s_k, d_v = key_shape[2], value_shape[3]
    return 2 * b * h * s_q * s_k * (d + d_v)


def _attention_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """The backward's five products as torch counts them: the scores again, the scores' and the
    values' gradients, then the queries' and the keys'."""
    b, h, s_q, d = query_shape
    s_k, d_v = key_shape[2], value_shape[3]
    return 2 * b * h * s_q * s_k * (3 * d + 2 * d_v)


def floor_figures(row: dict, flops: dict, matmul_tflops: float) -> dict:
    """The step's arithmetic floor on this card: its matrix-product FLOPs and half its counted
    attention FLOPs (causal), all at the rate the card sustains on the step's dominant product
    (``gpu_timing.sustained_matmul_tflops``, measured in the same run), against the pipelined step."""
    tflop = flops["step_tflop_matmul"] + flops["step_tflop_attention"] / 2
    floor = tflop / matmul_tflops
    out = {**flops, "sustained_matmul_tflops": matmul_tflops, "floor_step_s": float(f"{floor:.4g}"), "floor_tokens_per_s": round(row["length"] / floor, 1)}
    if "pipelined_step_s" in row:
        out["floor_share"] = round(floor / row["pipelined_step_s"], 3)  # 1.0: the step runs at the floor
    return out


REFERENCE_HOWTO = """The reference's environment (AngelSlim 0.5.0 with its transformers 5.9) is made with:
  here:            bash tools/bench/quality/reference/setup.sh
                   then --reference ~/.cache/eaglet/angelslim-venv/bin/python
  the GPU machine: bash tools/bench/reference_bundle.sh here (wheels into .dev-ref/whl; carry that path), there:
                   python3 -m pip install -q --no-index --no-deps --target /tmp/site-ref .dev-ref/whl/*.whl
                   then --reference /tmp/site-ref"""


def reference_command(value: str) -> tuple[list[str], dict]:
    """How to run reference_throughput.py in the reference's own environment: ``value`` is a
    Python that has AngelSlim (setup.sh's venv) or a folder its wheels were installed into with
    ``pip install --target`` (reference_bundle.sh's), which goes first on PYTHONPATH of that
    process alone, so that transformers 5.9 is seen only by the reference. Checked before
    eaglet's lengths run: without AngelSlim there, it exits saying how to get it."""
    path = Path(value).expanduser()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # eaglet's engine path is not the reference's
    python = None
    if path.is_dir():
        python, env["PYTHONPATH"] = sys.executable, str(path.resolve())
    elif path.is_file() and os.access(path, os.X_OK):
        python = str(path)
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('angelslim') is None)"
    if python is None or subprocess.run([python, "-c", probe], env=env).returncode != 0:
        sys.exit(f"--reference {value}: no AngelSlim there (a Python that has it, or the folder its wheels were installed into).\n{REFERENCE_HOWTO}")
    return [python, str(Path(__file__).resolve().parent / "reference_throughput.py")], env


def compare_with_reference(command: list[str], env: dict, args, rows: list[dict]) -> None:
    """Runs the reference on the same lengths, steps and TTT (its rows go to --out too), then
    prints eaglet's rows beside it with the ratio of tokens/s."""
    argv = ["--lengths", args.lengths, "--steps", str(args.steps), "--warmup", str(args.warmup), "--pipelined-steps", str(args.pipelined_steps), "--ttt", str(args.ttt)]
    argv += ["--tiny"] * args.tiny + (["--out", args.out] if args.out else []) + (["--memory-gib", str(args.memory_gib)] if args.memory_gib else [])
    print(f"\nreference: {' '.join(command + argv)}", flush=True)
    proc = subprocess.Popen(command + argv, env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    ref_env, ref_rows = {}, {}
    for line in proc.stdout:  # its JSON lines and table, passed on as they come
        print(line, end="", flush=True)
        try:
            obj = json.loads(line) if line.startswith("{") else None
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            ref_env = obj.get("env", ref_env)
            if "length" in obj:
                ref_rows[obj["length"]] = obj
    code = proc.wait()
    import transformers

    print(f"\nsame run, one process after the other | eaglet: transformers {transformers.__version__} | reference: {ref_env.get('trainer', '?')}, transformers {ref_env.get('transformers', '?')}")
    print("tokens/s: pipelined steps (as training runs); synced: each step timed alone, the device synchronised around it and its target phase")
    print("| length | eaglet | eaglet tokens/s | reference tokens/s | ratio | eaglet synced tok/s | reference synced tok/s | synced ratio | eaglet step s (synced) | reference step s (synced) | eaglet target s | reference target s | eaglet peak GiB | reference peak GiB |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ref = ref_rows.get(r["length"], {"error": "not run"})
        label = r.get("variant", "flash") + (", FP8 target" if r.get("target_fp8") else "")
        ours = "OOM" if r.get("oom") else f"{r['tokens_per_s']:,.0f}"
        theirs = ref.get("error") if "tokens_per_s" not in ref else f"{ref['tokens_per_s']:,.0f}"
        ratio = f"{r['tokens_per_s'] / ref['tokens_per_s']:.2f}x" if "tokens_per_s" in r and "tokens_per_s" in ref else ""
        synced = f"{r['synced_tokens_per_s'] / ref['synced_tokens_per_s']:.2f}x" if "synced_tokens_per_s" in r and "synced_tokens_per_s" in ref else ""
        print(f"| {r['length']} | {label} | {ours} | {theirs} | {ratio} | {r.get('synced_tokens_per_s', '')} | {ref.get('synced_tokens_per_s', '')} | {synced} | {r.get('step_s', '')} | {ref.get('step_s', '')} | {r.get('target_s', '')} | {ref.get('target_s', '')} | {r.get('peak_allocated_gib', '')} | {ref.get('peak_allocated_gib', '')} |")
    if code:
        sys.exit(f"the reference exited with status {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="2048,4096,8192,16384")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per length (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pipelined-steps", type=int, default=16, help="then this many steps run as training runs, unsynchronised: tokens/s is theirs (0: the synchronised steps')")
    parser.add_argument("--ttt", type=int, default=7)
    parser.add_argument(
        "--variant",
        default="flash",
        help="comma-separated, each length runs each in turn: flash (the trainer as it is), eager (the reference attention: materialised scores), "
        "unfused (full logits loss), all-rows (the TTT unroll on every row, not only from the first one a loss reads), "
        "flash2 (the draft's attention on flash attention 2 instead of cuDNN), cast-per-step (autocast casts the draft's weights at every TTT step)",
    )
    parser.add_argument("--no-compile", action="store_true", help="eager elementwise work (no torch.compile fusion)")
    parser.add_argument("--tiny", action="store_true", help="tiny widths on CPU: checks the script, measures nothing")
    parser.add_argument("--parallel", choices=["ddp", "fsdp"], default="ddp", help="under torchrun: how the draft is wrapped")
    parser.add_argument("--out", help="append JSON lines here")
    parser.add_argument("--memory-gib", type=float, help="cap this process's GPU memory (torch.cuda.set_per_process_memory_fraction): 80 emulates an 80 GB card on a larger one")
    parser.add_argument("--search", action="store_true", help="the longest context that trains: --lengths in ascending order, stopping at the first that runs out of memory")
    parser.add_argument("--offline", action="store_true", help="capture each length first (capture tokens/s, bytes/token), then train from the captures without the target")
    parser.add_argument("--capture-records", type=int, default=8, help="--offline: records captured per length (one per shard)")
    parser.add_argument("--target-fp8", choices=["off", "on", "both"], default="off", help="the target decoder's linears in FP8 (targetFp8); both: bf16 first, then FP8, same run")
    parser.add_argument("--floor", action="store_true", help="the step's arithmetic floor on this card, in the same run: its FLOPs counted over one eager step, at the rate the card sustains on the step's dominant product")
    parser.add_argument("--reference", metavar="PYTHON_OR_SITE", help="after eaglet's lengths, the reference trainer's (AngelSlim 0.5.0) on the same ones, side by side: a Python that has it, or the folder its wheels were installed into")
    args = parser.parse_args()
    if args.reference and (args.offline or int(os.environ.get("WORLD_SIZE", "1")) > 1):
        parser.error("--reference: the reference is measured online on one GPU (no --offline, no torchrun)")
    if args.floor and args.offline:
        parser.error("--floor: the online step's floor (no --offline)")
    reference = reference_command(args.reference) if args.reference else None  # before the long part: absent is an error now

    events.redirect_stdout_to_stderr()  # the trainer's events go to stderr; the table to stdout
    events.emit = lambda *a, **k: None  # quiet
    denv = dist_env.init("cpu" if args.tiny or not torch.cuda.is_available() else "cuda", timeout_seconds=1800)  # torchrun: one GPU per rank
    device = denv.device
    if args.memory_gib and device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.memory_gib * 2**30 / total), device)
    spec, draft_cfg, draft_vocab = (TINY, DRAFT_TINY, DRAFT_VOCAB_TINY) if args.tiny else (QWEN2_AUDIO_7B, DRAFT_7B, DRAFT_VOCAB_7B)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    t0 = time.perf_counter()
    target = build_target(spec, device, dtype)
    build_s = time.perf_counter() - t0
    vocab_size = spec["text_config"]["vocab_size"]

    env = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "gpus": denv.world_size,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "python": platform.python_version(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "target_build_s": round(build_s, 1),
        "target_params_b": round(sum(p.numel() for p in target.model.parameters()) / 1e9, 3),
        **({"memory_cap_gib": args.memory_gib} if args.memory_gib else {}),
    }
    say = print if denv.is_main else (lambda *a, **k: None)
    monitor = DeviceMonitor(device) if device.type == "cuda" else None
    if args.floor:
        t0 = time.time()
        product = (4096, spec["text_config"]["hidden_size"], spec["text_config"]["intermediate_size"])  # the target's MLP projection at 4096 tokens
        env["sustained_matmul_shape"] = list(product)  # [m, k] x [k, n] as [m, k, n]
        env["sustained_matmul_tflops"] = round(sustained_matmul_tflops(device, product, seconds=8.0 if device.type == "cuda" else 0.2, dtype=dtype), 3)
        if monitor is not None:
            env.update({f"matmul_{k}": v for k, v in monitor.window(t0, time.time()).items()})
    say(json.dumps({"env": env}), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ids = torch.arange(draft_vocab, dtype=torch.int64)  # the 32k lowest ids: any fixed set will do
        t2d = torch.zeros(vocab_size, dtype=torch.bool)
        t2d[ids] = True
        save_vocab(work / "vocab.safetensors", ids - torch.arange(draft_vocab), t2d)
        lengths = [int(x) for x in args.lengths.split(",")]
        captures: dict[int, tuple[Path, dict]] = {}
        if args.offline:
            captures = {length: capture_length(target, length, args, work, spec, denv) for length in lengths}
            target = None  # offline training runs without it: its memory is not part of the step's
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        variants = args.variant.split(",")
        fp8_runs = {"off": [False], "on": [True], "both": [False, True]}[args.target_fp8]  # FP8 last: it converts the target in place
        for target_fp8 in fp8_runs:
            for length in sorted(lengths) if args.search else lengths:
                folder, capture_figures = captures.get(length, (None, {}))
                for variant in variants:
                    run = functools.partial(run_length, target, length, args, work, work / "vocab.safetensors", spec, resolved_draft_config(draft_cfg, spec, draft_vocab), denv, captured=folder, target_fp8=target_fp8, variant=variant)
                    flops = run(count_flops=True) if args.floor else {}
                    row = run(monitor=monitor)
                    if flops and not flops.get("oom") and not row.get("oom"):
                        row.update(floor_figures(row, {k: flops[k] for k in ("step_tflop_matmul", "step_tflop_attention")}, env["sustained_matmul_tflops"]))
                    row.update(capture_figures)
                    row["device"] = env["device"]
                    rows.append(row)
                    say(json.dumps(row), flush=True)
                    if args.out and denv.is_main:
                        with open(args.out, "a") as f:
                            f.write(json.dumps({**row, **{k: env[k] for k in ("date", "torch", "transformers", "command", "memory_cap_gib") if k in env}}) + "\n")
                if args.search and row.get("oom"):
                    break  # the next precision still searches from the shortest length
    dist_env.close()
    if monitor is not None:
        monitor.close()
    if not denv.is_main:
        return
    gpus = f"{denv.world_size} x {env['device']} ({args.parallel})" if denv.distributed else env["device"]
    cap = f" | memory capped at {args.memory_gib:g} GiB" if args.memory_gib else ""
    print(f"\n{gpus} | torch {env['torch']} | transformers {env['transformers']} | {env['date']}{cap}")
    if args.search:
        for target_fp8 in fp8_runs:
            tried = [r for r in rows if r["target_fp8"] == target_fp8]
            fits = [r["length"] for r in tried if not r.get("oom")]
            label = " (FP8 target)" if target_fp8 else ""
            print(f"longest context that trains{label}: {max(fits) if fits else 'none of ' + args.lengths}" + (f" (next tried, {tried[-1]['length']}, ran out of memory)" if tried and tried[-1].get("oom") else " (no length tried ran out of memory)"))
    if args.offline:
        print("offline: the target part is reading the captured states and the target's logits from its final hidden state")
        print("| length | capture tok/s | capture bytes/token | offline tokens/s per GPU | step s | target s | draft+opt s | peak GiB |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            train = "OOM | | | " if r.get("oom") else f"{r['tokens_per_s']:,.0f} | {r['step_s']:.3f} | {r['target_s']:.3f} | {r['draft_and_optimizer_s']:.3f}"
            print(f"| {r['length']} | {r['capture_tokens_per_s']:,.0f} | {r['capture_bytes_per_token']:,.0f} | {train} | {r.get('peak_allocated_gib', '')} |")
        return
    for r in rows:
        if "floor_step_s" in r:
            clocks = f" ({r['sm_clock_mhz']} MHz, {r['power_w']} W, power-capped {r['power_capped_share']:.0%} of samples)" if "sm_clock_mhz" in r else ""
            print(
                f"floor at {r['length']}: {r['step_tflop_matmul']:.1f} TFLOP of products + {r['step_tflop_attention'] / 2:.1f} of causal attention a step, at the "
                f"{r['sustained_matmul_tflops']:.1f} TFLOP/s this card sustains on one product ({env.get('matmul_sm_clock_mhz', '?')} MHz): {r['floor_step_s']:.3f} s "
                f"({r['floor_tokens_per_s']:,.0f} tokens/s)"
                + (f"; the pipelined step{clocks}: {r['pipelined_step_s']:.3f} s, the floor is {r['floor_share']:.0%} of it" if "floor_share" in r else "")
            )
    print("tokens/s: pipelined steps (as training runs); the other columns: steps timed alone, the device synchronised around each and its target phase")
    print("| length | target | variant | tokens/s per GPU | synced tokens/s | step s | target s | draft+opt s | target share | peak GiB |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        target_kind = "FP8 linears" if r["target_fp8"] else ("bf16" if device.type == "cuda" else "fp32")
        if r.get("oom"):
            print(f"| {r['length']} | {target_kind} | {r['variant']} | OOM | | | | | | {r.get('peak_allocated_gib', '')} |")
        else:
            print(f"| {r['length']} | {target_kind} | {r['variant']} | {r['tokens_per_s']:,.0f} | {r['synced_tokens_per_s']:,.0f} | {r['step_s']:.3f} | {r['target_s']:.3f} | {r['draft_and_optimizer_s']:.3f} | {r['target_share']:.2f} | {r.get('peak_allocated_gib', '')} |")
    if reference:
        # eaglet's measurements are done: give the card's memory to the reference's process (the
        # compiled graphs hold the target's weights too)
        target = None
        torch._dynamo.reset()
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            print(f"eaglet's process still holds {torch.cuda.memory_reserved(device) / 2**30:.2f} GiB of the card (reserved) while the reference runs", flush=True)
        compare_with_reference(*reference, args, rows)


if __name__ == "__main__":
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    main()
