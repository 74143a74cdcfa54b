"""eaglet's vLLM plugin: Eagle3 support for Qwen2AudioForConditionalGeneration where the installed
vLLM lacks it.

vLLM (checked against 0.32.0's source) declares `SupportsEagle3` on the Qwen2-VL family and LLaVA,
not on `Qwen2AudioForConditionalGeneration`, although its forward already returns the inner
Qwen2 model's `(hidden, aux_hidden_states)` once aux layers are set. Its Eagle proposer also copies
`image_token_index` from a multimodal target's config, which Qwen2-Audio's config lacks (it has
`audio_token_index`). The subclass in `qwen2_audio` adds the interface and that attribute; this
`register()` (entry point group `vllm.general_plugins`, run by vLLM in every process it starts)
puts it in place of the built-in class, and does nothing when the installed vLLM already supports
Eagle3 for Qwen2-Audio. `VLLM_PLUGINS=eaglet_qwen2_audio_eagle3` selects it explicitly.
"""

from __future__ import annotations

import logging

log = logging.getLogger("eaglet_vllm")
ARCHITECTURE = "Qwen2AudioForConditionalGeneration"


def needs_patch() -> bool:
    """True when the installed vLLM's Qwen2-Audio class does not implement SupportsEagle3."""
    from vllm.model_executor.models.interfaces import supports_eagle3
    from vllm.model_executor.models.qwen2_audio import Qwen2AudioForConditionalGeneration

    return not supports_eagle3(Qwen2AudioForConditionalGeneration)


def register() -> None:
    from vllm import ModelRegistry

    if not needs_patch():
        log.info("eaglet_vllm: this vLLM supports Eagle3 for %s already; nothing to do", ARCHITECTURE)
        return
    ModelRegistry.register_model(ARCHITECTURE, "eaglet_vllm.qwen2_audio:Qwen2AudioEagle3ForConditionalGeneration")
    log.info("eaglet_vllm: %s registered with Eagle3 support", ARCHITECTURE)
