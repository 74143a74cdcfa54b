"""The speculative sampler's output distribution equals the target's (chi-square tests), at the
level of one verification and end to end on a tiny random Qwen2-Audio with a random draft."""

from __future__ import annotations

import pytest
import torch

from eaglet_engine.generate.draft import DraftRunner
from eaglet_engine.generate.sampling import probabilities, verify_sampling
from eaglet_engine.generate.speculative import GenerationParams, Generator
from eaglet_engine.generate.target import TargetRunner
from .tiny_models import qwen2_audio_adapter, tiny_qwen2_audio, write_random_draft

ALPHA = 1e-3  # seeded, so deterministic; a correct sampler passes at any fixed seed with prob 1 - ALPHA


def chi_square_p(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson's test of observed counts against expected probabilities; bins expecting < 5 are pooled."""
    n = counts.sum()
    expected = probs.double() * n
    small = expected < 5
    obs = torch.cat([counts[~small].double(), counts[small].double().sum().reshape(1)])
    exp = torch.cat([expected[~small], expected[small].sum().reshape(1)])
    keep = exp > 0
    obs, exp = obs[keep], exp[keep]
    stat = ((obs - exp) ** 2 / exp).sum()
    dof = obs.numel() - 1
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.double), stat / 2))


def test_rejection_rule_matches_target_and_catches_a_naive_sampler():
    g = torch.Generator().manual_seed(0)
    V = 12
    p = torch.softmax(torch.randn(2, V, generator=g) * 1.5, -1)  # target at the draft position and the bonus one
    q = torch.softmax(torch.randn(1, V, generator=g) * 1.5, -1)
    q[0, 3] = 0.0  # a token the draft can never propose
    q = q / q.sum()
    counts = torch.zeros(V)
    naive = torch.zeros(V)
    accepted = 0
    for _ in range(20000):
        d = int(torch.multinomial(q[0], 1, generator=g))
        v = verify_sampling([d], q, p, g)
        counts[v.tokens[0]] += 1
        accepted += v.accepted
        naive[d] += 1  # "always accept the draft": distributed as q
    assert chi_square_p(counts, p[0]) > ALPHA
    assert chi_square_p(naive, p[0]) < 1e-12, "the test cannot tell q from p: it proves nothing"
    # acceptance probability is sum(min(p, q))
    expected_accept = torch.minimum(p[0], q[0]).sum().item()
    assert abs(accepted / 20000 - expected_accept) < 0.02


def test_top_p_keeps_the_nucleus():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    probs = probabilities(logits, 1.0, top_p=0.8)
    torch.testing.assert_close(probs, torch.tensor([0.625, 0.375, 0.0, 0.0]))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model = tiny_qwen2_audio(vocab=16, seed=3)
    with torch.no_grad():
        model.lm_head.weight.mul_(0.15)  # flatter target: many tokens carry mass
    aux = (1, 2, 3)
    target = TargetRunner(qwen2_audio_adapter(model, aux), aux)
    folder = write_random_draft(tmp_path_factory.mktemp("draft"), model, list(aux), draft_vocab=12, seed=5)
    draft = DraftRunner.from_folder(folder, target.adapter.embedding_weight(), device="cpu", dtype=torch.float32)
    return model, target, draft


def exact_marginals(model, prompt: list[int], T: float) -> tuple[torch.Tensor, torch.Tensor]:
    """P(x2) and P(x3) under the target alone, by enumerating x1 (and x2)."""
    V = 16
    with torch.no_grad():
        p1 = torch.softmax(model(input_ids=torch.tensor([prompt])).logits[0, -1] / T, -1)
        x1 = torch.arange(V)[:, None]
        ids2 = torch.cat([torch.tensor(prompt).expand(V, -1), x1], 1)
        p2 = torch.softmax(model(input_ids=ids2).logits[:, -1] / T, -1)  # [x1, x2]
        pairs = torch.cartesian_prod(torch.arange(V), torch.arange(V))
        ids3 = torch.cat([torch.tensor(prompt).expand(V * V, -1), pairs], 1)
        p3 = torch.softmax(model(input_ids=ids3).logits[:, -1] / T, -1).reshape(V, V, V)
    joint12 = p1[:, None] * p2
    return joint12.sum(0), (joint12[:, :, None] * p3).sum((0, 1))


def test_speculative_sampling_matches_target_distribution(setup):
    model, target, draft = setup
    prompt = [1, 5, 7, 2, 9, 4]
    T = 1.0
    m2, m3 = exact_marginals(model, prompt, T)
    gen = Generator(target, draft, num_spec_tokens=2)
    c2, c3 = torch.zeros(16), torch.zeros(16)
    drafts = accepted = 0
    for i in range(1000):
        out = gen.generate(prompt, None, GenerationParams(max_tokens=3, temperature=T, seed=i, speculative=True))
        c2[out.output_ids[1]] += 1
        c3[out.output_ids[2]] += 1
        drafts += out.counters.num_draft_tokens
        accepted += out.counters.num_accepted_tokens
    assert 0 < accepted < drafts  # both the accept and the reject paths ran
    assert chi_square_p(c2, m2) > ALPHA
    assert chi_square_p(c3, m3) > ALPHA
