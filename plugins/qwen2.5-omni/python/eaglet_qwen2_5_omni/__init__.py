"""The engine side of eaglet's Qwen2.5-Omni target plugin (``TargetModel.engineAdapter``): the only
Python that knows Qwen2.5-Omni. Training and generation both go through it.

Loads the thinker (``Qwen2_5OmniThinkerForConditionalGeneration``; from the hub's whole-model
checkpoint transformers takes the ``thinker.`` weights and leaves the talker and token2wav) with
the Whisper feature extractor its folder describes (``preprocessor_config.json``, a 300 s window).
``media_inputs`` computes log-mel features as the processor does; ``input_embeddings`` runs the
thinker's audio encoder (``get_audio_features``) and puts its output at the ``<|AUDIO|>``
placeholders, as the thinker's forward does. The text decoder is the thinker's text model.

Positions: the thinker's text model uses 3-D multimodal rope (TMRoPE). For text and audio alone
(no image or video) the processor's rope index gives every token the next position in all three
sections, which is what the text model computes itself when given no position ids; so the
engine's generic decoder call is exact here and the adapter needs no position method (the parity
test compares it with the thinker's own forward on the processor's inputs).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from eaglet_engine.config import EngineTarget
from eaglet_engine.targets.audio_lm import AudioPlaceholderTarget, load_feature_extractor
from eaglet_engine.targets.causal_lm import load_pretrained


class Qwen25OmniTarget(AudioPlaceholderTarget):
    """A loaded Qwen2.5-Omni thinker. Build with ``load_target`` (from a folder) or directly from a
    thinker model and a feature extractor. Features, the placeholder merge and the batch check are
    the engine's (``AudioPlaceholderTarget``); this class knows the thinker's audio encoder."""

    placeholder = "<|AUDIO|>"

    def __init__(self, model: nn.Module, feature_extractor: Any, target: EngineTarget) -> None:
        self.body = model.model  # Qwen2_5OmniThinkerModel: audio tower, vision tower, text model
        super().__init__(model, feature_extractor, target, decoder=self.body.language_model)

    def audio_tokens(self, frames: Tensor) -> Tensor:
        """Placeholder tokens per clip from its real mel frames: the audio encoder's own formula."""
        return self.body.audio_tower._get_feat_extract_output_lengths(frames)[1]

    def audio_features(self, media: dict[str, Tensor]) -> Tensor:
        """The thinker's audio path: the encoder's output for each clip's real frames, in order."""
        tower = self.body.audio_tower
        features = media["input_features"].to(tower.device, next(tower.parameters()).dtype)
        return self.body.get_audio_features(features, media["feature_attention_mask"].to(tower.device), return_dict=True).last_hidden_state


def load_target(target: EngineTarget, *, device: torch.device, dtype: torch.dtype) -> Qwen25OmniTarget:
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    feature_extractor = load_feature_extractor(target.model, "Qwen2.5-Omni")
    model = load_pretrained(Qwen2_5OmniThinkerForConditionalGeneration, target, device=device, dtype=dtype)
    return Qwen25OmniTarget(model, feature_extractor, target)
