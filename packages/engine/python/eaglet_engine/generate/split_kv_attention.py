"""Attention of a few queries over a static KV cache, the keys split across programs (flash-decoding).

Why a kernel of our own: a verification step attends N+1 queries over every cached key and value
of a layer. torch's kernels give each (head, block of queries) one program, 32 programs for a
32-head model on an H200's 132 multiprocessors: on the benchmarked 7B's shapes (32 layers, KV 1024)
cuDNN's took 0.38 ms for one query and 0.88 ms for five, reading the cache at a fifth to a third
of the copy bandwidth. Here each head's keys are cut into splits read by separate programs, each
keeping a running softmax (`_partial`), and a second kernel merges the splits by log-sum-exp
(`merge_splits`, shared with `fused_decode`'s one-query attention), as vLLM's and
FlashAttention's decode kernels do. `serves` says where the fast path uses it: verification and
the draft's catch-up (2 to 16 queries). A one-query decode step runs `fused_decode`'s attention
where those kernels run, else cuDNN's, which measured as fast as this one for one query.

Semantics are those of `static_cache.cached_attention`: query t at position `positions[t]` sees
the cached keys 0..positions[t] of the first `bucket` positions. q [H, T, D], the layer's cache
[2, Hkv, capacity, D], each kv head serving H / Hkv query heads. Runs on CUDA; on the CPU the
Triton interpreter runs the same source (TRITON_INTERPRET=1), which is how the CPU tests check it
against the reference.
"""

from __future__ import annotations

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - torch wheels without Triton (e.g. macOS): callers keep SDPA
    triton = None

MAX_QUERIES = 16  # queries per call: a verification (N+1 <= 16); tl.dot pads them to 16 rows
BLOCK_N = 64  # keys per inner iteration; buckets are multiples of 64 (static_cache.BUCKET_ALIGN)
TARGET_PROGRAMS = 512  # enough (head, split) programs to keep ~132 multiprocessors reading


def serves(device: torch.device, dtype: torch.dtype, tokens: int, head_dim: int) -> bool:
    """Whether the fast path runs this kernel for these queries: Triton present, CUDA, a 16-bit
    type, 2 to MAX_QUERIES queries and a head size Triton's dot takes; otherwise torch's SDPA.
    One query (a decode step) stays with torch: on the 7B (H200, KV 1024) a decode step took 4.55
    and 4.71 ms with cuDNN's kernel against 4.59 and 4.68 with this one in two runs, the same
    within noise, while verification of 2-6 tokens took 5.10-5.18 ms with this one against
    5.67-5.74 (docs/perf/decode.md)."""
    return triton is not None and device.type == "cuda" and dtype in (torch.bfloat16, torch.float16) and 2 <= tokens <= MAX_QUERIES and head_dim in (64, 128, 256)


def split_size(bucket: int, heads: int) -> int:
    """Keys per split: a multiple of BLOCK_N, small enough that heads x splits reaches about
    TARGET_PROGRAMS programs."""
    splits = max(1, TARGET_PROGRAMS // heads)
    return max(BLOCK_N, -(-bucket // splits // BLOCK_N) * BLOCK_N)


if triton is not None:

    @triton.jit
    def _partial(
        q_ptr, kv_ptr, pos_ptr, o_ptr, lse_ptr,
        T, bucket, scale, stride_kind, stride_head, stride_pos,
        GROUP: tl.constexpr, SPLIT: tl.constexpr, BLOCK_N: tl.constexpr, T_PAD: tl.constexpr, D: tl.constexpr,
    ):  # fmt: skip
        """One (query head, split): softmax-weighted values of the split's visible keys, and the
        log-sum-exp of their scores (-inf when the split shows none of its keys to a query)."""
        h = tl.program_id(0)
        s = tl.program_id(1)
        splits = tl.num_programs(1)
        t = tl.arange(0, T_PAD)
        d = tl.arange(0, D)
        live = t < T
        q = tl.load(q_ptr + (h * T + t[:, None]) * D + d[None, :], mask=live[:, None], other=0.0)
        pos = tl.load(pos_ptr + t, mask=live, other=-1)  # padding rows see no key
        k_ptr = kv_ptr + (h // GROUP) * stride_head
        v_ptr = k_ptr + stride_kind
        m = tl.full([T_PAD], -1e30, tl.float32)  # finite: a block with nothing visible adds exp(-inf) = 0
        denom = tl.zeros([T_PAD], tl.float32)
        acc = tl.zeros([T_PAD, D], tl.float32)
        for start in range(s * SPLIT, s * SPLIT + SPLIT, BLOCK_N):
            n = start + tl.arange(0, BLOCK_N)
            inside = n < bucket
            k = tl.load(k_ptr + n[:, None] * stride_pos + d[None, :], mask=inside[:, None], other=0.0)
            v = tl.load(v_ptr + n[:, None] * stride_pos + d[None, :], mask=inside[:, None], other=0.0)
            scores = tl.dot(q, tl.trans(k)) * scale
            scores = tl.where((n[None, :] <= pos[:, None]) & inside[None, :], scores, float("-inf"))
            m_new = tl.maximum(m, tl.max(scores, 1))
            p = tl.exp(scores - m_new[:, None])
            alpha = tl.exp(m - m_new)
            denom = denom * alpha + tl.sum(p, 1)
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
            m = m_new
        seen = denom > 0
        out = acc / tl.where(seen, denom, 1.0)[:, None]
        row = (h * splits + s) * T_PAD + t
        tl.store(o_ptr + row[:, None] * D + d[None, :], out, mask=live[:, None])  # live rows only: the merge reads no others
        tl.store(lse_ptr + row, tl.where(seen, m + tl.log(denom), float("-inf")), mask=live)

    @triton.jit
    def merge_splits(o_ptr, lse_ptr, out_ptr, T, splits, T_PAD: tl.constexpr, SPLITS_PAD: tl.constexpr, D: tl.constexpr):
        """One (query head, query): the splits' outputs weighted by exp(lse - logsumexp(lse))."""
        h = tl.program_id(0)
        t = tl.program_id(1)
        s = tl.arange(0, SPLITS_PAD)
        d = tl.arange(0, D)
        row = (h * splits + s) * T_PAD + t
        lse = tl.load(lse_ptr + row, mask=s < splits, other=float("-inf"))
        top = tl.max(lse, 0)  # finite: key 0 is visible to every query, in split 0
        w = tl.exp(lse - top)
        o = tl.load(o_ptr + row[:, None] * D + d[None, :], mask=(s < splits)[:, None], other=0.0)
        out = tl.sum(o * w[:, None], 0) / tl.sum(w, 0)
        tl.store(out_ptr + (h * T + t) * D + d, out.to(out_ptr.dtype.element_ty))


def split_kv_attention(q: Tensor, kv_layer: Tensor, positions: Tensor, bucket: int, scale: float) -> Tensor:
    """q [H, T, D] (T <= MAX_QUERIES), kv_layer [2, Hkv, capacity, D] with contiguous rows,
    positions [T] (int64, on q's device) -> [H, T, D] in q's dtype. Query t sees keys
    0..positions[t] (< bucket <= capacity)."""
    heads, tokens, dim = q.shape
    kv_heads = kv_layer.shape[1]
    if heads % kv_heads or tokens > MAX_QUERIES or kv_layer.stride(-1) != 1 or bucket > kv_layer.shape[2]:
        raise ValueError(f"split_kv_attention: q {tuple(q.shape)}, kv {tuple(kv_layer.shape)}, bucket {bucket}")
    q = q.contiguous()
    size = split_size(bucket, heads)
    splits = -(-bucket // size)
    t_pad = 16  # tl.dot's smallest M
    partial = torch.empty(heads, splits, t_pad, dim, device=q.device, dtype=torch.float32)
    lse = torch.empty(heads, splits, t_pad, device=q.device, dtype=torch.float32)
    out = torch.empty_like(q)
    _partial[(heads, splits)](
        q, kv_layer, positions, partial, lse,
        tokens, bucket, scale, kv_layer.stride(0), kv_layer.stride(1), kv_layer.stride(2),
        GROUP=heads // kv_heads, SPLIT=size, BLOCK_N=BLOCK_N, T_PAD=t_pad, D=dim,
    )  # fmt: skip
    merge_splits[(heads, tokens)](partial, lse, out, tokens, splits, T_PAD=t_pad, SPLITS_PAD=triton.next_power_of_2(splits), D=dim)
    return out
