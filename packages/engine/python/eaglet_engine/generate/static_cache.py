"""Preallocated key/value caches for the fast decode path, and the KV lengths its graphs read.

A CUDA graph replays fixed kernels on fixed buffers, so the fast path keeps every key and value in
one buffer allocated at start-up (`StaticKVCache`) and addresses it by position tensors that live
on the GPU: a write goes to explicit positions (`index_copy_`), a read covers the first `bucket`
positions with a mask that lets each query see the keys at or before its own position. One graph
then serves every position inside its bucket, and attention reads the bucket, not the whole
buffer. Rolling back rejected draft tokens needs no work at all: positions past the accepted ones
are masked until a later step overwrites them. On CUDA, attention for 2-16 queries (verification,
the draft's catch-up) runs `split_kv_attention`, which takes the positions instead of a mask.
"""

from __future__ import annotations

import bisect

import torch
import torch.nn.functional as F
from torch import Tensor

from . import split_kv_attention

SMALLEST_BUCKET = 256
BUCKET_ALIGN = 64  # the memory-efficient attention kernel wants mask rows in multiples of 16


def kv_buckets(max_len: int) -> list[int]:
    """KV lengths graphs are captured for: 256, 384, 512, 768, 1024, 1536, ... (powers of two and
    1.5x between them, so a step reads at most 1.5x the keys it needs), up to `max_len` rounded up
    to a multiple of 64 (the last bucket, which is also the cache's capacity)."""
    top = -(-max_len // BUCKET_ALIGN) * BUCKET_ALIGN
    sizes = {top}
    b = SMALLEST_BUCKET
    while b < top:
        sizes.update(s for s in (b, b * 3 // 2) if s < top)
        b *= 2
    return sorted(sizes)


def bucket_for(buckets: list[int], length: int) -> int:
    """The smallest bucket holding `length` positions."""
    i = bisect.bisect_left(buckets, length)
    if i == len(buckets):
        raise ValueError(f"{length} positions exceed the largest captured KV length {buckets[-1]}")
    return buckets[i]


def attention_bias(key_index: Tensor, positions: Tensor, bucket: int, dtype: torch.dtype) -> Tensor:
    """[T, bucket] additive mask: 0 where key j is visible to the query at positions[t]
    (j <= positions[t]), -inf elsewhere. Made once per step and shared by every layer."""
    visible = key_index[:bucket][None, :] <= positions[:, None]
    return torch.zeros(visible.shape, dtype=dtype, device=visible.device).masked_fill_(~visible, float("-inf"))


def _grouped(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """q [H, T, D], k/v [Hkv, S, D] -> 4-d views for attention: [1, H, *, D] when every query head
    has its own kv head; else [Hkv, H/Hkv, *, D], each kv head serving its group of query heads by
    broadcasting (stride 0), never by copying keys and values."""
    hkv = k.shape[0]
    g = q.shape[0] // hkv
    if g == 1:  # as one batch of H heads: the layout the flash and cuDNN kernels take as is
        return q[None], k[None], v[None]
    q = q.view(hkv, g, *q.shape[1:])
    return q, k[:, None].expand(hkv, g, *k.shape[1:]), v[:, None].expand(hkv, g, *v.shape[1:])


def causal_attention(q: Tensor, kv: Tensor, scale: float) -> Tensor:
    """Attention of a prompt over itself (positions 0..T-1, nothing cached before).
    q [H, T, D], kv [2, Hkv, T, D] -> [H, T, D]."""
    qg, k, v = _grouped(q, kv[0], kv[1])
    return F.scaled_dot_product_attention(qg, k, v, is_causal=True, scale=scale).reshape(q.shape)


def cached_attention(q: Tensor, kv_layer: Tensor, bucket: int, bias: Tensor, scale: float) -> Tensor:
    """Attention over the first `bucket` cached positions. q [H, T, D]; kv_layer [2, Hkv, capacity, D];
    bias [T, bucket] from `attention_bias` -> [H, T, D]."""
    qg, k, v = _grouped(q, kv_layer[0, :, :bucket], kv_layer[1, :, :bucket])
    return F.scaled_dot_product_attention(qg, k, v, attn_mask=bias, scale=scale).reshape(q.shape)


class StaticKVCache:
    """Keys and values of `layers` attention layers for positions 0..capacity-1, allocated once:
    `kv[layer]` is [2, kv_heads, capacity, head_dim] (keys, values)."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, capacity: int, device: torch.device, dtype: torch.dtype) -> None:
        self.capacity = capacity
        self.kv = torch.zeros(layers, 2, kv_heads, capacity, head_dim, device=device, dtype=dtype)
        self.key_index = torch.arange(capacity, device=device)

    @staticmethod
    def bytes_for(layers: int, kv_heads: int, head_dim: int, capacity: int, dtype: torch.dtype) -> int:
        return layers * 2 * kv_heads * capacity * head_dim * dtype.itemsize

    def split_kv(self, tokens: int) -> bool:
        """Whether attention over the cache for `tokens` queries runs the split-KV kernel (CUDA,
        2-16 queries: it reads the cache faster) rather than torch's, which needs `attention_bias`."""
        return split_kv_attention.serves(self.kv.device, self.kv.dtype, tokens, self.kv.shape[-1])

    def bias_for(self, positions: Tensor, bucket: int | None) -> Tensor | None:
        """The mask torch's attention needs for queries at `positions` over the first `bucket`
        cached positions (`attention_bias`), made once per step; None where none is read: a prompt
        (`bucket` None) or the split-KV kernel, which takes the positions themselves."""
        if bucket is None or self.split_kv(positions.shape[0]):
            return None
        return attention_bias(self.key_index, positions, bucket, self.kv.dtype)

    def write(self, layer: int, kv: Tensor, positions: Tensor) -> None:
        """kv [2, Hkv, T, D] goes to `positions` [T]."""
        self.kv[layer].index_copy_(2, positions, kv)

    def attend(self, layer: int, q: Tensor, kv: Tensor, positions: Tensor, bucket: int | None, bias: Tensor | None, scale: float) -> Tensor:
        """Writes this step's keys and values, then attends: over the step itself when `bucket` is
        None (a prompt from position 0), else over the first `bucket` cached positions."""
        self.write(layer, kv, positions)
        if bucket is None:
            return causal_attention(q, kv, scale)
        if self.split_kv(q.shape[1]):
            return split_kv_attention.split_kv_attention(q, self.kv[layer], positions, bucket, scale)
        return cached_attention(q, self.kv[layer], bucket, bias, scale)


class DraftCacheView:
    """The draft layer's cache interface (`attend(q, k, v, scale)` on [1, H, T, D] tensors, as
    `eaglet_engine.draft.KVCache`) over a one-layer `StaticKVCache`; `at` sets the positions and
    bucket of the next step."""

    def __init__(self, cache: StaticKVCache) -> None:
        self.cache = cache
        self.positions: Tensor | None = None
        self.bucket: int | None = None
        self.bias: Tensor | None = None

    def at(self, positions: Tensor, bucket: int | None) -> DraftCacheView:
        self.positions, self.bucket = positions, bucket
        self.bias = self.cache.bias_for(positions, bucket)
        return self

    def attend(self, q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
        out = self.cache.attend(0, q[0], torch.stack([k[0], v[0]]), self.positions, self.bucket, self.bias, scale)
        return out[None]
