"""Sampling and draft verification as tensor operations on the device, with no host sync.

The same rules as `sampling.py` (greedy: accept while the draft equals the target's argmax;
sampling: the rejection rule of Leviathan et al. and Chen et al.), vectorised over the whole chain
so that a verification is a fixed sequence of kernels a CUDA graph can hold. Random numbers come
in as uniforms drawn before the step (`u`), so a captured graph holds no generator state and any
seed or generator can drive it. Temperature and top-p are 0-d tensors for the same reason.
"""

from __future__ import annotations

import torch
from torch import Tensor


def probabilities(logits: Tensor, temperature: Tensor, top_p: Tensor) -> Tensor:
    """softmax(logits / T) over the last dim, restricted to the top-p nucleus (renormalised), fp32.
    `sampling.probabilities` with tensor parameters; top_p >= 1 keeps every token."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    # Keep the smallest prefix whose mass reaches top_p (the token crossing it included).
    keep_sorted = ((sorted_p.cumsum(-1) - sorted_p) < top_p) | (top_p >= 1)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    probs = torch.where(keep, probs, torch.zeros_like(probs))
    return probs / probs.sum(-1, keepdim=True)


def sample(probs: Tensor, u: Tensor) -> Tensor:
    """One token per row of probs [R, V] by inverting its CDF at the uniforms u [R]."""
    cdf = probs.cumsum(-1)
    index = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True)[:, 0]
    return index.clamp_max(probs.shape[-1] - 1)


def pick(logits: Tensor, greedy: bool, temperature: Tensor, top_p: Tensor, u: Tensor) -> Tensor:
    """The target's token after each row of logits [R, V]: argmax, or a sample."""
    if greedy:
        return logits.argmax(-1)
    return sample(probabilities(logits, temperature, top_p), u)


def verify_greedy(drafts: Tensor, target_logits: Tensor) -> tuple[Tensor, Tensor]:
    """drafts [N]; target_logits [N+1, V] (row i: the target after draft tokens 0..i-1).
    Returns (accepted [1], emitted [N+1]): emitted[:accepted+1] are this step's tokens, the
    accepted drafts then the target's own token (correction or bonus)."""
    target = target_logits.argmax(-1)
    accepted = (drafts == target[:-1]).long().cumprod(0).sum().view(1)
    return accepted, target  # where the draft was accepted it equals the target's token


def verify_rejection(drafts: Tensor, draft_probs: Tensor, target_probs: Tensor, u_accept: Tensor, u_final: Tensor) -> tuple[Tensor, Tensor]:
    """The rejection rule over a chain. draft_probs [N, V] (q at each draft position, over the
    target vocabulary); target_probs [N+1, V]; u_accept [N], u_final [1] uniforms. Draft i is
    accepted with probability min(1, p(d)/q(d)); at the first rejection the token is drawn from
    norm(max(0, p - q)), after a full acceptance from the last row of p (the bonus token)."""
    n = drafts.shape[0]
    rows = torch.arange(n, device=drafts.device)
    p = target_probs[rows, drafts]
    q = draft_probs[rows, drafts]
    ok = (q > 0) & (u_accept * q <= p)
    accepted = ok.long().cumprod(0).sum().view(1)
    residual = torch.cat([(target_probs[:n] - draft_probs).clamp_min(0), target_probs[n:]])
    r = residual.index_select(0, accepted)
    total = r.sum(-1, keepdim=True)
    # p == q exactly leaves no residual mass (then rejection has probability 0 anyway).
    r = torch.where(total > 0, r / total.clamp_min(torch.finfo(r.dtype).tiny), target_probs.index_select(0, accepted))
    token = sample(r, u_final)
    emitted = torch.cat([drafts, drafts.new_zeros(1)]).scatter(0, accepted, token)
    return accepted, emitted
