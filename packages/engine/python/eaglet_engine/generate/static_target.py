"""The target's text decoder on static caches: the fast path's forward.

It runs the decoder's own weights (read from its modules: `layers`, `norm`, `rotary_emb`) through
a few plain functions over a `StaticKVCache`, so that a step is a fixed sequence of kernels on
fixed buffers (CUDA-graph capturable) and the elementwise work around the matrix products can be
fused by torch.compile. Each layer's q/k/v projections and gate/up projections become one matrix
product each (the module weights become views of the fused ones, so memory is not doubled): at
batch 1 a step reads every weight once, and fewer, larger products read them faster.

The functions compute what transformers' Llama-family decoder layer computes (RMSNorm, rotary
q/k with optional q/k/v bias, attention, SiLU-gated MLP, two residuals). `unsupported_reason`
checks a decoder has exactly that layout, and `StaticTarget` compares its output with the
decoder's own forward once at start-up, so a model of another layout is refused (and generation
keeps the eager path) rather than computed wrongly.

With `compile` on CUDA in 16 bits, a step of 1 to `fused_decode.MAX_TOKENS` tokens over the cache
(decode, verification) runs each layer as the Triton kernels of `fused_decode` instead (tuned at
start-up, then checked against these functions); a prompt runs the functions below, compiled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import fused_decode
from .decode_compile import one_token_compiled
from .static_cache import StaticKVCache

log = logging.getLogger("eaglet.generate")


class FastPathUnsupported(Exception):
    """The target cannot run on the fast path (the reason says why); generation stays eager."""


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """transformers' RMSNorm of Llama-layout decoders: normalise in fp32, round to the input dtype, scale."""
    dtype = x.dtype
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(dtype)


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def pre_attention(x: Tensor, ln: Tensor, eps: float, w_qkv: Tensor, b_qkv: Tensor | None, cos: Tensor, sin: Tensor, heads: int, kv_heads: int) -> tuple[Tensor, Tensor]:
    """x [T, H] -> q [heads, T, D] and kv [2, kv_heads, T, D], rotary embedding applied."""
    t, d = x.shape[0], cos.shape[-1]
    qkv = F.linear(rms_norm(x, ln, eps), w_qkv, b_qkv)
    q, k, v = qkv.split([heads * d, kv_heads * d, kv_heads * d], dim=-1)
    q = q.view(t, heads, d).transpose(0, 1)
    k = k.view(t, kv_heads, d).transpose(0, 1)
    v = v.view(t, kv_heads, d).transpose(0, 1)
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    return q.contiguous(), torch.stack([k, v])  # contiguous here, in the fused kernel: the attention kernel would copy it


def post_attention(x: Tensor, attn: Tensor, w_o: Tensor, ln: Tensor, eps: float, w_gate_up: Tensor, w_down: Tensor) -> Tensor:
    """Output projection and residual, then the SiLU-gated MLP and residual. attn [heads, T, D]."""
    x = x + F.linear(attn.transpose(0, 1).reshape(x.shape[0], -1), w_o)
    gate, up = F.linear(rms_norm(x, ln, eps), w_gate_up).chunk(2, dim=-1)
    return x + F.linear(F.silu(gate) * up, w_down)


@dataclass
class LayerWeights:
    ln1: Tensor
    eps1: float
    w_qkv: Tensor
    b_qkv: Tensor | None
    w_o: Tensor
    ln2: Tensor
    eps2: float
    w_gate_up: Tensor
    w_down: Tensor


def _norm_eps(norm: nn.Module) -> float | None:
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
    return float(eps) if isinstance(eps, (int, float)) else None


def unsupported_reason(decoder: nn.Module) -> str | None:
    """Why this decoder's layers are not the Llama-family layout the fast path computes, or None."""
    for name in ("layers", "norm", "rotary_emb", "embed_tokens"):
        if not hasattr(decoder, name):
            return f"the decoder has no `{name}`"
    probe = torch.randn(3, decoder.norm.weight.shape[0], generator=torch.Generator().manual_seed(0))
    for i, layer in enumerate(decoder.layers):
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if attn is None or mlp is None:
            return f"layer {i} has no self_attn/mlp"
        extra = {n for n, _ in attn.named_children()} - {"q_proj", "k_proj", "v_proj", "o_proj"}
        if extra:
            return f"layer {i}'s attention has extra parts {sorted(extra)}"
        if not isinstance(getattr(attn, "head_dim", None), int):
            return f"layer {i}'s attention does not say its head_dim"
        if getattr(attn, "sliding_window", None):
            return f"layer {i} uses sliding-window attention"
        linears = [getattr(attn, n, None) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
        linears += [getattr(mlp, n, None) for n in ("gate_proj", "up_proj", "down_proj")]
        if not all(isinstance(m, nn.Linear) for m in linears):
            return f"layer {i} lacks the q/k/v/o and gate/up/down linear projections"
        if any(m.bias is not None for m in linears[3:]):
            return f"layer {i} has biases on its output or MLP projections"
        for norm_name in ("input_layernorm", "post_attention_layernorm"):
            norm = getattr(layer, norm_name, None)
            eps = None if norm is None else _norm_eps(norm)
            if eps is None or not hasattr(norm, "weight"):
                return f"layer {i} has no RMSNorm `{norm_name}`"
            with torch.no_grad():
                x = probe.to(norm.weight.device, norm.weight.dtype)
                if not torch.allclose(norm(x).float(), rms_norm(x, norm.weight, eps).float(), rtol=1e-2, atol=1e-2):
                    return f"layer {i}'s {norm_name} is not a plain RMSNorm"
        act = getattr(mlp, "act_fn", None)
        with torch.no_grad():
            x = probe.to(linears[4].weight.device, torch.float32)
            if act is None or not torch.allclose(act(x), F.silu(x), atol=1e-6):
                return f"layer {i}'s MLP activation is not SiLU"
    if _norm_eps(decoder.norm) is None:
        return "the decoder's final norm is not an RMSNorm"
    return None


def fuse_linears(linears: list[nn.Linear]) -> tuple[Tensor, Tensor | None]:
    """One weight (and bias) for several projections of the same input; the modules keep working
    on views of it, so the model still holds each weight once."""
    weight = torch.cat([m.weight.detach() for m in linears])
    bias = None
    if any(m.bias is not None for m in linears):
        bias = torch.cat([m.bias.detach() if m.bias is not None else m.weight.new_zeros(m.out_features) for m in linears])
    start = 0
    for m in linears:
        rows = slice(start, start + m.out_features)
        m.weight = nn.Parameter(weight[rows], requires_grad=False)
        if m.bias is not None:
            m.bias = nn.Parameter(bias[rows], requires_grad=False)
        start += m.out_features
    return weight, bias


class StaticTarget:
    """The decoder's forward over a static KV cache. `forward` processes T tokens (embeddings) at
    `positions`: from position 0 with `bucket=None` (a prompt), else attending over the first
    `bucket` cached positions. It returns the final-norm hidden states and, when asked, the hidden
    states after the `aux_layer_ids` layers concatenated ([T, 3H], what the Eagle3 draft's `fc`
    reads; id k is the state after k layers, 0 the embeddings, as vLLM counts)."""

    def __init__(self, decoder: nn.Module, lm_head_weight: Tensor, aux_layer_ids: list[int], capacity: int, compile: bool = False) -> None:
        reason = unsupported_reason(decoder)
        if reason:
            raise FastPathUnsupported(reason)
        self.decoder = decoder
        layers = decoder.layers
        self.num_layers = len(layers)
        for k in aux_layer_ids:
            if not 0 <= k <= self.num_layers:
                raise FastPathUnsupported(f"aux layer id {k} is outside 0..{self.num_layers}")
        self.aux_layer_ids = list(aux_layer_ids)
        self.lm_head_weight = lm_head_weight
        first = layers[0].self_attn
        self.head_dim = int(first.head_dim)
        self.heads = first.q_proj.out_features // self.head_dim
        self.kv_heads = first.k_proj.out_features // self.head_dim
        self.scale = float(getattr(first, "scaling", self.head_dim**-0.5))
        self.hidden_size = decoder.norm.weight.shape[0]
        self.device, self.dtype = lm_head_weight.device, lm_head_weight.dtype
        self.weights = []
        for layer in layers:
            a, m = layer.self_attn, layer.mlp
            w_qkv, b_qkv = fuse_linears([a.q_proj, a.k_proj, a.v_proj])
            w_gate_up, _ = fuse_linears([m.gate_proj, m.up_proj])
            self.weights.append(
                LayerWeights(
                    layer.input_layernorm.weight, _norm_eps(layer.input_layernorm), w_qkv, b_qkv, a.o_proj.weight,
                    layer.post_attention_layernorm.weight, _norm_eps(layer.post_attention_layernorm), w_gate_up, m.down_proj.weight,
                )
            )  # fmt: skip
        self.norm_weight, self.norm_eps = decoder.norm.weight, _norm_eps(decoder.norm)
        self.capacity = capacity
        with torch.inference_mode():
            # The decoder's own rotary module, evaluated once for every position.
            positions = torch.arange(capacity, device=self.device)[None]
            cos, sin = decoder.rotary_emb(torch.zeros(1, device=self.device, dtype=self.dtype), positions)
            self.cos, self.sin = cos[0].to(self.dtype), sin[0].to(self.dtype)
        self.cache = StaticKVCache(self.num_layers, self.kv_heads, self.head_dim, capacity, self.device, self.dtype)
        self.compiled = False
        self._pre, self._post = pre_attention, post_attention
        self.fused: fused_decode.FusedDecodeLayer | None = None  # set by _start_fused
        self.fused_tuning: dict | None = None
        if compile:
            self._pre = one_token_compiled(torch.compile(pre_attention), pre_attention, 0, self.device)
            self._post = one_token_compiled(torch.compile(post_attention), post_attention, 0, self.device)
            self.compiled = True
        self._check_against_decoder()
        if compile and fused_decode.serves(self.device, self.dtype, 1, self.head_dim):
            self._start_fused()

    @property
    def decode_kernels(self) -> str:
        """What decode and verification steps run: 'fused' (fused_decode's kernels), 'compiled' or 'plain' functions."""
        return "fused" if self.fused is not None else "compiled" if self.compiled else "plain"

    @torch.inference_mode()
    def forward(self, x: Tensor, positions: Tensor, bucket: int | None, want_taps: bool = False) -> tuple[Tensor, Tensor | None]:
        taps = {0: x} if want_taps and 0 in self.aux_layer_ids else {}
        if self.fused is not None and bucket is not None and x.shape[0] <= fused_decode.MAX_TOKENS:
            for i, w in enumerate(self.weights):
                x = self.fused(x, w, self.cache.kv[i], positions, self.cos, self.sin, bucket, self.scale)
                if want_taps and i + 1 in self.aux_layer_ids:
                    taps[i + 1] = x
            return self._final(x, taps, want_taps)
        cos = self.cos.index_select(0, positions)
        sin = self.sin.index_select(0, positions)
        bias = self.cache.bias_for(positions, bucket)
        # One compiled graph serves every token count above 1 (prompts, verification); 1 (decode)
        # gets its own. Marked here, so the first compilation is already the general one.
        dynamic = self.compiled and x.shape[0] > 1
        for i, w in enumerate(self.weights):
            if dynamic:
                for t, dim in ((x, 0), (cos, 0), (sin, 0)):
                    torch._dynamo.maybe_mark_dynamic(t, dim)
            q, kv = self._pre(x, w.ln1, w.eps1, w.w_qkv, w.b_qkv, cos, sin, self.heads, self.kv_heads)
            attn = self.cache.attend(i, q, kv, positions, bucket, bias, self.scale)
            if dynamic:
                torch._dynamo.maybe_mark_dynamic(attn, 1)
            x = self._post(x, attn, w.w_o, w.ln2, w.eps2, w.w_gate_up, w.w_down)
            if want_taps and i + 1 in self.aux_layer_ids:
                taps[i + 1] = x
        return self._final(x, taps, want_taps)

    def _final(self, x: Tensor, taps: dict[int, Tensor], want_taps: bool) -> tuple[Tensor, Tensor | None]:
        hidden = rms_norm(x, self.norm_weight, self.norm_eps)
        return hidden, (torch.cat([taps[k] for k in self.aux_layer_ids], dim=-1) if want_taps else None)

    def logits(self, hidden: Tensor) -> Tensor:
        """[T, H] final-norm states -> [T, V] fp32 logits."""
        return F.linear(hidden, self.lm_head_weight).float()

    def embed(self, ids: Tensor) -> Tensor:
        return self.decoder.embed_tokens(ids)

    @torch.inference_mode()
    def _check_against_decoder(self) -> None:
        """The fast forward must equal the decoder's own on a short random prompt; a compile
        failure falls back to the plain functions first."""
        ids = torch.randint(0, self.lm_head_weight.shape[0], (1, 8), generator=torch.Generator().manual_seed(0)).to(self.device)
        embeds = self.decoder.embed_tokens(ids)
        expected = self.decoder(inputs_embeds=embeds, use_cache=False).last_hidden_state[0].float()
        positions = torch.arange(8, device=self.device)
        try:
            got = self.forward(embeds[0], positions, None)[0].float()
        except Exception as e:  # noqa: BLE001 - no compiler on this machine, say: run the plain functions
            if not self.compiled:
                raise
            log.warning("torch.compile of the fast decode path failed, running it uncompiled: %s", e)
            self._pre, self._post, self.compiled = pre_attention, post_attention, False
            got = self.forward(embeds[0], positions, None)[0].float()
        err = relative_error(got, expected)
        if not err <= self._tolerance:
            raise FastPathUnsupported(f"the fast forward differs from the decoder's own (relative error {err:.2e})")

    @property
    def _tolerance(self) -> float:
        # Rounding differs (fused products, fp32 inside fused norms); a wrong layout is off by O(1).
        return 1e-4 if self.dtype == torch.float32 else 1e-1

    @torch.inference_mode()
    def _start_fused(self) -> None:
        """Tunes the fused kernels' launch shapes on this GPU, for one token and for a verification,
        and checks a step of each with them against the plain functions; if anything fails, decode
        and verification keep the compiled functions."""
        weights = self.weights
        if not all(t.is_contiguous() for w in weights for t in (w.ln1, w.w_qkv, w.w_o, w.ln2, w.w_gate_up, w.w_down)):
            log.warning("fused decode kernels not used: a weight is not contiguous")
            return
        bucket = min(self.capacity, 1024)
        compiled = self._pre, self._post
        try:
            fused = fused_decode.FusedDecodeLayer(self.heads, self.kv_heads, self.head_dim, self.hidden_size, weights[0].w_down.shape[1])
            self.fused_tuning = {str(t): fused.tune(weights, self.cache.kv, self.cos, self.sin, bucket, self.scale, tokens=t) for t in (1, fused_decode.TUNE_TOKENS)}
            # The 8-token prompt of _check_against_decoder is in the cache: one token at position 8,
            # then a verification at 9.., each first through the plain functions, then fused.
            errors = []
            for start, tokens in ((8, 1), (9, fused_decode.TUNE_TOKENS)):
                ids = torch.arange(7, 7 + tokens, device=self.device)
                x, pos = self.decoder.embed_tokens(ids), torch.arange(start, start + tokens, device=self.device)
                self.fused = None
                self._pre, self._post = pre_attention, post_attention
                expected = self.forward(x, pos, bucket)[0].float()
                self._pre, self._post = compiled
                self.fused = fused
                errors.append(relative_error(self.forward(x, pos, bucket)[0].float(), expected))
        except Exception as e:  # noqa: BLE001 - e.g. no Triton compiler for this GPU: say so, keep the compiled step
            self.fused = None
            self._pre, self._post = compiled
            log.warning("fused decode kernels not used (%s: %s); decode and verification run the compiled functions", type(e).__name__, e)
            return
        if not max(errors) <= self._tolerance:
            self.fused = None
            log.warning("fused decode kernels not used: a step differs from the plain functions' (relative errors %s)", ", ".join(f"{e:.2e}" for e in errors))
            return
        log.info("decode and verification steps run the fused kernels (relative difference to the plain functions %s)", ", ".join(f"{e:.1e}" for e in errors))


def relative_error(got: Tensor, expected: Tensor) -> float:
    return ((got - expected).norm() / expected.norm()).item()
