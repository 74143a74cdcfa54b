"""Decode and verification steps of a Llama-layout decoder layer in a few Triton kernels, each
reading its weights once.

Why kernels of our own: at batch 1 a step of one to a few tokens reads every weight once, so its
floor is the weight bytes over the memory bandwidth. torch.compile's kernels for the same step
(autotuned, see `decode_compile.py`) read q/k/v, o_proj and down at 76-80% of the copy bandwidth on
an H200, and around them it launches norm, rotary, cache-write and attention kernels of a few
microseconds each: eleven kernels per layer. Here a layer is

  1. `_qkv`: RMSNorm of the input, the q/k/v product (+ bias), rotary on q and k, the new keys and
     values written into the cache at the tokens' positions;
  2. attention: one query (`_attend` + `split_kv_attention.merge_splits`: the keys split across
     programs that stop at the position, not at the end of the KV bucket, merged by log-sum-exp),
     or several (`split_kv_attention`);
  3. `_gemv_residual`: o_proj, plus the residual;
  4. `_gate_up`: RMSNorm, the gate and up products, SiLU(gate) x up;
  5. `_gemv_residual`: down, plus the residual.

One token (a decode step, the draft's chain step): each product is a GEMV on CUDA cores, a program
owning a few output rows and streaming their weights once along the input dimension (fp32
accumulation). Two to MAX_TOKENS tokens (a verification, the draft's catch-up): the `_multi`
kernels multiply a [rows, K] weight tile by the [K, 16] input (the tokens padded to tensor cores'
smallest side) with tl.dot, so each weight tile read serves every token. Where an epilogue needs
two rows together (rotary's pairs d and d + D/2, a gate row and its up row) one program owns both.
`second` turns q/k/v into the Eagle3 draft layer's two-input form (cat(norm(embedding),
norm(state))). On the 7B (H200) a decode step took 4.12 ms against 4.62 with the compiled functions
in the same run (docs/perf/decode.md).

Which launch shape (rows per program, elements per iteration, warps, stages) reads a matrix
fastest differs between two machines of the same kind (gate/up's fastest shape on one H200 took
62.7 us on another, whose fastest took 44.6), so `FusedDecodeLayer.tune` times a few candidates
per kernel and token class on the real weights at start-up (`CANDIDATES`, the best of
`tools/bench/decode_kernels.py`'s searches). Programmatic dependent launch (each kernel starting
while the previous one drains) was measured and made the step slower (4.30 ms), so it is not used.

Rounding follows transformers' eager layer where it is cheap to (the normalised input is rounded to
the weights' dtype before its scale, each product's output is rounded before the residual);
rotary and SiLU x up are computed in fp32 and rounded once, as torch.compile's fused kernels do.
`serves` says where the fast path uses them: CUDA, a 16-bit type, 1 to MAX_TOKENS tokens; prompts
keep the compiled functions of `static_target`.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl

    from .split_kv_attention import merge_splits, split_kv_attention
except ImportError:  # pragma: no cover - torch wheels without Triton: the compiled path stays
    triton = None

log = logging.getLogger("eaglet.generate")


@dataclass(frozen=True)
class Launch:
    """A product's launch shape: output rows per program (pairs of rows for q/k/v and gate/up),
    input elements per iteration, warps, pipeline stages."""

    rows: int
    block_k: int
    warps: int
    stages: int


@dataclass(frozen=True)
class AttentionLaunch:
    """Keys per attention program (`split`), read `block` at a time, by `warps` warps."""

    split: int
    block: int
    warps: int


MAX_TOKENS = 16  # tokens per step: one (decode) or several (verification of N + 1 <= 16, the draft's catch-up)
TUNE_TOKENS = 5  # several-token shapes are tuned on a verification of N = 4


def token_class(tokens: int) -> int:
    """The kernels' padded token count T_PAD: 1 for a decode step (GEMVs), MAX_TOKENS for
    2..MAX_TOKENS (tensor-core products, whose smallest side is 16; one compiled kernel and one
    tuned shape serve every verification length)."""
    return 1 if tokens == 1 else MAX_TOKENS


# Per token class and kernel, the shapes that were fastest on the 7B's matrices on H200s
# (decode_kernels.py, docs/perf/data/decode-kernels-2026-12-01-*.json); the first is the default
# when not tuned. Several tokens: no attention shape (they run split_kv_attention). The last two
# q/k/v shapes of each class are for the draft's two-input q/k/v (5120 rows of 8192 inputs on the
# 7B: 40 heads, so the target's shapes leave it few, long programs on 132 multiprocessors).
CANDIDATES: dict[int, dict[str, tuple]] = {
    1: {
        "qkv": (Launch(8, 128, 8, 3), Launch(16, 128, 8, 3), Launch(4, 128, 4, 3), Launch(16, 256, 4, 3), Launch(4, 256, 4, 3), Launch(2, 256, 4, 3)),
        "o": (Launch(4, 512, 4, 2), Launch(8, 512, 8, 2), Launch(16, 512, 4, 3), Launch(8, 256, 8, 3)),
        "gate_up": (Launch(4, 256, 4, 3), Launch(32, 128, 8, 3), Launch(8, 512, 4, 3), Launch(4, 512, 4, 3)),
        "down": (Launch(4, 512, 4, 3), Launch(8, 512, 8, 3), Launch(8, 128, 8, 3), Launch(16, 512, 4, 3)),
        "attention": (AttentionLaunch(64, 64, 2), AttentionLaunch(128, 128, 4), AttentionLaunch(128, 128, 2), AttentionLaunch(64, 64, 4)),
    },
    MAX_TOKENS: {  # rows >= 16: tl.dot's smallest side
        "qkv": (Launch(64, 256, 4, 3), Launch(64, 128, 8, 4), Launch(32, 256, 4, 3), Launch(64, 128, 8, 3), Launch(16, 256, 4, 3), Launch(16, 128, 4, 4)),
        "o": (Launch(64, 256, 4, 4), Launch(32, 256, 4, 4), Launch(64, 256, 4, 3), Launch(64, 128, 4, 4)),
        "gate_up": (Launch(128, 128, 8, 3), Launch(32, 64, 4, 4), Launch(64, 64, 4, 4), Launch(64, 128, 8, 3)),
        "down": (Launch(64, 256, 4, 4), Launch(32, 256, 4, 4), Launch(32, 256, 8, 4), Launch(64, 256, 4, 3)),
    },
}


@dataclass(frozen=True)
class Config:
    """The launch shapes of a layer's kernels for one token class (attention: one query only)."""

    qkv: Launch
    o: Launch
    gate_up: Launch
    down: Launch
    attention: AttentionLaunch | None = None

    @classmethod
    def default(cls, tokens: int, head_dim: int) -> Config:
        """Each kernel's first candidate that fits the head size."""
        chosen = {}
        for name, shapes in CANDIDATES[token_class(tokens)].items():
            chosen[name] = next((c for c in shapes if fits(name, c, head_dim)), None)
            if chosen[name] is None:
                raise ValueError(f"fused decode: no {name} launch shape for {tokens} token(s) fits head size {head_dim}")
        return cls(**chosen)


def fits(kernel: str, launch: Launch | AttentionLaunch, head_dim: int) -> bool:
    """Whether a launch shape can run a kernel for this head size: a q/k/v program's rows (rotary
    pairs) stay inside one head's half."""
    return kernel != "qkv" or (head_dim // 2) % launch.rows == 0


if triton is not None:

    # -- one token (decode, the draft's chain): GEMVs on CUDA cores ------------------------------

    @triton.jit
    def _norm_scale(x_ptr, K, eps, K_PAD: tl.constexpr):
        """rsqrt(mean(x^2) + eps) of the whole input vector, in fp32."""
        k = tl.arange(0, K_PAD)
        x = tl.load(x_ptr + k, mask=k < K, other=0.0).to(tl.float32)
        return tl.rsqrt(tl.sum(x * x, 0) / K + eps)

    @triton.jit
    def _paired_rows(
        acc_a, acc_b, x_ptr, ln_ptr, eps, w_ptr, rows_a, rows_b, live_rows, col0, K, W_STRIDE,
        MASK_ROWS: tl.constexpr, BLOCK_K: tl.constexpr, K_PAD: tl.constexpr,
    ):  # fmt: skip
        """Adds RMSNorm(x) [K] times weight columns col0.. of rows_a and of rows_b to the
        [rows, BLOCK_K] accumulators. The normalised input is rounded to the weights' dtype before
        its scale, as transformers' RMSNorm does."""
        r = _norm_scale(x_ptr, K, eps, K_PAD)
        for k0 in range(0, K, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            inside = k < K
            x = tl.load(x_ptr + k, mask=inside, other=0.0)
            ln = tl.load(ln_ptr + k, mask=inside, other=0.0)
            h = (ln * (x.to(tl.float32) * r).to(ln.dtype)).to(tl.float32)[None, :]
            wmask = (live_rows[:, None] & inside[None, :]) if MASK_ROWS else inside[None, :]
            wa = tl.load(w_ptr + rows_a[:, None] * W_STRIDE + col0 + k[None, :], mask=wmask, other=0.0, eviction_policy="evict_first")
            wb = tl.load(w_ptr + rows_b[:, None] * W_STRIDE + col0 + k[None, :], mask=wmask, other=0.0, eviction_policy="evict_first")
            acc_a += wa.to(tl.float32) * h
            acc_b += wb.to(tl.float32) * h
        return acc_a, acc_b

    @triton.jit
    def _qkv_store(
        ya, yb, b_ptr, cos_ptr, sin_ptr, pos, head, j, t, live_t, T, q_ptr, kv_ptr, stride_kind, stride_head, stride_pos,
        HEADS: tl.constexpr, KV_HEADS: tl.constexpr, D: tl.constexpr, HAS_BIAS: tl.constexpr,
    ):  # fmt: skip
        """The q/k/v epilogue on [PAIRS, T_PAD] products (rows j and j + D/2 of `head`, tokens t
        at positions pos [1, T_PAD]): bias, rounding as F.linear's output, rotary for q and k, and
        the stores: q to q [heads, T, D], k and v into the cache at the positions."""
        HALF: tl.constexpr = D // 2
        out_ty = q_ptr.dtype.element_ty
        jj = j[:, None]
        if HAS_BIAS:
            ya += tl.load(b_ptr + head * D + jj).to(tl.float32)
            yb += tl.load(b_ptr + head * D + jj + HALF).to(tl.float32)
        ya = ya.to(out_ty).to(tl.float32)
        yb = yb.to(out_ty).to(tl.float32)
        if head < HEADS + KV_HEADS:  # q or k: rotary, x * cos + rotate_half(x) * sin
            ca = tl.load(cos_ptr + pos * D + jj).to(tl.float32)
            cb = tl.load(cos_ptr + pos * D + jj + HALF).to(tl.float32)
            sa = tl.load(sin_ptr + pos * D + jj).to(tl.float32)
            sb = tl.load(sin_ptr + pos * D + jj + HALF).to(tl.float32)
            ya, yb = ya * ca - yb * sa, yb * cb + ya * sb
        if head < HEADS:
            dst = q_ptr + head * T * D + t[None, :] * D
        elif head < HEADS + KV_HEADS:
            dst = kv_ptr + (head - HEADS) * stride_head + pos * stride_pos
        else:
            dst = kv_ptr + stride_kind + (head - HEADS - KV_HEADS) * stride_head + pos * stride_pos
        keep = live_t[None, :] & (jj >= 0)
        tl.store(dst + jj, ya.to(out_ty), mask=keep)
        tl.store(dst + jj + HALF, yb.to(out_ty), mask=keep)

    @triton.jit
    def _qkv(
        x_ptr, ln_ptr, x2_ptr, ln2_ptr, w_ptr, b_ptr, cos_ptr, sin_ptr, pos_ptr, q_ptr, kv_ptr,
        K, eps, eps2, stride_kind, stride_head, stride_pos,
        HEADS: tl.constexpr, KV_HEADS: tl.constexpr, D: tl.constexpr, HAS_BIAS: tl.constexpr, TWO_INPUTS: tl.constexpr,
        PAIRS: tl.constexpr, BLOCK_K: tl.constexpr, K_PAD: tl.constexpr,
    ):  # fmt: skip
        """One token. Program p owns, in one q, k or v head, the PAIRS rows j.. and their rotary
        partners j + D/2. The input is RMSNorm(x) [K], or with TWO_INPUTS the draft layer's
        cat(RMSNorm(x), RMSNorm2(x2)) [2K]."""
        per_head: tl.constexpr = D // 2 // PAIRS
        pid = tl.program_id(0)
        head = pid // per_head
        j = (pid % per_head) * PAIRS + tl.arange(0, PAIRS)
        rows_a = head * D + j
        acc_a = tl.zeros([PAIRS, BLOCK_K], tl.float32)
        acc_b = tl.zeros([PAIRS, BLOCK_K], tl.float32)
        width = 2 * K if TWO_INPUTS else K
        acc_a, acc_b = _paired_rows(acc_a, acc_b, x_ptr, ln_ptr, eps, w_ptr, rows_a, rows_a + D // 2, j, 0, K, width, False, BLOCK_K, K_PAD)
        if TWO_INPUTS:
            acc_a, acc_b = _paired_rows(acc_a, acc_b, x2_ptr, ln2_ptr, eps2, w_ptr, rows_a, rows_a + D // 2, j, K, K, width, False, BLOCK_K, K_PAD)
        t = tl.arange(0, 1)
        pos = tl.load(pos_ptr + t)[None, :]
        _qkv_store(
            tl.sum(acc_a, 1)[:, None], tl.sum(acc_b, 1)[:, None], b_ptr, cos_ptr, sin_ptr, pos, head, j, t, t < 1, 1,
            q_ptr, kv_ptr, stride_kind, stride_head, stride_pos, HEADS, KV_HEADS, D, HAS_BIAS,
        )  # fmt: skip

    @triton.jit
    def _attend(
        q_ptr, kv_ptr, pos_ptr, o_ptr, lse_ptr, scale, stride_kind, stride_head, stride_pos,
        GROUP: tl.constexpr, SPLIT: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr,
    ):  # fmt: skip
        """One (query head, split) of one query: the softmax-weighted values of the split's keys
        up to the position, and the log-sum-exp of their scores (-inf for a split past it)."""
        h = tl.program_id(0)
        s = tl.program_id(1)
        d = tl.arange(0, D)
        pos = tl.load(pos_ptr)
        q = tl.load(q_ptr + h * D + d).to(tl.float32) * scale
        k_ptr = kv_ptr + (h // GROUP) * stride_head
        v_ptr = k_ptr + stride_kind
        start = s * SPLIT
        end = tl.minimum(start + SPLIT, pos + 1)
        m = tl.full([], -1e30, tl.float32)
        denom = tl.zeros([], tl.float32)
        acc = tl.zeros([D], tl.float32)
        for n0 in range(start, end, BLOCK_N):
            n = n0 + tl.arange(0, BLOCK_N)
            live = n < end
            k = tl.load(k_ptr + n[:, None] * stride_pos + d[None, :], mask=live[:, None], other=0.0)
            scores = tl.where(live, tl.sum(k.to(tl.float32) * q[None, :], 1), float("-inf"))
            m_new = tl.maximum(m, tl.max(scores, 0))
            p = tl.exp(scores - m_new)
            alpha = tl.exp(m - m_new)
            v = tl.load(v_ptr + n[:, None] * stride_pos + d[None, :], mask=live[:, None], other=0.0)
            denom = denom * alpha + tl.sum(p, 0)
            acc = acc * alpha + tl.sum(p[:, None] * v.to(tl.float32), 0)
            m = m_new
        seen = denom > 0
        row = h * tl.num_programs(1) + s
        tl.store(o_ptr + row * D + d, acc / tl.where(seen, denom, 1.0))
        tl.store(lse_ptr + row, tl.where(seen, m + tl.log(denom), float("-inf")))

    @triton.jit
    def _gemv_residual(a_ptr, w_ptr, res_ptr, out_ptr, N, K, ROWS: tl.constexpr, BLOCK_K: tl.constexpr):
        """One token: out = res + W a for the program's ROWS output rows."""
        rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        live = rows < N
        acc = tl.zeros([ROWS, BLOCK_K], tl.float32)
        for k0 in range(0, K, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            a = tl.load(a_ptr + k, mask=k < K, other=0.0).to(tl.float32)
            w = tl.load(w_ptr + rows[:, None] * K + k[None, :], mask=live[:, None] & (k < K)[None, :], other=0.0, eviction_policy="evict_first")
            acc += w.to(tl.float32) * a[None, :]
        out_ty = out_ptr.dtype.element_ty
        y = tl.sum(acc, 1).to(out_ty).to(tl.float32)
        res = tl.load(res_ptr + rows, mask=live, other=0.0).to(tl.float32)
        tl.store(out_ptr + rows, (res + y).to(out_ty), mask=live)

    @triton.jit
    def _gate_up(x_ptr, ln_ptr, w_ptr, act_ptr, I, K, eps, PAIRS: tl.constexpr, BLOCK_K: tl.constexpr, K_PAD: tl.constexpr):
        """One token: act = SiLU(gate) * up for the program's PAIRS rows; W is [gate; up] ([2I, K])."""
        rows_g = tl.program_id(0) * PAIRS + tl.arange(0, PAIRS)
        live = rows_g < I
        acc_g = tl.zeros([PAIRS, BLOCK_K], tl.float32)
        acc_u = tl.zeros([PAIRS, BLOCK_K], tl.float32)
        acc_g, acc_u = _paired_rows(acc_g, acc_u, x_ptr, ln_ptr, eps, w_ptr, rows_g, rows_g + I, live, 0, K, K, True, BLOCK_K, K_PAD)
        out_ty = act_ptr.dtype.element_ty
        g = tl.sum(acc_g, 1).to(out_ty).to(tl.float32)
        u = tl.sum(acc_u, 1).to(out_ty).to(tl.float32)
        tl.store(act_ptr + rows_g, (g / (1.0 + tl.exp(-g)) * u).to(out_ty), mask=live)

    # -- several tokens (verification, the draft's catch-up): [rows, K] x [K, T_PAD] on tensor cores

    @triton.jit
    def _norm_scales(x_ptr, t, T, K, eps, T_PAD: tl.constexpr, K_PAD: tl.constexpr):
        """rsqrt(mean(x_t^2) + eps) of each input row x_t (x [T, K]), in fp32. One live row at a
        time: summing [16, K] tiles of the padded rows made this prologue, which every program
        runs, cost gate/up a quarter of its speed (63% of the copy bandwidth against 86%)."""
        r = tl.zeros([T_PAD], tl.float32)
        k = tl.arange(0, K_PAD)
        for i in range(0, T):
            x = tl.load(x_ptr + i * K + k, mask=k < K, other=0.0).to(tl.float32)
            r = tl.where(t == i, tl.rsqrt(tl.sum(x * x, 0) / K + eps), r)
        return r

    @triton.jit
    def _paired_rows_multi(
        acc_a, acc_b, x_ptr, ln_ptr, eps, w_ptr, rows_a, rows_b, live_rows, col0, K, W_STRIDE, t, live_t, T,
        T_PAD: tl.constexpr, BLOCK_K: tl.constexpr, K_PAD: tl.constexpr,
    ):  # fmt: skip
        """Adds weight columns col0.. of rows_a and rows_b times RMSNorm(x)^T [K, T_PAD] to the
        [rows, T_PAD] accumulators (each weight tile read once serves every token)."""
        r = _norm_scales(x_ptr, t, T, K, eps, T_PAD, K_PAD)
        for k0 in range(0, K, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            inside = k < K
            x = tl.load(x_ptr + t[:, None] * K + k[None, :], mask=live_t[:, None] & inside[None, :], other=0.0)
            ln = tl.load(ln_ptr + k, mask=inside, other=0.0)
            h = ln[None, :] * (x.to(tl.float32) * r[:, None]).to(ln.dtype)
            wmask = live_rows[:, None] & inside[None, :]
            wa = tl.load(w_ptr + rows_a[:, None] * W_STRIDE + col0 + k[None, :], mask=wmask, other=0.0, eviction_policy="evict_first")
            wb = tl.load(w_ptr + rows_b[:, None] * W_STRIDE + col0 + k[None, :], mask=wmask, other=0.0, eviction_policy="evict_first")
            acc_a = tl.dot(wa, tl.trans(h.to(wa.dtype)), acc_a)
            acc_b = tl.dot(wb, tl.trans(h.to(wb.dtype)), acc_b)
        return acc_a, acc_b

    @triton.jit
    def _qkv_multi(
        x_ptr, ln_ptr, x2_ptr, ln2_ptr, w_ptr, b_ptr, cos_ptr, sin_ptr, pos_ptr, q_ptr, kv_ptr,
        T, K, eps, eps2, stride_kind, stride_head, stride_pos,
        HEADS: tl.constexpr, KV_HEADS: tl.constexpr, D: tl.constexpr, HAS_BIAS: tl.constexpr, TWO_INPUTS: tl.constexpr,
        T_PAD: tl.constexpr, PAIRS: tl.constexpr, BLOCK_K: tl.constexpr, K_PAD: tl.constexpr,
    ):  # fmt: skip
        """_qkv for T tokens (x [T, K]) at positions pos [T]."""
        per_head: tl.constexpr = D // 2 // PAIRS
        pid = tl.program_id(0)
        head = pid // per_head
        j = (pid % per_head) * PAIRS + tl.arange(0, PAIRS)
        rows_a = head * D + j
        t = tl.arange(0, T_PAD)
        live_t = t < T
        acc_a = tl.zeros([PAIRS, T_PAD], tl.float32)
        acc_b = tl.zeros([PAIRS, T_PAD], tl.float32)
        width = 2 * K if TWO_INPUTS else K
        acc_a, acc_b = _paired_rows_multi(acc_a, acc_b, x_ptr, ln_ptr, eps, w_ptr, rows_a, rows_a + D // 2, j >= 0, 0, K, width, t, live_t, T, T_PAD, BLOCK_K, K_PAD)
        if TWO_INPUTS:
            acc_a, acc_b = _paired_rows_multi(acc_a, acc_b, x2_ptr, ln2_ptr, eps2, w_ptr, rows_a, rows_a + D // 2, j >= 0, K, K, width, t, live_t, T, T_PAD, BLOCK_K, K_PAD)
        pos = tl.load(pos_ptr + t, mask=live_t, other=0)[None, :]
        _qkv_store(acc_a, acc_b, b_ptr, cos_ptr, sin_ptr, pos, head, j, t, live_t, T, q_ptr, kv_ptr, stride_kind, stride_head, stride_pos, HEADS, KV_HEADS, D, HAS_BIAS)

    @triton.jit
    def _gemv_residual_multi(
        a_ptr, w_ptr, res_ptr, out_ptr, T, N, K,
        HEAD_DIM: tl.constexpr, T_PAD: tl.constexpr, ROWS: tl.constexpr, BLOCK_K: tl.constexpr,
    ):  # fmt: skip
        """out = res + a W^T for the program's ROWS output rows and T tokens. a is [T, K], or with
        HEAD_DIM > 0 attention's [K / HEAD_DIM heads, T, HEAD_DIM] read as [T, K]."""
        rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        live = rows < N
        t = tl.arange(0, T_PAD)
        live_t = t < T
        acc = tl.zeros([ROWS, T_PAD], tl.float32)
        for k0 in range(0, K, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            if HEAD_DIM > 0:
                a_at = (k // HEAD_DIM)[None, :] * (T * HEAD_DIM) + t[:, None] * HEAD_DIM + (k % HEAD_DIM)[None, :]
            else:
                a_at = t[:, None] * K + k[None, :]
            a = tl.load(a_ptr + a_at, mask=live_t[:, None] & (k < K)[None, :], other=0.0)
            w = tl.load(w_ptr + rows[:, None] * K + k[None, :], mask=live[:, None] & (k < K)[None, :], other=0.0, eviction_policy="evict_first")
            acc = tl.dot(w, tl.trans(a.to(w.dtype)), acc)
        out_ty = out_ptr.dtype.element_ty
        y = acc.to(out_ty).to(tl.float32)
        at = t[None, :] * N + rows[:, None]
        keep = live_t[None, :] & live[:, None]
        res = tl.load(res_ptr + at, mask=keep, other=0.0).to(tl.float32)
        tl.store(out_ptr + at, (res + y).to(out_ty), mask=keep)

    @triton.jit
    def _gate_up_multi(x_ptr, ln_ptr, w_ptr, act_ptr, T, I, K, eps, T_PAD: tl.constexpr, PAIRS: tl.constexpr, BLOCK_K: tl.constexpr, K_PAD: tl.constexpr):
        """_gate_up for T tokens: act [T, I]."""
        rows_g = tl.program_id(0) * PAIRS + tl.arange(0, PAIRS)
        live = rows_g < I
        t = tl.arange(0, T_PAD)
        live_t = t < T
        acc_g = tl.zeros([PAIRS, T_PAD], tl.float32)
        acc_u = tl.zeros([PAIRS, T_PAD], tl.float32)
        acc_g, acc_u = _paired_rows_multi(acc_g, acc_u, x_ptr, ln_ptr, eps, w_ptr, rows_g, rows_g + I, live, 0, K, K, t, live_t, T, T_PAD, BLOCK_K, K_PAD)
        out_ty = act_ptr.dtype.element_ty
        g = acc_g.to(out_ty).to(tl.float32)
        u = acc_u.to(out_ty).to(tl.float32)
        tl.store(act_ptr + t[None, :] * I + rows_g[:, None], (g / (1.0 + tl.exp(-g)) * u).to(out_ty), mask=live_t[None, :] & live[:, None])


def serves(device: torch.device, dtype: torch.dtype, tokens: int, head_dim: int) -> bool:
    """Whether a step of `tokens` tokens runs these kernels: Triton, CUDA, a 16-bit type, 1 to
    MAX_TOKENS tokens and a head size Triton can index."""
    return triton is not None and device.type == "cuda" and dtype in (torch.bfloat16, torch.float16) and 1 <= tokens <= MAX_TOKENS and head_dim in (64, 128, 256)


class FusedDecodeLayer:
    """Runs 1..MAX_TOKENS tokens through a decoder layer with the kernels above. Shapes are fixed
    at construction (heads, kv heads, head size, hidden and MLP sizes), so every call with the same
    token count launches the same grids on buffers of the same sizes: CUDA-graph capturable.

    `w` arguments are `static_target.LayerWeights`; `kv_layer` a layer's cache [2, Hkv, capacity, D]
    with contiguous rows; `pos` [T] the tokens' positions (int64, on the GPU); cos/sin
    [capacity, D] tables. `second` = (x2, norm weight, eps) makes it the Eagle3 draft's layer: q/k/v
    read cat(RMSNorm(x), RMSNorm'(x2)) and the residual is x2. `configs` holds a launch `Config`
    per token class (`token_class`)."""

    def __init__(self, heads: int, kv_heads: int, head_dim: int, hidden: int, intermediate: int, configs: dict[int, Config] | None = None) -> None:
        if triton is None:
            raise RuntimeError("fused decode needs Triton")
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.hidden, self.intermediate = hidden, intermediate
        self.k_pad = triton.next_power_of_2(hidden)
        given = configs or {}
        self.configs = {cls: given[cls] if cls in given else Config.default(cls, head_dim) for cls in (1, MAX_TOKENS)}
        for c in self.configs.values():
            self._check(c)

    def _check(self, c: Config) -> None:
        a = c.attention
        if self.heads % self.kv_heads or not fits("qkv", c.qkv, self.head_dim) or (a is not None and a.split % a.block):
            raise ValueError(f"fused decode: heads {self.heads}, kv heads {self.kv_heads}, head size {self.head_dim}, {c}")

    # -- the kernels, one method each ----------------------------------------------------------

    def qkv(self, x: Tensor, ln: Tensor, eps: float, w, kv_layer: Tensor, pos: Tensor, cos: Tensor, sin: Tensor, c: Launch, second: tuple | None = None) -> Tensor:
        """-> q [heads, T, D] (rotary applied); the keys and values go into kv_layer at pos."""
        tokens = x.shape[0]
        q = x.new_empty(self.heads, tokens, self.head_dim)
        x2, ln2, eps2 = second if second is not None else (x, ln, eps)
        grid = ((self.heads + 2 * self.kv_heads) * (self.head_dim // 2 // c.rows),)
        shared = dict(HEADS=self.heads, KV_HEADS=self.kv_heads, D=self.head_dim, HAS_BIAS=w.b_qkv is not None, TWO_INPUTS=second is not None, PAIRS=c.rows, BLOCK_K=c.block_k, num_warps=c.warps, num_stages=c.stages)
        b = w.b_qkv if w.b_qkv is not None else w.w_qkv
        strides = (kv_layer.stride(0), kv_layer.stride(1), kv_layer.stride(2))
        if tokens == 1:
            _qkv[grid](x, ln, x2, ln2, w.w_qkv, b, cos, sin, pos, q, kv_layer, self.hidden, eps, eps2, *strides, K_PAD=self.k_pad, **shared)
        else:
            _qkv_multi[grid](x, ln, x2, ln2, w.w_qkv, b, cos, sin, pos, q, kv_layer, tokens, self.hidden, eps, eps2, *strides, T_PAD=MAX_TOKENS, K_PAD=self.k_pad, **shared)
        return q

    def attend(self, q: Tensor, kv_layer: Tensor, pos: Tensor, bucket: int, scale: float, c: AttentionLaunch | None) -> Tensor:
        """q [heads, T, D] over the cached keys 0..pos[t] (< bucket) -> [heads, T, D]. Several
        queries run split_kv_attention's kernel."""
        if q.shape[1] > 1:
            return split_kv_attention(q, kv_layer, pos, bucket, scale)
        d = self.head_dim
        splits = -(-bucket // c.split)
        partial = torch.empty(self.heads, splits, d, device=q.device, dtype=torch.float32)
        lse = torch.empty(self.heads, splits, device=q.device, dtype=torch.float32)
        _attend[(self.heads, splits)](
            q, kv_layer, pos, partial, lse, scale, kv_layer.stride(0), kv_layer.stride(1), kv_layer.stride(2),
            GROUP=self.heads // self.kv_heads, SPLIT=c.split, BLOCK_N=c.block, D=d, num_warps=c.warps,
        )  # fmt: skip
        out = torch.empty_like(q)
        # partial/lse rows are (head, split): the several-query merge with one query, T_PAD 1
        merge_splits[(self.heads, 1)](partial, lse, out, 1, splits, T_PAD=1, SPLITS_PAD=triton.next_power_of_2(splits), D=d)
        return out

    def _gemv(self, a: Tensor, weight: Tensor, residual: Tensor, c: Launch, head_dim: int = 0) -> Tensor:
        out = torch.empty_like(residual)
        n, k = weight.shape
        tokens = residual.shape[0]
        launch = dict(ROWS=c.rows, BLOCK_K=c.block_k, num_warps=c.warps, num_stages=c.stages)
        if tokens == 1:
            _gemv_residual[(triton.cdiv(n, c.rows),)](a, weight, residual, out, n, k, **launch)
        else:
            _gemv_residual_multi[(triton.cdiv(n, c.rows),)](a, weight, residual, out, tokens, n, k, HEAD_DIM=head_dim, T_PAD=MAX_TOKENS, **launch)
        return out

    def o(self, attn: Tensor, w, residual: Tensor, c: Launch) -> Tensor:
        """residual + o_proj(attn), attn [heads, T, D]."""
        return self._gemv(attn, w.w_o, residual, c, head_dim=self.head_dim)

    def gate_up(self, x1: Tensor, w, c: Launch) -> Tensor:
        """SiLU(gate) * up of the normalised x1 -> [T, intermediate]."""
        tokens = x1.shape[0]
        act = x1.new_empty(tokens, self.intermediate)
        grid = (triton.cdiv(self.intermediate, c.rows),)
        launch = dict(PAIRS=c.rows, BLOCK_K=c.block_k, num_warps=c.warps, num_stages=c.stages)
        if tokens == 1:
            _gate_up[grid](x1, w.ln2, w.w_gate_up, act, self.intermediate, self.hidden, w.eps2, K_PAD=self.k_pad, **launch)
        else:
            _gate_up_multi[grid](x1, w.ln2, w.w_gate_up, act, tokens, self.intermediate, self.hidden, w.eps2, T_PAD=MAX_TOKENS, K_PAD=self.k_pad, **launch)
        return act

    def down(self, act: Tensor, w, x1: Tensor, c: Launch) -> Tensor:
        """x1 + down(act)."""
        return self._gemv(act, w.w_down, x1, c)

    def __call__(self, x: Tensor, w, kv_layer: Tensor, pos: Tensor, cos: Tensor, sin: Tensor, bucket: int, scale: float, second: tuple | None = None) -> Tensor:
        """x [T, hidden] -> the layer's output [T, hidden]."""
        c = self.configs[token_class(x.shape[0])]
        q = self.qkv(x, w.ln1, w.eps1, w, kv_layer, pos, cos, sin, c.qkv, second)
        residual = x if second is None else second[0]
        x1 = self.o(self.attend(q, kv_layer, pos, bucket, scale, c.attention), w, residual, c.o)
        return self.down(self.gate_up(x1, w, c.gate_up), w, x1, c.down)

    # -- start-up tuning -----------------------------------------------------------------------

    def tune(
        self, weights: Sequence, kv: Tensor, cos: Tensor, sin: Tensor, bucket: int, scale: float, tokens: int = 1,
        second_norm: tuple[Tensor, float] | None = None, kernels: Sequence[str] | None = None,
    ) -> dict:  # fmt: skip
        """Times each kernel's candidate shapes for `tokens` tokens over every layer's weights (one
        launch per layer, captured as a CUDA graph, so each launch reads its weights from memory as
        a step does) and keeps the fastest for that token class. Writes keys and values into `kv`
        at the positions bucket - tokens.. of each layer (start-up: no request's cache yet).
        `second_norm` (weight, eps) tunes q/k/v in the draft's two-input form; `kernels` limits
        the tuning to those kernels (the others keep their shapes).
        Returns {kernel: {candidate: microseconds}}."""
        dev = kv.device
        layers = range(len(weights))
        cls = token_class(tokens)
        start = self.configs[cls]
        pos = torch.arange(bucket - tokens, bucket, device=dev)
        x = torch.randn(tokens, self.hidden, device=dev, dtype=kv.dtype)
        second = None if second_norm is None else (torch.randn_like(x), *second_norm)
        w0 = weights[0]
        q = self.qkv(x, w0.ln1, w0.eps1, w0, kv[0], pos, cos, sin, start.qkv, second)
        attn = self.attend(q, kv[0], pos, bucket, scale, start.attention)
        act = self.gate_up(x, w0, start.gate_up)
        runs: dict[str, Callable] = {
            "qkv": lambda c: [self.qkv(x, weights[i].ln1, weights[i].eps1, weights[i], kv[i], pos, cos, sin, c, second) for i in layers],
            "attention": lambda c: [self.attend(q, kv[i], pos, bucket, scale, c) for i in layers],
            "o": lambda c: [self.o(attn, weights[i], x, c) for i in layers],
            "gate_up": lambda c: [self.gate_up(x, weights[i], c) for i in layers],
            "down": lambda c: [self.down(act, weights[i], x, c) for i in layers],
        }
        t0, best, report = time.perf_counter(), {}, {}
        for name, candidates in CANDIDATES[cls].items():
            if kernels is not None and name not in kernels:
                continue
            times = {}
            for c in candidates:
                if not fits(name, c, self.head_dim):
                    continue
                try:
                    times[c] = graph_seconds(lambda c=c, run=runs[name]: run(c)) / len(weights)
                except Exception as e:  # noqa: BLE001 - a shape this GPU cannot launch (shared memory, registers)
                    log.info("fused decode: %s %s not launchable here: %s", name, c, e)
            if not times:
                raise RuntimeError(f"fused decode: no launch shape of {name} runs on this GPU")
            best[name] = min(times, key=times.get)
            report[name] = {str(c): round(1e6 * t, 2) for c, t in times.items()}
        tuned = replace(start, **best)
        self._check(tuned)
        self.configs[cls] = tuned
        log.info("fused decode kernels for %d token(s) tuned in %.1f s: %s", tokens, time.perf_counter() - t0, tuned)
        return report


def graph_seconds(fn: Callable[[], object], replays: int = 10, batches: int = 3) -> float:
    """Seconds of one run of fn, captured as a CUDA graph and replayed `replays` times back to back
    (median of `batches` such batches)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()  # compiles the kernel outside the capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph.replay()
    samples = []
    for _ in range(batches):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(replays):
            graph.replay()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 1e3 / replays)
    return statistics.median(samples)
