"""Generation on a tiny random Qwen2-Audio: cached vs uncached target, speculative greedy output
equal to the baseline token for token, vLLM-style counters, audio prompts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eaglet_engine.generate.draft import DraftRunner
from eaglet_engine.generate.sampling import verify_greedy
from eaglet_engine.generate.speculative import GenerationParams, Generator
from eaglet_engine.generate.target import TargetRunner

from .tiny_models import AUDIO_TOKEN, qwen2_audio_adapter, tiny_qwen2_audio, write_random_draft

AUX = (2, 3, 4)  # vLLM's numbering: the states after 2, 3 and 4 of the 4 layers


@pytest.fixture(scope="module")
def model():
    return tiny_qwen2_audio()


@pytest.fixture(scope="module")
def target(model):
    return TargetRunner(qwen2_audio_adapter(model, AUX), AUX)


@pytest.fixture(scope="module")
def draft(model, target, tmp_path_factory):
    folder = write_random_draft(tmp_path_factory.mktemp("draft"), model, list(AUX), draft_vocab=48)
    return DraftRunner.from_folder(folder, target.adapter.embedding_weight(), device="cpu", dtype=torch.float32)


def prompt(seed: int, n: int = 12, vocab: int = 64) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return [int(x) for x in torch.randint(0, AUDIO_TOKEN, (n,), generator=g)]


def test_cached_target_equals_uncached(model, target):
    ids = prompt(0, 20)
    target.reset()
    step = target.forward(ids[:12])
    logits = [step.logits]
    for t in ids[12:]:
        logits.append(target.forward([t]).logits)
    cached = torch.cat(logits)
    full = model(input_ids=torch.tensor([ids])).logits[0].float()
    torch.testing.assert_close(cached, full, rtol=1e-4, atol=1e-4)


def test_taps_are_the_aux_layer_states_in_vllm_numbering(model, target):
    ids = prompt(1, 10)
    target.reset()
    step = target.forward(ids)
    hs = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    expected = torch.cat([hs[k][0] for k in (2, 3)], -1)  # aux id k: the state after k layers (not the last: HF norms it)
    torch.testing.assert_close(step.taps[:, : 2 * 64], expected, rtol=1e-5, atol=1e-5)


def test_draft_cache_rollback_equals_fresh_run(model, target, draft):
    """Chain positions written then cropped leave the draft exactly as if they had never run."""
    ids = torch.tensor(prompt(2, 9))
    hidden = draft.fuse(torch.randn(9, 3 * 64))
    draft.reset()
    out_a, logits_a = draft.step(ids, hidden, start=0)
    draft.reset()
    draft.step(ids[:5], hidden[:5], start=0)
    draft.step(ids[5:6], hidden[5:6] * 3, start=5)  # a speculative position, then rolled back
    draft.cache.crop(5)
    out_b, logits_b = draft.step(ids[5:], hidden[5:], start=5)
    torch.testing.assert_close(logits_b, logits_a[5:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_b, out_a[5:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_speculative_greedy_equals_baseline(target, draft, n):
    gen = Generator(target, draft, num_spec_tokens=n)
    accepted = 0
    for seed in range(4):
        p = prompt(10 + seed)
        params = GenerationParams(max_tokens=40, stop_token_ids=[])
        base = gen.generate(p, None, params)
        spec = gen.generate(p, None, GenerationParams(max_tokens=40, speculative=True))
        assert spec.output_ids == base.output_ids, f"prompt {seed}"
        assert len(base.output_ids) == 40 and base.finish_reason == "length"
        c = spec.counters
        assert c.num_draft_tokens == n * c.num_drafts
        assert sum(c.accepted_per_position) == c.num_accepted_tokens
        assert all(a >= b for a, b in zip(c.accepted_per_position, c.accepted_per_position[1:]))
        # every verification emits accepted + 1 tokens; the first token comes from prefill
        assert c.num_accepted_tokens + c.num_drafts >= 39
        assert spec.target_steps == 1 + c.num_drafts
        accepted += c.num_accepted_tokens
    assert accepted > 0, "the random draft never matched: the accepted path went untested"


def test_stop_token_and_audio_prompt(model, target, draft):
    # An audio prompt: one <|AUDIO|> per encoder frame of a 2 s clip, as the processor expands it.
    pcm = (np.sin(np.linspace(0, 2000, 32000)) * 0.1).astype(np.float32)
    feats = target.media([pcm])
    n_audio = int(model.model.audio_tower._get_feat_extract_output_lengths(feats["feature_attention_mask"].sum(-1))[1].item())
    ids = prompt(3, 5) + [AUDIO_TOKEN] * n_audio + prompt(4, 4)
    gen = Generator(target, draft, num_spec_tokens=2)
    base = gen.generate(ids, [pcm], GenerationParams(max_tokens=30))
    spec = gen.generate(ids, [pcm], GenerationParams(max_tokens=30, speculative=True))
    assert spec.output_ids == base.output_ids
    # The audio changes the answer (the encoder output reaches the decoder).
    silent = gen.generate(ids, [np.zeros_like(pcm)], GenerationParams(max_tokens=30))
    assert silent.output_ids != base.output_ids
    stop = base.output_ids[7]
    cut = gen.generate(ids, [pcm], GenerationParams(max_tokens=30, stop_token_ids=[stop], speculative=True))
    first = base.output_ids.index(stop)
    assert cut.output_ids == base.output_ids[: first + 1] and cut.finish_reason == "stop"


def test_verify_greedy_counts_the_accepted_prefix():
    logits = torch.full((4, 10), -1.0)
    for i, t in enumerate([3, 5, 7, 9]):
        logits[i, t] = 1.0
    assert verify_greedy([3, 5, 1], logits).tokens == [3, 5, 7]
    assert verify_greedy([3, 5, 7], logits).accepted == 3
    assert verify_greedy([3, 5, 7], logits).tokens == [3, 5, 7, 9]
    assert verify_greedy([4, 5, 7], logits).tokens == [3]
