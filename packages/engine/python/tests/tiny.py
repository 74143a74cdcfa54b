"""Tiny configs and builders shared by the engine's tests (transformers' model-tester sizes)."""

from __future__ import annotations

import torch

from eaglet_engine.draft import DraftConfig, Eagle3Draft, build_draft


def tiny_draft_config(**over) -> DraftConfig:
    base = dict(
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        vocab_size=96,
        draft_vocab_size=40,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        extra={"architectures": ["LlamaForCausalLMEagle3"], "torch_dtype": "float32"},
    )
    base.update(over)
    return DraftConfig(**base)


def tiny_vocab(vocab_size: int, draft_vocab_size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random draft vocabulary: draft_vocab_size distinct target ids, ascending."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randperm(vocab_size, generator=g)[:draft_vocab_size].sort().values
    d2t = ids - torch.arange(draft_vocab_size)
    t2d = torch.zeros(vocab_size, dtype=torch.bool)
    t2d[ids] = True
    return d2t.to(torch.int64), t2d


def tiny_draft(cfg: DraftConfig | None = None, seed: int = 0, dtype: torch.dtype = torch.float32) -> Eagle3Draft:
    cfg = cfg or tiny_draft_config()
    model = build_draft(cfg, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    model.set_embedding(torch.randn(cfg.vocab_size, cfg.hidden_size, generator=g))
    model.set_vocab(*tiny_vocab(cfg.vocab_size, cfg.draft_vocab_size, seed))
    # Non-trivial norm weights, so a test notices a norm applied to the wrong tensor.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5, generator=g)
    return model.to(dtype)


def qwen2_audio_config(*, vocab: int, audio_token: int, hidden: int, layers: int, d_model: int, max_positions: int):
    """A Qwen2AudioConfig with the real audio geometry (128 mel bins, 1500 encoder positions, so 30 s
    gives 750 audio tokens) and tiny widths: one encoder layer, 4 heads / 2 kv heads in the text model."""
    from transformers import Qwen2AudioConfig

    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder",
            "d_model": d_model,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 2 * d_model,
            "num_mel_bins": 128,
            "max_source_positions": 1500,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": vocab,
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": max_positions,
            "rope_theta": 10000.0,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
        },
        audio_token_index=audio_token,
    )
    config.architectures = ["Qwen2AudioForConditionalGeneration"]
    return config
