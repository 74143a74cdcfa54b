"""The engine side of eaglet's hf-chat target plugin (``TargetModel.engineAdapter``): any
decoder-only chat LLM that transformers loads with ``AutoModelForCausalLM`` (the architectures the
plugin declares in ``src/architectures.ts``), through the engine's generic causal-LM base.

Everything family-specific is transformers' own class for the checkpoint: the decoder
(``get_decoder()``, its ``layers``), the embedding and the output head. The plugin's declaration
gives the aux layers and the draft; its chat template is the checkpoint's.
"""

from __future__ import annotations

import torch

from eaglet_engine.config import EngineTarget
from eaglet_engine.targets.causal_lm import CausalLMTarget, load_pretrained


class HfChatTarget(CausalLMTarget):
    """A loaded chat LLM: text only, its decoder where transformers' ``get_decoder()`` says."""


def load_target(target: EngineTarget, *, device: torch.device, dtype: torch.dtype) -> HfChatTarget:
    from transformers import AutoModelForCausalLM

    return HfChatTarget(load_pretrained(AutoModelForCausalLM, target, device=device, dtype=dtype), target)
