"""Exported drafts: exactly the names, shapes and dtypes vLLM loads; round trips in both layouts."""

import json

import pytest
import torch
from safetensors import safe_open

from eaglet_engine.draft import TTTCache
from eaglet_engine.errors import EngineError
from eaglet_engine.export import expected_tensor_names, load_draft, load_target_embedding, read_draft_config, save_draft

from .tiny import tiny_draft, tiny_draft_config

VLLM_NAMES = [
    "d2t",
    "fc.weight",
    "lm_head.weight",
    "midlayer.hidden_norm.weight",
    "midlayer.input_layernorm.weight",
    "midlayer.mlp.down_proj.weight",
    "midlayer.mlp.gate_proj.weight",
    "midlayer.mlp.up_proj.weight",
    "midlayer.post_attention_layernorm.weight",
    "midlayer.self_attn.k_proj.weight",
    "midlayer.self_attn.o_proj.weight",
    "midlayer.self_attn.q_proj.weight",
    "midlayer.self_attn.v_proj.weight",
    "norm.weight",
    "t2d",
]


def _tensors(folder):
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_vllm_export_has_exactly_reference_names_shapes_and_dtypes(tmp_path):
    cfg = tiny_draft_config(extra={"architectures": ["LlamaForCausalLMEagle3"], "torch_dtype": "bfloat16", "eagle_aux_hidden_state_layer_ids": [2, 4, 5]})
    model = tiny_draft(cfg)
    out = save_draft(model, tmp_path / "draft")
    tensors = _tensors(out)
    assert sorted(tensors) == VLLM_NAMES == expected_tensor_names(cfg)
    h, inter, v = cfg.hidden_size, cfg.intermediate_size, cfg.draft_vocab_size
    q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    shapes = {
        "fc.weight": (h, 3 * h),
        "lm_head.weight": (v, h),
        "midlayer.self_attn.q_proj.weight": (q, 2 * h),
        "midlayer.self_attn.k_proj.weight": (kv, 2 * h),
        "midlayer.self_attn.v_proj.weight": (kv, 2 * h),
        "midlayer.self_attn.o_proj.weight": (h, q),
        "midlayer.mlp.gate_proj.weight": (inter, h),
        "midlayer.mlp.down_proj.weight": (h, inter),
        "d2t": (v,),
        "t2d": (cfg.vocab_size,),
    }
    for name, shape in shapes.items():
        assert tuple(tensors[name].shape) == shape, name
    assert tensors["d2t"].dtype == torch.int64 and tensors["t2d"].dtype == torch.bool
    assert all(t.dtype == torch.bfloat16 for k, t in tensors.items() if k not in ("d2t", "t2d"))
    assert torch.equal(tensors["d2t"], model.d2t) and torch.equal(tensors["t2d"], model.t2d)

    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLMEagle3"]
    assert config["model_type"] == "llama"
    assert config["draft_vocab_size"] == v and config["vocab_size"] == cfg.vocab_size
    assert config["num_hidden_layers"] == 1 and config["tie_word_embeddings"] is False
    assert config["norm_before_residual"] is False
    assert config["eagle_aux_hidden_state_layer_ids"] == [2, 4, 5]  # vLLM: state after k layers
    assert "target_hidden_size" not in config


def test_round_trip_in_both_layouts_gives_the_same_draft(tmp_path):
    model = tiny_draft()  # fp32 config: the export keeps fp32, so the round trip is exact
    for fmt in ("vllm", "speculators"):
        folder = save_draft(model, tmp_path / fmt, fmt=fmt, verifier={"name_or_path": "/m", "architectures": ["Qwen2AudioForConditionalGeneration"]}, speculative_tokens=3)
        again = load_draft(folder, embedding=model.embed_tokens)
        assert again.config == model.config
        sd, sd2 = model.state_dict(), again.state_dict()
        assert sd.keys() == sd2.keys()
        for k in sd:
            assert torch.equal(sd[k], sd2[k]), (fmt, k)
        taps = torch.randn(1, 5, model.config.fused_width)
        ids = torch.randint(0, model.config.vocab_size, (1, 5))
        pos = torch.arange(5)[None]
        a = model.logits(model.step(model.embed(ids), model.project(taps), pos, TTTCache("eager")))
        b = again.logits(again.step(again.embed(ids), again.project(taps), pos, TTTCache("eager")))
        assert torch.equal(a, b)
    spec = json.loads((tmp_path / "speculators" / "config.json").read_text())
    assert spec["architectures"] == ["Eagle3Speculator"] and spec["speculators_model_type"] == "eagle3"
    assert spec["speculators_config"]["verifier"]["name_or_path"] == "/m"
    assert spec["transformer_layer_config"]["hidden_size"] == model.config.hidden_size
    assert any(k.startswith("layers.0.") for k in _tensors(tmp_path / "speculators"))


def test_loader_refuses_foreign_or_incomplete_folders(tmp_path):
    with pytest.raises(EngineError, match="not an exported draft"):
        load_draft(tmp_path)
    folder = save_draft(tiny_draft(), tmp_path / "d")
    from safetensors.torch import save_file

    tensors = _tensors(folder)
    del tensors["lm_head.weight"]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(EngineError, match="missing \\['lm_head.weight'\\]"):
        load_draft(folder)
    body = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**body, "norm_before_residual": True}))
    with pytest.raises(EngineError, match="norm_before_residual"):
        read_draft_config(folder)


def test_target_embedding_is_read_from_single_or_sharded_checkpoints(tmp_path):
    from safetensors.torch import save_file

    emb = torch.randn(10, 4)
    save_file({"language_model.model.embed_tokens.weight": emb, "x": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    assert torch.equal(load_target_embedding(tmp_path, "language_model.model.embed_tokens.weight"), emb)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    save_file({"a": torch.zeros(1)}, str(sharded / "model-00001-of-00002.safetensors"))
    save_file({"emb": emb}, str(sharded / "model-00002-of-00002.safetensors"))
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors", "emb": "model-00002-of-00002.safetensors"}}))
    assert torch.equal(load_target_embedding(sharded, "emb"), emb)
    with pytest.raises(EngineError, match="no tensor 'nope'"):
        load_target_embedding(sharded, "nope")
