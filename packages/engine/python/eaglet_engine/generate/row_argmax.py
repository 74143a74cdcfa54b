"""The greedy token of each row of logits, mapped through an id table, in one Triton kernel.

Why: the draft's greedy chain takes the argmax of its 32k-entry logits once per proposal, four
times in a chain of N = 4, and torch's reduction kernel took 9.3 us for it on an H200 (then an
index kernel maps the draft id to the target's): ~43 us of a 0.64 ms chain
(docs/perf/decode.md). Here one program per row reads the row in BLOCK-wide tiles and keeps the
first index of the largest value, which is torch.argmax's rule (ties go to the lower index), then
looks the id up, so the chain's tokens equal the eager draft's.
"""

from __future__ import annotations

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - torch wheels without Triton: torch's argmax stays
    triton = None

MAX_BLOCK = 32768  # one tile for vocabularies up to 32k (the draft's); larger ones loop

if triton is not None:

    @triton.jit
    def _row_argmax(x_ptr, ids_ptr, out_ptr, V, stride, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        best = tl.full([], float("-inf"), tl.float32)
        best_i = tl.zeros([], tl.int32)
        for v0 in range(0, V, BLOCK):
            v = v0 + tl.arange(0, BLOCK)
            x = tl.load(x_ptr + row * stride + v, mask=v < V, other=float("-inf")).to(tl.float32)
            m, i = tl.max(x, 0, return_indices=True, return_indices_tie_break_left=True)
            better = m > best  # strict: an equal maximum in a later tile keeps the earlier index
            best_i = tl.where(better, v0 + i, best_i)
            best = tl.where(better, m, best)
        tl.store(out_ptr + row, tl.load(ids_ptr + best_i))


def serves(logits: Tensor) -> bool:
    """Whether the kernel runs for these logits: Triton and CUDA; elsewhere torch.argmax."""
    return triton is not None and logits.is_cuda


def row_argmax(logits: Tensor, ids: Tensor, kernel: bool | None = None) -> Tensor:
    """ids[argmax(row)] for each row of logits [R, V] (contiguous rows) -> [R] with ids' dtype.
    `kernel` forces the Triton kernel (tests run it in Triton's interpreter on the CPU) or torch."""
    use_kernel = serves(logits) if kernel is None else kernel
    if not use_kernel:
        return ids[logits.argmax(-1)]
    rows, width = logits.shape
    if logits.stride(-1) != 1:
        raise ValueError("row_argmax: the logits' rows must be contiguous")
    out = torch.empty(rows, dtype=ids.dtype, device=logits.device)
    block = min(triton.next_power_of_2(width), MAX_BLOCK)
    _row_argmax[(rows,)](logits, ids, out, width, logits.stride(0), BLOCK=block, num_warps=16 if block >= 8192 else 4)
    return out
