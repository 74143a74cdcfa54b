#!/usr/bin/env python3
"""Two passes of the 7B training step over large tensors that are pure data movement, timed
against a plain copy of as many bytes (the card's floor for them). Shapes default to
``qwen2_audio_7b``'s, the spec the training benchmark builds:

  columns   the draft vocabulary's columns of the target's logits (``targets.target_signals``:
            [rows, 156032] bf16 -> [rows, 32000], ids sorted as ``eaglet data vocab`` writes
            them): advanced indexing (``full[:, ids]``), ``index_select`` (into the destination),
            ``gather`` over an expanded index, and the copy of a contiguous column block (what a
            head whose rows were permuted draft-first would need instead);
  delivery  lm_head's summed gradient handed to the fp32 weight (``kernels._DeliverGradient``,
            [32000, 4096] bf16 * upstream -> fp32): eager ``torch.mul(out=)`` and the compiled
            ``kernels._scaled_to``.

    python tools/bench/draft_columns.py [--rows 2048] [--out draft-columns.jsonl]

--out appends one JSON line (date, device, versions, shapes, milliseconds).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loss_kernel import ROOT, median_ms  # noqa: E402
from qwen2_audio_7b import DRAFT_7B, DRAFT_VOCAB_7B, QWEN2_AUDIO_7B  # noqa: E402

sys.path[:0] = [str(ROOT / "packages/engine/python")]
from eaglet_engine.kernels import _scaled_to, compiled_if  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--rows", type=int, default=2048, help="rows of one target-signals chunk (targets.TARGET_CHUNK_ROWS)")
    ap.add_argument("--vocab", type=int, default=QWEN2_AUDIO_7B["text_config"]["vocab_size"])
    ap.add_argument("--draft-vocab", type=int, default=DRAFT_VOCAB_7B)
    ap.add_argument("--hidden", type=int, default=DRAFT_7B["hidden_size"], help="the draft's hidden size (lm_head's width)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args()
    device, bf16 = torch.device(args.device), torch.bfloat16
    g = torch.Generator(device=device).manual_seed(0)
    time_ms = lambda fn: round(median_ms(fn, device, args.reps, args.warmup), 4)  # noqa: E731

    full = torch.randn(args.rows, args.vocab, device=device, generator=g).to(bf16)
    ids = torch.randperm(args.vocab, device=device, generator=g)[: args.draft_vocab].sort().values
    dest = torch.empty(args.rows, args.draft_vocab, device=device, dtype=bf16)
    want = full[:, ids]
    expanded = ids.expand(args.rows, -1)
    columns = {
        "index": lambda: dest.copy_(full[:, ids]),
        "index_select": lambda: torch.index_select(full, 1, ids, out=dest),
        "gather": lambda: torch.gather(full, 1, expanded, out=dest),
        "block copy": lambda: dest.copy_(full[:, : args.draft_vocab]),
    }
    for name, fn in columns.items():
        if name != "block copy":
            dest.zero_()
            fn()
            assert torch.equal(dest, want), name
    results = {"columns": {name: time_ms(fn) for name, fn in columns.items()}}
    results["columns"]["floor (copy of the logits' bytes)"] = time_ms(lambda: full.clone())

    grad_sum = torch.randn(args.draft_vocab, args.hidden, device=device, generator=g).to(bf16)
    upstream = torch.tensor(0.5, device=device)
    out = torch.empty_like(grad_sum, dtype=torch.float32)
    compiled = compiled_if(_scaled_to, True)
    assert torch.equal(compiled(grad_sum, upstream, torch.float32), _scaled_to(grad_sum, upstream, torch.float32))
    results["delivery"] = {
        "eager mul(out=)": time_ms(lambda: torch.mul(grad_sum, upstream.to(bf16), out=out)),
        "compiled _scaled_to": time_ms(lambda: compiled(grad_sum, upstream, torch.float32)),
        "floor (bf16 read + fp32 write as copies)": time_ms(lambda: out.copy_(grad_sum)),
    }
    row = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "shape": {"rows": args.rows, "vocab": args.vocab, "draft_vocab": args.draft_vocab, "hidden": args.hidden},
        "ms": results,
    }
    print(json.dumps(row, indent=1))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
