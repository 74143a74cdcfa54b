"""Token distributions and verification of draft tokens.

Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): a draft token d drawn from the
draft distribution q is accepted with probability min(1, p(d) / q(d)), where p is the target's
distribution at the same prefix; on rejection the token is drawn from norm(max(0, p - q)). Each
emitted token is then distributed exactly as p. At temperature 0 both distributions are one-hot
on the argmax, which reduces the rule to "accept while the draft equals the target's argmax".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def probabilities(logits: torch.Tensor, temperature: float, top_p: float = 1.0) -> torch.Tensor:
    """softmax(logits / T) over the last dim, restricted to the top-p nucleus (renormalised), fp32."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # Keep the smallest prefix whose mass reaches top_p (the token crossing it included).
        keep_sorted = (sorted_p.cumsum(-1) - sorted_p) < top_p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample(probs: torch.Tensor, generator: torch.Generator | None) -> int:
    return int(torch.multinomial(probs, 1, generator=generator).item())


@dataclass
class Verification:
    """Outcome of verifying a chain of draft tokens against the target."""

    accepted: int
    """Length of the accepted prefix of the draft chain."""
    tokens: list[int]
    """Tokens emitted this step: the accepted draft tokens, then the bonus (or correction) token."""


def verify_greedy(draft_tokens: list[int], target_logits: torch.Tensor) -> Verification:
    """target_logits: [N+1, V]; row i is the target's prediction after draft tokens 0..i-1."""
    target = target_logits.argmax(dim=-1).tolist()
    a = 0
    while a < len(draft_tokens) and draft_tokens[a] == target[a]:
        a += 1
    return Verification(a, draft_tokens[:a] + [target[a]])


def verify_sampling(
    draft_tokens: list[int],
    draft_probs: torch.Tensor,
    target_probs: torch.Tensor,
    generator: torch.Generator | None,
) -> Verification:
    """The rejection rule. draft_probs: [N, V] (q at each draft position, over the target
    vocabulary); target_probs: [N+1, V] (p at each position, the last one for the bonus token)."""
    for i, d in enumerate(draft_tokens):
        p, q = target_probs[i, d].item(), draft_probs[i, d].item()
        u = torch.rand((), generator=generator, device=target_probs.device).item()
        if q > 0 and u * q <= p:  # accept with probability min(1, p/q)
            continue
        residual = (target_probs[i] - draft_probs[i]).clamp_min(0)
        total = residual.sum()
        # p == q exactly leaves no residual mass (then rejection has probability 0 anyway).
        token = sample(residual / total if total > 0 else target_probs[i], generator)
        return Verification(i, draft_tokens[:i] + [token])
    return Verification(len(draft_tokens), draft_tokens + [sample(target_probs[-1], generator)])
