"""Tiny random models for generation tests, built from configs (offline, seconds on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from eaglet_engine.config import EngineTarget

from .tiny import qwen2_audio_config

AUDIO_TOKEN = 60


def tiny_qwen2_audio(vocab: int = 64, layers: int = 4, seed: int = 0):
    """A Qwen2AudioForConditionalGeneration with a tiny Whisper-shaped encoder and Qwen2 decoder."""
    from transformers import Qwen2AudioForConditionalGeneration

    torch.manual_seed(seed)
    config = qwen2_audio_config(vocab=vocab, audio_token=AUDIO_TOKEN, hidden=64, layers=layers, d_model=32, max_positions=2048)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    # Sharper random logits: a tiny random model is otherwise near-uniform, and greedy ties or
    # near-ties would make token-for-token comparisons depend on summation order.
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
    return model


def target_block(model_dir: str | Path, aux_layer_ids: tuple[int, ...]) -> EngineTarget:
    """The engine's target block for a tiny Qwen2-Audio (as its plugin declares the family)."""
    return EngineTarget(
        id="qwen2-audio",
        adapter="eaglet_qwen2_audio",
        model=str(model_dir),
        architecture="Qwen2AudioForConditionalGeneration",
        aux_layer_ids=aux_layer_ids,
        audio_token_id=AUDIO_TOKEN,
    )


def qwen2_audio_adapter(model, aux_layer_ids: tuple[int, ...]):
    """The plugin's adapter around an in-memory model, with the Whisper feature extractor a
    Qwen2-Audio folder describes (128 mel bins)."""
    from eaglet_qwen2_audio import Qwen2AudioTarget
    from transformers import WhisperFeatureExtractor

    return Qwen2AudioTarget(model, WhisperFeatureExtractor(feature_size=128), target_block("(in memory)", aux_layer_ids))


def save_target(model, folder: Path) -> Path:
    """The model as a checkpoint folder, with the feature extractor its adapter loads."""
    from transformers import WhisperFeatureExtractor

    model.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(folder)
    return folder


def write_random_draft(folder: Path, target, aux_layer_ids: list[int], draft_vocab: int | None = None, seed: int = 1, scale: float = 1.0) -> Path:
    """An Eagle3 draft in the exported vLLM layout (config.json + model.safetensors), random
    weights, reading the target's ``aux_layer_ids``."""
    from safetensors.torch import save_file

    tc = getattr(target.config, "text_config", target.config)
    H, V = tc.hidden_size, tc.vocab_size
    dv = draft_vocab or V
    heads, kv, hd, inter = 4, 2, H // 4, 2 * H
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: (torch.randn(*s, generator=g) * 0.05 * scale)  # noqa: E731
    # Draft vocabulary: every other token (so d2t offsets are not all zero) then the rest.
    ids = sorted(list(range(0, V, 2))[:dv] + list(range(1, V, 2))[: max(0, dv - (V + 1) // 2)])
    d2t = torch.tensor([t - i for i, t in enumerate(ids)], dtype=torch.long)
    t2d = torch.zeros(V, dtype=torch.bool)
    t2d[ids] = True
    state = {
        "fc.weight": r(H, 3 * H),
        "midlayer.hidden_norm.weight": torch.ones(H),
        "midlayer.input_layernorm.weight": torch.ones(H),
        "midlayer.post_attention_layernorm.weight": torch.ones(H),
        "midlayer.self_attn.q_proj.weight": r(heads * hd, 2 * H),
        "midlayer.self_attn.k_proj.weight": r(kv * hd, 2 * H),
        "midlayer.self_attn.v_proj.weight": r(kv * hd, 2 * H),
        "midlayer.self_attn.o_proj.weight": r(H, heads * hd),
        "midlayer.mlp.gate_proj.weight": r(inter, H),
        "midlayer.mlp.up_proj.weight": r(inter, H),
        "midlayer.mlp.down_proj.weight": r(H, inter),
        "norm.weight": torch.ones(H),
        "lm_head.weight": torch.randn(dv, H, generator=g) * 2.0,
        "d2t": d2t,
        "t2d": t2d,
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    config = {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": H,
        "intermediate_size": inter,
        "num_hidden_layers": 1,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "head_dim": hd,
        "hidden_act": "silu",
        "vocab_size": V,
        "draft_vocab_size": dv,
        "rope_theta": 10000.0,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
        "attention_bias": False,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "eagle_aux_hidden_state_layer_ids": list(aux_layer_ids),
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder
