"""The Eagle3 draft for generation, read from the folder vLLM loads, with its own KV cache.

The exported folder is the contract (REFERENCE.md): `config.json` (Llama fields plus
`draft_vocab_size`, `target_hidden_size`, `eagle_aux_hidden_state_layer_ids`, ...) and
`model.safetensors` with `fc`, `midlayer.*`, `norm`, `lm_head`, `d2t`, `t2d` and no embedding
(the target's is shared). This module reads it the way vLLM's `llama_eagle3.py` does and runs the
draft incrementally; the trainer's own module is the reference it is tested against.

One draft position t reads (h_t, x_{t+1}): the target's fused hidden state at t (or, in later
chain steps, the draft's own previous output) and the embedding of the token after t, and
predicts token t+2. The decoder layer:
    residual = h;  x = cat(input_layernorm(embed(ids)), hidden_norm(h))
    a = o_proj(attention(q/k/v_proj(x))) + residual
    out = mlp(post_attention_layernorm(a)) + a          # fed back as h in the next chain step
    logits = lm_head(norm(out))                         # over the draft vocabulary
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import EngineError


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    dtype = x.dtype
    x = x.float()
    x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x.to(dtype)


@dataclass
class DraftConfig:
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    draft_vocab_size: int
    target_hidden_size: int
    rms_norm_eps: float
    rope_theta: float
    norm_before_residual: bool
    aux_layer_ids: list[int] | None
    """vLLM's convention: the state after k target layers (0 = embeddings)."""

    @staticmethod
    def from_json(cfg: dict) -> "DraftConfig":
        if cfg.get("num_hidden_layers", 1) != 1:
            raise EngineError(f"an Eagle3 draft has one decoder layer, this config has {cfg.get('num_hidden_layers')}")
        rope = cfg.get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type not in ("default", None):
            raise EngineError(f"rope scaling {rope_type!r} is not supported by the embedded backend's draft")
        rope_params = cfg.get("rope_parameters") or {}
        heads = cfg["num_attention_heads"]
        eagle = cfg.get("eagle_config") or {}
        aux = cfg.get("eagle_aux_hidden_state_layer_ids", eagle.get("eagle_aux_hidden_state_layer_ids"))
        return DraftConfig(
            hidden_size=cfg["hidden_size"],
            intermediate_size=cfg["intermediate_size"],
            num_heads=heads,
            num_kv_heads=cfg.get("num_key_value_heads", heads),
            head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
            vocab_size=cfg["vocab_size"],
            draft_vocab_size=cfg.get("draft_vocab_size") or cfg["vocab_size"],
            target_hidden_size=cfg.get("target_hidden_size") or cfg["hidden_size"],
            rms_norm_eps=cfg.get("rms_norm_eps", 1e-6),
            rope_theta=rope_params.get("rope_theta", cfg.get("rope_theta", 10000.0)),
            norm_before_residual=bool(cfg.get("norm_before_residual", False)),
            aux_layer_ids=list(aux) if aux is not None else None,
        )


class DraftCache:
    """Keys and values of the draft's one layer, preallocated; `crop` forgets rejected positions."""

    def __init__(self, capacity: int, kv_heads: int, head_dim: int, device, dtype) -> None:
        self.k = torch.empty(1, kv_heads, capacity, head_dim, device=device, dtype=dtype)
        self.v = torch.empty_like(self.k)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = k.shape[2]
        if self.length + n > self.k.shape[2]:
            raise EngineError(f"draft KV cache full ({self.k.shape[2]} positions): raise maxModelLen")
        self.k[:, :, self.length : self.length + n] = k
        self.v[:, :, self.length : self.length + n] = v
        self.length += n
        return self.k[:, :, : self.length], self.v[:, :, : self.length]

    def crop(self, length: int) -> None:
        self.length = min(self.length, length)


class Eagle3Draft(nn.Module):
    def __init__(self, cfg: DraftConfig, embed_tokens: nn.Module) -> None:
        super().__init__()
        self.cfg = cfg
        H, I, hd = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
        self.embed_tokens = embed_tokens  # the target's, shared and frozen
        self.fc = nn.Linear(3 * cfg.target_hidden_size, H, bias=False)
        self.hidden_norm = nn.Parameter(torch.ones(H))
        self.input_layernorm = nn.Parameter(torch.ones(H))
        self.post_attention_layernorm = nn.Parameter(torch.ones(H))
        self.q_proj = nn.Linear(2 * H, cfg.num_heads * hd, bias=False)
        self.k_proj = nn.Linear(2 * H, cfg.num_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(2 * H, cfg.num_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.num_heads * hd, H, bias=False)
        self.gate_proj = nn.Linear(H, I, bias=False)
        self.up_proj = nn.Linear(H, I, bias=False)
        self.down_proj = nn.Linear(I, H, bias=False)
        self.norm = nn.Parameter(torch.ones(H))
        self.lm_head = nn.Linear(H, cfg.draft_vocab_size, bias=False)
        self.register_buffer("d2t", torch.zeros(cfg.draft_vocab_size, dtype=torch.long))
        self.cache: DraftCache | None = None

    # Names in the exported safetensors -> attributes here.
    WEIGHT_NAMES = {
        "fc.weight": "fc.weight",
        "midlayer.hidden_norm.weight": "hidden_norm",
        "midlayer.input_layernorm.weight": "input_layernorm",
        "midlayer.post_attention_layernorm.weight": "post_attention_layernorm",
        "midlayer.self_attn.q_proj.weight": "q_proj.weight",
        "midlayer.self_attn.k_proj.weight": "k_proj.weight",
        "midlayer.self_attn.v_proj.weight": "v_proj.weight",
        "midlayer.self_attn.o_proj.weight": "o_proj.weight",
        "midlayer.mlp.gate_proj.weight": "gate_proj.weight",
        "midlayer.mlp.up_proj.weight": "up_proj.weight",
        "midlayer.mlp.down_proj.weight": "down_proj.weight",
        "norm.weight": "norm",
        "lm_head.weight": "lm_head.weight",
        "d2t": "d2t",
    }

    @classmethod
    def from_folder(cls, folder: str | Path, embed_tokens: nn.Module, device, dtype) -> "Eagle3Draft":
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg_path, weights_path = folder / "config.json", folder / "model.safetensors"
        for p in (cfg_path, weights_path):
            if not p.exists():
                raise EngineError(f"draft folder {folder} has no {p.name}", hint="pass the folder `eaglet train` exported")
        cfg = DraftConfig.from_json(json.loads(cfg_path.read_text()))
        state = load_file(str(weights_path))
        # The speculators layout and vLLM's own name the layer `layers.0.`; the export names it `midlayer.`.
        state = {k.replace("layers.0.", "midlayer.", 1) if k.startswith("layers.0.") else k: v for k, v in state.items()}
        draft = cls(cfg, embed_tokens)
        missing = [k for k in cls.WEIGHT_NAMES if k not in state]
        if missing:
            raise EngineError(f"{weights_path} lacks {', '.join(missing)}", hint="re-export the draft with `eaglet train`")
        own = dict(draft.named_parameters()) | dict(draft.named_buffers())
        for key, attr in cls.WEIGHT_NAMES.items():
            target = own[attr]
            if tuple(target.shape) != tuple(state[key].shape):
                raise EngineError(f"{weights_path}: {key} has shape {tuple(state[key].shape)}, the config implies {tuple(target.shape)}")
            with torch.no_grad():
                target.copy_(state[key])
        return draft.to(device=device, dtype=dtype).eval().requires_grad_(False)

    def draft_to_target(self, draft_ids: torch.Tensor) -> torch.Tensor:
        return draft_ids + self.d2t[draft_ids]

    def reset(self, capacity: int) -> None:
        c = self.cfg
        self.cache = DraftCache(capacity, c.num_kv_heads, c.head_dim, self.fc.weight.device, self.fc.weight.dtype)

    def fuse(self, taps: torch.Tensor) -> torch.Tensor:
        """[k, 3*target_hidden] target taps -> [k, H] (the `fc` projection)."""
        return self.fc(taps.to(self.fc.weight.dtype))

    def _rope(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # Angles in fp32 whatever the weights' dtype (as Llama's rotary embedding does).
        hd = self.cfg.head_dim
        inv_freq = 1.0 / (self.cfg.rope_theta ** (torch.arange(0, hd, 2, device=x.device, dtype=torch.float32) / hd))
        freqs = positions.float()[:, None] * inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    @torch.inference_mode()
    def step(self, ids: torch.Tensor, hidden: torch.Tensor, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs positions start..start+k-1 after the cached ones. ids: [k] tokens x_{t+1};
        hidden: [k, H] (fused target taps or the previous chain step's output).
        Returns (out [k, H] to feed back, draft-vocabulary logits [k, draft_vocab] fp32)."""
        c = self.cfg
        k = ids.shape[0]
        if self.cache.length != start:
            raise EngineError(f"draft cache holds {self.cache.length} positions, asked to continue at {start}")
        eps = c.rms_norm_eps
        embeds = rms_norm(self.embed_tokens(ids).to(hidden.dtype), self.input_layernorm, eps)
        if c.norm_before_residual:
            hidden = rms_norm(hidden, self.hidden_norm, eps)
            residual = hidden
        else:
            residual = hidden
            hidden = rms_norm(hidden, self.hidden_norm, eps)
        x = torch.cat([embeds, hidden], dim=-1)
        q = self.q_proj(x).view(k, c.num_heads, c.head_dim).transpose(0, 1)
        kk = self.k_proj(x).view(k, c.num_kv_heads, c.head_dim).transpose(0, 1)
        v = self.v_proj(x).view(k, c.num_kv_heads, c.head_dim).transpose(0, 1)
        positions = torch.arange(start, start + k, device=ids.device)
        q, kk = self._rope(q, positions), self._rope(kk, positions)
        keys, values = self.cache.append(kk[None], v[None])
        groups = c.num_heads // c.num_kv_heads
        keys = keys[0].repeat_interleave(groups, dim=0)
        values = values[0].repeat_interleave(groups, dim=0)
        total = keys.shape[1]
        # Query j (absolute position start+j) sees keys 0..start+j.
        mask = torch.arange(total, device=ids.device)[None, :] <= positions[:, None]
        attn = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        a = self.o_proj(attn.transpose(0, 1).reshape(k, c.num_heads * c.head_dim)) + residual
        h = rms_norm(a, self.post_attention_layernorm, eps)
        out = self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h)) + a
        logits = self.lm_head(rms_norm(out, self.norm, eps)).float()
        return out, logits
