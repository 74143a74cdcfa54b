"""Exported draft folders that vLLM loads, and the one adapter between them and ``Eagle3Draft``.

Two layouts, both ``config.json`` + ``model.safetensors`` (no embedding: vLLM shares the target's):

* ``vllm`` (the default, what AngelSlim and EAGLE publish): a Llama-style config with
  ``architectures: ["LlamaForCausalLMEagle3"]``, ``draft_vocab_size`` and
  ``eagle_aux_hidden_state_layer_ids``; tensors ``fc.weight``, ``midlayer.*``, ``norm.weight``,
  ``lm_head.weight``, ``d2t`` (int64), ``t2d`` (bool). vLLM renames ``midlayer.`` to ``layers.0.``.
* ``speculators`` (vLLM auto-detects it): ``architectures: ["Eagle3Speculator"]``,
  ``speculators_model_type: "eagle3"``, the layer config under ``transformer_layer_config`` and
  the verifier under ``speculators_config``; tensors named ``layers.0.*``.

``to_vllm`` / ``from_vllm`` convert state dicts; ``save_draft`` / ``load_draft`` write and read
folders (``load_draft`` reads either layout).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .draft import DraftConfig, Eagle3Draft
from .errors import EngineError

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
VLLM_ARCHITECTURE = "LlamaForCausalLMEagle3"
SPECULATORS_ARCHITECTURE = "Eagle3Speculator"
VLLM_PREFIX = "midlayer."
SPECULATORS_PREFIX = "layers.0."

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def expected_tensor_names(cfg: DraftConfig, prefix: str = VLLM_PREFIX) -> list[str]:
    """Exactly the tensors an exported draft holds (REFERENCE.md's list; biases only when
    ``attention_bias``)."""
    names = ["fc.weight", "norm.weight", "lm_head.weight", "d2t", "t2d"]
    for norm in ("hidden_norm", "input_layernorm", "post_attention_layernorm"):
        names.append(f"{prefix}{norm}.weight")
    for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
        names.append(f"{prefix}self_attn.{proj}.weight")
    if cfg.attention_bias:
        names += [f"{prefix}self_attn.{p}.bias" for p in ("q_proj", "k_proj", "v_proj")]
    for proj in ("gate_proj", "up_proj", "down_proj"):
        names.append(f"{prefix}mlp.{proj}.weight")
    return sorted(names)


def to_vllm(state_dict: Mapping[str, torch.Tensor], cfg: DraftConfig, dtype: torch.dtype = torch.bfloat16, prefix: str = VLLM_PREFIX) -> dict[str, torch.Tensor]:
    """Draft state dict -> exported tensors: float weights in ``dtype``, d2t int64, t2d bool, no
    embedding, layer prefix ``prefix``. Refuses anything unexpected rather than exporting it."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        if name.startswith("embed_tokens") or name.endswith("rotary.inv_freq"):
            continue
        key = prefix + name[len(VLLM_PREFIX) :] if name.startswith(VLLM_PREFIX) else name
        if name == "d2t":
            out[key] = tensor.detach().to("cpu", torch.int64).contiguous()
        elif name == "t2d":
            out[key] = tensor.detach().to("cpu", torch.bool).contiguous()
        else:
            out[key] = tensor.detach().to("cpu", dtype).contiguous()
    expected = expected_tensor_names(cfg, prefix)
    if sorted(out) != expected:
        extra, missing = sorted(set(out) - set(expected)), sorted(set(expected) - set(out))
        raise EngineError(f"draft state dict does not match the export layout: unexpected {extra}, missing {missing}")
    return out


def from_vllm(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Exported tensors (either layer prefix) -> an ``Eagle3Draft`` state dict."""
    out = {}
    for name, tensor in tensors.items():
        if name.startswith("embed_tokens"):
            continue  # some exporters keep it; eaglet's drafts take the target's
        key = VLLM_PREFIX + name[len(SPECULATORS_PREFIX) :] if name.startswith(SPECULATORS_PREFIX) else name
        out[key] = tensor
    return out


def vllm_config(cfg: DraftConfig) -> dict[str, Any]:
    """The config.json vLLM's Eagle3 loader reads (the draft's aux layer ids travel in it, as the
    resolved draft config holds them)."""
    body = cfg.to_dict()
    body.setdefault("architectures", [VLLM_ARCHITECTURE])
    body["model_type"] = "llama"
    body["tie_word_embeddings"] = False
    body.setdefault("torch_dtype", "bfloat16")
    # vLLM's Eagle3 layer: the residual is the un-normalised hidden state.
    body["norm_before_residual"] = False
    return dict(sorted(body.items()))


def speculators_config(cfg: DraftConfig, verifier: Mapping[str, Any], speculative_tokens: int) -> dict[str, Any]:
    layer = {k: v for k, v in vllm_config(cfg).items() if k not in ("architectures", "draft_vocab_size", "target_hidden_size", "eagle_aux_hidden_state_layer_ids", "norm_before_residual")}
    body: dict[str, Any] = {
        "architectures": [SPECULATORS_ARCHITECTURE],
        "speculators_model_type": "eagle3",
        "draft_vocab_size": cfg.draft_vocab_size,
        "norm_before_residual": False,
        "transformer_layer_config": layer,
        "speculators_config": {
            "algorithm": "eagle3",
            "default_proposal_method": "greedy",
            "proposal_methods": [{"proposal_type": "greedy", "speculative_tokens": speculative_tokens, "verifier_accept_k": 1, "accept_tolerance": 0.0}],
            "verifier": dict(verifier),
        },
    }
    if cfg.target_hidden_size is not None and cfg.target_hidden_size != cfg.hidden_size:
        body["target_hidden_size"] = cfg.target_hidden_size
    ids = aux_layer_ids_of(cfg)
    if ids is not None:
        body["eagle_aux_hidden_state_layer_ids"] = list(ids)
    return body


def save_draft(
    model: Eagle3Draft,
    out_dir: str | Path,
    *,
    fmt: str = "vllm",
    verifier: Mapping[str, Any] | None = None,
    speculative_tokens: int | None = None,
    state_dict: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Writes ``config.json`` + ``model.safetensors`` in ``fmt`` ("vllm" or "speculators"; the
    latter names the verifier and the draft tokens per step, ``speculative_tokens``).
    ``state_dict`` overrides the model's (e.g. a full state dict gathered from FSDP shards)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    dtype = _DTYPES.get(str(cfg.extra.get("torch_dtype", "bfloat16")), torch.bfloat16)
    sd = state_dict if state_dict is not None else model.state_dict()
    if fmt == "vllm":
        tensors = to_vllm(sd, cfg, dtype, VLLM_PREFIX)
        config = vllm_config(cfg)
    elif fmt == "speculators":
        if speculative_tokens is None:
            raise EngineError("the speculators format needs speculative_tokens (the export config's speculativeTokens)")
        tensors = to_vllm(sd, cfg, dtype, SPECULATORS_PREFIX)
        config = speculators_config(cfg, verifier or {}, speculative_tokens)
    else:
        raise EngineError(f"unknown export format {fmt!r} (known: vllm, speculators)")
    save_file(tensors, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return out


def read_draft_config(folder: str | Path) -> DraftConfig:
    """The DraftConfig of an exported folder (either layout)."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise EngineError(f"{folder} holds no {CONFIG_FILE}: not an exported draft", code="EAGLET_DRAFT_INVALID")
    body = json.loads(path.read_text())
    if body.get("speculators_model_type") == "eagle3":
        layer = dict(body.get("transformer_layer_config", {}))
        layer["draft_vocab_size"] = body["draft_vocab_size"]
        if body.get("target_hidden_size") is not None:
            layer["target_hidden_size"] = body["target_hidden_size"]
        if body.get("eagle_aux_hidden_state_layer_ids") is not None:
            layer["eagle_aux_hidden_state_layer_ids"] = body["eagle_aux_hidden_state_layer_ids"]
        layer["architectures"] = [VLLM_ARCHITECTURE]
        body = layer
    if body.get("norm_before_residual"):
        raise EngineError(f"{path}: norm_before_residual=true drafts are not supported by eaglet's draft model", code="EAGLET_DRAFT_INVALID")
    for drop in ("norm_before_residual", "tie_word_embeddings", "model_type"):
        body.pop(drop, None)
    return DraftConfig.from_dict(body)


def aux_layer_ids_of(cfg: DraftConfig) -> tuple[int, ...] | None:
    """The target layers a draft reads, in vLLM's numbering (its config's
    ``eagle_aux_hidden_state_layer_ids``), if it says."""
    ids = cfg.extra.get("eagle_aux_hidden_state_layer_ids")
    return None if ids is None else tuple(int(i) for i in ids)


def load_draft(
    folder: str | Path,
    *,
    embedding: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> Eagle3Draft:
    """Loads an exported draft (either layout). ``embedding``: the target's embedding table
    [vocab, hidden] (see ``load_target_embedding``); without it ``embed`` refuses to run.
    ``dtype``: parameter dtype (default: the file's)."""
    folder = Path(folder)
    cfg = read_draft_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise EngineError(f"{folder} holds no {WEIGHTS_FILE}", code="EAGLET_DRAFT_INVALID")
    with safe_open(str(weights), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    sd = from_vllm(tensors)
    with torch.device("meta"):
        model = Eagle3Draft(cfg)
    missing = set(model.state_dict()) - set(sd)
    unexpected = set(sd) - set(model.state_dict())
    if missing or unexpected:
        raise EngineError(f"{weights}: tensors do not fit the config: missing {sorted(missing)}, unexpected {sorted(unexpected)}", code="EAGLET_DRAFT_INVALID")
    file_dtype = sd["fc.weight"].dtype
    model = model.to_empty(device=device)
    model.midlayer.self_attn.rotary.reset_inv_freq()  # not saved
    model.load_state_dict({k: v.to(device) for k, v in sd.items()})
    model.to(dtype or file_dtype)  # floating tensors only: d2t/t2d keep int64/bool
    if embedding is not None:
        model.set_embedding(embedding.to(device))
    return model


def load_target_embedding(model_dir: str | Path, key: str) -> torch.Tensor:
    """Reads one tensor (the target's embedding table, under the key its plugin's ``inspect``
    found) from a Hugging Face checkpoint folder without loading the model: single-file or
    sharded safetensors."""
    model_dir = Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        files = [model_dir / weight_map[key]] if key in weight_map else []
    else:
        files = sorted(model_dir.glob("*.safetensors"))
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            if key in f.keys():
                return f.get_tensor(key)
    raise EngineError(f"no tensor {key!r} in the safetensors of {model_dir}", code="EAGLET_TARGET_INVALID")
