"""Times the TTT attention's merge kernels (eaglet_engine/ttt_merge_kernel.py) at the 7B draft's
shapes on a GPU: each launch (warps a program), forward and backward, for 0..6 per-position
steps, next to the torch.compile'd torch math they replace, and checks each launch's results
against that math.

    python tools/bench/merge_kernel.py [--rows 3340] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "packages" / "engine" / "python"))
from eaglet_engine import kernels, ttt_merge_kernel  # noqa: E402

WARPS = [1, 2, 4]


def inputs(rows: int, prefix: int, n: int, hq: int = 32, hkv: int = 4, d: int = 128):
    g = torch.Generator(device="cuda").manual_seed(n)

    def bthd(h: int) -> torch.Tensor:
        return torch.randn(1, rows, h, d, device="cuda", dtype=torch.bfloat16, generator=g).transpose(1, 2)

    q = bthd(hq)
    blocks = [(bthd(hq), torch.randn(1, hq, rows, device="cuda", generator=g) + 5) for _ in range(2 if prefix else 1)]
    steps = [(bthd(hkv), bthd(hkv)) for _ in range(n)]
    ks = torch.stack([k.transpose(1, 2) for k, _ in steps]).transpose(2, 3) if n else None
    vs = torch.stack([v.transpose(1, 2) for _, v in steps]).transpose(2, 3) if n else None
    dout = bthd(hq)
    return q, blocks, ks, vs, dout


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3340, help="query rows (the 4096-token benchmark record's counted span)")
    parser.add_argument("--json", help="append result rows here")
    args = parser.parse_args()
    from triton.testing import do_bench

    scale = 128**-0.5
    out_rows = []
    for n in range(0, 7):
        q, blocks, ks, vs, dout = inputs(args.rows, prefix=True, n=n)
        # The torch math, compiled as the trainer compiles it (stacked keys in its layout).
        ks_t = ks.contiguous() if ks is not None else None
        vs_t = vs.contiguous() if vs is not None else None
        fwd_t = kernels.compiled_if(kernels._merge_forward, True)
        bwd_t = kernels.compiled_if(kernels._merge_backward, True)
        ref_out, shares, p = fwd_t(q, tuple(blocks), ks_t, vs_t, scale)
        ref_grads = bwd_t(dout, ref_out, q, shares, p, ks_t, vs_t, scale)
        row = {"steps": n, "rows": args.rows, "torch_fwd_us": 1e3 * do_bench(lambda: fwd_t(q, tuple(blocks), ks_t, vs_t, scale))}
        row["torch_bwd_us"] = 1e3 * do_bench(lambda: bwd_t(dout, ref_out, q, shares, p, ks_t, vs_t, scale))
        for warps in WARPS:
            name = f"{warps}w"
            out, merged = ttt_merge_kernel.merge_forward(q, blocks, ks, vs, scale, num_warps=warps)
            grads = ttt_merge_kernel.merge_backward(dout, out, q, [lse for _, lse in blocks], merged, ks, vs, scale, num_warps=warps)
            errs = [rel(out, ref_out)] + [rel(a, b) for a, b in zip(grads[0], ref_grads[0])]
            if n:
                errs += [rel(grads[1], ref_grads[1]), rel(grads[2], ref_grads[2]), rel(grads[3], ref_grads[3])]
            row[f"{name}_fwd_us"] = 1e3 * do_bench(lambda: ttt_merge_kernel.merge_forward(q, blocks, ks, vs, scale, num_warps=warps))
            row[f"{name}_bwd_us"] = 1e3 * do_bench(
                lambda: ttt_merge_kernel.merge_backward(dout, out, q, [lse for _, lse in blocks], merged, ks, vs, scale, num_warps=warps)
            )
            row[f"{name}_max_rel_err"] = max(errs)
        out_rows.append(row)
        print(json.dumps({k: round(v, 2) if isinstance(v, float) and not k.endswith("err") else v for k, v in row.items()}), flush=True)
    if args.json:
        with open(args.json, "a") as f:
            for row in out_rows:
                f.write(json.dumps({**row, "device": torch.cuda.get_device_name()}) + "\n")


if __name__ == "__main__":
    main()
