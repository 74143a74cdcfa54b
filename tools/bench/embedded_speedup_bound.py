#!/usr/bin/env python3
"""The embedded backend on the full Qwen2-Audio-7B architecture (random weights, built on the
device): the cost of a target decode step (batch 1, KV cache) against the cost of the Eagle3 draft
chain of N tokens and of the target's verification of N+1 tokens, and from them the speedup bound
at each acceptance length.

    PYTHONPATH=packages/engine/python:plugins/qwen2-audio/python python tools/bench/embedded_speedup_bound.py --out "$OUT"
    PYTHONPATH=packages/engine/python:plugins/qwen2-audio/python python tools/bench/embedded_speedup_bound.py --tiny --out /tmp/b   # CPU check

Nothing is downloaded and Node is not needed: the models are built from configs (REFERENCE.md's
Qwen2-Audio-7B text model and Whisper-large-v3-shaped encoder; the draft of the reference's table)
and timed through the embedded backend's own code (`eaglet_engine.generate`: TargetRunner,
DraftRunner, Generator). Random weights accept nothing, so acceptance is not measured here; the
bound is what a draft with mean acceptance length tau would give:

    speedup(tau, N) = tau * t_decode / (t_verify(N+1) + t_chain(N) + t_catchup(tau))

where t_decode is one baseline target step, t_verify(N+1) one target forward over N+1 tokens,
t_chain(N) the draft's chain after its first proposal (N-1 draft steps plus picking tokens: the
first proposal comes out of the catch-up step), t_catchup(tau) the draft re-reading the tau
positions the target confirmed (vLLM's accounting: tau = 1 + accepted/drafts). Writes embedded_speedup_bound.json and
.md to --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from eaglet_engine.config import EngineTarget
from eaglet_engine.draft import DraftConfig, build_draft
from eaglet_engine.generate.draft import DraftRunner
from eaglet_engine.generate.speculative import GenerationParams, Generator
from eaglet_engine.generate.target import TargetRunner
from eaglet_qwen2_audio import Qwen2AudioTarget
from qwen2_audio_7b import AUX_LAYER_IDS_7B, DRAFT_7B, DRAFT_VOCAB_7B, QWEN2_AUDIO_7B

VOCAB = QWEN2_AUDIO_7B["text_config"]["vocab_size"]
AUDIO_TOKEN = QWEN2_AUDIO_7B["audio_token_index"]


def qwen2_audio_config(tiny: bool):
    from transformers import Qwen2AudioConfig

    spec = QWEN2_AUDIO_7B
    if tiny:  # the same geometry with tiny widths
        audio = dict(d_model=32, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64)
        text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=8, num_attention_heads=4, num_key_value_heads=4)
        spec = {**spec, "audio_config": {**spec["audio_config"], **audio}, "text_config": {**spec["text_config"], **text}}
    config = Qwen2AudioConfig(**spec)
    config.architectures = ["Qwen2AudioForConditionalGeneration"]
    return config


def draft_config(tiny: bool, hidden: int) -> DraftConfig:
    if tiny:
        return DraftConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=VOCAB, draft_vocab_size=DRAFT_VOCAB_7B)
    return DraftConfig(**DRAFT_7B, vocab_size=VOCAB, draft_vocab_size=DRAFT_VOCAB_7B)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int, warmup: int = 3) -> float:
    """Median seconds of fn() over `repeats` runs after `warmup`."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for the results")
    p.add_argument("--tiny", action="store_true", help="a tiny config (checks the script on CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--max-n", type=int, default=5, help="largest draft chain length N")
    p.add_argument("--text-tokens", type=int, default=40, help="text tokens around the audio in the prompt")
    p.add_argument("--audio-seconds", type=float, default=30.0, help="clip length (30 s gives 750 audio tokens)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--generate-tokens", type=int, default=128, help="tokens of the end-to-end baseline decode")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)

    from transformers import Qwen2AudioForConditionalGeneration, WhisperFeatureExtractor

    t0 = time.perf_counter()
    with torch.device(device):
        model = Qwen2AudioForConditionalGeneration._from_config(qwen2_audio_config(args.tiny), dtype=dtype)
    aux = (2, 4, 5) if args.tiny else tuple(AUX_LAYER_IDS_7B)  # vLLM's default for 8 and 32 layers
    block = EngineTarget("qwen2-audio", "eaglet_qwen2_audio", "(random weights)", "Qwen2AudioForConditionalGeneration", aux, AUDIO_TOKEN)
    adapter = Qwen2AudioTarget(model, WhisperFeatureExtractor(feature_size=128), block)
    target = TargetRunner(adapter, aux)
    draft_model = build_draft(draft_config(args.tiny, target.hidden_size), seed=0, device=device).to(dtype)
    draft_model.set_embedding(adapter.embedding_weight())
    ids = torch.randperm(VOCAB, device=device)[:DRAFT_VOCAB_7B].sort().values
    draft_model.set_vocab(ids - torch.arange(DRAFT_VOCAB_7B, device=device), torch.zeros(VOCAB, dtype=torch.bool, device=device).index_fill(0, ids, True))
    draft = DraftRunner(draft_model)
    build_seconds = time.perf_counter() - t0
    print(f"built target + draft in {build_seconds:.1f} s on {device}", file=sys.stderr)

    # A prompt like the benchmark's: one clip's audio tokens plus text.
    sr = 16000
    pcm = (torch.randn(int(args.audio_seconds * sr), generator=torch.Generator().manual_seed(0)) * 0.05).numpy()
    n_audio = int(adapter.audio_tokens(target.media([pcm])["feature_attention_mask"].sum(-1)).item())
    text = torch.randint(0, 150000, (args.text_tokens,), generator=torch.Generator().manual_seed(1)).tolist()
    prompt = text[: args.text_tokens // 2] + [AUDIO_TOKEN] * n_audio + text[args.text_tokens // 2 :]
    L = len(prompt)

    with torch.inference_mode():
        sync(device)
        t = time.perf_counter()
        target.reset()
        step = target.forward(prompt, [pcm], logits_for="last")
        sync(device)
        prefill = time.perf_counter() - t

        def decode():
            target.forward([1], want_taps=False)
            target.crop(L)

        t_decode = timed(decode, device, args.repeats)
        hidden = draft.fuse(step.taps)
        draft.reset()
        draft.step(torch.as_tensor(prompt[1:] + [1], device=device), hidden, start=0)

        rows = []
        gen = Generator(target, draft, num_spec_tokens=args.max_n)
        for n in range(1, args.max_n + 1):
            gen.num_spec_tokens = n
            tokens = [1] * (n + 1)

            def verify():
                target.forward(tokens, want_taps=True)
                target.crop(L)

            t_verify = timed(verify, device, args.repeats)
            g = torch.zeros(1, draft.model.config.hidden_size, device=device, dtype=dtype)
            logits = torch.zeros(DRAFT_VOCAB_7B, device=device)

            def chain():
                gen._chain(g, logits, L, True, GenerationParams(max_tokens=1), None)
                draft.cache.crop(L)

            t_chain = timed(chain, device, args.repeats)
            catchup = {}
            for tau in range(1, n + 2):
                h = torch.zeros(tau, target.hidden_size * 3, device=device, dtype=dtype)

                def catch():
                    draft.step(torch.ones(tau, dtype=torch.long, device=device), draft.fuse(h), start=L)
                    draft.cache.crop(L)

                catchup[tau] = timed(catch, device, args.repeats)
            bound = {tau: tau * t_decode / (t_verify + t_chain + catchup[tau]) for tau in range(1, n + 2)}
            rows.append({"n": n, "verifySeconds": t_verify, "chainSeconds": t_chain, "catchupSeconds": catchup, "speedupBound": bound})
            print(f"N={n}: verify {1e3 * t_verify:.2f} ms, chain {1e3 * t_chain:.2f} ms, bound at tau=N+1: {bound[n + 1]:.2f}x", file=sys.stderr)

        # End to end through the Generator: baseline tokens/s (random weights: no stop token).
        gen.num_spec_tokens = 2
        base = gen.generate(prompt, [pcm], GenerationParams(max_tokens=args.generate_tokens, max_model_len=L + args.generate_tokens + 8))
        spec = gen.generate(prompt, [pcm], GenerationParams(max_tokens=args.generate_tokens, speculative=True, max_model_len=L + args.generate_tokens + 8))

    import transformers

    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "machine": {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu {platform.processor() or platform.machine()}",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "dtype": str(dtype).replace("torch.", ""),
            "peakMemoryGiB": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        },
        "config": "tiny" if args.tiny else "Qwen2-Audio-7B (random weights), Eagle3 draft 4096/11008, 32 heads, 4 kv heads, draft vocab 32000",
        "promptTokens": L,
        "audioTokens": n_audio,
        "buildSeconds": build_seconds,
        "prefillSeconds": prefill,
        "decodeStepSeconds": t_decode,
        "baselineTokensPerSecondFromStep": 1 / t_decode,
        "endToEnd": {
            "baseline": {"tokens": len(base.output_ids), "seconds": base.seconds - base.prefill_seconds, "tokensPerSecond": (len(base.output_ids) - 1) / max(1e-9, base.seconds - base.prefill_seconds)},
            "eagle3RandomDraft": {"tokens": len(spec.output_ids), "seconds": spec.seconds - spec.prefill_seconds, "acceptedTokens": spec.counters.num_accepted_tokens, "drafts": spec.counters.num_drafts},
        },
        "chains": rows,
        "definition": "speedup(tau, N) = tau * t_decode / (t_verify(N+1) + t_chain(N) + t_catchup(tau)); tau = mean acceptance length = 1 + accepted/drafts",
    }
    (out / "embedded_speedup_bound.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        f"# Embedded backend: target step vs Eagle3 draft chain ({result['config']})",
        "",
        f"{result['date']}, {result['machine']['device']}, torch {torch.__version__}, transformers {transformers.__version__}, {result['machine']['dtype']}.",
        f"Command: `{result['command']}`",
        "",
        f"Prompt {L} tokens ({n_audio} audio). Prefill {1e3 * prefill:.1f} ms. Target decode step (batch 1, KV cache): **{1e3 * t_decode:.2f} ms** ({1 / t_decode:.1f} tok/s).",
        f"End to end through the Generator: baseline {result['endToEnd']['baseline']['tokensPerSecond']:.1f} tok/s after prefill.",
        "",
        "| N | verify N+1 (ms) | draft chain N (ms) | " + " | ".join(f"bound tau={t}" for t in range(1, args.max_n + 2)) + " |",
        "|---|---|---|" + "---|" * (args.max_n + 1),
    ]
    for r in rows:
        cells = [f"{r['speedupBound'][t]:.2f}x" if t in r["speedupBound"] else "" for t in range(1, args.max_n + 2)]
        md.append(f"| {r['n']} | {1e3 * r['verifySeconds']:.2f} | {1e3 * r['chainSeconds']:.2f} | " + " | ".join(cells) + " |")
    md += ["", result["definition"], ""]
    (out / "embedded_speedup_bound.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
