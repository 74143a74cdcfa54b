"""The fused one-token decoder layer (generate/fused_decode.py) against the functions it replaces.

On CUDA the fast path runs these kernels compiled (tests/test_cuda.py checks them there in bf16,
tuned, inside the static target). Here, on the CPU, Triton's interpreter runs the same kernel
source in fp32, so the kernels' indexing (rotary pairs, q/k/v rows, cache writes, gate/up pairs,
attention splits that stop at the position) is checked in every test run against
`static_target.pre_attention` + `static_cache.cached_attention` + `static_target.post_attention`.
"""

from __future__ import annotations

import textwrap

import pytest

from .triton_interpreter import interpreted_rows

pytest.importorskip("triton", reason="torch wheels without Triton (e.g. macOS) keep the compiled functions; nothing to check")

CHECK = textwrap.dedent(
    """
    import json, torch
    from eaglet_engine.generate import fused_decode as fd
    from eaglet_engine.generate.static_target import LayerWeights, post_attention, pre_attention
    from eaglet_engine.generate.static_cache import attention_bias, cached_attention

    torch.manual_seed(0)
    heads, dim, hidden, inter, cap = 4, 32, 64, 96, 320
    one = fd.Config(fd.Launch(8, 32, 4, 1), fd.Launch(16, 32, 4, 1), fd.Launch(8, 32, 4, 1), fd.Launch(16, 64, 4, 1), fd.AttentionLaunch(64, 32, 4))
    several = fd.Config(fd.Launch(4, 32, 4, 1), fd.Launch(8, 64, 4, 1), fd.Launch(4, 32, 4, 1), fd.Launch(8, 32, 4, 1))
    other = (fd.Config(fd.Launch(16, 64, 4, 1), fd.Launch(8, 64, 4, 1), fd.Launch(16, 64, 4, 1), fd.Launch(32, 32, 4, 1), fd.AttentionLaunch(128, 64, 4)),
             fd.Config(fd.Launch(16, 16, 4, 1), fd.Launch(2, 128, 4, 1), fd.Launch(2, 64, 4, 1), fd.Launch(4, 64, 4, 1)))
    rows = []
    cases = [(4, True, (one, several), t, b, p) for t in (1, 3) for b, p in ((64, 0), (64, 63 - (t - 1)), (256, 64), (320, 320 - t))]
    cases += [(2, False, other, t, b, p) for t, b, p in ((1, 256, 130), (2, 256, 130), (8, 256, 200))]
    cases += [(1, True, other, t, b, p) for t, b, p in ((1, 320, 319), (5, 64, 10))]
    for kv_heads, bias_on, configs, tokens, bucket, pos in cases:
        r = lambda *s: torch.randn(*s) / 8
        w = LayerWeights(torch.rand(hidden) + 0.5, 1e-6, r((heads + 2 * kv_heads) * dim, hidden), torch.randn((heads + 2 * kv_heads) * dim) if bias_on else None,
                         r(hidden, heads * dim), torch.rand(hidden) + 0.5, 1e-6, r(2 * inter, hidden), r(hidden, inter))
        kv = torch.randn(2, kv_heads, cap, dim)
        got_kv = kv.clone()
        x = torch.randn(tokens, hidden)
        angle = torch.randn(cap, dim // 2)
        cos, sin = torch.cat([angle.cos(), angle.cos()], -1), torch.cat([angle.sin(), angle.sin()], -1)
        positions = torch.arange(pos, pos + tokens)
        q, new = pre_attention(x, w.ln1, w.eps1, w.w_qkv, w.b_qkv, cos[positions], sin[positions], heads, kv_heads)
        kv.index_copy_(2, positions, new)
        attn = cached_attention(q, kv, bucket, attention_bias(torch.arange(cap), positions, bucket, torch.float32), 0.2)
        want = post_attention(x, attn, w.w_o, w.ln2, w.eps2, w.w_gate_up, w.w_down)
        layer = fd.FusedDecodeLayer(heads, kv_heads, dim, hidden, inter, {1: configs[0], fd.MAX_TOKENS: configs[1]})
        got = layer(x, w, got_kv, positions, cos, sin, bucket, 0.2)
        rows.append({"kv_heads": kv_heads, "bias": bias_on, "tokens": tokens, "bucket": bucket, "pos": pos,
                     "err": (got - want).abs().max().item(), "kv_err": (got_kv - kv).abs().max().item(), "size": want.abs().max().item()})
    print(json.dumps(rows))
    """
)

# The Eagle3 draft's layer (eaglet_engine.draft.DraftDecoderLayer, as StaticDraft runs it over a
# static cache) against the same kernels in their two-input form.
DRAFT_CHECK = textwrap.dedent(
    """
    import json, torch
    from eaglet_engine.draft import DraftConfig, DraftDecoderLayer
    from eaglet_engine.generate import fused_decode as fd
    from eaglet_engine.generate.static_cache import DraftCacheView, StaticKVCache
    from eaglet_engine.generate.static_draft import draft_layer_weights

    torch.manual_seed(0)
    cfg = DraftConfig(hidden_size=64, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2, head_dim=32, vocab_size=50, draft_vocab_size=20)
    layer = DraftDecoderLayer(cfg).eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn_like(p) / 8 + (1.0 if p.dim() == 1 else 0.0))
    w, second_norm = draft_layer_weights(layer)
    cap, rows = 256, []
    one = fd.Config(fd.Launch(8, 32, 4, 1), fd.Launch(16, 32, 4, 1), fd.Launch(8, 32, 4, 1), fd.Launch(16, 64, 4, 1), fd.AttentionLaunch(64, 32, 4))
    several = fd.Config(fd.Launch(4, 32, 4, 1), fd.Launch(8, 64, 4, 1), fd.Launch(4, 32, 4, 1), fd.Launch(8, 32, 4, 1))
    fused = fd.FusedDecodeLayer(4, 2, 32, 64, 96, {1: one, fd.MAX_TOKENS: several})
    cos, sin = (t[0, 0] for t in layer.self_attn.rotary(torch.arange(cap)[None], torch.float32))
    for tokens, bucket, pos in ((1, 64, 0), (1, 256, 200), (5, 256, 100), (5, 64, 59)):
        cache = StaticKVCache(1, 2, 32, cap, torch.device("cpu"), torch.float32)
        cache.kv.normal_()
        got_kv = cache.kv[0].clone()
        e, h = torch.randn(tokens, 64), torch.randn(tokens, 64)
        positions = torch.arange(pos, pos + tokens)
        with torch.no_grad():
            want = layer(e[None], h[None], positions[None], DraftCacheView(cache).at(positions, bucket))[0]
        got = fused(e, w, got_kv, positions, cos, sin, bucket, layer.self_attn.scale, second=(h, *second_norm))
        rows.append({"tokens": tokens, "bucket": bucket, "pos": pos, "err": (got - want).abs().max().item(),
                     "kv_err": (got_kv - cache.kv[0]).abs().max().item(), "size": want.abs().max().item()})
    print(json.dumps(rows))
    """
)


def test_fused_layer_equals_the_reference_functions_in_the_interpreter():
    rows = interpreted_rows(CHECK)
    assert len(rows) == 13
    assert {r["kv_heads"] for r in rows} == {4, 2, 1} and {r["bias"] for r in rows} == {True, False}
    assert {r["tokens"] for r in rows} == {1, 2, 3, 5, 8}  # decode, and verifications up to MAX_TOKENS
    # positions at the start, the end and inside a bucket; splits wholly past the position (pos 64, bucket 256)
    assert {(r["bucket"], r["pos"]) for r in rows} >= {(64, 0), (256, 64), (320, 319), (320, 317)}
    worst = max(rows, key=lambda r: r["err"])
    assert worst["err"] < 1e-4 and worst["size"] > 1, worst  # fp32 summation order; a wrong row, pair or mask is off by O(1)
    assert max(r["kv_err"] for r in rows) < 1e-5  # the keys and values written at the positions (and nothing else)


def test_the_draft_layer_equals_its_two_input_fused_form_in_the_interpreter():
    rows = interpreted_rows(DRAFT_CHECK)
    assert [r["tokens"] for r in rows] == [1, 1, 5, 5]
    worst = max(rows, key=lambda r: r["err"])
    assert worst["err"] < 1e-4 and worst["size"] > 1, worst
    assert max(r["kv_err"] for r in rows) < 1e-5


def test_the_fused_kernels_serve_cuda_steps_of_up_to_max_tokens_in_16_bits():
    import torch

    from eaglet_engine.generate.fused_decode import MAX_TOKENS, serves

    cuda = torch.device("cuda")
    assert serves(cuda, torch.bfloat16, 1, 128) and serves(cuda, torch.float16, 1, 64)
    assert serves(cuda, torch.bfloat16, 5, 128) and serves(cuda, torch.bfloat16, MAX_TOKENS, 128)  # verification of N + 1
    assert not serves(cuda, torch.bfloat16, MAX_TOKENS + 1, 128)  # longer steps keep the compiled functions
    assert not serves(torch.device("cpu"), torch.bfloat16, 1, 128)  # the CPU keeps the plain functions
    assert not serves(cuda, torch.float32, 1, 128)  # fp32 keeps the compiled functions
    assert not serves(cuda, torch.bfloat16, 1, 96)  # a head size the kernels cannot index


def test_the_default_launch_shapes_fit_every_head_size_the_kernels_serve():
    """A model with 64-wide heads (32 rotary pairs) must not get a q/k/v shape of 64 pair-rows,
    the several-token kernels' first candidate on the 7B's 128-wide heads."""
    from eaglet_engine.generate import fused_decode as fd

    for head_dim in (64, 128, 256):
        layer = fd.FusedDecodeLayer(8, 2, head_dim, 512, 1024)
        for config in layer.configs.values():
            assert fd.fits("qkv", config.qkv, head_dim) and (head_dim // 2) % config.qkv.rows == 0, (head_dim, config)
    assert fd.Config.default(5, 64).qkv.rows == 32 and fd.Config.default(5, 128).qkv.rows == 64
