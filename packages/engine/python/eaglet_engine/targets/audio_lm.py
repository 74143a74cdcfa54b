"""The shared part of audio-in, text-out targets whose processor expands each clip into a run of
placeholder tokens (one ``audio_token_id`` per encoder output frame) and whose model puts its audio
encoder's output at those placeholders.

``AudioPlaceholderTarget`` supplies what such families do alike: log-mel features exactly as the
processor makes them (the folder's feature extractor, max-length padding, the frame mask), the
placeholder merge, the check that a batch's placeholders match its clips, and the encoding of a
batch's clips ahead of its step (``encode_media``). A family's adapter
(in its plugin) subclasses it with two methods: ``audio_tokens`` (placeholder tokens per clip from
its real frames: the family's encoder formula) and ``audio_features`` (the encoder and projector
on the batch's media inputs, one row per real audio token, in order).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..config import EngineTarget
from ..errors import EngineError
from . import TargetBatch
from .causal_lm import CausalLMTarget


class AudioPlaceholderTarget(CausalLMTarget):
    # How errors name the placeholder token (a family names its own, e.g. its processor's text).
    placeholder = "audio placeholder"

    def __init__(self, model: nn.Module, feature_extractor: Any, target: EngineTarget, decoder: nn.Module) -> None:
        super().__init__(model, target, decoder=decoder)
        self.fe = feature_extractor
        if target.audio_token_id is None:
            raise EngineError("the target block names no audioTokenId (the plugin's inspect reads it from config.json)", code="EAGLET_CONFIG_INVALID")
        self.audio_token_id = target.audio_token_id

    # -- what a family supplies -----------------------------------------------------------------

    def audio_tokens(self, frames: Tensor) -> Tensor:
        """Placeholder tokens per clip from its real mel frames."""
        raise NotImplementedError

    def audio_features(self, media: dict[str, Tensor]) -> Tensor:
        """The encoder's output for the clips' real audio tokens, [tokens, hidden], in order."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------------

    def media_inputs(self, clips: Sequence[Any], device: torch.device) -> dict[str, Tensor]:
        """Log-mel features exactly as the family's processor makes them (its window, max-length
        padding, the frame mask), the STFT running on ``device``; host tensors, fp32."""
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

    @torch.no_grad()
    def encode_media(self, input_ids: Tensor, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """``inputs`` with the clips' media inputs replaced by their encoded audio (``audio_embeds``,
        [audio tokens, hidden] on the model's device), after checking that ``input_ids`` hold one
        placeholder per audio token. The trainer calls this where it builds batches, a batch
        ahead, in its data thread: the encoder's selection of each clip's real tokens and the
        count check wait for the GPU, and there they hold up that thread instead of the step,
        whose host then queues the target's kernels while the GPU still runs the previous step."""
        if "input_features" not in inputs:
            return inputs
        device = self.embedding_weight().device
        media = {k: inputs[k].to(device, non_blocking=True) for k in ("input_features", "feature_attention_mask")}
        audio = self.audio_features(media)
        placeholders = int((input_ids == self.audio_token_id).sum())
        if placeholders != audio.shape[0]:
            raise EngineError(
                f"{placeholders} {self.placeholder} tokens but the clips give {audio.shape[0]} audio tokens",
                code="EAGLET_BAD_REQUEST",
                hint="expand each clip's placeholder to the processor's count for exactly that clip",
            )
        rest = {k: v for k, v in inputs.items() if k not in media}
        return {**rest, "audio_embeds": audio}

    def input_embeddings(self, input_ids: Tensor, media: dict[str, Tensor]) -> Tensor:
        """The token embeddings with each clip's audio features at its placeholders, in order (the
        model's own merge for processor-expanded ids); ``media`` is the media inputs or what
        ``encode_media`` made of them."""
        embeds = self.model.get_input_embeddings()(input_ids)
        if not media:
            return embeds
        audio = self.encode_media(input_ids, media)["audio_embeds"]
        placeholders = input_ids == self.audio_token_id
        return embeds.masked_scatter(placeholders[..., None].to(embeds.device), audio.to(embeds.device, embeds.dtype))

    def check(self, batch: TargetBatch) -> None:
        """Refuses records whose placeholders do not match their clips (run where batches are
        built, on CPU tensors, with the batch's media inputs made)."""
        placeholders = (batch.input_ids == self.audio_token_id).sum(dim=1).tolist()
        if not batch.clips:
            if any(placeholders):
                raise EngineError(f"records {batch.ids} hold {self.placeholder} tokens but no audio clips", code="EAGLET_DATA_INVALID")
            return
        expected = self.audio_tokens(batch.inputs["feature_attention_mask"].sum(-1)).tolist()
        k = 0
        for b, counts in enumerate(batch.audio_token_counts):
            rid = batch.ids[b] if b < len(batch.ids) else str(b)
            if sum(counts) != placeholders[b]:
                raise EngineError(
                    f"record {rid}: {placeholders[b]} {self.placeholder} tokens but audio_token_counts sum to {sum(counts)}",
                    code="EAGLET_DATA_INVALID",
                    hint="the record was cut through its audio, or prepared for another model",
                )
            for count in counts:
                if count != expected[k]:
                    raise EngineError(
                        f"record {rid}: clip {k} gives {expected[k]} audio tokens through the feature extractor, the data says {count}",
                        code="EAGLET_DATA_INVALID",
                        hint=f"clips must be at most {self.fe.chunk_length} s (prepare's long-audio policy) and prepared for this model",
                    )
                k += 1


def load_feature_extractor(model_dir: str, family: str) -> Any:
    """The feature extractor the model folder describes (its preprocessor_config.json)."""
    from transformers import AutoFeatureExtractor

    path = Path(model_dir) / "preprocessor_config.json"
    if not path.is_file():
        raise EngineError(
            f"{path} does not exist: the feature extractor of a {family} checkpoint is described there",
            code="EAGLET_TARGET_INVALID",
            hint="copy preprocessor_config.json from the model's hub folder into the checkpoint folder",
        )
    return AutoFeatureExtractor.from_pretrained(model_dir, local_files_only=True)
