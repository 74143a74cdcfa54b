"""The draft model: the TTT attention kernel against the eager reference (forward and gradients),
training-time test against cached generation, config round trips."""

import pytest
import torch

from eaglet_engine.draft import (
    ATTENTION_KERNELS,
    DraftConfig,
    KVCache,
    TTTCache,
    eager_ttt_attention,
)
from eaglet_engine.kernels import flash_ttt_attention

from .tiny import tiny_draft, tiny_draft_config


def _inputs(n_steps, dtype, b=2, hq=8, hkv=2, t=37, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)

    # [B, T, H, D] storage seen as [B, H, T, D], as the draft's projections produce them.
    def make(h):
        return torch.randn(b, t, h, d, generator=g, dtype=torch.float64).to(dtype).transpose(1, 2).requires_grad_()

    q = make(hq)
    keys = [make(hkv) for _ in range(n_steps)]
    values = [make(hkv) for _ in range(n_steps)]
    grad = torch.randn(b, hq, t, d, generator=g, dtype=torch.float64).to(dtype)
    return q, keys, values, grad


def _run(kernel, q, keys, values, grad):
    for x in (q, *keys, *values):
        x.grad = None
    out = kernel(q, keys, values, 0.3)
    out.backward(grad)
    return [out.detach()] + [x.grad.clone() for x in (q, *keys, *values)]


@pytest.mark.parametrize("n_steps", [1, 2, 4, 7])
def test_flash_ttt_attention_equals_eager_reference_forward_and_backward_fp64(n_steps):
    q, keys, values, grad = _inputs(n_steps, torch.float64)
    ref = _run(eager_ttt_attention, q, keys, values, grad)
    got = _run(flash_ttt_attention, q, keys, values, grad)
    names = ["out", "dq"] + [f"dk{j}" for j in range(n_steps)] + [f"dv{j}" for j in range(n_steps)]
    for name, a, b in zip(names, got, ref):
        err = ((a - b).norm() / b.norm()).item()
        assert err < 1e-12, f"{name}: relative error {err}"


@pytest.mark.parametrize("n_steps", [1, 2, 5])
def test_queries_on_the_last_rows_of_step0_keys_equal_the_full_kernel_rows(n_steps):
    """The objective passes queries only from the first row a loss reads: the queries are then the
    last rows of step 0's keys, and both kernels must give those rows exactly what a full-length
    call gives them, forward and backward (the rows before them see a prefix of the keys whole)."""
    q, keys, values, grad = _inputs(n_steps, torch.float64)
    start = 11
    full = _run(eager_ttt_attention, q, keys, values, grad * (torch.arange(q.shape[2]) >= start)[:, None])

    def tail(x):
        return x.detach()[:, :, start:].clone().requires_grad_()

    short_q = tail(q)
    short_keys = [keys[0].detach().clone().requires_grad_()] + [tail(k) for k in keys[1:]]
    short_values = [values[0].detach().clone().requires_grad_()] + [tail(v) for v in values[1:]]
    for kernel in (eager_ttt_attention, flash_ttt_attention):
        got = _run(kernel, short_q, short_keys, short_values, grad[:, :, start:])
        want = [full[0][:, :, start:], full[1][:, :, start:], full[2]]
        want += [g[:, :, start:] for g in full[3 : 2 + n_steps]] + [full[2 + n_steps]] + [g[:, :, start:] for g in full[3 + n_steps :]]
        names = ["out", "dq", "dk0"] + [f"dk{j}" for j in range(1, n_steps)] + ["dv0"] + [f"dv{j}" for j in range(1, n_steps)]
        for name, a, b in zip(names, got, want):
            err = ((a - b).norm() / b.norm()).item()
            assert err < 1e-12, f"{kernel.__name__} {name}: relative error {err}"


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_flash_ttt_attention_matches_reference_in_training_dtypes(dtype, tol):
    q, keys, values, grad = _inputs(4, dtype)
    ref = _run(eager_ttt_attention, *_inputs(4, torch.float64))  # the truth, in fp64
    got = _run(flash_ttt_attention, q, keys, values, grad)
    for a, b in zip(got, ref):
        assert torch.isfinite(a).all()
        err = ((a.double() - b).norm() / b.norm()).item()
        assert err < tol


def test_step_attention_sees_step0_causally_and_later_steps_only_at_the_same_position():
    # Change step 0's key at position 5: outputs before 5 must not move, later ones must.
    # Change step 1's key at position 5: only position 5 of step >= 1 may move.
    q, keys, values, _ = _inputs(3, torch.float64)
    base = flash_ttt_attention(q, keys, values, 0.3).detach()
    k0 = keys[0].detach().clone()
    k0[:, :, 5] += 1.0
    moved = (flash_ttt_attention(q, [k0, *keys[1:]], values, 0.3).detach() - base).abs().amax(dim=(0, 1, 3))
    assert (moved[:5] == 0).all() and (moved[5:] > 0).all()
    k1 = keys[1].detach().clone()
    k1[:, :, 5] += 1.0
    moved = (flash_ttt_attention(q, [keys[0], k1, keys[2]], values, 0.3).detach() - base).abs().amax(dim=(0, 1, 3))
    assert moved[5] > 0 and (moved[:5] == 0).all() and (moved[6:] == 0).all()


def test_ttt_unroll_equals_a_chain_of_cached_generation_steps():
    """What training optimises is what serving runs: TTT step i at position t equals drafting i
    tokens after a prefill of positions 0..t with a KV cache (fed the same next tokens)."""
    torch.manual_seed(0)
    model = tiny_draft().double()
    b, t, steps = 1, 12, 4
    taps = torch.randn(b, t, model.config.fused_width, dtype=torch.float64)
    ids = torch.randint(0, model.config.vocab_size, (b, t + steps + 1))
    pos = torch.arange(t).expand(b, t)

    ttt = TTTCache("eager")
    hidden = model.project(taps)
    ttt_out = []
    for i in range(steps):
        hidden = model.step(model.embed(ids[:, 1 + i : 1 + i + t]), hidden, pos + i, ttt)
        ttt_out.append(hidden)

    for p in (0, 5, t - 1):
        cache = KVCache()
        # Prefill: the target's states at positions 0..p with the next tokens' embeddings.
        h = model.step(model.embed(ids[:, 1 : p + 2]), model.project(taps[:, : p + 1]), pos[:, : p + 1], cache)
        assert torch.allclose(h[:, p], ttt_out[0][:, p], atol=1e-12)
        h = h[:, -1:]
        for i in range(1, steps):
            # Next draft step: own previous output, the token after, rope position p + i.
            h = model.step(model.embed(ids[:, p + 1 + i : p + 2 + i]), h, torch.tensor([[p + i]]), cache)
            assert torch.allclose(h[:, 0], ttt_out[i][:, p], atol=1e-12), f"position {p}, step {i}"


def test_kv_cache_crop_drops_rejected_positions():
    model = tiny_draft().double()
    taps = torch.randn(1, 6, model.config.fused_width, dtype=torch.float64)
    ids = torch.randint(0, model.config.vocab_size, (1, 6))
    pos = torch.arange(6)[None]
    full = KVCache()
    out_full = model.step(model.embed(ids), model.project(taps), pos, full)
    cache = KVCache()
    model.step(model.embed(ids[:, :4]), model.project(taps[:, :4]), pos[:, :4], cache)
    model.step(model.embed(ids[:, 4:5]), model.project(taps[:, 2:3]), pos[:, 4:5], cache)  # a rejected draft
    cache.crop(4)
    assert cache.length == 4
    out = model.step(model.embed(ids[:, 4:]), model.project(taps[:, 4:]), pos[:, 4:], cache)
    assert torch.allclose(out, out_full[:, 4:], atol=1e-12)


def test_kernels_are_chosen_through_one_lookup():
    assert set(ATTENTION_KERNELS) == {"eager", "flash"}
    with pytest.raises(ValueError, match="known: \\['eager', 'flash'\\]"):
        TTTCache("nonsense")


def test_draft_config_round_trips_and_refuses_impossible_shapes():
    cfg = tiny_draft_config(extra={"architectures": ["LlamaForCausalLMEagle3"], "bos_token_id": 1})
    again = DraftConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.extra == cfg.extra
    assert "target_hidden_size" not in cfg.to_dict()  # equal to hidden_size: vLLM infers it
    assert DraftConfig.from_dict({**cfg.to_dict(), "target_hidden_size": 48}).fused_width == 144
    with pytest.raises(ValueError, match="multiple of num_key_value_heads"):
        tiny_draft_config(num_key_value_heads=3)
    with pytest.raises(ValueError, match="exactly one decoder layer"):
        tiny_draft_config(num_hidden_layers=2)


def test_draft_config_reads_rope_theta_from_rope_parameters_and_refuses_scaled_rope():
    body = tiny_draft_config().to_dict()
    del body["rope_theta"]
    # transformers 5's layout (what another trainer's saved draft may carry alone)
    assert DraftConfig.from_dict({**body, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}}).rope_theta == 1e6
    assert DraftConfig.from_dict(body).rope_theta == 10000.0
    with pytest.raises(ValueError, match="rope_type 'llama3' is not supported"):
        DraftConfig.from_dict({**body, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "rope_theta": 5e5}})


def test_embedding_is_frozen_and_never_saved():
    model = tiny_draft()
    assert "embed_tokens" not in model.state_dict()
    assert all("embed" not in n for n, _ in model.named_parameters())
    assert not model.embed(torch.tensor([[1, 2, 3]])).requires_grad


def test_flash_kernel_without_native_grouped_query_support_expands_heads(monkeypatch):
    from eaglet_engine import kernels

    monkeypatch.setitem(kernels._NATIVE_GQA, "cpu", False)
    q, keys, values, grad = _inputs(3, torch.float64)
    ref = _run(eager_ttt_attention, q, keys, values, grad)
    got = _run(flash_ttt_attention, q, keys, values, grad)
    for a, b in zip(got, ref):
        assert ((a - b).norm() / b.norm()).item() < 1e-12
