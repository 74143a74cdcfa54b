"""Where a training step's time goes: torch.profiler over whole steps of the 7B setup of
train_throughput.py (same target, draft and data), CUDA kernels ranked by time.

    python tools/bench/profile_step.py --length 4096 [--tiny]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_throughput as tt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--rows", type=int, default=45)
    parser.add_argument("--trace", help="write a Chrome trace here")
    args = parser.parse_args()
    tt.events.redirect_stdout_to_stderr()
    tt.events.emit = lambda *a, **k: None
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    spec, draft_cfg, draft_vocab = (tt.TINY, tt.DRAFT_TINY, tt.DRAFT_VOCAB_TINY) if args.tiny else (tt.QWEN2_AUDIO_7B, tt.DRAFT_7B, tt.DRAFT_VOCAB_7B)
    target = tt.build_target(spec, device, torch.float32 if device.type == "cpu" else torch.bfloat16)
    vocab_size = spec["text_config"]["vocab_size"]
    ns = argparse.Namespace(warmup=3, steps=args.steps, ttt=7, variant="flash", no_compile=args.no_compile)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ids = torch.arange(draft_vocab, dtype=torch.int64)
        t2d = torch.zeros(vocab_size, dtype=torch.bool)
        t2d[ids] = True
        tt.save_vocab(work / "vocab.safetensors", ids - torch.arange(draft_vocab), t2d)

        from torch.profiler import ProfilerActivity, profile, schedule

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        prof = profile(activities=activities, schedule=schedule(wait=1, warmup=2, active=args.steps, repeat=1), record_shapes=False)

        original = tt.BenchTrainer.train_step

        def stepped(self, *a, **k):
            out = original(self, *a, **k)
            prof.step()
            return out

        tt.BenchTrainer.train_step = stepped
        prof.start()
        t0 = time.perf_counter()
        row = tt.run_length(target, args.length, ns, work, work / "vocab.safetensors", draft_cfg, vocab_size, device)
        prof.stop()
        print(json.dumps(row), f"{time.perf_counter() - t0:.1f}s", flush=True)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=args.rows, max_name_column_width=70)
    print(table, file=sys.__stdout__)
    if args.trace:
        prof.export_chrome_trace(args.trace)
    # Buckets by kernel family, in ms per step.
    buckets: dict[str, float] = {}
    for e in prof.key_averages():
        t = (e.self_device_time_total if device.type == "cuda" else e.self_cpu_time_total) / 1000 / args.steps
        name = e.key.lower()
        kind = (
            "gemm" if any(s in name for s in ("gemm", "cutlass", "sm90_xmma", "nvjet", "matmul", "addmm", "::mm", "bmm"))
            else "flash-attn" if "flash" in name
            else "elementwise/reduce"
        )
        if e.device_type.name == "CUDA" or device.type == "cpu":
            buckets[kind] = buckets.get(kind, 0.0) + t
    print("ms per step by family:", {k: round(v, 2) for k, v in sorted(buckets.items(), key=lambda kv: -kv[1])}, file=sys.__stdout__)
    _ = np


if __name__ == "__main__":
    main()
