"""The engine side of eaglet's Qwen2-Audio target plugin (``TargetModel.engineAdapter``): the only
Python that knows Qwen2-Audio. Training and generation both go through it.

Loads ``Qwen2AudioForConditionalGeneration`` through transformers (frozen, eval) with the Whisper
feature extractor its folder describes (``preprocessor_config.json``). ``media_inputs`` computes
log-mel features exactly as the processor does (the STFT on the given device);
``input_embeddings`` runs the audio encoder and puts its output at the ``<|AUDIO|>`` placeholders,
as ``Qwen2AudioModel.forward`` does for processor-expanded inputs. The text decoder is the inner
Qwen2 model. The draft sees the placeholder's own embedding at audio positions, as vLLM's Eagle3
drafter does (REFERENCE.md); the target sees the encoder's features there.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor, nn

from eaglet_engine.config import EngineTarget
from eaglet_engine.targets.audio_lm import AudioPlaceholderTarget, load_feature_extractor
from eaglet_engine.targets.causal_lm import load_pretrained

log = logging.getLogger(__name__)


class Qwen2AudioTarget(AudioPlaceholderTarget):
    """A loaded Qwen2-Audio target. Build with ``load_target`` (from a folder) or directly from a
    model object and a feature extractor (the benchmark builds random weights on the GPU).
    Features, the placeholder merge and the batch check are the engine's
    (``AudioPlaceholderTarget``); this class knows Qwen2-Audio's encoder."""

    placeholder = "<|AUDIO|>"

    def __init__(self, model: nn.Module, feature_extractor: Any, target: EngineTarget) -> None:
        self.body = model.model  # Qwen2AudioModel: audio tower, projector, language model
        super().__init__(model, feature_extractor, target, decoder=self.body.language_model)

    @property
    def tower(self) -> nn.Module:
        return self.body.audio_tower

    def audio_tokens(self, frames: Tensor) -> Tensor:
        """Placeholder tokens per clip from its real mel frames: transformers' own formula (the
        encoder's stride-2 convolution, then its pooling)."""
        return self.tower._get_feat_extract_output_lengths(frames)[1]

    def audio_features(self, media: dict[str, Tensor]) -> Tensor:
        """``Qwen2AudioModel.forward``'s audio path for processor-expanded ids: the encoder runs on
        the clips' real frames (a bidirectional mask over them), the projector maps its output to
        the text width, and each clip's real tokens are kept, in order."""
        from transformers.masking_utils import create_bidirectional_mask

        tower = self.tower
        features = media["input_features"].to(tower.device, next(tower.parameters()).dtype)
        frame_mask = media["feature_attention_mask"].to(tower.device)
        frames_after_conv, tokens = tower._get_feat_extract_output_lengths(frame_mask.sum(-1))
        clips, _, mel_frames = features.shape
        positions = (mel_frames - 2) // 2 + 1
        valid = torch.arange(positions, device=tower.device)[None, :] < frames_after_conv[:, None]
        mask = create_bidirectional_mask(
            config=tower.config,
            inputs_embeds=torch.zeros(clips, positions, 1, dtype=features.dtype, device=tower.device),
            attention_mask=valid.to(torch.long),
        )
        audio = self.body.multi_modal_projector(tower(features, attention_mask=mask).last_hidden_state)
        return audio[torch.arange(audio.shape[1], device=audio.device)[None, :] < tokens.to(audio.device)[:, None]]

    def fuse(self) -> None:
        """Compiles the text decoder layers (the bulk of the target's time) and the audio encoder."""
        super().fuse()
        self.fuse_media()

    def fuse_media(self) -> None:
        """Compiles the audio encoder (32 small layers on 1500 positions: eager, its kernel
        launches outlast its GPU work); the fast decode path's prefill uses it alone. A
        compilation failure falls back to eager with a warning."""
        tower = self.tower
        eager, compiled = tower.forward, torch.compile(tower.forward)

        def forward(*args: Any, **kwargs: Any) -> Any:
            try:
                return compiled(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - keep training on the eager encoder
                log.warning("compiling the audio encoder failed, using it eagerly: %s", e)
                tower.forward = eager
                return eager(*args, **kwargs)

        tower.forward = forward


def load_target(target: EngineTarget, *, device: torch.device, dtype: torch.dtype) -> Qwen2AudioTarget:
    from transformers import Qwen2AudioForConditionalGeneration

    feature_extractor = load_feature_extractor(target.model, "Qwen2-Audio")
    model = load_pretrained(Qwen2AudioForConditionalGeneration, target, device=device, dtype=dtype)
    return Qwen2AudioTarget(model, feature_extractor, target)
