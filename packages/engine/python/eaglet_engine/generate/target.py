"""The target model for generation: the target plugin's adapter (the same one training uses) run
with a KV cache.

Each call processes new tokens after what the cache holds and returns, for exactly those
positions, the next-token logits (fp32) and the aux layers' hidden states concatenated ([k, 3H]:
what the Eagle3 draft's `fc` reads). The model-specific parts (where the decoder and its layers
are, how audio becomes features and embeddings) are the adapter's; hooks, the decoder call, the
cache and the logits are generic and here.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import EngineError
from ..targets import AuxStates, TargetAdapter, check_aux_layer_ids


@dataclass
class TargetStep:
    logits: torch.Tensor
    """[k, V] fp32: row j predicts the token after the j-th processed position."""
    taps: torch.Tensor | None
    """[k, 3H]: the aux layers' hidden states at the processed positions."""


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise EngineError("device cuda was asked for but CUDA is not available", hint="use device cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class TargetRunner:
    """A target adapter with a KV cache and its aux layers hooked (vLLM's numbering)."""

    def __init__(self, adapter: TargetAdapter, aux_layer_ids: Sequence[int]) -> None:
        from transformers import DynamicCache

        self.adapter = adapter
        info = adapter.info
        self.num_layers = info.num_layers
        self.hidden_size = info.hidden_size
        self.vocab_size = info.vocab_size
        self.lm_head = adapter.lm_head_weight()
        self.device = self.lm_head.device
        self.dtype = self.lm_head.dtype
        self._cache_cls = DynamicCache
        # transformers releases name the decoder's cache argument differently.
        self._cache_kw = "cache" if "cache" in inspect.signature(adapter.decoder.forward).parameters else "past_key_values"
        self.cache = None
        self.aux_layer_ids = check_aux_layer_ids(aux_layer_ids, self.num_layers, "aux layer ids")
        self._aux = AuxStates(adapter.layers, self.aux_layer_ids)

    @property
    def length(self) -> int:
        """Tokens the KV cache holds."""
        return 0 if self.cache is None else self.cache.get_seq_length()

    def reset(self) -> None:
        self.cache = self._cache_cls()

    def crop(self, length: int) -> None:
        """Forgets every position from `length` on (rejected draft tokens)."""
        remove = self.length - length
        # A negative argument removes that many positions in every transformers release we support
        # (older ones read a positive one as the length to keep, newer ones refuse it).
        if remove > 0:
            self.cache.crop(-remove)

    def media(self, pcm: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """The adapter's media inputs for 16 kHz clips, on the model's device."""
        return {k: v.to(self.device) for k, v in self.adapter.media_inputs(pcm, self.device).items()}

    @torch.inference_mode()
    def forward(
        self, ids: list[int] | torch.Tensor, audio: list[np.ndarray] | None = None, logits_for: str = "all", want_taps: bool = True
    ) -> TargetStep:
        """Processes `ids` after the cached positions. `logits_for="last"` computes the head for the
        last position only (prefill); `want_taps=False` skips gathering the aux states (baseline)."""
        if self.cache is None:
            self.reset()
        input_ids = torch.as_tensor(ids, dtype=torch.long, device=self.device).reshape(1, -1)
        embeds = self.adapter.input_embeddings(input_ids, self.media(audio) if audio else {})
        out = self.adapter.decoder(inputs_embeds=embeds, use_cache=True, **{self._cache_kw: self.cache})
        hidden = out.last_hidden_state[0]
        if logits_for == "last":
            hidden = hidden[-1:]
        logits = F.linear(hidden, self.lm_head).float()
        # The draft needs every processed position's states, even when only the last logits are kept.
        states = self._aux.take()
        return TargetStep(logits=logits, taps=states[0] if want_taps else None)

    def close(self) -> None:
        self._aux.remove()
