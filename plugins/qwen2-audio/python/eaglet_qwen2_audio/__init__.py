"""The engine side of eaglet's Qwen2-Audio target plugin (``TargetModel.engineAdapter``).

Loads ``Qwen2AudioForConditionalGeneration`` through transformers (bf16, frozen, eval), computes
log-mel features with transformers' own ``WhisperFeatureExtractor`` on the training device, and
returns the tapped text-decoder layers' outputs and the final hidden state. The draft sees the
``<|AUDIO|>`` placeholder's embedding at audio positions, as vLLM's Eagle3 drafter does
(REFERENCE.md); the target sees the audio encoder's features there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from eaglet_engine.errors import EngineError
from eaglet_engine.targets import TargetBatch, TargetInfo, TargetOutput, capture_layer_outputs, compile_layers, default_tap_layers
from eaglet_engine.targets.causal_lm import decoder_layers

SAMPLE_RATE = 16000
ARCHITECTURE = "Qwen2AudioForConditionalGeneration"


def audio_token_count(feature_frames: int) -> int:
    """Placeholder tokens for a clip of ``feature_frames`` mel frames (the processor's formula:
    the encoder's stride-2 convolution, then its stride-2 pooling)."""
    return (((feature_frames - 1) // 2 + 1) - 2) // 2 + 1


def draft_defaults_for(hidden: int, vocab_size: int, text_cfg: Any) -> dict[str, Any]:
    """REFERENCE.md's draft for the 7B target (4096 / 11008 / 32 heads / 4 kv heads / head dim
    128) and the same proportions for other widths (as the TS plugin's ``draftDefaults``)."""
    head_dim = 128 if hidden >= 1024 else 16
    heads = max(1, hidden // head_dim)
    return {
        "architectures": ["LlamaForCausalLMEagle3"],
        "hidden_size": hidden,
        "intermediate_size": 11008 if hidden == 4096 else -(-(hidden * 11008) // 4096 // 8) * 8,
        "num_attention_heads": heads,
        "num_key_value_heads": 4 if heads % 4 == 0 else heads,
        "head_dim": head_dim,
        "vocab_size": vocab_size,
        "draft_vocab_size": min(32000, vocab_size),
        "rope_theta": 10000.0,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
        "torch_dtype": "bfloat16",
        **({"bos_token_id": text_cfg.bos_token_id} if getattr(text_cfg, "bos_token_id", None) is not None else {}),
        **({"eos_token_id": text_cfg.eos_token_id} if getattr(text_cfg, "eos_token_id", None) is not None else {}),
    }


class Qwen2AudioTarget:
    """A loaded Qwen2-Audio target. Build with ``load_target`` (from a folder) or directly from a
    model object and a feature extractor (the benchmark builds random weights on the GPU)."""

    def __init__(self, model: nn.Module, feature_extractor: Any, tap_layers: Sequence[int] | None = None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.fe = feature_extractor
        self.body = model.model  # Qwen2AudioModel: audio tower, projector, language model
        self.layers = decoder_layers(self.body.language_model)
        cfg = model.config
        text = cfg.text_config
        n = len(self.layers)
        self.audio_token_id = int(getattr(cfg, "audio_token_id", None) or cfg.audio_token_index)
        self.info = TargetInfo(
            architecture=ARCHITECTURE,
            num_layers=n,
            hidden_size=int(text.hidden_size),
            vocab_size=int(self.lm_head_weight().shape[0]),
            tap_layers=tuple(tap_layers) if tap_layers else default_tap_layers(n),  # type: ignore[arg-type]
            intermediate_size=int(text.intermediate_size),
            num_attention_heads=int(text.num_attention_heads),
            bos_token_id=getattr(text, "bos_token_id", None),
            audio_token_id=self.audio_token_id,
        )

    def embedding_weight(self) -> Tensor:
        return self.model.get_input_embeddings().weight

    def lm_head_weight(self) -> Tensor:
        return self.model.get_output_embeddings().weight

    def draft_defaults(self) -> dict[str, Any]:
        text = self.model.config.text_config
        return draft_defaults_for(int(text.hidden_size), self.info.vocab_size, text)

    def fuse(self) -> None:
        """Compiles the text decoder layers (the bulk of the target's time) and the audio encoder
        (32 small layers on 1500 positions: eager, its kernel launches outlast its GPU work). A
        compilation failure falls back to eager with a warning."""
        compile_layers(self.layers)
        tower = self.body.audio_tower
        eager, compiled = tower.forward, torch.compile(tower.forward)

        def forward(*args: Any, **kwargs: Any) -> Any:
            try:
                return compiled(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - keep training on the eager encoder
                import logging

                logging.getLogger(__name__).warning("compiling the audio encoder failed, using it eagerly: %s", e)
                tower.forward = eager
                return eager(*args, **kwargs)

        tower.forward = forward

    def prepare(self, batch: TargetBatch) -> None:
        """Log-mel features for the batch's clips (the STFT on the training device), checked
        against the placeholders of the CPU-side ids, kept in pinned host memory."""
        clips = [np.asarray(clip, dtype=np.float32) for record in batch.audio for clip in record]
        if not clips:
            self._check_no_audio(batch)
            return
        features, frame_mask = self.features(clips, self.device)
        self._check_audio(batch, frame_mask.sum(-1).tolist())
        pin = self.device.type == "cuda"
        batch.inputs["input_features"] = features.pin_memory() if pin else features
        batch.inputs["feature_attention_mask"] = frame_mask.pin_memory() if pin else frame_mask

    @property
    def device(self) -> torch.device:
        return next(self.body.language_model.parameters()).device

    def features(self, clips: list[np.ndarray], device: torch.device) -> tuple[Tensor, Tensor]:
        """Log-mel features exactly as Qwen2AudioProcessor makes them (30 s window, max-length
        padding, frame mask), the STFT running on ``device``; returned as the feature extractor
        returns them (fp32, host memory)."""
        out = self.fe(
            clips,
            sampling_rate=SAMPLE_RATE,
            return_attention_mask=True,
            padding="max_length",
            return_tensors="pt",
            device=str(device),
        )
        return out["input_features"], out["attention_mask"]

    def _check_audio(self, batch: TargetBatch, frame_counts: list[int]) -> None:
        audio = batch.input_ids == self.audio_token_id
        if not bool((audio[:, :-1] & audio[:, 1:]).any()):
            # transformers would take its legacy path and expand the placeholders itself.
            raise EngineError("every clip in this batch maps to a single audio token: clips this short are not supported", code="EAGLET_DATA_INVALID")
        placeholders = audio.sum(dim=1).tolist()
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
                expected = audio_token_count(frame_counts[k])
                if count != expected:
                    raise EngineError(
                        f"record {rid}: clip {k} gives {expected} audio tokens through the feature extractor, the data says {count}",
                        code="EAGLET_DATA_INVALID",
                        hint="clips must be at most 30 s (prepare's long-audio policy) and prepared for this model",
                    )
                k += 1

    def _check_no_audio(self, batch: TargetBatch) -> None:
        if bool((batch.input_ids == self.audio_token_id).any()):
            raise EngineError(f"records {batch.ids} hold <|AUDIO|> tokens but no audio clips", code="EAGLET_DATA_INVALID")

    @torch.no_grad()
    def forward(self, batch: TargetBatch) -> TargetOutput:
        device = batch.input_ids.device
        if batch.audio and any(batch.audio) and "input_features" not in batch.inputs:
            self.prepare(batch)  # not prepared ahead (e.g. a batch built by hand)
        elif not any(batch.audio):
            self._check_no_audio(batch)
        kwargs: dict[str, Tensor] = {}
        if "input_features" in batch.inputs:
            dtype = next(self.body.audio_tower.parameters()).dtype
            kwargs = {
                "input_features": batch.inputs["input_features"].to(device, dtype, non_blocking=True),
                "feature_attention_mask": batch.inputs["feature_attention_mask"].to(device, non_blocking=True),
            }
        # Right padding + causal attention: real positions never see padding, so no attention
        # mask is passed and the language model stays on the flash path.
        with capture_layer_outputs(self.layers, self.info.tap_layers) as taps:
            out = self.body(input_ids=batch.input_ids, use_cache=False, **kwargs)
        return TargetOutput(taps=torch.cat(taps, dim=-1), final_hidden=out.last_hidden_state)


def load_feature_extractor(model_dir: str) -> Any:
    from transformers import WhisperFeatureExtractor

    try:
        return WhisperFeatureExtractor.from_pretrained(model_dir)
    except OSError as e:
        raise EngineError(f"{model_dir}: no feature extractor config (preprocessor_config.json): {e}", code="EAGLET_TARGET_INVALID") from e


def load_target(model_dir: str, *, device: torch.device, dtype: torch.dtype, tap_layers: Sequence[int] | None = None) -> Qwen2AudioTarget:
    from transformers import Qwen2AudioForConditionalGeneration

    model = Qwen2AudioForConditionalGeneration.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa")
    return Qwen2AudioTarget(model.to(device), load_feature_extractor(model_dir), tap_layers)
