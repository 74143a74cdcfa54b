"""The TTT attention's merge kernels (eaglet_engine/ttt_merge_kernel.py) inside the flash TTT
attention, in Triton's interpreter on the CPU, against the eager reference in fp64: output and
every gradient, for queries on every row and on the last rows only (two flash blocks), for one
and several per-position steps, step 0 alone with two blocks, several records, grouped heads, and
head counts and widths that are not powers of two (masked lanes). test_cuda.py's flash-kernel test
checks the compiled kernels in bf16 at the 7B draft's shapes; tools/bench/merge_kernel.py checks
every launch it times."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

from .triton_interpreter import interpreted_rows

needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="torch wheels without Triton (e.g. macOS) keep the torch math; nothing to check")

CHECK = textwrap.dedent(
    """
    import json, torch
    from eaglet_engine import kernels, ttt_merge_kernel
    from eaglet_engine.draft import eager_ttt_attention

    calls = {"forward": 0, "backward": 0}
    for name in calls:
        original = getattr(ttt_merge_kernel, "merge_" + name)
        def counted(*a, _original=original, _name=name, **k):
            calls[_name] += 1
            return _original(*a, **k)
        setattr(ttt_merge_kernel, "merge_" + name, counted)

    def case(n_steps, start, b, hq, hkv, t, d, seed):
        g = torch.Generator().manual_seed(seed)
        def make(h, rows):
            return torch.randn(b, rows, h, d, generator=g, dtype=torch.float64).transpose(1, 2)
        q = make(hq, t - start)
        keys = [make(hkv, t if j == 0 else t - start) for j in range(n_steps)]
        values = [make(hkv, t if j == 0 else t - start) for j in range(n_steps)]
        grad = torch.randn(b, hq, t - start, d, generator=g, dtype=torch.float64)
        results = []
        for dtype, kernel in ((torch.float64, eager_ttt_attention), (torch.float32, kernels.flash_ttt_attention)):
            leaves = [x.detach().to(dtype).requires_grad_() for x in (q, *keys, *values)]
            out = kernel(leaves[0], leaves[1 : 1 + n_steps], leaves[1 + n_steps :], 0.3)
            out.backward(grad.to(dtype))
            results.append([out.detach(), *(x.grad for x in leaves)])
        want, got = results
        return max(((a.double() - w).norm() / w.norm()).item() for a, w in zip(got, want))

    rows = []
    for warps in (1, 4):  # the interpreter ignores warps; the compiled kernels get both in merge_kernel.py
        ttt_merge_kernel.FORWARD_WARPS = ttt_merge_kernel.BACKWARD_WARPS = warps
        for n_steps, start, b, hq, hkv, t, d in [
            (2, 0, 1, 8, 2, 19, 16),
            (4, 0, 2, 8, 2, 19, 16),
            (4, 7, 2, 8, 2, 19, 16),
            (1, 5, 1, 4, 4, 13, 8),
            (1, 5, 1, 6, 6, 13, 8),
            (3, 6, 2, 6, 2, 17, 12),
        ]:
            before = dict(calls)
            err = case(n_steps, start, b, hq, hkv, t, d, seed=n_steps + start)
            rows.append({"warps": warps, "steps": n_steps, "start": start, "err": err, "kernelCalls": [calls[k] - before[k] for k in calls]})
    print(json.dumps(rows))
    """
)


@needs_triton
def test_merge_kernels_equal_the_eager_reference_in_the_interpreter():
    rows = interpreted_rows(CHECK)
    assert len(rows) == 12
    for r in rows:
        # The kernels ran once forward and once backward wherever there is something to merge.
        assert r["kernelCalls"] == ([1, 1] if r["steps"] > 1 or r["start"] > 0 else [0, 0]), r
        assert r["err"] < 2e-6, r  # fp32 kernels against the fp64 reference
