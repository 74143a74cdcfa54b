"""The training-time test attention's merge, forward and backward, each one Triton kernel.

Why: ``kernels._FlashTTTAttention`` runs flash attention over step 0's keys in up to two blocks and
merges them, in one softmax, with the per-position keys of steps 1..i (``kernels._merge_forward``
and ``_merge_backward``, torch math that torch.compile fuses). On the 7B draft at 4096 tokens
Inductor made four to six kernels of it a step: at the last step 0.57 ms forward and 0.77 ms
backward on an H200, against 0.075 and 0.157 ms for these kernels (tools/bench/merge_kernel.py,
docs/perf/train.md). Here one program takes one (batch, position, key head) and its G query
heads, and reads every input once.

Forward, per program, online over the parts (a running maximum ``m``, sum ``l`` and output):
each flash block b contributes exp(lse_b) * o_b, each step j the score s_j = scale * q . k_j and
exp(s_j) * v_j. It writes the merged output and the merged log-sum-exp M = m + log(l), which is all
backward needs: a block's share of the softmax is exp(lse_b - M), a step's probability exp(s_j - M).

Backward, per program: with D = rowsum(dout * out) (the softmax backward's row term),
* each block's flash backward gets dO_b = exp(lse_b - M) * dout (with the merged output as O,
  see ``kernels._FlashTTTAttention``), written here;
* ds_j = p_j * (dout . v_j - D); dq gets scale * sum_j ds_j k_j (fp32, the caller adds the
  blocks' dq), dk_j = scale * sum over the group's heads of ds_j q, dv_j = sum of p_j dout.

The torch functions stay the reference (and the path on CPU without the interpreter, and for
fp64); ``tests/test_ttt_merge_kernel.py`` proves the kernels equal them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .triton_support import tl, triton

# Warps a program. One warp holds a program's [8, 128] tiles in 32 threads, so the reductions over
# the group's heads stay inside the warp: at the 7B draft's shapes on an H200 the backward took
# 157 us at 6 steps against 279 us with two warps and 825 us with four (and the steps all at once,
# [steps, heads, D] tiles, 300 us with four), tools/bench/merge_kernel.py, 2026-12-02.
FORWARD_WARPS = 1
BACKWARD_WARPS = 1

if triton is not None:

    @triton.jit
    def _program(T, HKV, G, D, GP: tl.constexpr, DP: tl.constexpr):
        # This program's record b, key head h and position t, the group's query heads and the
        # lanes of D (with their masks: GP and DP are G and D rounded up to powers of two).
        pid = tl.program_id(0).to(tl.int64)
        t = pid % T
        h = (pid // T) % HKV
        b = pid // (T * HKV)
        g = tl.arange(0, GP)
        d = tl.arange(0, DP)
        return b, h, t, h * G + g, d, g < G, d < D

    @triton.jit
    def _tile(b, heads, t, d, s_b, s_h, s_t):
        # Offsets of the [heads, D] tile at (b, t) of a [B, H, T, D] tensor with these strides
        # (unit stride in D).
        return b * s_b + heads[:, None] * s_h + t * s_t + d[None, :]

    @triton.jit
    def _merge_fwd(
        q_ptr, o0_ptr, o1_ptr, lse0_ptr, lse1_ptr, k_ptr, v_ptr, out_ptr, m_ptr,
        T, HKV, G, D, scale,
        sq_b, sq_h, sq_t,  # q [B, HQ, T, D] (unit stride in D)
        so_b, so_h, so_t,  # out, and the blocks' outputs o0, o1: the same layout
        sl_b, sl_h, sl_t,  # lse [B, HQ, T], and the merged lse: the same layout
        sk_j, sk_b, sk_h, sk_t,  # ks, vs [N, B, HKV, T, D]
        N: tl.constexpr, NB: tl.constexpr, GP: tl.constexpr, DP: tl.constexpr,
    ):  # fmt: skip
        b, h, t, heads, d, gm, dm = _program(T, HKV, G, D, GP, DP)
        mask = gm[:, None] & dm[None, :]
        q_off = _tile(b, heads, t, d, sq_b, sq_h, sq_t)
        o_off = _tile(b, heads, t, d, so_b, so_h, so_t)
        l_off = b * sl_b + heads * sl_h + t * sl_t
        q = tl.load(q_ptr + q_off, mask=mask, other=0.0).to(tl.float32)
        m = tl.load(lse0_ptr + l_off, mask=gm, other=0.0)
        if NB == 2:
            lse1 = tl.load(lse1_ptr + l_off, mask=gm, other=0.0)
            m_new = tl.maximum(m, lse1)
            w0 = tl.exp(m - m_new)
            w1 = tl.exp(lse1 - m_new)
            acc = w0[:, None] * tl.load(o0_ptr + o_off, mask=mask, other=0.0).to(tl.float32)
            acc += w1[:, None] * tl.load(o1_ptr + o_off, mask=mask, other=0.0).to(tl.float32)
            l = w0 + w1
            m = m_new
        else:
            acc = tl.load(o0_ptr + o_off, mask=mask, other=0.0).to(tl.float32)
            l = tl.full([GP], 1.0, tl.float32)
        kv_off = b * sk_b + h * sk_h + t * sk_t + d
        for j in tl.static_range(N):
            k = tl.load(k_ptr + j * sk_j + kv_off, mask=dm, other=0.0).to(tl.float32)
            v = tl.load(v_ptr + j * sk_j + kv_off, mask=dm, other=0.0).to(tl.float32)
            s = tl.sum(q * k[None, :], 1) * scale
            m_new = tl.maximum(m, s)
            alpha = tl.exp(m - m_new)
            e = tl.exp(s - m_new)
            acc = acc * alpha[:, None] + e[:, None] * v[None, :]
            l = l * alpha + e
            m = m_new
        out = acc / l[:, None]
        tl.store(out_ptr + o_off, out.to(out_ptr.dtype.element_ty), mask=mask)
        tl.store(m_ptr + l_off, m + tl.log(l), mask=gm)

    @triton.jit
    def _merge_bwd(
        q_ptr, out_ptr, dout_ptr, lse0_ptr, lse1_ptr, m_ptr, k_ptr, v_ptr,
        dob0_ptr, dob1_ptr, dq_ptr, dk_ptr, dv_ptr,
        T, HKV, G, D, scale,
        sq_b, sq_h, sq_t,  # q
        so_b, so_h, so_t,  # out, and dob0, dob1: the same layout
        sd_b, sd_h, sd_t,  # dout
        sl_b, sl_h, sl_t,  # lse0, lse1, the merged lse
        sk_j, sk_b, sk_h, sk_t,  # ks, vs, dks, dvs
        sg_b, sg_h, sg_t,  # dq (fp32)
        N: tl.constexpr, NB: tl.constexpr, GP: tl.constexpr, DP: tl.constexpr,
    ):  # fmt: skip
        b, h, t, heads, d, gm, dm = _program(T, HKV, G, D, GP, DP)
        mask = gm[:, None] & dm[None, :]
        q_off = _tile(b, heads, t, d, sq_b, sq_h, sq_t)
        o_off = _tile(b, heads, t, d, so_b, so_h, so_t)
        d_off = _tile(b, heads, t, d, sd_b, sd_h, sd_t)
        l_off = b * sl_b + heads * sl_h + t * sl_t
        dout = tl.load(dout_ptr + d_off, mask=mask, other=0.0).to(tl.float32)
        merged = tl.load(m_ptr + l_off, mask=gm, other=0.0)
        share0 = tl.exp(tl.load(lse0_ptr + l_off, mask=gm, other=0.0) - merged)
        tl.store(dob0_ptr + o_off, (share0[:, None] * dout).to(dob0_ptr.dtype.element_ty), mask=mask)
        if NB == 2:
            share1 = tl.exp(tl.load(lse1_ptr + l_off, mask=gm, other=0.0) - merged)
            tl.store(dob1_ptr + o_off, (share1[:, None] * dout).to(dob1_ptr.dtype.element_ty), mask=mask)
        q = tl.load(q_ptr + q_off, mask=mask, other=0.0).to(tl.float32)
        out = tl.load(out_ptr + o_off, mask=mask, other=0.0).to(tl.float32)
        row = tl.sum(dout * out, 1)
        dq = tl.zeros([GP, DP], tl.float32)
        kv_off = b * sk_b + h * sk_h + t * sk_t + d
        for j in tl.static_range(N):
            k = tl.load(k_ptr + j * sk_j + kv_off, mask=dm, other=0.0).to(tl.float32)
            v = tl.load(v_ptr + j * sk_j + kv_off, mask=dm, other=0.0).to(tl.float32)
            p = tl.where(gm, tl.exp(tl.sum(q * k[None, :], 1) * scale - merged), 0.0)
            ds = p * (tl.sum(dout * v[None, :], 1) - row)
            dq += scale * ds[:, None] * k[None, :]
            dk = scale * tl.sum(ds[:, None] * q, 0)
            dv = tl.sum(p[:, None] * dout, 0)
            tl.store(dk_ptr + j * sk_j + kv_off, dk.to(dk_ptr.dtype.element_ty), mask=dm)
            tl.store(dv_ptr + j * sk_j + kv_off, dv.to(dv_ptr.dtype.element_ty), mask=dm)
        tl.store(dq_ptr + _tile(b, heads, t, d, sg_b, sg_h, sg_t), dq, mask=mask)


def _lse_view(lse: Tensor, q: Tensor) -> Tensor:
    """A flash block's log-sum-exp as a contiguous [B, HQ, T] fp32 tensor (cuDNN's may carry a
    trailing 1)."""
    return lse.reshape(q.shape[:3]).float().contiguous()


def _unit_d(x: Tensor) -> Tensor:
    """x with unit stride in D (the kernels index the other dimensions by stride)."""
    return x if x.stride(-1) == 1 else x.contiguous()


def _bht(x: Tensor) -> tuple[int, int, int]:
    """The batch, head and position strides of a [B, H, T(, D)] tensor."""
    return x.stride(0), x.stride(1), x.stride(2)


def merge_forward(
    q: Tensor, blocks: list[tuple[Tensor, Tensor]], ks: Tensor | None, vs: Tensor | None, scale: float, *, num_warps: int = FORWARD_WARPS
) -> tuple[Tensor, Tensor]:
    """q [B, HQ, T, D]; blocks: 1 or 2 (output [B, HQ, T, D], log-sum-exp) of flash attention over
    parts of step 0's keys; ks, vs [N, B, HKV, T, D] (unit stride in D) -> (the merged output in
    q's dtype, [B, T, H, D] storage seen as [B, HQ, T, D], and the merged log-sum-exp [B, HQ, T]
    fp32)."""
    b, hq, t, d = q.shape
    ks, vs = _no_steps(q) if ks is None else (ks, vs)
    n, hkv = ks.shape[0], ks.shape[2]
    out = torch.empty(b, t, hq, d, dtype=q.dtype, device=q.device).transpose(1, 2)
    merged = torch.empty(b, hq, t, dtype=torch.float32, device=q.device)
    # The blocks' outputs are read with out's strides.
    outs = [o if o.stride() == out.stride() else torch.empty_like(out).copy_(o) for o, _ in blocks]
    lses = [_lse_view(lse, q) for _, lse in blocks]
    q = _unit_d(q)
    if ks.stride() != vs.stride() or ks.stride(-1) != 1:
        raise ValueError("merge_forward: ks and vs must share one layout with unit stride in D")
    if b * t * hkv:
        _merge_fwd[(b * t * hkv,)](
            q, outs[0], outs[-1], lses[0], lses[-1], ks, vs, out, merged, t, hkv, hq // hkv, d, scale,
            *_bht(q), *_bht(out), *_bht(merged), *ks.stride()[:4],
            N=n, NB=len(blocks), GP=triton.next_power_of_2(hq // hkv), DP=triton.next_power_of_2(d), num_warps=num_warps,
        )  # fmt: skip
    return out, merged


def merge_backward(
    dout: Tensor,
    out: Tensor,
    q: Tensor,
    lses: list[Tensor],
    merged: Tensor,
    ks: Tensor | None,
    vs: Tensor | None,
    scale: float,
    *,
    num_warps: int = BACKWARD_WARPS,
) -> tuple[tuple[Tensor, ...], Tensor, Tensor, Tensor]:
    """Gradients of ``merge_forward`` (``out`` and ``merged`` are what it returned): (dO for each
    flash block's backward, in out's layout; the per-position scores' dq [B, HQ, T, D] fp32; dks,
    dvs [N, B, HKV, T, D] in ks's dtype)."""
    b, hq, t, d = q.shape
    no_steps = ks is None
    ks, vs = _no_steps(q) if no_steps else (ks, vs)
    n, hkv = ks.shape[0], ks.shape[2]
    q, dout = _unit_d(q), _unit_d(dout)
    block_grads = tuple(torch.empty_like(out) for _ in lses)
    dq = torch.empty(b, hq, t, d, dtype=torch.float32, device=q.device)
    dks, dvs = torch.empty_like(ks), torch.empty_like(vs)
    if not (ks.stride() == vs.stride() == dks.stride() == dvs.stride()):
        raise ValueError("merge_backward: ks and vs must share one dense layout")
    lses = [_lse_view(lse, q) for lse in lses]
    if b * t * hkv:
        _merge_bwd[(b * t * hkv,)](
            q, out, dout, lses[0], lses[-1], merged, ks, vs, block_grads[0], block_grads[-1], dq, dks, dvs,
            t, hkv, hq // hkv, d, scale,
            *_bht(q), *_bht(out), *_bht(dout), *_bht(merged), *dks.stride()[:4], *_bht(dq),
            N=n, NB=len(lses), GP=triton.next_power_of_2(hq // hkv), DP=triton.next_power_of_2(d), num_warps=num_warps,
        )  # fmt: skip
    return (block_grads, None, None, None) if no_steps else (block_grads, dq, dks, dvs)


def _no_steps(q: Tensor) -> tuple[Tensor, Tensor]:
    """Empty per-position keys and values (step 0 with two blocks): [0, B, HQ / G, T, D], G = up
    to 8 query heads a program, as with keys (one head a program, with four warps, took 137 us of
    the 4096-token step's profile on an H200; eight with one warp, 45 us in merge_kernel.py)."""
    b, hq, t, d = q.shape
    group = math.gcd(hq, 8)
    empty = q.new_empty(0, b, hq // group, t, d)
    return empty, empty
