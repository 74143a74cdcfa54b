#!/usr/bin/env python3
"""The fused loss's per-chunk math (soft cross-entropy, correct rows, d loss / d logits) three
ways, on one TTT step's rows split in chunks as the trainer splits them (kernels.DEFAULT_CHUNK_ROWS):

  a. ``kernels._chunk_math`` eager;
  b. the same through ``torch.compile(..., dynamic=True)`` (the trainer's ``compile`` setting);
  c. the Triton kernel ``soft_ce_kernel.soft_cross_entropy_rows`` at its default launch shape,
     returning each chunk's gradient as (a) and (b) do (``kernel``) and writing it into the step's
     gradient buffer instead (``out=``, ``kernelOut``; the trainer copies each chunk's gradient
     there, a copy timed apart as ``trainerCopyMs``); on CUDA also over a grid of launch shapes
     (``sweep``, ``best``: tile width, warps, programs).

Each is the median of --reps timed steps (CUDA events; perf_counter on the CPU) after --warmup
untimed ones; reported as ms a step and effective GB/s: the bytes a single pass must move (both
logits read, the gradient written) over the time. The floor is a plain copy moving as many bytes
(``torch.empty_like(x).copy_(x)``, half of them read and half written). The kernel's loss, correct
rows and gradient are checked against (a) on the first chunk.

    python tools/bench/loss_kernel.py --out loss-kernel.jsonl              # an H200: 3334 x 32000 bf16
    python tools/bench/loss_kernel.py --device cpu --rows 64 --vocab 1000  # a smoke test (torch math)

--out appends one JSON line (date, device, torch and Triton versions, shape, results).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import json
import statistics
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "packages/engine/python")]

from eaglet_engine.kernels import DEFAULT_CHUNK_ROWS, _chunk_math  # noqa: E402
from eaglet_engine.soft_ce_kernel import DEFAULT_BLOCK, DEFAULT_WARPS, serves, soft_cross_entropy_rows  # noqa: E402
from gpu_timing import timed_seconds  # noqa: E402

# Launch shapes timed on CUDA: tiles of 16 to 2 entries per thread and row (compiled for sm_90,
# none spills more than 8 bytes), each with one program a row and with 2 or 4 programs an SM
# looping over the rows (fewer rows in flight: more of each row's first pass still in L2).
SHAPES = [(block, warps) for block in (1024, 2048, 4096, 8192) for warps in (4, 8, 16) if block // (32 * warps) in (2, 4, 8, 16)]
PROGRAMS_PER_SM = (None, 2, 4)


def median_ms(fn: Callable[[], object], device: torch.device, reps: int, warmup: int) -> float:
    """Median milliseconds of fn() over reps calls after warmup calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(1e3 * timed_seconds(device, fn, 1) for _ in range(reps))


def triton_version() -> str | None:
    try:
        return importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:  # torch wheels without Triton: the torch math runs
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--rows", type=int, default=3334, help="rows of one TTT step (the trainer's loss rows)")
    ap.add_argument("--vocab", type=int, default=32000, help="draft vocabulary")
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK_ROWS)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out", help="append the results as one JSON line to this file")
    args = ap.parse_args()

    device = torch.device(args.device)
    dtype = torch.bfloat16
    g = torch.Generator(device=device).manual_seed(0)
    z = (torch.randn(args.rows, args.vocab, device=device, generator=g) * 2).to(dtype)
    t = (torch.randn(args.rows, args.vocab, device=device, generator=g) * 2).to(dtype)
    grad_logits = torch.empty_like(z)
    chunks = [slice(s, min(s + args.chunk, args.rows)) for s in range(0, args.rows, args.chunk)]
    nbytes = args.rows * args.vocab * (z.element_size() + t.element_size() + grad_logits.element_size())
    time_ms = lambda fn: median_ms(fn, device, args.reps, args.warmup)  # noqa: E731

    def step(fn: Callable, into_buffer: bool = False, **launch) -> Callable[[], None]:
        """One TTT step's chunks through fn; into_buffer: the kernel writes the step's gradient."""

        def run() -> None:
            loss = torch.zeros((), device=device)
            for rows in chunks:
                out = {"out": grad_logits[rows]} if into_buffer else {}
                chunk_loss, _, _ = fn(z[rows], t[rows], True, dtype, **out, **launch)
                loss += chunk_loss

        return run

    def row(ms: float) -> dict:
        return {"ms": ms, "GBs": nbytes / (ms / 1e3) / 1e9}

    result: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", "tools/bench/loss_kernel.py", *sys.argv[1:]]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "triton": triton_version(),
        "rows": args.rows, "vocab": args.vocab, "chunk": args.chunk, "dtype": str(dtype), "bytes": nbytes,
        "kernelPath": "triton (compiled)" if z.is_cuda else "triton (interpreted)",
            "errors": {},
    }  # fmt: skip

    src = torch.randn(nbytes // 4, device=device).to(dtype)  # copied: nbytes / 2 read, nbytes / 2 written
    result["copyFloor"] = row(time_ms(lambda: torch.empty_like(src).copy_(src)))

    def copy_grads() -> None:
        for rows in chunks:
            grad_logits[rows] = z[rows]

    result["trainerCopyMs"] = time_ms(copy_grads)
    result["eager"] = row(time_ms(step(_chunk_math)))
    try:
        result["compiled"] = row(time_ms(step(torch.compile(_chunk_math, dynamic=True))))
    except Exception as e:  # noqa: BLE001 - no compiler here (e.g. a CPU without one): the rest still runs
        result["errors"]["compiled"] = repr(e)[:2000]
    launch = {"block": min(1 << (args.vocab - 1).bit_length(), DEFAULT_BLOCK), "num_warps": DEFAULT_WARPS, "programs": None} if serves(z) else {}
    if not serves(z):
        sys.exit("the kernel runs on CUDA tensors, or on the CPU under TRITON_INTERPRET=1 (slow: a smoke test)")
    result["kernel"] = {**launch, **row(time_ms(step(soft_cross_entropy_rows)))}
    result["kernelOut"] = row(time_ms(step(soft_cross_entropy_rows, into_buffer=True)))
    if device.type == "cuda" and serves(z):
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        sweep = []
        for (block, warps), per_sm in itertools.product(SHAPES, PROGRAMS_PER_SM):
            launch = {"block": block, "num_warps": warps, "programs": per_sm and per_sm * sms}
            try:
                sweep.append({**launch, "perSm": per_sm, **row(time_ms(step(soft_cross_entropy_rows, into_buffer=True, **launch)))})
            except Exception as e:  # noqa: BLE001 - a shape this GPU cannot launch (registers)
                sweep.append({**launch, "perSm": per_sm, "error": repr(e)[:300]})
        result["sms"] = sms
        result["sweep"] = sweep
        result["best"] = min((s for s in sweep if "ms" in s), key=lambda s: s["ms"])

    first = chunks[0]
    loss, correct, grad = soft_cross_entropy_rows(z[first], t[first], True, dtype)
    ref_loss, ref_correct, ref_grad = _chunk_math(z[first], t[first], True, torch.float32)
    result["check"] = {
        "lossRelDiff": abs(loss.item() - ref_loss.item()) / abs(ref_loss.item()),
        "correctMismatches": int((correct != ref_correct).sum()),
        "gradOverBf16": ((grad.float() - ref_grad).abs() - 2**-8 * ref_grad.abs()).max().item(),
    }

    for name in ("copyFloor", "eager", "compiled", "kernel", "kernelOut", "best"):
        if name in result:
            r = result[name]
            print(f"{name:>10}: {r['ms']:8.3f} ms  {r['GBs']:8.1f} GB/s" + (f"  block {r['block']} warps {r['num_warps']} programs {r['programs'] or 'one a row'}" if "block" in r else ""))
    print(f"trainer's gradient copy: {result['trainerCopyMs']:.3f} ms; check: {result['check']}; errors: {list(result['errors'])}")
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
