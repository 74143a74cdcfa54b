"""A draft whose proposals are scripted by position, for benchmarks and tests of the fast path.

Random weights accept nothing, so the speedup of speculative decoding at a given acceptance cannot
be measured with them directly. `ScriptedDraft` wraps a real `StaticDraft` (it still runs every
draft step, so the timing is the real draft's) but proposes, for target position p, the token
`script[p]`: the target's own greedy continuation where a position should be accepted and another
token where it should be rejected (`script_for`). Greedy decoding only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .static_draft import StaticDraft


class ScriptedDraft:
    def __init__(self, draft: StaticDraft) -> None:
        self.inner = draft
        self.script = torch.zeros(draft.cache.capacity, dtype=torch.long, device=draft.device)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def set_script(self, script: Tensor) -> None:
        """In place, so graphs captured with this draft follow the new script."""
        self.script.copy_(script)

    def propose(self, logits: Tensor, position: Tensor, greedy: bool, temperature: Tensor, top_p: Tensor, u: Tensor) -> tuple[Tensor, Tensor | None]:
        if not greedy:
            raise ValueError("a scripted draft proposes for greedy decoding only")
        self.inner.propose(logits, position, greedy, temperature, top_p, u)  # the real draft's work, discarded
        return self.script.index_select(0, position), None


def script_for(prompt_len: int, continuation: list[int], accept: Tensor, capacity: int, vocab_size: int) -> Tensor:
    """The script for a prompt of `prompt_len` tokens whose greedy continuation is `continuation`:
    position prompt_len + i proposes continuation[i] where accept[i], else a different token."""
    script = torch.zeros(capacity, dtype=torch.long)
    right = torch.as_tensor(continuation, dtype=torch.long)
    n = len(continuation)
    script[prompt_len : prompt_len + n] = torch.where(accept[:n].bool(), right, (right + 1) % vocab_size)
    return script
