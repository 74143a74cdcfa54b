"""Eagle3's soft cross-entropy over a chunk of rows, with its gradient, in one Triton kernel.

Why: the fused loss (kernels.fused_soft_cross_entropy) computes, per TTT step and per chunk of
2048 rows x 32k draft logits, the loss sum, the rows whose argmaxes agree and d loss / d logits.
torch.compile fused that into an Inductor reduction that took ~0.59 ms a chunk on an H200, about
0.5 TB/s of effective traffic: ~8 ms of a 250 ms training step. Here a program reads a row's
logits ``z`` and the target's logits ``t`` twice and writes the gradient once, near memory
bandwidth:

1. an online pass over BLOCK-wide tiles keeps the running maximum and sum of exponentials of z and
   of t, both argmaxes (the first index of the largest value, torch.argmax's rule, across tiles
   too) and W = sum(exp(t - m_t) * (z - m_z)), rescaled whenever a maximum moves. Then
   loss = lse(z) - sum(p_t * z) = log(s_z) - W / s_t, as sum(p_t) = 1: every term is relative to
   the row's maxima, so logits with a large common offset lose no precision to cancellation;
2. a second pass, over the tiles in reverse order (the last ones read are the likeliest still in
   cache), writes grad = exp(z - m_z) / s_z - exp(t - m_t) / s_t = softmax(z) - softmax(t).

The reference ``kernels._chunk_math`` writes the gradient as softmax(z) * sum(softmax(t)) -
softmax(t); the sum is 1 up to fp32 rounding, far below the gradient's bf16 rounding.

Assumes z finite (the draft's lm_head output; the reference's loss is NaN for a -inf logit too) and
t finite or -inf (a masked token) with at least one finite entry a row; NaN is not handled.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .triton_support import serves, tl, triton

# Tile width and warps of a program for the draft's 32k vocabulary: 8 tiles a pass, 16 entries of
# each row per thread. Compiled for sm_90 with the row stride a multiple of 16 elements (32000 is;
# Triton specializes on it), it loads and stores 16 bytes at a time in 64 registers a thread, no
# spills. Not yet timed against other shapes: tools/bench/loss_kernel.py times a grid of them.
DEFAULT_BLOCK = 4096
DEFAULT_WARPS = 8

if triton is not None:

    @triton.jit
    def _soft_ce_rows(
        z_ptr, t_ptr, grad_ptr, loss_ptr, correct_ptr, w_ptr, n, V, z_stride, t_stride, grad_stride,
        BLOCK: tl.constexpr, WRITE_GRAD: tl.constexpr, WEIGHTED: tl.constexpr,
    ):  # fmt: skip
        # Program p takes rows p, p + programs, ...: one row each by default; fewer programs keep
        # fewer rows in flight, so more of a row's first pass is still in L2 for its second.
        # int64 rows: row * stride passes 2**31 for large chunks x vocabularies.
        for row in range(tl.program_id(0).to(tl.int64), n, tl.num_programs(0).to(tl.int64)):
            _soft_ce_row(z_ptr, t_ptr, grad_ptr, loss_ptr, correct_ptr, w_ptr, row, V, z_stride, t_stride, grad_stride, BLOCK, WRITE_GRAD, WEIGHTED)

    @triton.jit
    def _soft_ce_row(
        z_ptr, t_ptr, grad_ptr, loss_ptr, correct_ptr, w_ptr, row, V, z_stride, t_stride, grad_stride,
        BLOCK: tl.constexpr, WRITE_GRAD: tl.constexpr, WEIGHTED: tl.constexpr,
    ):  # fmt: skip
        z_row = z_ptr + row * z_stride
        t_row = t_ptr + row * t_stride
        lanes = tl.arange(0, BLOCK)
        # The running maxima start at the row's first entries, so no step subtracts -inf from -inf
        # (z is finite) and the argmaxes start at index 0, which a strict > keeps on ties.
        m_z = tl.load(z_row).to(tl.float32)
        m_t = tl.load(t_row).to(tl.float32)
        i_z = tl.zeros([], tl.int32)
        i_t = tl.zeros([], tl.int32)
        s_z = tl.zeros([], tl.float32)
        s_t = tl.zeros([], tl.float32)
        w = tl.zeros([], tl.float32)
        for v0 in range(0, V, BLOCK):
            v = v0 + lanes
            inside = v < V
            # Kept in L2 for the second pass.
            z = tl.load(z_row + v, mask=inside, other=float("-inf"), eviction_policy="evict_last").to(tl.float32)
            t = tl.load(t_row + v, mask=inside, other=float("-inf"), eviction_policy="evict_last").to(tl.float32)
            top_z, j_z = tl.max(z, 0, return_indices=True, return_indices_tie_break_left=True)
            top_t, j_t = tl.max(t, 0, return_indices=True, return_indices_tie_break_left=True)
            # Strict: an equal maximum in a later tile keeps the earlier index.
            i_z = tl.where(top_z > m_z, v0 + j_z, i_z)
            i_t = tl.where(top_t > m_t, v0 + j_t, i_t)
            new_z = tl.maximum(m_z, top_z)
            new_t = tl.maximum(m_t, top_t)
            # While every t so far is -inf (masked), shift by 0: exp(-inf - -inf) would be NaN.
            shift_t = tl.where(new_t == float("-inf"), 0.0, new_t)
            rescale_t = tl.exp(m_t - shift_t)
            e_t = tl.exp(t - shift_t)
            # W's terms are relative to m_z: moving it by d takes d * s_t off (before t's rescale).
            # Lanes past V hold z = -inf and e_t = 0: their term is 0, not 0 * -inf = NaN.
            w = (w - (new_z - m_z) * s_t) * rescale_t + tl.sum(e_t * tl.where(inside, z - new_z, 0.0), 0)
            s_t = s_t * rescale_t + tl.sum(e_t, 0)
            s_z = s_z * tl.exp(m_z - new_z) + tl.sum(tl.exp(z - new_z), 0)
            m_z, m_t = new_z, new_t
        weight = tl.load(w_ptr + row).to(tl.float32) if WEIGHTED else 1.0
        tl.store(loss_ptr + row, (tl.log(s_z) - w / s_t) * weight)
        tl.store(correct_ptr + row, i_z == i_t)
        if WRITE_GRAD:
            inv_z = weight / s_z
            inv_t = weight / s_t
            g_row = grad_ptr + row * grad_stride
            tiles = tl.cdiv(V, BLOCK)
            for k in range(tiles):
                v = (tiles - 1 - k) * BLOCK + lanes
                inside = v < V
                z = tl.load(z_row + v, mask=inside, other=0.0, eviction_policy="evict_first").to(tl.float32)
                t = tl.load(t_row + v, mask=inside, other=0.0, eviction_policy="evict_first").to(tl.float32)
                g = tl.exp(z - m_z) * inv_z - tl.exp(t - m_t) * inv_t
                tl.store(g_row + v, g.to(grad_ptr.dtype.element_ty), mask=inside)


def soft_cross_entropy_rows(
    z: Tensor,
    target_logits: Tensor,
    need_grad: bool,
    grad_dtype: torch.dtype,
    *,
    out: Tensor | None = None,
    weight: Tensor | None = None,
    block: int | None = None,
    num_warps: int | None = None,
    programs: int | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One chunk's soft cross-entropy: z [n, V] (the draft's logits), target_logits [n, V] ->
    (sum over rows of -sum(softmax(t) * log_softmax(z)), an fp32 scalar (fp64 for fp64 inputs);
    correct [n] bool: argmax z == argmax t, first index of equal maxima; d loss / d z [n, V] in
    ``grad_dtype``, None unless ``need_grad``). Rows must have unit stride (others are copied).

    ``out``: where the gradient goes, [n, V] in ``grad_dtype`` with unit-stride rows (e.g. these
    rows of the caller's whole gradient: the kernel writes them in place of a copy); returned.
    ``weight`` [n]: each row's loss and gradient times its weight (read as fp32; ``correct``
    stays the argmaxes' agreement).
    ``block``/``num_warps``/``programs`` (how many programs share the rows; one a row by
    default): the kernel's launch shape, for the benchmark; defaults otherwise.

    Only where ``serves(z)``: elsewhere the caller keeps its torch math (``kernels._chunk_math``)."""
    if not serves(z):
        raise ValueError(f"soft_cross_entropy_rows: no Triton kernel for {z.dtype} logits on {z.device} (see serves)")
    if out is not None and (out.shape != z.shape or out.dtype != grad_dtype or out.stride(-1) != 1):
        raise ValueError(f"soft_cross_entropy_rows: out must be {tuple(z.shape)} {grad_dtype} with unit-stride rows")
    n, width = z.shape
    z, target_logits = _unit_stride(z), _unit_stride(target_logits)
    correct = torch.empty(n, dtype=torch.bool, device=z.device)
    grad = (torch.empty(n, width, dtype=grad_dtype, device=z.device) if out is None else out) if need_grad else None
    if n == 0:
        return torch.zeros((), dtype=torch.float32, device=z.device), correct, grad
    losses = torch.empty(n, dtype=torch.float32, device=z.device)
    block = block or min(triton.next_power_of_2(width), DEFAULT_BLOCK)
    _soft_ce_rows[(min(n, programs or n),)](
        z, target_logits, grad if need_grad else losses, losses, correct, losses if weight is None else weight.float().contiguous(),
        n, width, z.stride(0), target_logits.stride(0), grad.stride(0) if need_grad else 0,
        BLOCK=block, WRITE_GRAD=need_grad, WEIGHTED=weight is not None, num_warps=num_warps or DEFAULT_WARPS,
    )  # fmt: skip
    # Per-row losses summed by torch rather than atomically in the kernel: the same sum every run.
    return losses.sum(), correct, grad


def _unit_stride(x: Tensor) -> Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()
