"""The target model for generation: a Hugging Face checkpoint run with a KV cache.

Each call processes new tokens after what the cache holds and returns, for exactly those
positions, the next-token logits (fp32) and the outputs of the three tapped decoder layers
concatenated ([k, 3H]: what the Eagle3 draft's `fc` reads). Hidden states are taken with
forward hooks on the tapped layers only, never by asking the model for all of them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import EngineError


@dataclass
class TargetStep:
    logits: torch.Tensor
    """[k, V] fp32: row j predicts the token after the j-th processed position."""
    taps: torch.Tensor | None
    """[k, 3H]: outputs of the tapped layers at the processed positions."""


def _decoder_layers(model: nn.Module, num_layers: int) -> nn.ModuleList:
    """The text decoder's layer list (`model.model.language_model.layers` for Qwen2-Audio,
    `model.model.layers` for Llama/Qwen2): the ModuleList named `layers` of the right length."""
    for name, module in model.named_modules():
        if name.endswith("layers") and isinstance(module, nn.ModuleList) and len(module) == num_layers:
            if "audio" not in name and "vision" not in name and "encoder" not in name:
                return module
    raise EngineError(f"cannot find the {num_layers} text decoder layers in {type(model).__name__}")


def text_config(config):
    return getattr(config, "text_config", None) or config


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


def load_hf_model(model_dir: str | Path, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Loads a local checkpoint by the class its config.json names (no hub access)."""
    import transformers

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise EngineError(f"{model_dir} has no config.json", hint="pass a local Hugging Face model folder")
    config = transformers.AutoConfig.from_pretrained(model_dir, local_files_only=True)
    arch = (config.architectures or [None])[0]
    cls = getattr(transformers, arch, None) if arch else None
    if cls is None:
        raise EngineError(f"{model_dir}: architecture {arch!r} is not a transformers class")
    model = cls.from_pretrained(model_dir, dtype=dtype, local_files_only=True)
    return model.to(device).eval()


class TargetRunner:
    """A target model with a KV cache, its tapped layers hooked, and (for audio models) the
    feature extractor that turns 16 kHz PCM into its encoder's input."""

    def __init__(self, model: nn.Module, tap_layers: list[int] | None = None, model_dir: str | Path | None = None):
        from transformers import DynamicCache

        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.config = model.config
        self.text_config = text_config(model.config)
        self.num_layers = self.text_config.num_hidden_layers
        self.hidden_size = self.text_config.hidden_size
        self.vocab_size = self.text_config.vocab_size
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.base = model.base_model
        self.lm_head = model.get_output_embeddings()
        self.embed_tokens = model.get_input_embeddings()
        self._cache_cls = DynamicCache
        self._cache_kw = "cache" if "cache" in inspect.signature(self.base.forward).parameters else "past_key_values"
        self.cache = None
        self.tap_layers = list(tap_layers) if tap_layers is not None else self.default_tap_layers(self.num_layers)
        for t in self.tap_layers:
            if not 0 <= t < self.num_layers:
                raise EngineError(f"tap layer {t} is outside the target's {self.num_layers} layers")
        layers = _decoder_layers(model, self.num_layers)
        self._captured: dict[int, torch.Tensor] = {}
        self._hooks = [layers[i].register_forward_hook(self._hook(i)) for i in sorted(set(self.tap_layers))]
        self.audio = hasattr(self.config, "audio_config")
        self.feature_extractor = self._feature_extractor(model_dir) if self.audio else None

    @staticmethod
    def default_tap_layers(num_layers: int) -> list[int]:
        """vLLM's default auxiliary layers (2, L//2, L-3), counted as layer inputs, as layer outputs."""
        return [max(0, k - 1) for k in (2, num_layers // 2, num_layers - 3)]

    def _hook(self, index: int):
        def hook(_module, _inputs, output):
            self._captured[index] = output[0] if isinstance(output, tuple) else output

        return hook

    def _feature_extractor(self, model_dir):
        from transformers import WhisperFeatureExtractor

        if model_dir is not None and (Path(model_dir) / "preprocessor_config.json").exists():
            return WhisperFeatureExtractor.from_pretrained(model_dir, local_files_only=True)
        return WhisperFeatureExtractor(feature_size=self.config.audio_config.num_mel_bins)

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

    def audio_inputs(self, pcm: list[np.ndarray]) -> dict[str, torch.Tensor]:
        if not pcm:
            return {}
        if self.feature_extractor is None:
            raise EngineError("this target takes no audio", code="EAGLET_BAD_REQUEST")
        feats = self.feature_extractor(
            pcm, sampling_rate=self.feature_extractor.sampling_rate, return_attention_mask=True, padding="max_length", return_tensors="pt"
        )
        return {
            "input_features": feats["input_features"].to(self.device, self.dtype),
            "feature_attention_mask": feats["attention_mask"].to(self.device),
        }

    @torch.inference_mode()
    def forward(
        self, ids: list[int] | torch.Tensor, audio: list[np.ndarray] | None = None, logits_for: str = "all", want_taps: bool = True
    ) -> TargetStep:
        """Processes `ids` after the cached positions. `logits_for="last"` computes the head for the
        last position only (prefill); `want_taps=False` skips gathering the tapped states (baseline)."""
        if self.cache is None:
            self.reset()
        input_ids = torch.as_tensor(ids, dtype=torch.long, device=self.device).reshape(1, -1)
        kwargs = {self._cache_kw: self.cache, "use_cache": True}
        if audio:
            kwargs.update(self.audio_inputs(audio))
        self._captured.clear()
        out = self.base(input_ids=input_ids, **kwargs)
        hidden = out.last_hidden_state[0]
        if logits_for == "last":
            hidden = hidden[-1:]
        logits = self.lm_head(hidden).float()
        # The draft needs every processed position's taps, even when only the last logits are kept.
        taps = torch.cat([self._captured[i][0] for i in self.tap_layers], dim=-1) if want_taps else None
        self._captured.clear()
        return TargetStep(logits=logits, taps=taps)

    def close(self) -> None:
        for h in self._hooks:
            h.remove()
