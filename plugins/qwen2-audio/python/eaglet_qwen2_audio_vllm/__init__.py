"""The qwen2-audio plugin's vLLM side: Eagle3 support for Qwen2AudioForConditionalGeneration where the
installed vLLM lacks it.

vLLM (checked against 0.32.0's source) declares `SupportsEagle3` on the Qwen2-VL family and LLaVA,
not on `Qwen2AudioForConditionalGeneration`, although its forward already returns the inner
Qwen2 model's `(hidden, aux_hidden_states)` once aux layers are set. Its Eagle proposer also copies
`image_token_index` from a multimodal target's config, which Qwen2-Audio's config lacks (it has
`audio_token_index`). The subclass in `eagle3` adds the interface and that attribute; this
`register()` (entry point group `vllm.general_plugins`, run by vLLM in every process it starts)
puts it in place of the built-in class, and does nothing when the installed vLLM already supports
Eagle3 for Qwen2-Audio. `VLLM_PLUGINS=eaglet_qwen2_audio_eagle3` selects it explicitly.

eaglet puts this folder on PYTHONPATH of `vllm serve` and of its vLLM benchmark, where the
checked-in `eaglet_qwen2_audio_vllm-0.1.0.dist-info` makes the entry point visible; for plain
`vllm serve`, `pip install plugins/qwen2-audio/python` into the vLLM environment. It imports only
vLLM (not eaglet's engine), so it loads in any vLLM environment.
"""

from __future__ import annotations

import logging

log = logging.getLogger("eaglet_qwen2_audio_vllm")
ARCHITECTURE = "Qwen2AudioForConditionalGeneration"


def needs_patch() -> bool:
    """True when the installed vLLM's Qwen2-Audio class does not implement SupportsEagle3."""
    from vllm.model_executor.models.interfaces import supports_eagle3
    from vllm.model_executor.models.qwen2_audio import Qwen2AudioForConditionalGeneration

    return not supports_eagle3(Qwen2AudioForConditionalGeneration)


def register() -> None:
    from vllm import ModelRegistry

    if not needs_patch():
        log.info("eaglet_qwen2_audio_vllm: this vLLM supports Eagle3 for %s already; nothing to do", ARCHITECTURE)
        return
    ModelRegistry.register_model(ARCHITECTURE, "eaglet_qwen2_audio_vllm.eagle3:Qwen2AudioEagle3ForConditionalGeneration")
    log.info("eaglet_qwen2_audio_vllm: %s registered with Eagle3 support", ARCHITECTURE)
