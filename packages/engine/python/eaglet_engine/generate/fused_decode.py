"""One decode step of a Llama-layout decoder layer in five Triton kernels, each reading its weights once.

Why kernels of our own: at batch 1 a decode step reads every weight once, so its floor is the
weight bytes over the memory bandwidth. torch.compile's kernels for the same step (autotuned, see
`decode_compile.py`) read q/k/v, o_proj and down at 76-80% of the copy bandwidth on an H200, and
around them it launches norm, rotary, cache-write and attention kernels of a few microseconds each:
eleven kernels per layer. Here a layer is

  1. `_qkv`: RMSNorm of the input, the q/k/v product (+ bias), rotary on q and k, the new key and
     value written into the cache at the step's position;
  2. `_attend` + `_merge`: one query over the cached keys 0..position, the keys split across
     programs that stop at the position (not at the end of the KV bucket), merged by log-sum-exp;
  3. `_gemv_residual`: o_proj, plus the residual;
  4. `_gate_up`: RMSNorm, the gate and up products, SiLU(gate) x up;
  5. `_gemv_residual`: down, plus the residual.

Each product is a GEMV: a program owns a few output rows and streams their weights once along the
input dimension, accumulating in fp32. Where an epilogue needs two rows together (rotary's pairs
d and d + D/2, a gate row and its up row) one program owns both.

Rounding follows transformers' eager layer where it is cheap to (the normalised input is rounded to
the weights' dtype before its scale, each product's output is rounded before the residual);
rotary and SiLU x up are computed in fp32 and rounded once, as torch.compile's fused kernels do.
`serves` says where the fast path uses it: CUDA, a 16-bit type, one token; everything else keeps
the compiled functions of `static_target`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
except ImportError:  # pragma: no cover - torch wheels without Triton: the compiled path stays
    triton = None


def available() -> bool:
    return triton is not None


@dataclass(frozen=True)
class Launch:
    """A product's launch shape: output rows per program (pairs of rows for q/k/v and gate/up),
    input elements per iteration, warps, pipeline stages."""

    rows: int
    block_k: int = 256
    warps: int = 4
    stages: int = 4


@dataclass(frozen=True)
class Config:
    """Launch shapes of a layer's kernels (measured on an H200, docs/perf/decode.md); `split` keys
    per attention program, read `attn_block` at a time."""

    qkv: Launch = Launch(16)
    o: Launch = Launch(32)
    gate_up: Launch = Launch(16)
    down: Launch = Launch(32)
    split: int = 256
    attn_block: int = 64
    attn_warps: int = 4
    pdl: bool = False  # programmatic dependent launch (Hopper and later): see `_launch`


if triton is not None:

    @triton.jit
    def _norm_scale(x_ptr, K, eps, K_PAD: tl.constexpr):
        """rsqrt(mean(x^2) + eps) of the whole input vector, in fp32."""
        k = tl.arange(0, K_PAD)
        x = tl.load(x_ptr + k, mask=k < K, other=0.0).to(tl.float32)
        return tl.rsqrt(tl.sum(x * x, 0) / K + eps)

    @triton.jit
    def _normed(x_ptr, ln_ptr, k, K, r):
        """The RMSNorm output at input indices k: the weights' dtype, as transformers rounds it."""
        x = tl.load(x_ptr + k, mask=k < K, other=0.0)
        ln = tl.load(ln_ptr + k, mask=k < K, other=0.0)
        return (ln * (x.to(tl.float32) * r).to(ln.dtype)).to(tl.float32)

    @triton.jit
    def _qkv(
        x_ptr, ln_ptr, w_ptr, b_ptr, cos_ptr, sin_ptr, pos_ptr, q_ptr, kv_ptr,
        K, eps, stride_kind, stride_head, stride_pos,
        HEADS: tl.constexpr, KV_HEADS: tl.constexpr, D: tl.constexpr, HAS_BIAS: tl.constexpr,
        PAIRS: tl.constexpr, BLOCK_K: tl.constexpr, K_PAD: tl.constexpr, PDL: tl.constexpr,
    ):  # fmt: skip
        """Program p owns, in one q, k or v head, the PAIRS rows j.. and their rotary partners j + D/2."""
        HALF: tl.constexpr = D // 2
        per_head: tl.constexpr = HALF // PAIRS
        pid = tl.program_id(0)
        head = pid // per_head
        j = (pid % per_head) * PAIRS + tl.arange(0, PAIRS)
        rows_a = head * D + j
        rows_b = rows_a + HALF
        k = tl.arange(0, BLOCK_K)
        if PDL:  # let the next kernel's programs start as this one's finish; they wait below
            gdc_launch_dependents()
        wa = tl.load(w_ptr + rows_a[:, None] * K + k[None, :], mask=(k < K)[None, :], other=0.0, eviction_policy="evict_first")
        wb = tl.load(w_ptr + rows_b[:, None] * K + k[None, :], mask=(k < K)[None, :], other=0.0, eviction_policy="evict_first")
        if PDL:  # the weights' first tile is read; the input is the previous kernel's output
            gdc_wait()
        r = _norm_scale(x_ptr, K, eps, K_PAD)
        h = _normed(x_ptr, ln_ptr, k, K, r)[None, :]
        acc_a = wa.to(tl.float32) * h
        acc_b = wb.to(tl.float32) * h
        for k0 in range(BLOCK_K, K, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            h = _normed(x_ptr, ln_ptr, k, K, r)[None, :]
            inside = (k < K)[None, :]
            wa = tl.load(w_ptr + rows_a[:, None] * K + k[None, :], mask=inside, other=0.0, eviction_policy="evict_first")
            wb = tl.load(w_ptr + rows_b[:, None] * K + k[None, :], mask=inside, other=0.0, eviction_policy="evict_first")
            acc_a += wa.to(tl.float32) * h
            acc_b += wb.to(tl.float32) * h
        out_ty = q_ptr.dtype.element_ty
        ya = tl.sum(acc_a, 1)
        yb = tl.sum(acc_b, 1)
        if HAS_BIAS:
            ya += tl.load(b_ptr + rows_a).to(tl.float32)
            yb += tl.load(b_ptr + rows_b).to(tl.float32)
        ya = ya.to(out_ty).to(tl.float32)  # the product's output, rounded as F.linear's is
        yb = yb.to(out_ty).to(tl.float32)
        pos = tl.load(pos_ptr)
        if head < HEADS + KV_HEADS:  # q or k: rotary, x * cos + rotate_half(x) * sin
            ca = tl.load(cos_ptr + pos * D + j).to(tl.float32)
            cb = tl.load(cos_ptr + pos * D + j + HALF).to(tl.float32)
            sa = tl.load(sin_ptr + pos * D + j).to(tl.float32)
            sb = tl.load(sin_ptr + pos * D + j + HALF).to(tl.float32)
            ya, yb = ya * ca - yb * sa, yb * cb + ya * sb
        if head < HEADS:
            dst = q_ptr + head * D
        elif head < HEADS + KV_HEADS:
            dst = kv_ptr + (head - HEADS) * stride_head + pos * stride_pos
        else:
            dst = kv_ptr + stride_kind + (head - HEADS - KV_HEADS) * stride_head + pos * stride_pos
        tl.store(dst + j, ya.to(out_ty))
        tl.store(dst + j + HALF, yb.to(out_ty))

    @triton.jit
    def _attend(
        q_ptr, kv_ptr, pos_ptr, o_ptr, lse_ptr, scale, stride_kind, stride_head, stride_pos,
        GROUP: tl.constexpr, SPLIT: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr, PDL: tl.constexpr,
    ):  # fmt: skip
        """One (query head, split): the softmax-weighted values of the split's keys up to the
        position, and the log-sum-exp of their scores (-inf for a split past the position)."""
        h = tl.program_id(0)
        s = tl.program_id(1)
        d = tl.arange(0, D)
        if PDL:
            gdc_launch_dependents()
            gdc_wait()
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
    def _merge(o_ptr, lse_ptr, out_ptr, splits, SPLITS_PAD: tl.constexpr, D: tl.constexpr, PDL: tl.constexpr):
        """One query head: the splits' outputs weighted by exp(lse - logsumexp(lse))."""
        h = tl.program_id(0)
        if PDL:
            gdc_launch_dependents()
            gdc_wait()
        s = tl.arange(0, SPLITS_PAD)
        d = tl.arange(0, D)
        lse = tl.load(lse_ptr + h * splits + s, mask=s < splits, other=float("-inf"))
        w = tl.exp(lse - tl.max(lse, 0))  # split 0 always holds key 0: the max is finite
        o = tl.load(o_ptr + (h * splits + s)[:, None] * D + d[None, :], mask=(s < splits)[:, None], other=0.0)
        out = tl.sum(o * w[:, None], 0) / tl.sum(w, 0)
        tl.store(out_ptr + h * D + d, out.to(out_ptr.dtype.element_ty))

    @triton.jit
    def _gemv_residual(a_ptr, w_ptr, res_ptr, out_ptr, N, K, ROWS: tl.constexpr, BLOCK_K: tl.constexpr, PDL: tl.constexpr):
        """out = res + W a for the program's ROWS output rows."""
        rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        live = rows < N
        k = tl.arange(0, BLOCK_K)
        if PDL:
            gdc_launch_dependents()
        w = tl.load(w_ptr + rows[:, None] * K + k[None, :], mask=live[:, None] & (k < K)[None, :], other=0.0, eviction_policy="evict_first")
        if PDL:
            gdc_wait()
        acc = w.to(tl.float32) * tl.load(a_ptr + k, mask=k < K, other=0.0).to(tl.float32)[None, :]
        for k0 in range(BLOCK_K, K, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            a = tl.load(a_ptr + k, mask=k < K, other=0.0).to(tl.float32)
            w = tl.load(w_ptr + rows[:, None] * K + k[None, :], mask=live[:, None] & (k < K)[None, :], other=0.0, eviction_policy="evict_first")
            acc += w.to(tl.float32) * a[None, :]
        out_ty = out_ptr.dtype.element_ty
        y = tl.sum(acc, 1).to(out_ty).to(tl.float32)
        res = tl.load(res_ptr + rows, mask=live, other=0.0).to(tl.float32)
        tl.store(out_ptr + rows, (res + y).to(out_ty), mask=live)

    @triton.jit
    def _gate_up(x_ptr, ln_ptr, w_ptr, act_ptr, I, K, eps, PAIRS: tl.constexpr, BLOCK_K: tl.constexpr, K_PAD: tl.constexpr, PDL: tl.constexpr):
        """act = SiLU(gate) * up for the program's PAIRS rows; W is [gate; up] ([2I, K])."""
        rows_g = tl.program_id(0) * PAIRS + tl.arange(0, PAIRS)
        live = rows_g < I
        rows_u = rows_g + I
        k = tl.arange(0, BLOCK_K)
        if PDL:
            gdc_launch_dependents()
        inside = live[:, None] & (k < K)[None, :]
        wg = tl.load(w_ptr + rows_g[:, None] * K + k[None, :], mask=inside, other=0.0, eviction_policy="evict_first")
        wu = tl.load(w_ptr + rows_u[:, None] * K + k[None, :], mask=inside, other=0.0, eviction_policy="evict_first")
        if PDL:
            gdc_wait()
        r = _norm_scale(x_ptr, K, eps, K_PAD)
        h = _normed(x_ptr, ln_ptr, k, K, r)[None, :]
        acc_g = wg.to(tl.float32) * h
        acc_u = wu.to(tl.float32) * h
        for k0 in range(BLOCK_K, K, BLOCK_K):
            k = k0 + tl.arange(0, BLOCK_K)
            h = _normed(x_ptr, ln_ptr, k, K, r)[None, :]
            inside = live[:, None] & (k < K)[None, :]
            wg = tl.load(w_ptr + rows_g[:, None] * K + k[None, :], mask=inside, other=0.0, eviction_policy="evict_first")
            wu = tl.load(w_ptr + rows_u[:, None] * K + k[None, :], mask=inside, other=0.0, eviction_policy="evict_first")
            acc_g += wg.to(tl.float32) * h
            acc_u += wu.to(tl.float32) * h
        out_ty = act_ptr.dtype.element_ty
        g = tl.sum(acc_g, 1).to(out_ty).to(tl.float32)
        u = tl.sum(acc_u, 1).to(out_ty).to(tl.float32)
        tl.store(act_ptr + rows_g, (g / (1.0 + tl.exp(-g)) * u).to(out_ty), mask=live)


def serves(device: torch.device, dtype: torch.dtype, tokens: int, head_dim: int) -> bool:
    """Whether a step of `tokens` tokens runs these kernels: Triton, CUDA, a 16-bit type, one
    token (a decode step or a draft chain step) and an even head size Triton can index."""
    return triton is not None and device.type == "cuda" and dtype in (torch.bfloat16, torch.float16) and tokens == 1 and head_dim in (64, 128, 256)


class FusedDecodeLayer:
    """Runs one token through a decoder layer with the kernels above. Shapes are fixed at
    construction (heads, kv heads, head size, hidden and MLP sizes), so every call launches the
    same grids: CUDA-graph capturable."""

    def __init__(self, heads: int, kv_heads: int, head_dim: int, hidden: int, intermediate: int, config: Config = Config()) -> None:
        if heads % kv_heads or head_dim % 2 or (head_dim // 2) % config.qkv.rows:
            raise ValueError(f"fused decode: heads {heads}, kv heads {kv_heads}, head size {head_dim}, q/k/v rows {config.qkv.rows}")
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.hidden, self.intermediate = hidden, intermediate
        self.config = config
        self.k_pad = triton.next_power_of_2(hidden)

    def splits(self, bucket: int) -> int:
        return -(-bucket // self.config.split)

    def __call__(self, x: Tensor, w, kv_layer: Tensor, pos: Tensor, cos: Tensor, sin: Tensor, bucket: int, scale: float) -> Tensor:
        """x [1, hidden] -> [1, hidden]; `w` a static_target.LayerWeights; kv_layer [2, Hkv,
        capacity, D] (this token's key and value are written at `pos` [1])."""
        c, d, hidden = self.config, self.head_dim, self.hidden
        pdl = {"PDL": True, "launch_pdl": True} if c.pdl else {"PDL": False}
        q = x.new_empty(self.heads, 1, d)
        _qkv[((self.heads + 2 * self.kv_heads) * (d // 2 // c.qkv.rows),)](
            x, w.ln1, w.w_qkv, w.b_qkv if w.b_qkv is not None else w.w_qkv, cos, sin, pos, q, kv_layer,
            hidden, w.eps1, kv_layer.stride(0), kv_layer.stride(1), kv_layer.stride(2),
            HEADS=self.heads, KV_HEADS=self.kv_heads, D=d, HAS_BIAS=w.b_qkv is not None,
            PAIRS=c.qkv.rows, BLOCK_K=c.qkv.block_k, K_PAD=self.k_pad, num_warps=c.qkv.warps, num_stages=c.qkv.stages, **pdl,
        )  # fmt: skip
        splits = self.splits(bucket)
        partial = torch.empty(self.heads, splits, d, device=x.device, dtype=torch.float32)
        lse = torch.empty(self.heads, splits, device=x.device, dtype=torch.float32)
        _attend[(self.heads, splits)](
            q, kv_layer, pos, partial, lse, scale, kv_layer.stride(0), kv_layer.stride(1), kv_layer.stride(2),
            GROUP=self.heads // self.kv_heads, SPLIT=c.split, BLOCK_N=c.attn_block, D=d, num_warps=c.attn_warps, **pdl,
        )  # fmt: skip
        attn = torch.empty(self.heads * d, device=x.device, dtype=x.dtype)
        _merge[(self.heads,)](partial, lse, attn, splits, SPLITS_PAD=triton.next_power_of_2(splits), D=d, **pdl)
        x1 = torch.empty_like(x)
        _gemv_residual[(triton.cdiv(hidden, c.o.rows),)](attn, w.w_o, x, x1, hidden, self.heads * d, ROWS=c.o.rows, BLOCK_K=c.o.block_k, num_warps=c.o.warps, num_stages=c.o.stages, **pdl)
        act = x.new_empty(self.intermediate)
        _gate_up[(triton.cdiv(self.intermediate, c.gate_up.rows),)](
            x1, w.ln2, w.w_gate_up, act, self.intermediate, hidden, w.eps2,
            PAIRS=c.gate_up.rows, BLOCK_K=c.gate_up.block_k, K_PAD=self.k_pad, num_warps=c.gate_up.warps, num_stages=c.gate_up.stages, **pdl,
        )  # fmt: skip
        out = torch.empty_like(x)
        _gemv_residual[(triton.cdiv(hidden, c.down.rows),)](act, w.w_down, x1, out, hidden, self.intermediate, ROWS=c.down.rows, BLOCK_K=c.down.block_k, num_warps=c.down.warps, num_stages=c.down.stages, **pdl)
        return out
