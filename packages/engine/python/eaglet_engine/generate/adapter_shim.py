"""MERGE(t12-target): the target interface the fast path needs, taken from today's TargetRunner.

After the target refactor (docs: design-12, decision 4) the plugin's TargetAdapter provides all of
this (`decoder`, `lm_head_weight()`, `media_inputs(clips, device)`, `input_embeddings(input_ids,
media)`, aux layer ids, and `fuse` compiling the media encoder) and this module goes;
`fast.build_fast_generator` takes either.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor, nn

from .target import TargetRunner, _decoder_layers


log = logging.getLogger("eaglet.generate")


class _Captured(Exception):
    pass


class RunnerAdapter:
    def __init__(self, runner: TargetRunner) -> None:
        self.runner = runner
        self.layers = _decoder_layers(runner.model, runner.num_layers)
        self.decoder: nn.Module = next(m for m in runner.model.modules() if getattr(m, "layers", None) is self.layers)
        # TargetRunner counts taps as layer outputs (0-based); the fast path takes vLLM's aux ids
        # (the state after k layers), as the refactored adapters will.
        self.aux_layer_ids = [t + 1 for t in runner.tap_layers]

    def fuse_media(self) -> None:
        """Compiles the media encoders (the base model's parts beside the text decoder: an audio
        tower and its projector, say), whose eager layers are host-bound at batch 1; as the
        plugin adapter's `fuse` does for training. A failed compilation falls back to eager."""
        base = self.runner.base
        for module in base.children():
            if module is self.decoder or not any(True for _ in module.parameters()):
                continue
            eager, compiled = module.forward, torch.compile(module.forward)

            def forward(*args, _module=module, _eager=eager, _compiled=compiled, **kwargs):
                try:
                    return _compiled(*args, **kwargs)
                except Exception as e:  # noqa: BLE001 - keep serving on the eager encoder
                    log.warning("compiling %s failed, running it eagerly: %s", type(_module).__name__, e)
                    _module.forward = _eager
                    return _eager(*args, **kwargs)

            module.forward = forward

    def lm_head_weight(self) -> Tensor:
        return self.runner.lm_head.weight

    def media_inputs(self, clips: list[np.ndarray], device: torch.device) -> dict[str, Tensor]:
        """Log-mel features of the clips, the STFT on `device`."""
        fe = self.runner.feature_extractor
        if fe is None:
            return self.runner.audio_inputs(clips)  # raises: this target takes no audio
        feats = fe(clips, sampling_rate=fe.sampling_rate, return_attention_mask=True, padding="max_length", return_tensors="pt", device=str(device))
        return {
            "input_features": feats["input_features"].to(device, self.runner.dtype),
            "feature_attention_mask": feats["attention_mask"].to(device),
        }

    @torch.inference_mode()
    def input_embeddings(self, input_ids: Tensor, media: dict[str, Tensor]) -> Tensor:
        """[1, L] ids -> [1, L, H]: token embeddings, with the media encoder's output merged where
        the model merges it (taken from the model's own forward, stopped at the decoder's input)."""
        if not media:
            return self.decoder.embed_tokens(input_ids)
        captured: dict[str, Tensor] = {}

        def grab(_module, _args, kwargs):
            captured["embeds"] = kwargs["inputs_embeds"]
            raise _Captured

        handle = self.decoder.register_forward_pre_hook(grab, with_kwargs=True)
        try:
            self.runner.base(input_ids=input_ids, use_cache=False, **media)
        except _Captured:
            pass
        finally:
            handle.remove()
        return captured["embeds"]
