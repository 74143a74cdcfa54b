"""Comparing a greedy output with a reference one (transformers' generate()) in reduced precision.

Two implementations of the same bf16 model (other kernels, other fusion, other summation order)
compute logits that differ by a little noise, and where two tokens' logits are closer than that
noise, each implementation may pick another one. A divergence is explained as such a tie when,
at the step where the outputs part (same prefix before it), the reference's margin between its
token and ours is within `TIE_SIGMAS` times the RMS difference of the two logit rows.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .speculative import GenerationParams
from .static_cache import bucket_for

TIE_SIGMAS = 3.0


def greedy_parity(ours: list[int], reference: list[int], reference_logits: Tensor, our_logits: Callable[[int], Tensor] | None = None) -> dict:
    """reference_logits [steps, V]: the reference's logits at each of its steps; our_logits(step):
    ours at that step (same prefix). Returns the common prefix and, at the first divergence, the
    margins, the logit noise between the two, and whether it is a tie."""
    n = min(len(ours), len(reference))
    same = next((i for i in range(n) if ours[i] != reference[i]), n)
    out = {"compared": n, "equalPrefix": same, "equal": same == n}
    if same < n:
        row = reference_logits[same].float().cpu()
        theirs, mine = reference[same], ours[same]
        div = {"step": same, "referenceToken": theirs, "ourToken": mine, "referenceMargin": (row[theirs] - row[mine]).item()}
        if our_logits is not None:
            own = our_logits(same).float().cpu()
            noise = (own - row).pow(2).mean().sqrt().item()
            div.update(ourMargin=(own[mine] - own[theirs]).item(), logitNoiseRms=noise, tie=div["referenceMargin"] <= TIE_SIGMAS * noise)
        out["divergence"] = div
    return out


@torch.inference_mode()
def fast_logits_at(gen, prompt_ids: list[int], audio, step: int) -> Tensor:
    """The fast path's logits [V] for output token `step` of its greedy decode of the prompt
    (the prefill's for step 0, else the decode step's after its first `step` tokens)."""
    if step == 0:
        ids = torch.as_tensor(prompt_ids, device=gen.device)
        media = gen.adapter.media_inputs(audio, gen.device) if audio else {}
        embeds = gen.adapter.input_embeddings(ids[None], media)[0]
        h, _ = gen.target.forward(embeds, torch.arange(len(prompt_ids), device=gen.device), None)
        return gen.target.logits(h[-1:])[0]
    gen.generate(prompt_ids, audio, GenerationParams(max_tokens=step))
    h, _ = gen.target.forward(gen.target.embed(gen.pending), gen.pos, bucket_for(gen.buckets, len(prompt_ids) + step))
    return gen.target.logits(h)[0]
