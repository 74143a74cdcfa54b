"""The split-KV decode attention kernel against the reference attention it replaces.

On CUDA the fast path runs it compiled (tests/test_cuda.py checks it there in bf16 on the 7B's
shapes). Here, on the CPU, Triton's interpreter runs the same kernel source in fp32, so the
kernel's indexing, masking and merge are checked in every test run (`triton_interpreter`).
"""

from __future__ import annotations

import textwrap

import pytest

from .triton_interpreter import interpreted_rows

pytest.importorskip("triton", reason="torch wheels without Triton (e.g. macOS) keep torch's attention; nothing to check")

CHECK = textwrap.dedent(
    """
    import json, torch
    from eaglet_engine.generate import split_kv_attention as ska
    from eaglet_engine.generate.static_cache import attention_bias, cached_attention

    torch.manual_seed(0)
    rows = []
    cap, dim, heads = 320, 64, 4
    for kv_heads in (4, 2, 1):
        for tokens in (1, 3, 5):
            for bucket, last in ((64, 0 + tokens - 1), (64, 63), (192, 100), (256, 255), (320, 200)):
                kv = torch.randn(2, kv_heads, cap, dim) * 3
                q = torch.randn(heads, tokens, dim)
                positions = torch.arange(last - tokens + 1, last + 1)
                bias = attention_bias(torch.arange(cap), positions, bucket, torch.float32)
                want = cached_attention(q, kv, bucket, bias, 0.125)
                got = ska.split_kv_attention(q, kv, positions, bucket, 0.125)
                rows.append({"kv_heads": kv_heads, "tokens": tokens, "bucket": bucket, "last": last,
                             "splits": -(-bucket // ska.split_size(bucket, heads)),
                             "err": (got - want).abs().max().item()})
    print(json.dumps(rows))
    """
)


def test_kernel_equals_the_reference_attention_in_the_interpreter():
    rows = interpreted_rows(CHECK)
    assert len(rows) == 45
    assert {r["splits"] for r in rows} >= {1, 3, 5}, "the cases must cover one split and several"
    worst = max(rows, key=lambda r: r["err"])
    assert worst["err"] < 1e-4, worst  # fp32 summation order; a wrong mask or merge is off by O(0.1)


def test_split_size_fills_the_gpu_and_divides_into_blocks():
    from eaglet_engine.generate.split_kv_attention import BLOCK_N, split_size

    for heads in (4, 28, 32, 64):
        for bucket in (64, 256, 384, 1024, 1536, 16384):
            size = split_size(bucket, heads)
            assert size % BLOCK_N == 0 and size >= BLOCK_N
            splits = -(-bucket // size)
            assert splits * size >= bucket > (splits - 1) * size
            # as many programs as the target allows, unless the bucket runs out of blocks first
            assert heads * splits <= 2 * 512 or size == BLOCK_N
