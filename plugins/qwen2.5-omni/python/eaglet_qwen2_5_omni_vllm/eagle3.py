"""Qwen2.5-Omni's thinker with vLLM's SupportsEagle3 (see the package docstring for why)."""

from __future__ import annotations

from vllm.model_executor.models.interfaces import SupportsEagle3
from vllm.model_executor.models.qwen2_5_omni_thinker import Qwen2_5OmniThinkerForConditionalGeneration


class Qwen25OmniThinkerEagle3(Qwen2_5OmniThinkerForConditionalGeneration, SupportsEagle3):
    """The built-in thinker plus the Eagle3 interface. SupportsEagle3's default methods find the
    inner Qwen2 decoder through `get_language_model().model` (an EagleModelMixin), whose forward
    returns the auxiliary hidden states; the default aux layers are (2, L//2, L-3)."""
