"""The Eagle3 draft model: one Llama decoder layer fed [embedding, fused target hidden state].

Layout of this file, simplest first: the config, RMSNorm and rotary embeddings, the attention
kernels (the plain eager reference here, the fast one in ``kernels``, chosen through
``ATTENTION_KERNELS``), the two attention caches (training-time test and generation), then the
layer and the model.

The model's interface is deliberately narrow (see ``Eagle3Draft``): ``embed`` ids, ``project``
the three tapped target layers, run one decoder ``step``, compute ``logits``. The training-time
test (TTT) and speculative generation are short loops over those four calls; they differ only in
the cache passed to ``step``:

* ``TTTCache``: step 0 attends causally to its own keys; step i additionally attends, at each
  position t, to the keys that steps 1..i produced at that same position t. This is exactly what a
  chain of drafts sees at inference (the context's keys, then one new key per drafted token).
* ``KVCache``: ordinary incremental decoding with a key/value cache, for generation.

Parameter names equal vLLM's Eagle3 checkpoint names (``fc``, ``midlayer.*``, ``norm``,
``lm_head``, ``d2t``, ``t2d``); the embedding table is the target's, frozen and never saved.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .kernels import flash_ttt_attention

# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftConfig:
    """The draft architecture, in the field names of the Hugging Face ``config.json`` vLLM reads.

    Fields that do not change the computation (``architectures``, ``bos_token_id``,
    ``eagle_aux_hidden_state_layer_ids``, ...) travel in ``extra`` and are written back on export.
    """

    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    draft_vocab_size: int
    target_hidden_size: int | None = None
    rope_theta: float = 10000.0
    max_position_embeddings: int = 8192
    rms_norm_eps: float = 1e-6
    attention_bias: bool = False
    hidden_act: str = "silu"
    num_hidden_layers: int = 1
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.num_hidden_layers != 1:
            raise ValueError(f"an Eagle3 draft has exactly one decoder layer, got num_hidden_layers={self.num_hidden_layers}")
        if self.hidden_act != "silu":
            raise ValueError(f"hidden_act must be 'silu' (vLLM's Eagle3 Llama layer), got {self.hidden_act!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.draft_vocab_size > self.vocab_size:
            raise ValueError(f"draft_vocab_size ({self.draft_vocab_size}) exceeds vocab_size ({self.vocab_size})")

    @property
    def fused_width(self) -> int:
        """Width of the concatenated target hidden states that ``fc`` projects (3 x target hidden)."""
        return 3 * (self.target_hidden_size or self.hidden_size)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DraftConfig:
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "extra"}
        if kwargs.get("head_dim") is None and "hidden_size" in kwargs and "num_attention_heads" in kwargs:
            kwargs["head_dim"] = kwargs["hidden_size"] // kwargs["num_attention_heads"]
        # transformers 5 writes the rope settings as `rope_parameters` (a draft saved by another
        # trainer may carry only that); the theta must not silently fall back to the default.
        rope = data.get("rope_parameters") or data.get("rope_scaling") or {}
        if "rope_theta" not in kwargs and "rope_theta" in rope:
            kwargs["rope_theta"] = rope["rope_theta"]
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise ValueError(f"the draft's rope_type {rope_type!r} is not supported (an Eagle3 draft uses plain rope)")
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` body: computational fields plus everything carried in ``extra``."""
        out = {k: v for k, v in asdict(self).items() if k != "extra"}
        if out["target_hidden_size"] is None or out["target_hidden_size"] == out["hidden_size"]:
            del out["target_hidden_size"]  # vLLM reads its absence as "same as hidden_size"
        return {**self.extra, **out}


# --------------------------------------------------------------------------------------------
# Norm and rotary embeddings
# --------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """Llama's RMSNorm: normalise in fp32, scale in the input dtype (under autocast the fp32
    parameter is cast, so the output dtype is that of a bf16 model)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight.to(dtype) * x32.to(dtype)


class RotaryEmbedding(nn.Module):
    """Llama (NeoX-style, rotate-half) rotary position embedding; cos/sin computed in fp32."""

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        self.head_dim, self.theta = head_dim, theta
        self.register_buffer("inv_freq", torch.empty(head_dim // 2), persistent=False)
        self.reset_inv_freq()

    def reset_inv_freq(self) -> None:
        """(Re)computes the frequencies: they are not saved, so a model materialised from the meta
        device calls this."""
        exponent = torch.arange(0, self.head_dim, 2, dtype=torch.float64, device="cpu") / self.head_dim
        with torch.no_grad():
            self.inv_freq.copy_((1.0 / (self.theta**exponent)).float())

    def forward(self, position_ids: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """position_ids [B, T] -> cos, sin [B, 1, T, head_dim]."""
        freqs = position_ids.float()[..., None] * self.inv_freq.float()
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]


def _rotate_half(x: Tensor) -> Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    return x * cos + _rotate_half(x) * sin


# --------------------------------------------------------------------------------------------
# Attention kernels for the training-time test
#
# Shapes: q [B, Hq, Tq, D]; keys/values of step 0 [B, Hkv, Tk, D], Tk >= Tq, of steps 1..i
# [B, Hkv, Tq, D]: the queries are the last Tq positions of step 0's keys (the objective passes
# only the rows some loss reads). Step i's query at position t attends to step 0's keys at
# positions <= t and to the keys of steps 1..i at position t, in one softmax. The eager reference
# is here; the fast kernel (``kernels.flash_ttt_attention``) computes the same function, which
# tests prove forward and backward.
# --------------------------------------------------------------------------------------------

TTTAttentionKernel = Callable[[Tensor, Sequence[Tensor], Sequence[Tensor], float], Tensor]


def eager_ttt_attention(q: Tensor, keys: Sequence[Tensor], values: Sequence[Tensor], scale: float) -> Tensor:
    """The reference: materialises the [T, T + i] score matrix in fp32, as the original code does.

    Kept because it is obviously right; it is the memory wall at long context, so training uses
    ``kernels.flash_ttt_attention``.
    """
    b, hq, t, d = q.shape
    tk = keys[0].shape[2]
    group = hq // keys[0].shape[1]
    k0 = keys[0].repeat_interleave(group, dim=1)
    v0 = values[0].repeat_interleave(group, dim=1)
    acc = torch.promote_types(q.dtype, torch.float32)  # fp32 (fp64 stays fp64 in tests)
    scores = torch.matmul(q, k0.transpose(-1, -2)).to(acc) * scale
    # Query j sits at position tk - t + j and sees step 0's keys up to there.
    causal = torch.ones(t, tk, dtype=torch.bool, device=q.device).triu(1 + tk - t)
    scores = scores.masked_fill(causal, float("-inf"))
    diag = [(q * k.repeat_interleave(group, dim=1)).sum(-1, keepdim=True).to(acc) * scale for k in keys[1:]]
    probs = torch.softmax(torch.cat([scores, *diag], dim=-1), dim=-1).to(q.dtype)
    out = torch.matmul(probs[..., :tk], v0)
    for j, v in enumerate(values[1:]):
        out = out + probs[..., tk + j : tk + j + 1] * v.repeat_interleave(group, dim=1)
    return out


# One lookup, not string switches inside constructors.
ATTENTION_KERNELS: dict[str, TTTAttentionKernel] = {
    "eager": eager_ttt_attention,
    "flash": flash_ttt_attention,
}


def ttt_attention_kernel(name: str = "flash", *, compiled: bool = False) -> TTTAttentionKernel:
    """The kernel called ``name``; ``compiled`` fuses the flash kernel's merge with torch.compile."""
    try:
        kernel = ATTENTION_KERNELS[name]
    except KeyError:
        raise ValueError(f"unknown attention kernel {name!r}; known: {sorted(ATTENTION_KERNELS)}") from None
    return functools.partial(flash_ttt_attention, compiled=True) if compiled and kernel is flash_ttt_attention else kernel


# --------------------------------------------------------------------------------------------
# Caches: what a decoder step attends to
# --------------------------------------------------------------------------------------------


class TTTCache:
    """Keys and values of the training-time test's steps so far (step 0 full, later steps per
    position). Each ``attend`` call is one TTT step.

    Step 0's keys may cover more rows than the queries: the objective runs the queries, and every
    later step, only on the rows from the first one some loss reads (a record's prompt and audio
    placeholders need step 0's keys, not its outputs); the queries are then the last rows of step
    0's keys, and later steps' keys cover the queries' rows."""

    def __init__(self, kernel: TTTAttentionKernel | str = "flash") -> None:
        self.kernel = ttt_attention_kernel(kernel) if isinstance(kernel, str) else kernel
        self.keys: list[Tensor] = []
        self.values: list[Tensor] = []

    @property
    def step(self) -> int:
        """Index of the next step (also its rope position offset)."""
        return len(self.keys)

    def attend(self, q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
        self.keys.append(k)
        self.values.append(v)
        return self.kernel(q, self.keys, self.values, scale)


class KVCache:
    """An ordinary key/value cache for generation: keys of every earlier position, in order.

    ``attend`` appends the new keys and lets each new query see every cached key plus the new keys
    up to its own position. ``crop(n)`` drops everything after the first n positions (rejected
    drafts).
    """

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def attend(self, q: Tensor, k: Tensor, v: Tensor, scale: float) -> Tensor:
        past = self.length
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        group = q.shape[1] // k.shape[1]
        keys = self.k.repeat_interleave(group, dim=1)
        values = self.v.repeat_interleave(group, dim=1)
        t_new = q.shape[2]
        if t_new == 1:
            return F.scaled_dot_product_attention(q, keys, values, scale=scale)
        if past == 0:
            return F.scaled_dot_product_attention(q, keys, values, is_causal=True, scale=scale)
        allowed = torch.ones(t_new, past + t_new, dtype=torch.bool, device=q.device).tril(past)
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed, scale=scale)

    def crop(self, length: int) -> None:
        if self.k is not None:
            self.k = self.k[:, :, :length]
            self.v = self.v[:, :, :length]


# --------------------------------------------------------------------------------------------
# The decoder layer and the model
# --------------------------------------------------------------------------------------------


class DraftAttention(nn.Module):
    """Self-attention whose q/k/v read the 2H-wide [embedding, hidden] input; the cache decides
    which keys each query sees."""

    def __init__(self, cfg: DraftConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.num_kv_heads = cfg.num_key_value_heads
        self.head_dim = cfg.head_dim
        self.scale = 1.0 / math.sqrt(cfg.head_dim)
        width = 2 * cfg.hidden_size
        self.q_proj = nn.Linear(width, cfg.num_attention_heads * cfg.head_dim, bias=cfg.attention_bias)
        self.k_proj = nn.Linear(width, cfg.num_key_value_heads * cfg.head_dim, bias=cfg.attention_bias)
        self.v_proj = nn.Linear(width, cfg.num_key_value_heads * cfg.head_dim, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(cfg.num_attention_heads * cfg.head_dim, cfg.hidden_size, bias=False)
        self.rotary = RotaryEmbedding(cfg.head_dim, cfg.rope_theta)

    def project(self, x: Tensor, position_ids: Tensor, query_start: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v with rope applied, as [B, H, T, D] views of [B, T, H, D] storage (the layout
        flash kernels read without copies); q only from row ``query_start`` on."""
        b, t, _ = x.shape
        q = self.q_proj(x[:, query_start:]).view(b, t - query_start, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = self.rotary(position_ids, k.dtype)
        return apply_rotary(q, cos[:, :, query_start:], sin[:, :, query_start:]), apply_rotary(k, cos, sin), v

    def output(self, attn: Tensor) -> Tensor:
        b, _, t, _ = attn.shape
        return self.o_proj(attn.transpose(1, 2).reshape(b, t, -1))

    def forward(self, x: Tensor, position_ids: Tensor, cache: TTTCache | KVCache) -> Tensor:
        q, k, v = self.project(x, position_ids)
        return self.output(cache.attend(q, k, v, self.scale))


class DraftMLP(nn.Module):
    def __init__(self, cfg: DraftConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DraftDecoderLayer(nn.Module):
    """vLLM's Eagle3 Llama layer: q/k/v read cat(input_layernorm(embedding), hidden_norm(h));
    the residual is h; then post-attention norm, SiLU MLP, residual."""

    def __init__(self, cfg: DraftConfig) -> None:
        super().__init__()
        self.hidden_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = DraftAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = DraftMLP(cfg)

    def attention_inputs(self, embeds: Tensor, hidden: Tensor, position_ids: Tensor, query_start: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """Everything before the attention kernel: both norms, the concatenation, q/k/v, rope."""
        x = torch.cat([self.input_layernorm(embeds), self.hidden_norm(hidden)], dim=-1)
        return self.self_attn.project(x, position_ids, query_start)

    def output(self, hidden: Tensor, attn: Tensor) -> Tensor:
        """Everything after it: o_proj, residual, post-attention norm, MLP, residual."""
        h = hidden + self.self_attn.output(attn)
        return h + self.mlp(self.post_attention_layernorm(h))

    def forward(self, embeds: Tensor, hidden: Tensor, position_ids: Tensor, cache: TTTCache | KVCache, query_start: int = 0) -> Tensor:
        """``query_start``: keys and values of every row, queries (and outputs) from this row on
        (the training-time test's first step; see ``TTTCache``)."""
        # Queries only where outputs are wanted: the rows before query_start would be projected,
        # rotated and then dropped, forward and backward (step 0 keeps keys on rows no loss reads,
        # e.g. a 30 s clip's 750 audio placeholders).
        q, k, v = self._attention_inputs(embeds, hidden, position_ids, query_start)
        attn = cache.attend(q, k, v, self.self_attn.scale)
        return self._output(hidden[:, query_start:], attn)

    # The two halves around the attention kernel, replaced by compiled versions by
    # ``Eagle3Draft.fuse`` (the kernel itself and the caches stay eager).
    def _attention_inputs(self, embeds: Tensor, hidden: Tensor, position_ids: Tensor, query_start: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        return self.attention_inputs(embeds, hidden, position_ids, query_start)

    def _output(self, hidden: Tensor, attn: Tensor) -> Tensor:
        return self.output(hidden, attn)


class Eagle3Draft(nn.Module):
    """The Eagle3 draft model.

    The interface the trainer and the generator use:

    * ``embed(ids)``: token embeddings from the target's frozen table (set with ``set_embedding``).
    * ``project(taps)``: the concatenated hidden states of the three tapped target layers
      [B, T, 3 * target_hidden] -> [B, T, hidden] through ``fc``.
    * ``step(embeds, hidden, position_ids, cache)``: one decoder step; returns the new hidden
      state, which is both the input of the next step and the input of ``logits``.
    * ``logits(hidden)``: fp32 logits over the draft vocabulary; ``to_target_ids`` maps draft ids
      to target ids through ``d2t``.

    Buffers: ``d2t`` (int64 offsets, target id = i + d2t[i]) and ``t2d`` (bool over the target
    vocabulary) are saved; the embedding is a non-persistent buffer (never saved, never trained).
    """

    def __init__(self, cfg: DraftConfig) -> None:
        super().__init__()
        self.config = cfg
        self.fc = nn.Linear(cfg.fused_width, cfg.hidden_size, bias=False)
        self.midlayer = DraftDecoderLayer(cfg)
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.draft_vocab_size, bias=False)
        self.register_buffer("d2t", torch.zeros(cfg.draft_vocab_size, dtype=torch.int64))
        self.register_buffer("t2d", torch.zeros(cfg.vocab_size, dtype=torch.bool))
        self.register_buffer("embed_tokens", torch.empty(0), persistent=False)

    # -- setup --------------------------------------------------------------------------------

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """The reference's initialisation: AngelSlim and SpecForge build their drafts with the
        constructors alone, so every linear layer keeps PyTorch's default, uniform in
        +-1/sqrt(fan_in) (weights and biases); norms are 1.

        It scales with the width. A fixed normal(0, 0.02) (Llama's ``initializer_range``) starts a
        narrow draft with its attention and MLP branches 24x and 150x below the projected hidden
        state and slowed learning (eval acc_0 at step 100: 0.47-0.56 against 0.69-0.74 this way,
        docs/perf/quality.md); on the 7B draft it would be 2-4x larger than the reference's."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.weight.shape[1])
                with torch.no_grad():
                    module.weight.uniform_(-bound, bound, generator=generator)
                    if module.bias is not None:
                        module.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)

    def set_embedding(self, weight: Tensor) -> None:
        """Uses the target's embedding table (shared, frozen). Shape [vocab_size, hidden_size]."""
        expected = (self.config.vocab_size, self.config.hidden_size)
        if tuple(weight.shape) != expected:
            raise ValueError(f"embedding has shape {tuple(weight.shape)}, the draft expects {expected}")
        self.embed_tokens = weight.detach()

    def set_vocab(self, d2t: Tensor, t2d: Tensor) -> None:
        """Installs the draft vocabulary mapping (from ``eaglet data vocab``)."""
        if d2t.shape != self.d2t.shape or t2d.shape != self.t2d.shape:
            raise ValueError(
                f"vocab mapping shapes d2t {tuple(d2t.shape)} / t2d {tuple(t2d.shape)} do not fit the draft "
                f"(draft_vocab_size {self.config.draft_vocab_size}, vocab_size {self.config.vocab_size})"
            )
        with torch.no_grad():
            self.d2t.copy_(d2t.to(torch.int64))
            self.t2d.copy_(t2d.to(torch.bool))

    # -- the four calls -----------------------------------------------------------------------

    def embed(self, ids: Tensor) -> Tensor:
        if self.embed_tokens.numel() == 0:
            raise RuntimeError("the draft has no embedding table: call set_embedding(target embedding) first")
        return F.embedding(ids, self.embed_tokens)

    def project(self, taps: Tensor) -> Tensor:
        return self.fc(taps)

    def step(self, embeds: Tensor, hidden: Tensor, position_ids: Tensor, cache: TTTCache | KVCache, query_start: int = 0) -> Tensor:
        return self.midlayer(embeds.to(hidden.dtype), hidden, position_ids, cache, query_start)

    def logits(self, hidden: Tensor) -> Tensor:
        logits = self.lm_head(self.norm(hidden))
        return logits.to(torch.promote_types(logits.dtype, torch.float32))  # fp32 (fp64 stays)

    # -- helpers ------------------------------------------------------------------------------

    def head_input(self, hidden: Tensor) -> Tensor:
        """What ``lm_head`` reads (the final norm's output); the fused loss uses it with
        ``lm_head.weight`` instead of materialising ``logits``."""
        return self.norm(hidden)

    def fuse(self, **options: Any) -> Eagle3Draft:
        """Fuses the elementwise work around the attention kernel (norms, concatenation, rope,
        SiLU, residuals) with torch.compile; the attention kernel and caches stay as they are.
        Shapes are dynamic, so a new sequence length does not recompile. Same function: a CUDA
        test compares it with the eager layer."""
        layer = self.midlayer
        layer._attention_inputs = torch.compile(layer.attention_inputs, dynamic=True, **options)  # type: ignore[method-assign]
        layer._output = torch.compile(layer.output, dynamic=True, **options)  # type: ignore[method-assign]
        return self

    def to_target_ids(self, draft_ids: Tensor) -> Tensor:
        return draft_ids + self.d2t[draft_ids]

    def forward(self, *_: Any, **__: Any) -> Tensor:  # pragma: no cover - guidance only
        raise TypeError("Eagle3Draft has no forward(): use embed/project/step/logits (see the class docstring)")


def build_draft(cfg: DraftConfig | Mapping[str, Any], *, seed: int | None = None, device: torch.device | str | None = None) -> Eagle3Draft:
    """A freshly initialised draft (fp32 parameters) on ``device``."""
    cfg = cfg if isinstance(cfg, DraftConfig) else DraftConfig.from_dict(cfg)
    with torch.device(device or "cpu"):
        model = Eagle3Draft(cfg)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=model.fc.weight.device).manual_seed(seed)
    model.reset_parameters(generator=generator)
    return model
