"""The qwen2.5-omni plugin's vLLM side: Eagle3 support for Qwen2.5-Omni's thinker where the installed
vLLM lacks it.

vLLM (checked against 0.32.0's source) serves the hub checkpoint (`Qwen2_5OmniModel`, also
`Qwen2_5OmniForConditionalGeneration`) with `Qwen2_5OmniThinkerForConditionalGeneration`, which does
not declare `SupportsEagle3`, although its forward already returns its inner Qwen2 model's
`(hidden, aux_hidden_states)` once aux layers are set (that model is an `EagleModelMixin`). Its
config (the thinker's) has `image_token_index`, which vLLM's Eagle proposer copies, so nothing else
is missing. The subclass in `eagle3` adds the interface; this `register()` (entry point group
`vllm.general_plugins`, run by vLLM in every process it starts) puts it in place of the built-in
class under both architecture names, and does nothing when the installed vLLM already supports
Eagle3 for it. `VLLM_PLUGINS=eaglet_qwen2_5_omni_eagle3` selects it explicitly.

eaglet puts this folder on PYTHONPATH of `vllm serve` and of its vLLM benchmark, where the
checked-in `eaglet_qwen2_5_omni_vllm-0.1.0.dist-info` makes the entry point visible; for plain
`vllm serve`, `pip install plugins/qwen2.5-omni/python` into the vLLM environment. It imports only
vLLM (not eaglet's engine), so it loads in any vLLM environment.
"""

from __future__ import annotations

import logging

log = logging.getLogger("eaglet_qwen2_5_omni_vllm")
# The architectures vLLM's registry maps to the thinker class (the hub's config names the first).
ARCHITECTURES = ("Qwen2_5OmniModel", "Qwen2_5OmniForConditionalGeneration")


def needs_patch() -> bool:
    """True when the installed vLLM's Qwen2.5-Omni thinker class does not implement SupportsEagle3."""
    from vllm.model_executor.models.interfaces import supports_eagle3
    from vllm.model_executor.models.qwen2_5_omni_thinker import Qwen2_5OmniThinkerForConditionalGeneration

    return not supports_eagle3(Qwen2_5OmniThinkerForConditionalGeneration)


def register() -> None:
    from vllm import ModelRegistry

    if not needs_patch():
        log.info("eaglet_qwen2_5_omni_vllm: this vLLM supports Eagle3 for Qwen2.5-Omni already; nothing to do")
        return
    for arch in ARCHITECTURES:
        ModelRegistry.register_model(arch, "eaglet_qwen2_5_omni_vllm.eagle3:Qwen25OmniThinkerEagle3")
    log.info("eaglet_qwen2_5_omni_vllm: %s registered with Eagle3 support", ", ".join(ARCHITECTURES))
