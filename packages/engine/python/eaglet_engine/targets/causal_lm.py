"""Target adapter for text-only Hugging Face causal LMs (Llama, Qwen2, ...): the generic case, and
the template a target plugin copies for its own family.

    targetAdapter: "eaglet_engine.targets.causal_lm"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from . import TargetBatch, TargetInfo, TargetOutput, capture_layer_outputs, compile_layers, default_tap_layers


def decoder_layers(module: nn.Module) -> nn.ModuleList:
    """The decoder layer list of a transformers text model (``model.layers``)."""
    for candidate in (getattr(module, "layers", None), getattr(getattr(module, "model", None), "layers", None)):
        if isinstance(candidate, nn.ModuleList):
            return candidate
    raise TypeError(f"cannot find the decoder layers of {type(module).__name__}")


def draft_defaults_for(cfg: Any, vocab_size: int) -> dict[str, Any]:
    """Draft config.json fields that follow from a target text config: the target's widths, and
    REFERENCE.md's Eagle3 choices (one layer, an eighth of the heads as kv heads, eps 1e-6)."""
    heads = int(cfg.num_attention_heads)
    hidden = int(cfg.hidden_size)
    return {
        "architectures": ["LlamaForCausalLMEagle3"],
        "hidden_size": hidden,
        "intermediate_size": int(cfg.intermediate_size),
        "num_attention_heads": heads,
        "num_key_value_heads": max(1, heads // 8),
        "head_dim": int(getattr(cfg, "head_dim", None) or hidden // heads),
        "vocab_size": vocab_size,
        "rope_theta": float(getattr(cfg, "rope_theta", None) or (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta", 10000.0)),
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-6,
        "torch_dtype": "bfloat16",
        **({"bos_token_id": cfg.bos_token_id} if getattr(cfg, "bos_token_id", None) is not None else {}),
        **({"eos_token_id": cfg.eos_token_id} if getattr(cfg, "eos_token_id", None) is not None else {}),
    }


class CausalLMTarget:
    def __init__(self, model: nn.Module, tap_layers: Sequence[int] | None = None) -> None:
        self.model = model.eval().requires_grad_(False)
        self.body = model.get_decoder() if hasattr(model, "get_decoder") else model.model
        self.layers = decoder_layers(self.body)
        cfg = model.config
        n = len(self.layers)
        self.info = TargetInfo(
            architecture=(cfg.architectures or [type(model).__name__])[0],
            num_layers=n,
            hidden_size=int(cfg.hidden_size),
            vocab_size=int(self.lm_head_weight().shape[0]),
            tap_layers=tuple(tap_layers) if tap_layers else default_tap_layers(n),  # type: ignore[arg-type]
            intermediate_size=int(cfg.intermediate_size),
            num_attention_heads=int(cfg.num_attention_heads),
            bos_token_id=getattr(cfg, "bos_token_id", None),
        )

    def embedding_weight(self) -> Tensor:
        return self.model.get_input_embeddings().weight

    def lm_head_weight(self) -> Tensor:
        return self.model.get_output_embeddings().weight

    def draft_defaults(self) -> dict[str, Any]:
        return draft_defaults_for(self.model.config, self.info.vocab_size)

    def fuse(self) -> None:
        compile_layers(self.layers)

    @torch.no_grad()
    def forward(self, batch: TargetBatch) -> TargetOutput:
        # Right padding + causal attention: real positions never see padding, so no mask is
        # needed and attention stays on the flash path.
        with capture_layer_outputs(self.layers, self.info.tap_layers) as taps:
            out = self.body(input_ids=batch.input_ids, use_cache=False)
        return TargetOutput(taps=torch.cat(taps, dim=-1), final_hidden=out.last_hidden_state)


def load_target(model_dir: str, *, device: torch.device, dtype: torch.dtype, tap_layers: Sequence[int] | None = None) -> CausalLMTarget:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa")
    return CausalLMTarget(model.to(device), tap_layers)
