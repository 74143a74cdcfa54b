"""The generic text-only causal-LM adapter: a transformers ``*ForCausalLM`` checkpoint whose
decoder (``get_decoder()``) holds its layers as ``.layers``. It names no family and holds no draft
defaults; a target plugin subclasses it (its own module's ``load_target`` returns the subclass) and
overrides what its family does differently (e.g. media inputs, where the decoder sits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..config import EngineTarget
from ..errors import EngineError
from . import TargetInfo, compile_layers


class CausalLMTarget:
    """A loaded, frozen target. ``decoder`` is the model's text decoder; subclasses pass another
    when the text decoder sits elsewhere (e.g. inside a multimodal wrapper)."""

    def __init__(self, model: nn.Module, target: EngineTarget, decoder: nn.Module | None = None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.decoder = decoder if decoder is not None else model.get_decoder()
        self.layers: nn.ModuleList = self.decoder.layers
        weight = self.embedding_weight()
        self.info = TargetInfo(
            architecture=target.architecture,
            num_layers=len(self.layers),
            hidden_size=int(weight.shape[1]),
            vocab_size=int(self.lm_head_weight().shape[0]),
            audio_token_id=target.audio_token_id,
        )

    def embedding_weight(self) -> Tensor:
        return self.model.get_input_embeddings().weight

    def lm_head_weight(self) -> Tensor:
        return self.model.get_output_embeddings().weight

    def media_inputs(self, clips: Sequence[Any], device: torch.device) -> dict[str, Tensor]:  # noqa: ARG002 - no media
        if clips:
            raise EngineError(f"target {self.info.architecture} takes no audio", code="EAGLET_BAD_REQUEST")
        return {}

    def input_embeddings(self, input_ids: Tensor, media: dict[str, Tensor]) -> Tensor:  # noqa: ARG002 - no media
        return self.model.get_input_embeddings()(input_ids)

    def fuse(self) -> None:
        compile_layers(self.layers)
        # The final norm too: eager, its five passes over [T, hidden] took 0.25 ms of the 7B
        # step on an H200, the one elementwise work of the forward left outside a compiled layer.
        norm = getattr(self.decoder, "norm", None)
        if isinstance(norm, nn.Module):
            norm.forward = torch.compile(norm.forward, dynamic=True)


def load_pretrained(cls: Any, target: EngineTarget, *, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """``cls.from_pretrained`` on the target's local folder (no hub), with SDPA attention, on ``device``."""
    return cls.from_pretrained(target.model, dtype=dtype, attn_implementation="sdpa", local_files_only=True).to(device)


def load_target(target: EngineTarget, *, device: torch.device, dtype: torch.dtype) -> CausalLMTarget:
    from transformers import AutoModelForCausalLM

    return CausalLMTarget(load_pretrained(AutoModelForCausalLM, target, device=device, dtype=dtype), target)
