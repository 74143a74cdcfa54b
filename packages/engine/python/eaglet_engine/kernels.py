"""The training's hand-written kernels, each the fast twin of an eager reference kept beside the
model (``draft.eager_ttt_attention``, ``ttt.soft_cross_entropy_reference``); tests prove each pair
computes the same function, forward and backward, against a naive fp64 reference.

* ``flash_ttt_attention``: the training-time test's attention. Causal flash attention over step
  0's keys, merged through a stable log-sum-exp with the per-position keys of steps 1..i: O(T)
  memory, no [T, T] score matrix.
* ``fused_soft_cross_entropy``: lm_head and Eagle3's soft cross-entropy fused in chunks; the
  gradient of the logits is formed chunk by chunk in the forward pass, so neither the fp32 logits
  nor the softmax are kept for backward.

Their elementwise parts (the merge, the loss's per-chunk softmax) can be fused by torch.compile:
the caller says so with ``compiled=True`` (the trainer passes its ``compile`` setting down); no
module state switches it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# Rows per chunk of the fused loss: bounds its fp32 temporaries to chunk x draft_vocab.
DEFAULT_CHUNK_ROWS = 2048


@functools.cache
def _compiled(fn: Callable) -> Callable:
    """``fn`` through torch.compile with dynamic shapes, built once per function."""
    return torch.compile(fn, dynamic=True)


def _pick(fn: Callable, compiled: bool) -> Callable:
    return _compiled(fn) if compiled else fn


# --------------------------------------------------------------------------------------------
# Flash TTT attention
#
# Shapes: q [B, Hq, T, D]; keys/values of step j [B, Hkv, T, D]. Step i's query at position t
# attends to step 0's keys at positions <= t and to the keys of steps 1..i at position t, in one
# softmax.
# --------------------------------------------------------------------------------------------


def _flash_forward(q: Tensor, k: Tensor, v: Tensor, scale: float) -> tuple[Tensor, Tensor, tuple]:
    """Causal flash attention that also returns the log-sum-exp of each row (natural log, scaled)."""
    if q.device.type == "cuda":
        out, lse, cum_q, cum_k, max_q, max_k, seed, offset, _ = torch.ops.aten._scaled_dot_product_flash_attention(
            q, k, v, 0.0, True, False, scale=scale
        )
        return out, lse, (cum_q, cum_k, max_q, max_k, seed, offset)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, True, scale=scale)
    return out, lse, ()


def _flash_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, aux: tuple, scale: float):
    if q.device.type == "cuda":
        cum_q, cum_k, max_q, max_k, seed, offset = aux
        return torch.ops.aten._scaled_dot_product_flash_attention_backward(
            grad_out, q, k, v, out, lse, cum_q, cum_k, max_q, max_k, 0.0, True, seed, offset, scale=scale
        )
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        grad_out, q, k, v, out, lse, 0.0, True, scale=scale
    )


# Per device type: whether this build's flash kernel takes fewer key/value heads than query heads
# (a probe's cached answer, not a switch).
_NATIVE_GQA: dict[str, bool] = {}


def _native_gqa(device: torch.device) -> bool:
    """Whether this build's flash kernel takes fewer key/value heads than query heads (flash
    attention 2 does; probed once per device type with tiny tensors)."""
    if device.type not in _NATIVE_GQA:
        q = torch.zeros(1, 2, 8, 64, device=device, dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
        try:
            out, lse, _ = _flash_forward(q, q[:, :1], q[:, :1], 0.125)
            _NATIVE_GQA[device.type] = out.shape == q.shape
        except RuntimeError:
            _NATIVE_GQA[device.type] = False
    return _NATIVE_GQA[device.type]


def _merge_forward(q: Tensor, o0: Tensor, lse0: Tensor, ks: Tensor, vs: Tensor, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """Merges the causal block's output ``o0`` (log-sum-exp ``lse0``) with the per-position keys
    and values of steps 1..n (``ks``/``vs`` stacked: [n, B, Hkv, T, D]) in one softmax.
    Returns (out in q's dtype and [B, T, H, D] storage, p0 [B, Hkv, G, T], p [n, B, Hkv, G, T])."""
    b, hq, t, d = q.shape
    hkv = ks.shape[2]
    g = hq // hkv
    acc = torch.promote_types(q.dtype, torch.float32)  # fp32 (fp64 stays fp64 in tests)
    qg = q.reshape(b, hkv, g, t, d).to(acc)
    s = (qg[None] * ks[:, :, :, None].to(acc)).sum(-1) * scale  # [n, B, Hkv, G, T]
    lse = lse0.reshape(b, hkv, g, t).to(acc)
    m = torch.maximum(lse, s.amax(0))
    a0 = torch.exp(lse - m)
    a = torch.exp(s - m)
    z = a0 + a.sum(0)
    p0, p = a0 / z, a / z
    out = p0[..., None] * o0.reshape(b, hkv, g, t, d).to(acc) + (p[..., None] * vs[:, :, :, None].to(acc)).sum(0)
    out = out.to(q.dtype).reshape(b, hq, t, d)
    return out.transpose(1, 2).contiguous().transpose(1, 2), p0, p


def _merge_backward(dout: Tensor, out: Tensor, q: Tensor, p0: Tensor, p: Tensor, ks: Tensor, vs: Tensor, scale: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Gradients of ``_merge_forward``: (dO for the causal block's flash backward, the extra dq of
    the per-position scores, dks, dvs)."""
    b, hq, t, d = q.shape
    hkv = ks.shape[2]
    g = hq // hkv
    acc = torch.promote_types(q.dtype, torch.float32)
    dout = dout.to(acc).reshape(b, hkv, g, t, d)
    # D = <dout, out>: the softmax backward's row term, shared by both parts.
    row = (dout * out.reshape(b, hkv, g, t, d).to(acc)).sum(-1)
    grad_causal = (p0[..., None] * dout).to(q.dtype).reshape(b, hq, t, d)
    ds = p * ((dout[None] * vs[:, :, :, None].to(acc)).sum(-1) - row[None])  # [n, B, Hkv, G, T]
    dq = scale * (ds[..., None] * ks[:, :, :, None].to(acc)).sum(0)
    dks = (scale * (ds[..., None] * q.reshape(b, hkv, g, t, d).to(acc)[None]).sum(3)).to(ks.dtype)
    dvs = (p[..., None] * dout[None]).sum(3).to(vs.dtype)
    return grad_causal.transpose(1, 2).contiguous().transpose(1, 2), dq.reshape(b, hq, t, d), dks, dvs


class _FlashTTTAttention(torch.autograd.Function):
    """Causal flash attention over step 0's keys, merged with the per-position terms of steps 1..i
    through a stable log-sum-exp. Memory is O(T): no [T, T] score matrix is ever formed.

    Backward: the whole thing is one softmax over [causal keys, per-position keys]. For the causal
    part, the flash backward computes dS = P * (dO V^T - rowsum(dO * O)); passing
    dO := p0 * dout and O := the *merged* output gives exactly the merged softmax's gradient
    (p0 = share of the causal block). The per-position terms get their gradient in closed form.
    """

    @staticmethod
    def forward(ctx, scale: float, compiled: bool, q: Tensor, k0: Tensor, v0: Tensor, *rest: Tensor) -> Tensor:
        o0, lse0, aux = _flash_forward(q, k0, v0, scale)
        ctx.scale, ctx.aux, ctx.n, ctx.compiled = scale, aux, len(rest) // 2, compiled
        if not rest:
            ctx.save_for_backward(q, k0, v0, o0, lse0)
            return o0
        ks, vs = torch.stack(rest[0::2]), torch.stack(rest[1::2])
        out, p0, p = _pick(_merge_forward, compiled)(q, o0, lse0, ks, vs, scale)
        ctx.save_for_backward(q, k0, v0, out, lse0, p0, p, ks, vs)
        return out

    @staticmethod
    def backward(ctx, dout: Tensor):
        scale, aux, n = ctx.scale, ctx.aux, ctx.n
        if n == 0:
            q, k0, v0, o0, lse0 = ctx.saved_tensors
            dq, dk0, dv0 = _flash_backward(_like_layout(dout, q), q, k0, v0, o0, lse0, aux, scale)
            return None, None, dq, dk0, dv0
        q, k0, v0, out, lse0, p0, p, ks, vs = ctx.saved_tensors
        grad_causal, dq_extra, dks, dvs = _pick(_merge_backward, ctx.compiled)(dout, out, q, p0, p, ks, vs, scale)
        dq, dk0, dv0 = _flash_backward(_like_layout(grad_causal, q), q, k0, v0, out, lse0, aux, scale)
        grads: list[Tensor] = []
        for j in range(n):
            grads += [dks[j], dvs[j]]
        return None, None, (dq.to(dq_extra.dtype) + dq_extra).to(q.dtype), dk0, dv0, *grads


def _like_layout(x: Tensor, ref: Tensor) -> Tensor:
    """Gives x the memory layout of ref ([B, T, H, D] storage seen as [B, H, T, D]), which the
    flash kernels read without copying."""
    if x.stride() == ref.stride():
        return x
    return x.transpose(1, 2).contiguous().transpose(1, 2) if ref.transpose(1, 2).is_contiguous() else x.contiguous()


def flash_ttt_attention(q: Tensor, keys: Sequence[Tensor], values: Sequence[Tensor], scale: float, *, compiled: bool = False) -> Tensor:
    """The training kernel: flash attention for the causal block + per-position terms, O(T) memory.
    ``compiled``: fuse the merge's elementwise work with torch.compile."""
    rest: list[Tensor] = []
    for k, v in zip(keys[1:], values[1:]):
        rest += [k, v]
    k0, v0 = keys[0], values[0]
    if k0.shape[1] != q.shape[1] and not _native_gqa(q.device):
        group = q.shape[1] // k0.shape[1]
        k0, v0 = k0.repeat_interleave(group, dim=1), v0.repeat_interleave(group, dim=1)
    return _FlashTTTAttention.apply(scale, compiled, q, k0, v0, *rest)


# --------------------------------------------------------------------------------------------
# Fused soft cross-entropy
# --------------------------------------------------------------------------------------------


def _compute_dtype(x: Tensor) -> torch.dtype:
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def _chunk_math(z: Tensor, target_logits: Tensor, need_grad: bool, grad_dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor | None]:
    """One chunk's loss sum, correct rows and d loss / d logits, from the logits ``z``."""
    acc = torch.promote_types(z.dtype, torch.float32)  # fp32 accumulation, fp64 kept (tests)
    z = z.to(acc)
    log_p = torch.log_softmax(z, dim=-1)
    target_p = torch.softmax(target_logits.to(acc), dim=-1)
    loss = -(target_p * log_p).sum()
    correct = z.argmax(-1) == target_logits.argmax(-1)
    # d/dz of -sum(t * log_softmax(z)) = softmax(z) * sum(t) - t
    grad = (log_p.exp() * target_p.sum(-1, keepdim=True) - target_p).to(grad_dtype) if need_grad else None
    return loss, correct, grad


class _FusedSoftCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, target_logits: Tensor, chunk: int, need_grad: bool, compiled: bool):
        n = x.shape[0]
        acc = torch.promote_types(x.dtype, torch.float32)
        loss = torch.zeros((), dtype=acc, device=x.device)
        correct = torch.empty(n, dtype=torch.bool, device=x.device)
        grad_logits = torch.empty(n, weight.shape[0], dtype=x.dtype, device=x.device) if need_grad else None
        chunk_math = _pick(_chunk_math, compiled)
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            # Same precision path as the reference: logits in the compute dtype, then fp32.
            chunk_loss, correct[rows], grad = chunk_math(F.linear(x[rows], weight), target_logits[rows], need_grad, x.dtype)
            loss += chunk_loss
            if need_grad:
                grad_logits[rows] = grad
        if need_grad:
            ctx.save_for_backward(grad_logits @ weight, grad_logits.t() @ x)
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_correct: Tensor | None):
        grad_x, grad_w = ctx.saved_tensors
        scale = grad_loss.to(grad_x.dtype)
        return grad_x * scale, grad_w * scale, None, None, None, None


def fused_soft_cross_entropy(
    x: Tensor, weight: Tensor, target_logits: Tensor, chunk: int = DEFAULT_CHUNK_ROWS, *, compiled: bool = False
) -> tuple[Tensor, Tensor]:
    """x [N, H] (what lm_head reads), weight [V, H] (lm_head), target_logits [N, V]
    -> (sum of CE over rows, correct [N]). Runs lm_head in the autocast dtype when autocast is on.
    ``compiled``: fuse the per-chunk softmax/gradient passes with torch.compile."""
    dtype = _compute_dtype(x)
    need_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    device_type = x.device.type
    with torch.autocast(device_type, enabled=False):
        return _FusedSoftCrossEntropy.apply(x.to(dtype), weight.to(dtype), target_logits, max(1, chunk), need_grad, compiled)
