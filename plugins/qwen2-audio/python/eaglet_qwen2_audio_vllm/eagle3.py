"""Qwen2-Audio with vLLM's SupportsEagle3 (see the package docstring for why)."""

from __future__ import annotations

from vllm.model_executor.models.interfaces import SupportsEagle3
from vllm.model_executor.models.qwen2_audio import Qwen2AudioForConditionalGeneration


class Qwen2AudioEagle3ForConditionalGeneration(Qwen2AudioForConditionalGeneration, SupportsEagle3):
    """The built-in model plus the Eagle3 interface. SupportsEagle3's default methods find the
    inner Qwen2 decoder through `get_language_model().model` (an EagleModelMixin), whose forward
    returns the auxiliary hidden states; the default aux layers are (2, L//2, L-3)."""

    def __init__(self, *, vllm_config, prefix: str = "") -> None:
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        # The Eagle proposer reads `image_token_index` from a multimodal target's config; for
        # Qwen2-Audio the placeholder the draft sees at media positions is the audio token.
        if not hasattr(self.config, "image_token_index"):
            self.config.image_token_index = self.config.audio_token_index
