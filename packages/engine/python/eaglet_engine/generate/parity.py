"""Comparing a greedy output with a reference one (transformers' generate()) in reduced precision.

bf16 rounds logits to 8 significant bits, and two implementations of the same model (other kernels,
other fusion, other summation order) may then order two nearly equal logits differently. A
divergence is explained when, in the reference's own logits at that step, the token we chose is
within `TIE_ULPS` bf16 steps of the reference's choice: a tie at this precision, not a bug.
"""

from __future__ import annotations

import torch
from torch import Tensor

TIE_ULPS = 2


def greedy_parity(ours: list[int], reference: list[int], reference_logits: Tensor) -> dict:
    """reference_logits [steps, V]: the reference's logits at each of its steps. Returns the length
    of the common prefix and, at the first divergence, the logit margin and whether it is a tie."""
    n = min(len(ours), len(reference))
    same = next((i for i in range(n) if ours[i] != reference[i]), n)
    out = {"compared": n, "equalPrefix": same, "equal": same == n}
    if same < n:
        row = reference_logits[same].float()
        theirs, mine = row[reference[same]].item(), row[ours[same]].item()
        ulp = torch.finfo(torch.bfloat16).eps * abs(theirs)
        out["divergence"] = {
            "step": same,
            "referenceToken": reference[same],
            "ourToken": ours[same],
            "margin": theirs - mine,
            "bf16Ulp": ulp,
            "tie": theirs - mine <= TIE_ULPS * ulp,
        }
    return out
