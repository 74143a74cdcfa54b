"""The Eagle3 draft on a static KV cache, for the fast path.

The draft runs its own code (`Eagle3Draft.step`, the trainer's model) with a `DraftCacheView` as
its cache, so the fast path and the eager `DraftRunner` compute the same function; only where the
keys live differs. `propose` turns the draft's logits into the chain's next token (a target id,
through the d2t mapping) on the device.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..draft import Eagle3Draft
from . import device_sampling
from .decode_compile import one_token_compiled
from .static_cache import DraftCacheView, StaticKVCache


class StaticDraft:
    def __init__(self, model: Eagle3Draft, capacity: int, compile: bool = False) -> None:
        self.model = model.eval().requires_grad_(False)
        cfg = model.config
        self.device, self.dtype = model.fc.weight.device, model.fc.weight.dtype
        self.vocab_size = cfg.vocab_size
        self.draft_vocab_size = cfg.draft_vocab_size
        self.hidden_size = cfg.hidden_size
        self.target_hidden_size = cfg.target_hidden_size or cfg.hidden_size
        self.cache = StaticKVCache(1, cfg.num_key_value_heads, cfg.head_dim, capacity, self.device, self.dtype)
        self.view = DraftCacheView(self.cache)
        # The target id of every draft-vocabulary entry (d2t).
        self.draft_ids = model.to_target_ids(torch.arange(cfg.draft_vocab_size, device=self.device))
        self.compiled = compile
        self._logits = model.logits
        if compile:
            model.fuse()
            layer = model.midlayer  # [1, T, H] inputs: the chain's one-token steps get autotuned kernels
            layer._attention_inputs = one_token_compiled(layer._attention_inputs, layer.attention_inputs, 1, self.device)
            layer._output = one_token_compiled(layer._output, layer.output, 1, self.device)
            self._logits = one_token_compiled(torch.compile(model.logits, dynamic=True), model.logits, 1, self.device)  # the final norm fused too

    def fuse(self, taps: Tensor) -> Tensor:
        """[T, 3 * target hidden] tapped target states -> [T, H] through `fc`."""
        return self.model.project(taps.to(self.dtype)[None])[0]

    def step(self, ids: Tensor, hidden: Tensor, positions: Tensor, bucket: int | None) -> tuple[Tensor, Tensor]:
        """Draft positions `positions` [T] reading tokens ids [T] (the token after each position)
        and hidden [T, H]. Returns (output hidden [T, H], logits [T, draft vocab] fp32)."""
        out = self.model.step(self.model.embed(ids[None]), hidden[None], positions[None], self.view.at(positions, bucket))
        return out[0], self._logits(out)[0]

    def propose(self, logits: Tensor, position: Tensor, greedy: bool, temperature: Tensor, top_p: Tensor, u: Tensor) -> tuple[Tensor, Tensor | None]:  # noqa: ARG002 - position: for wrappers that propose by position
        """The chain's token for target position `position` [1] from draft logits [1, draft vocab]:
        (target id [1], its distribution over the target vocabulary [1, V] when sampling)."""
        if greedy:
            return self.draft_ids[logits.argmax(-1)], None
        q = device_sampling.probabilities(logits, temperature, top_p)
        token = self.draft_ids[device_sampling.sample(q, u)]
        return token, q.new_zeros(1, self.vocab_size).index_copy_(1, self.draft_ids, q)
