"""The Eagle3 draft for generation: the trainer's own model (`eaglet_engine.draft`), loaded from
the folder `eaglet train` exports (the layout vLLM loads), run with its generation KV cache.

One draft position t reads (h_t, x_{t+1}): the target's fused hidden state at t (or, in later
chain steps, the draft's own previous output) and the embedding of the token after t, and predicts
token t+2, as in training (the trainer shifts ids, targets and masks the same way).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..draft import Eagle3Draft, KVCache
from ..export import load_draft


class DraftRunner:
    """The narrow draft interface (project, embed, step, logits) with a KV cache and positions."""

    def __init__(self, model: Eagle3Draft) -> None:
        self.model = model.eval().requires_grad_(False)
        cfg = model.config
        self.vocab_size = cfg.vocab_size
        self.draft_vocab_size = cfg.draft_vocab_size
        self.target_hidden_size = cfg.target_hidden_size or cfg.hidden_size
        self.d2t = model.d2t
        self.cache = KVCache()

    @classmethod
    def from_folder(cls, folder: str | Path, embedding: torch.Tensor, device, dtype) -> "DraftRunner":
        """The exported draft in ``folder``, sharing the target's embedding table [vocab, hidden]."""
        return cls(load_draft(folder, embedding=embedding, device=device, dtype=dtype))

    def draft_to_target(self, draft_ids: torch.Tensor) -> torch.Tensor:
        return self.model.to_target_ids(draft_ids)

    def reset(self) -> None:
        """An empty cache (it grows as positions come)."""
        self.cache = KVCache()

    def fuse(self, taps: torch.Tensor) -> torch.Tensor:
        """[k, 3 * target hidden] tapped target states -> [k, H] through `fc`."""
        return self.model.project(taps.to(self.model.fc.weight.dtype)[None])[0]

    @torch.inference_mode()
    def step(self, ids: torch.Tensor, hidden: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs positions start..start+k-1 after the cached ones. ids: [k] (tokens x_{t+1});
        hidden: [k, H]. Returns (output hidden [k, H] to feed back, logits [k, draft_vocab] fp32)."""
        if self.cache.length != start:
            raise RuntimeError(f"draft cache holds {self.cache.length} positions, asked to continue at {start}")
        k = ids.shape[0]
        positions = torch.arange(start, start + k, device=ids.device)[None]
        out = self.model.step(self.model.embed(ids[None]), hidden[None], positions, self.cache)
        return out[0], self.model.logits(out)[0]
