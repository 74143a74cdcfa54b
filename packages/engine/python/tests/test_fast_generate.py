"""The fast decode path (static caches, verification on the device) on CPU, without graph capture:
token for token equal to the eager Generator and to transformers' generate(), the draft's
acceptance path exercised with a scripted draft, the sampler's output distributed as the target's,
and targets it cannot compute refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eaglet_engine.errors import EngineError
from eaglet_engine.generate.device_sampling import verify_greedy, verify_rejection
from eaglet_engine.generate.draft import DraftRunner
from eaglet_engine.generate.fast import FastGenerator, build_fast_generator
from eaglet_engine.generate.scripted_draft import ScriptedDraft, script_for
from eaglet_engine.generate.speculative import GenerationParams, Generator
from eaglet_engine.generate.static_cache import bucket_for, kv_buckets
from eaglet_engine.generate.static_target import FastPathUnsupported, StaticTarget
from eaglet_engine.generate.target import TargetRunner

from .test_speculative_sampling import chi_square_p, exact_marginals
from .tiny_models import AUDIO_TOKEN, qwen2_audio_adapter, tiny_qwen2_audio, write_random_draft

ALPHA = 1e-3
AUX = (2, 3, 4)  # vLLM's numbering: the states after 2, 3 and 4 of the 4 layers


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model = tiny_qwen2_audio()
    target = TargetRunner(qwen2_audio_adapter(model, AUX), AUX)
    folder = write_random_draft(tmp_path_factory.mktemp("draft"), model, list(AUX), draft_vocab=48)
    draft = DraftRunner.from_folder(folder, target.adapter.embedding_weight(), device="cpu", dtype=torch.float32)
    # The fast path's weights become views of fused ones: build it before the eager reference runs,
    # so the reference also runs on them (as it does in a worker).
    fast = build_fast_generator(target.adapter, AUX, draft.model, 3, 512, graphs=False, compile=False)
    return model, target, draft, fast


def prompt(seed: int, n: int = 12) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return [int(x) for x in torch.randint(0, AUDIO_TOKEN, (n,), generator=g)]


def test_kv_buckets_cover_max_len_and_pick_the_smallest():
    assert kv_buckets(16384) == [256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384]
    assert kv_buckets(1000) == [256, 384, 512, 768, 1024]
    assert kv_buckets(100) == [128]
    assert bucket_for([256, 384], 256) == 256 and bucket_for([256, 384], 257) == 384
    with pytest.raises(ValueError, match="384"):
        bucket_for([256, 384], 385)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_fast_greedy_equals_eager_and_transformers_generate(setup, n):
    model, target, draft, fast = setup
    gen = Generator(target, draft, num_spec_tokens=n)
    fast_n = FastGenerator(fast.adapter, fast.target, fast.draft, n, 512, graphs=False)
    for seed in range(3):
        p = prompt(10 + seed)
        eager = gen.generate(p, None, GenerationParams(max_tokens=40))
        eager_spec = gen.generate(p, None, GenerationParams(max_tokens=40, speculative=True))
        base = fast_n.generate(p, None, GenerationParams(max_tokens=40))
        spec = fast_n.generate(p, None, GenerationParams(max_tokens=40, speculative=True))
        hf = model.generate(torch.tensor([p]), max_new_tokens=40, do_sample=False)[0, len(p) :].tolist()
        assert base.output_ids == eager.output_ids == hf, f"prompt {seed}"
        assert spec.output_ids == hf, f"prompt {seed}"
        # The same draft proposals and verdicts as the eager loop, step by step.
        assert spec.counters.to_json() == eager_spec.counters.to_json()
        assert spec.target_steps == eager_spec.target_steps and base.target_steps == 40


def test_fast_audio_prompt_equals_eager_and_generate(setup):
    model, target, draft, fast = setup
    pcm = (np.sin(np.linspace(0, 2000, 32000)) * 0.1).astype(np.float32)
    feats = target.media([pcm])
    n_audio = int(model.model.audio_tower._get_feat_extract_output_lengths(feats["feature_attention_mask"].sum(-1))[1].item())
    ids = prompt(3, 5) + [AUDIO_TOKEN] * n_audio + prompt(4, 4)
    gen = Generator(target, draft, num_spec_tokens=3)
    eager = gen.generate(ids, [pcm], GenerationParams(max_tokens=30))
    base = fast.generate(ids, [pcm], GenerationParams(max_tokens=30))
    spec = fast.generate(ids, [pcm], GenerationParams(max_tokens=30, speculative=True))
    hf = model.generate(input_ids=torch.tensor([ids]), **feats, max_new_tokens=30, do_sample=False)[0, len(ids) :].tolist()
    assert base.output_ids == eager.output_ids == spec.output_ids == hf
    silent = fast.generate(ids, [np.zeros_like(pcm)], GenerationParams(max_tokens=30))
    assert silent.output_ids != base.output_ids  # the audio reaches the decoder
    stop = base.output_ids[7]
    cut = fast.generate(ids, [pcm], GenerationParams(max_tokens=30, stop_token_ids=[stop], speculative=True))
    assert cut.output_ids == base.output_ids[: base.output_ids.index(stop) + 1] and cut.finish_reason == "stop"


@pytest.mark.parametrize("accept_every", [1, 2, 3])
def test_scripted_draft_drives_acceptance_and_keeps_the_output(setup, accept_every):
    """Proposals scripted from the target's own continuation: everything accepted (tau = N + 1),
    or a rejection every few positions; the output never changes, the rollback is exact."""
    _, _, _, fast = setup
    scripted = ScriptedDraft(fast.draft)
    gen = FastGenerator(fast.adapter, fast.target, scripted, 3, 512, graphs=False)
    p = prompt(20)
    truth = gen.generate(p, None, GenerationParams(max_tokens=60)).output_ids
    accept = torch.tensor([(i % accept_every) != accept_every - 1 or accept_every == 1 for i in range(len(truth))])
    scripted.set_script(script_for(len(p), truth, accept, scripted.cache.capacity, 64))
    spec = gen.generate(p, None, GenerationParams(max_tokens=60, speculative=True))
    assert spec.output_ids == truth
    c = spec.counters
    if accept_every == 1:  # 1 token from prefill, then 4 per verification
        assert c.num_drafts == 15 and c.accepted_per_position == [15, 15, 15]
    else:
        assert 0 < c.num_accepted_tokens < 3 * c.num_drafts
        assert c.accepted_per_position[accept_every - 1 :] == [0] * (3 - accept_every + 1)


def test_device_verification_matches_the_rules():
    logits = torch.full((4, 10), -1.0)
    for i, t in enumerate([3, 5, 7, 9]):
        logits[i, t] = 1.0
    for drafts, accepted in (([3, 5, 1], 2), ([3, 5, 7], 3), ([4, 5, 7], 0)):
        a, emitted = verify_greedy(torch.tensor(drafts), logits)
        assert a.item() == accepted and emitted[: accepted + 1].tolist() == [3, 5, 7, 9][: accepted + 1]
    # The rejection rule, one position: emitted tokens distributed as p, acceptance sum(min(p, q)).
    g = torch.Generator().manual_seed(0)
    V = 12
    p = torch.softmax(torch.randn(2, V, generator=g) * 1.5, -1)
    q = torch.softmax(torch.randn(1, V, generator=g) * 1.5, -1)
    q[0, 3] = 0.0
    q = q / q.sum()
    trials = 20000
    drafts = torch.multinomial(q[0], trials, replacement=True, generator=g)
    u = torch.rand(trials, 2, generator=g)
    counts, accepted = torch.zeros(V), 0
    for i in range(trials):
        a, emitted = verify_rejection(drafts[i : i + 1], q, p, u[i, :1], u[i, 1:])
        counts[emitted[0]] += 1  # the draft when accepted, else the resampled token
        accepted += a.item()
    assert chi_square_p(counts, p[0]) > ALPHA
    assert abs(accepted / trials - torch.minimum(p[0], q[0]).sum().item()) < 0.02


def test_fast_sampling_matches_target_distribution(tmp_path):
    """The end-to-end distribution test of test_speculative_sampling, on the fast path."""
    model = tiny_qwen2_audio(vocab=16, seed=3)
    with torch.no_grad():
        model.lm_head.weight.mul_(0.15)
    aux = (1, 2, 3)
    target = TargetRunner(qwen2_audio_adapter(model, aux), aux)
    folder = write_random_draft(tmp_path / "draft", model, list(aux), draft_vocab=12, seed=5)
    draft = DraftRunner.from_folder(folder, target.adapter.embedding_weight(), device="cpu", dtype=torch.float32)
    fast = build_fast_generator(target.adapter, aux, draft.model, 2, 64, graphs=False, compile=False)
    prompt_ids = [1, 5, 7, 2, 9, 4]
    m2, m3 = exact_marginals(model, prompt_ids, 1.0)
    c2, c3 = torch.zeros(16), torch.zeros(16)
    drafts = accepted = 0
    for i in range(1000):
        out = fast.generate(prompt_ids, None, GenerationParams(max_tokens=3, temperature=1.0, seed=i, speculative=True))
        c2[out.output_ids[1]] += 1
        c3[out.output_ids[2]] += 1
        drafts += out.counters.num_draft_tokens
        accepted += out.counters.num_accepted_tokens
    assert 0 < accepted < drafts  # both the accept and the reject paths ran
    assert chi_square_p(c2, m2) > ALPHA
    assert chi_square_p(c3, m3) > ALPHA


def test_prompt_longer_than_the_caches_is_refused(setup):
    _, _, _, fast = setup
    with pytest.raises(EngineError, match="512.*maxModelLen") as e:
        fast.generate([1] * 512, None, GenerationParams(max_tokens=4))
    assert e.value.code == "EAGLET_PROMPT_TOO_LONG"


def test_a_decoder_of_another_layout_is_refused():
    model = tiny_qwen2_audio(seed=1)
    decoder = model.model.language_model
    lm_head = model.lm_head.weight
    decoder.layers[2].mlp.act_fn = torch.nn.GELU()
    with pytest.raises(FastPathUnsupported, match="layer 2's MLP activation"):
        StaticTarget(decoder, lm_head, [2, 3, 4], 256)
    decoder.layers[2].mlp.act_fn = torch.nn.SiLU()
    decoder.layers[1].self_attn.q_norm = torch.nn.LayerNorm(16)
    with pytest.raises(FastPathUnsupported, match="extra parts"):
        StaticTarget(decoder, lm_head, [2, 3, 4], 256)
    del decoder.layers[1].self_attn.q_norm
    # A difference the layout checks cannot see shows in the comparison with the decoder's forward.
    layer = decoder.layers[3]
    own = layer.forward
    layer.forward = lambda *args, **kwargs: own(*args, **kwargs) * 1.5
    with pytest.raises(FastPathUnsupported, match="differs from the decoder's own"):
        StaticTarget(decoder, lm_head, [2, 3, 4], 256)
    del layer.forward
    assert StaticTarget(decoder, lm_head, [2, 3, 4], 256).num_layers == 4
