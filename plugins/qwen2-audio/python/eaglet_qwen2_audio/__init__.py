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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from eaglet_engine.config import EngineTarget
from eaglet_engine.errors import EngineError
from eaglet_engine.targets import TargetBatch
from eaglet_engine.targets.causal_lm import CausalLMTarget, load_pretrained

log = logging.getLogger(__name__)


class Qwen2AudioTarget(CausalLMTarget):
    """A loaded Qwen2-Audio target. Build with ``load_target`` (from a folder) or directly from a
    model object and a feature extractor (the benchmark builds random weights on the GPU)."""

    def __init__(self, model: nn.Module, feature_extractor: Any, target: EngineTarget) -> None:
        self.body = model.model  # Qwen2AudioModel: audio tower, projector, language model
        super().__init__(model, target, decoder=self.body.language_model)
        self.fe = feature_extractor
        if target.audio_token_id is None:
            raise EngineError("the target block names no audioTokenId (the plugin's inspect reads it from config.json)", code="EAGLET_CONFIG_INVALID")
        self.audio_token_id = target.audio_token_id

    @property
    def tower(self) -> nn.Module:
        return self.body.audio_tower

    def audio_tokens(self, frames: Tensor) -> Tensor:
        """Placeholder tokens per clip from its real mel frames: transformers' own formula (the
        encoder's stride-2 convolution, then its pooling)."""
        return self.tower._get_feat_extract_output_lengths(frames)[1]

    def media_inputs(self, clips: Sequence[Any], device: torch.device) -> dict[str, Tensor]:
        """Log-mel features exactly as Qwen2AudioProcessor makes them (30 s window, max-length
        padding, frame mask), the STFT running on ``device``; returned as the feature extractor
        returns them (fp32, host memory)."""
        if not clips:
            return {}
        out = self.fe(
            [np.asarray(clip, dtype=np.float32) for clip in clips],
            sampling_rate=self.fe.sampling_rate,
            return_attention_mask=True,
            padding="max_length",
            return_tensors="pt",
            device=str(device),
        )
        return {"input_features": out["input_features"], "feature_attention_mask": out["attention_mask"]}

    def input_embeddings(self, input_ids: Tensor, media: dict[str, Tensor]) -> Tensor:
        """``Qwen2AudioModel.forward``'s merge for processor-expanded ids: the encoder runs on the
        clips' real frames (a bidirectional mask over them), the projector maps its output to the
        text width, and the features of each clip's real tokens replace the placeholders in order."""
        from transformers.masking_utils import create_bidirectional_mask

        embeds = self.model.get_input_embeddings()(input_ids)
        if not media:
            return embeds
        tower = self.tower
        features = media["input_features"].to(tower.device, next(tower.parameters()).dtype)
        frame_mask = media["feature_attention_mask"].to(tower.device)
        frames_after_conv, tokens = tower._get_feat_extract_output_lengths(frame_mask.sum(-1))
        clips, _, mel_frames = features.shape
        positions = (mel_frames - 2) // 2 + 1
        valid = torch.arange(positions, device=tower.device)[None, :] < frames_after_conv[:, None]
        mask = create_bidirectional_mask(
            config=tower.config,
            inputs_embeds=torch.zeros(clips, positions, 1, dtype=embeds.dtype, device=embeds.device),
            attention_mask=valid.to(torch.long),
        )
        audio = self.body.multi_modal_projector(tower(features, attention_mask=mask).last_hidden_state)
        audio = audio[torch.arange(audio.shape[1], device=audio.device)[None, :] < tokens.to(audio.device)[:, None]]
        placeholders = input_ids == self.audio_token_id
        if int(placeholders.sum()) != audio.shape[0]:
            raise EngineError(
                f"{int(placeholders.sum())} <|AUDIO|> tokens but the clips give {audio.shape[0]} audio tokens",
                code="EAGLET_BAD_REQUEST",
                hint="expand each clip's placeholder to the processor's count for exactly that clip",
            )
        return embeds.masked_scatter(placeholders[..., None].to(embeds.device), audio.to(embeds.device, embeds.dtype))

    def check(self, batch: TargetBatch) -> None:
        """Refuses records whose placeholders do not match their clips (run where batches are
        built, on CPU tensors, with the batch's media inputs made)."""
        audio = batch.input_ids == self.audio_token_id
        placeholders = audio.sum(dim=1).tolist()
        clips = batch.clips
        if not clips:
            if any(placeholders):
                raise EngineError(f"records {batch.ids} hold <|AUDIO|> tokens but no audio clips", code="EAGLET_DATA_INVALID")
            return
        expected = self.audio_tokens(batch.inputs["feature_attention_mask"].sum(-1)).tolist()
        k = 0
        for b, counts in enumerate(batch.audio_token_counts):
            rid = batch.ids[b] if b < len(batch.ids) else str(b)
            if sum(counts) != placeholders[b]:
                raise EngineError(
                    f"record {rid}: {placeholders[b]} <|AUDIO|> tokens but audio_token_counts sum to {sum(counts)}",
                    code="EAGLET_DATA_INVALID",
                    hint="the record was cut through its audio, or prepared for another model",
                )
            for count in counts:
                if count != expected[k]:
                    raise EngineError(
                        f"record {rid}: clip {k} gives {expected[k]} audio tokens through the feature extractor, the data says {count}",
                        code="EAGLET_DATA_INVALID",
                        hint="clips must be at most 30 s (prepare's long-audio policy) and prepared for this model",
                    )
                k += 1

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


def load_feature_extractor(model_dir: str) -> Any:
    """The Whisper feature extractor the model folder describes (its preprocessor_config.json)."""
    from transformers import WhisperFeatureExtractor

    path = Path(model_dir) / "preprocessor_config.json"
    if not path.is_file():
        raise EngineError(
            f"{path} does not exist: the feature extractor of a Qwen2-Audio checkpoint is described there",
            code="EAGLET_TARGET_INVALID",
            hint="copy preprocessor_config.json from the model's hub folder into the checkpoint folder",
        )
    return WhisperFeatureExtractor.from_pretrained(model_dir, local_files_only=True)


def load_target(target: EngineTarget, *, device: torch.device, dtype: torch.dtype) -> Qwen2AudioTarget:
    from transformers import Qwen2AudioForConditionalGeneration

    feature_extractor = load_feature_extractor(target.model)
    model = load_pretrained(Qwen2AudioForConditionalGeneration, target, device=device, dtype=dtype)
    return Qwen2AudioTarget(model, feature_extractor, target)
