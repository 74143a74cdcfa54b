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


class Qwen25OmniTarget(CausalLMTarget):
    """A loaded Qwen2.5-Omni thinker. Build with ``load_target`` (from a folder) or directly from a
    thinker model and a feature extractor."""

    def __init__(self, model: nn.Module, feature_extractor: Any, target: EngineTarget) -> None:
        self.body = model.model  # Qwen2_5OmniThinkerModel: audio tower, vision tower, text model
        super().__init__(model, target, decoder=self.body.language_model)
        self.fe = feature_extractor
        if target.audio_token_id is None:
            raise EngineError("the target block names no audioTokenId (the plugin's inspect reads it from config.json)", code="EAGLET_CONFIG_INVALID")
        self.audio_token_id = target.audio_token_id

    def audio_tokens(self, frames: Tensor) -> Tensor:
        """Placeholder tokens per clip from its real mel frames: the audio encoder's own formula."""
        return self.body.audio_tower._get_feat_extract_output_lengths(frames)[1]

    def media_inputs(self, clips: Sequence[Any], device: torch.device) -> dict[str, Tensor]:
        """Log-mel features as Qwen2_5OmniProcessor makes them (its 300 s window, max-length padding,
        the frame mask), the STFT running on ``device``; host tensors, fp32."""
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
        """The thinker's merge for processor-expanded ids: the audio encoder's output for each
        clip's real frames replaces its placeholders, in order."""
        embeds = self.model.get_input_embeddings()(input_ids)
        if not media:
            return embeds
        tower = self.body.audio_tower
        features = media["input_features"].to(tower.device, next(tower.parameters()).dtype)
        audio = self.body.get_audio_features(features, media["feature_attention_mask"].to(tower.device), return_dict=True).last_hidden_state
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
        placeholders = (batch.input_ids == self.audio_token_id).sum(dim=1).tolist()
        if not batch.clips:
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
                        hint="clips must be at most 300 s and prepared for this model",
                    )
                k += 1


def load_feature_extractor(model_dir: str) -> Any:
    """The Whisper feature extractor the model folder describes (its preprocessor_config.json)."""
    from transformers import WhisperFeatureExtractor

    path = Path(model_dir) / "preprocessor_config.json"
    if not path.is_file():
        raise EngineError(
            f"{path} does not exist: the feature extractor of a Qwen2.5-Omni checkpoint is described there",
            code="EAGLET_TARGET_INVALID",
            hint="copy preprocessor_config.json from the model's hub folder into the checkpoint folder",
        )
    return WhisperFeatureExtractor.from_pretrained(model_dir, local_files_only=True)


def load_target(target: EngineTarget, *, device: torch.device, dtype: torch.dtype) -> Qwen25OmniTarget:
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    feature_extractor = load_feature_extractor(target.model)
    model = load_pretrained(Qwen2_5OmniThinkerForConditionalGeneration, target, device=device, dtype=dtype)
    return Qwen25OmniTarget(model, feature_extractor, target)
