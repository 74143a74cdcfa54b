"""The Eagle3 draft on a static KV cache, for the fast path.

The draft runs its own code (`Eagle3Draft.step`, the trainer's model) with a `DraftCacheView` as
its cache, so the fast path and the eager `DraftRunner` compute the same function; only where the
keys live differs. `propose` turns the draft's logits into the chain's next token (a target id,
through the d2t mapping) on the device.

On CUDA in 16 bits, with the target's tuned launch shapes (`fused_configs`), the layer's chain
steps and catch-ups run `fused_decode`'s kernels in their two-input form instead (q/k/v read
cat(norm(embedding), norm(state)), the residual is the state), checked against the layer at
start-up.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from ..draft import DraftDecoderLayer, Eagle3Draft
from . import device_sampling, fused_decode
from .row_argmax import row_argmax
from .decode_compile import one_token_compiled
from .static_cache import DraftCacheView, StaticKVCache
from .static_target import LayerWeights, fuse_linears, relative_error

log = logging.getLogger("eaglet.generate")


def draft_layer_weights(layer: DraftDecoderLayer) -> tuple[LayerWeights, tuple[Tensor, float]]:
    """The draft layer's weights as the fused kernels read them (q/k/v and gate/up fused; the
    modules keep views of them), and its second input's norm (hidden_norm: weight, eps)."""
    a, m = layer.self_attn, layer.mlp
    w_qkv, b_qkv = fuse_linears([a.q_proj, a.k_proj, a.v_proj])
    w_gate_up, _ = fuse_linears([m.gate_proj, m.up_proj])
    ln1, ln2 = layer.input_layernorm, layer.post_attention_layernorm
    weights = LayerWeights(ln1.weight, ln1.eps, w_qkv, b_qkv, a.o_proj.weight, ln2.weight, ln2.eps, w_gate_up, m.down_proj.weight)
    return weights, (layer.hidden_norm.weight, layer.hidden_norm.eps)


class StaticDraft:
    def __init__(self, model: Eagle3Draft, capacity: int, compile: bool = False, fused_configs: dict | None = None) -> None:
        self.model = model.eval().requires_grad_(False)
        cfg = model.config
        self.device, self.dtype = model.fc.weight.device, model.fc.weight.dtype
        self.vocab_size = cfg.vocab_size
        self.draft_vocab_size = cfg.draft_vocab_size
        self.hidden_size = cfg.hidden_size
        self.target_hidden_size = cfg.target_hidden_size or cfg.hidden_size
        self.cache = StaticKVCache(1, cfg.num_key_value_heads, cfg.head_dim, capacity, self.device, self.dtype)
        self.view = DraftCacheView(self.cache)
        # The target id of every draft-vocabulary entry (d2t).
        self.draft_ids = model.to_target_ids(torch.arange(cfg.draft_vocab_size, device=self.device))
        self.compiled = compile
        self._logits = model.logits
        if compile:
            model.fuse()
            layer = model.midlayer  # [1, T, H] inputs: the chain's one-token steps get autotuned kernels
            layer._attention_inputs = one_token_compiled(layer._attention_inputs, layer.attention_inputs, 1, self.device)
            layer._output = one_token_compiled(layer._output, layer.output, 1, self.device)
            self._logits = one_token_compiled(torch.compile(model.logits, dynamic=True), model.logits, 1, self.device)  # the final norm fused too
        self.fused: fused_decode.FusedDecodeLayer | None = None
        self.fused_tuning: dict | None = None  # {tokens: {kernel: {shape: us}}}: q/k/v tuned on the draft's matrix
        if compile and fused_configs is not None and fused_decode.serves(self.device, self.dtype, 1, cfg.head_dim):
            self._start_fused(fused_configs)

    @torch.inference_mode()
    def _start_fused(self, configs: dict) -> None:
        """The layer on fused_decode's kernels with the target's tuned shapes, q/k/v tuned on the
        draft's matrix, checked on a chain step and a catch-up against the layer's own step; on
        any failure the layer stays."""
        cfg, layer = self.model.config, self.model.midlayer
        self.weights, self.second_norm = draft_layer_weights(layer)
        attn = layer.self_attn
        cos, sin = attn.rotary(torch.arange(self.cache.capacity, device=self.device)[None], self.dtype)
        self.cos, self.sin, self.scale = cos[0, 0], sin[0, 0], attn.scale
        bucket = min(self.cache.capacity, 1024)
        errors = []
        try:
            fused = fused_decode.FusedDecodeLayer(cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size, cfg.intermediate_size, configs)
            self.fused_tuning = {
                str(t): fused.tune([self.weights], self.cache.kv, self.cos, self.sin, bucket, self.scale, tokens=t, second_norm=self.second_norm, kernels=("qkv",))
                for t in (1, fused_decode.TUNE_TOKENS)
            }
            gen = torch.Generator(device=self.device).manual_seed(0)
            for start, tokens in ((8, 1), (9, fused_decode.TUNE_TOKENS)):
                ids = torch.arange(7, 7 + tokens, device=self.device)
                hidden = torch.randn(tokens, cfg.hidden_size, generator=gen, device=self.device).to(self.dtype)
                pos = torch.arange(start, start + tokens, device=self.device)
                self.fused = None
                expected = self.step(ids, hidden, pos, bucket)[0].float()
                self.fused = fused
                errors.append(relative_error(self.step(ids, hidden, pos, bucket)[0].float(), expected))
        except Exception as e:  # noqa: BLE001 - a kernel that does not compile or launch here: keep the layer
            self.fused = None
            log.warning("the draft's fused kernels not used (%s: %s); its steps run the compiled layer", type(e).__name__, e)
            return
        if not max(errors) <= 1e-1:  # bf16 rounding differs by ~1e-2; a wrong layout is off by O(1)
            self.fused = None
            log.warning("the draft's fused kernels not used: a step differs from the layer's (relative errors %s)", ", ".join(f"{e:.2e}" for e in errors))
            return
        log.info("the draft's steps run the fused kernels (relative difference to the layer %s)", ", ".join(f"{e:.1e}" for e in errors))

    def fuse(self, taps: Tensor) -> Tensor:
        """[T, 3 * target hidden] tapped target states -> [T, H] through `fc`."""
        return self.model.project(taps.to(self.dtype)[None])[0]

    def step(self, ids: Tensor, hidden: Tensor, positions: Tensor, bucket: int | None) -> tuple[Tensor, Tensor]:
        """Draft positions `positions` [T] reading tokens ids [T] (the token after each position)
        and hidden [T, H]. Returns (output hidden [T, H], logits [T, draft vocab] fp32)."""
        if self.fused is not None and bucket is not None and ids.shape[0] <= fused_decode.MAX_TOKENS:
            embeds = self.model.embed(ids).to(hidden.dtype)
            out = self.fused(embeds, self.weights, self.cache.kv[0], positions, self.cos, self.sin, bucket, self.scale, second=(hidden, *self.second_norm))
            return out, self._logits(out[None])[0]
        out = self.model.step(self.model.embed(ids[None]), hidden[None], positions[None], self.view.at(positions, bucket))
        return out[0], self._logits(out)[0]

    def propose(self, logits: Tensor, position: Tensor, greedy: bool, temperature: Tensor, top_p: Tensor, u: Tensor) -> tuple[Tensor, Tensor | None]:  # noqa: ARG002 - position: for wrappers that propose by position
        """The chain's token for target position `position` [1] from draft logits [1, draft vocab]:
        (target id [1], its distribution over the target vocabulary [1, V] when sampling)."""
        if greedy:
            return row_argmax(logits, self.draft_ids), None
        q = device_sampling.probabilities(logits, temperature, top_p)
        token = self.draft_ids[device_sampling.sample(q, u)]
        return token, q.new_zeros(1, self.vocab_size).index_copy_(1, self.draft_ids, q)
