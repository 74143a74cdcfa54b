"""The training's hand-written kernels, each the fast twin of an eager reference kept beside the
model (``draft.eager_ttt_attention``, ``ttt.soft_cross_entropy_reference``); tests prove each pair
computes the same function, forward and backward, against a naive fp64 reference.

* ``flash_ttt_attention``: the training-time test's attention. Causal flash attention over step
  0's keys, merged through a stable log-sum-exp with the per-position keys of steps 1..i: O(T)
  memory, no [T, T] score matrix.
* ``fused_soft_cross_entropy``: lm_head and Eagle3's soft cross-entropy fused in chunks; the
  gradient of the logits is formed chunk by chunk in the forward pass, so neither the fp32 logits
  nor the softmax are kept for backward. On CUDA each chunk's softmax passes are one Triton
  kernel (``soft_ce_kernel``; ``_chunk_math`` is its torch twin, which runs elsewhere).

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

from . import soft_ce_kernel, triton_support, ttt_merge_kernel

# Rows per chunk of the fused loss: bounds its fp32 temporaries to chunk x draft_vocab.
DEFAULT_CHUNK_ROWS = 2048


@functools.cache
def _compiled(fn: Callable) -> Callable:
    """``fn`` through torch.compile with dynamic shapes, built once per function."""
    return torch.compile(fn, dynamic=True)


def compiled_if(fn: Callable, compiled: bool) -> Callable:
    """``fn``, through torch.compile (built once) when ``compiled``."""
    return _compiled(fn) if compiled else fn


# --------------------------------------------------------------------------------------------
# Flash TTT attention
#
# Shapes: q [B, Hq, Tq, D]; keys/values of step 0 [B, Hkv, Tk, D] with Tk >= Tq, of steps 1..i
# [B, Hkv, Tq, D]. The queries are the last Tq positions of step 0's keys (the objective passes
# only the rows some loss reads, see ``ttt``): query j sits at position s + j, s = Tk - Tq. Step
# i's query at position t attends to step 0's keys at positions <= t and to the keys of steps
# 1..i at position t, in one softmax.
# --------------------------------------------------------------------------------------------


def _flash_forward(q: Tensor, k: Tensor, v: Tensor, scale: float, causal: bool) -> tuple[Tensor, Tensor, tuple]:
    """Flash attention (causal: square, q and k at the same positions) that also returns the
    log-sum-exp of each row (natural log, scaled). On CUDA it is cuDNN's kernel where it computes
    the same function on this machine (``_cudnn_agrees``; on an H200 the 7B draft's step at 4096
    tokens was 6 ms shorter with it, docs/perf/train.md), else flash attention 2."""
    if q.device.type == "cuda":
        return _cuda_attention_forward("cudnn" if _cudnn_agrees(q.device) else "flash", q, k, v, scale, causal)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, scale=scale)
    return out, lse, ()


def _flash_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, aux: tuple, scale: float, causal: bool):
    if q.device.type == "cuda":
        return _cuda_attention_backward(grad_out, q, k, v, out, lse, aux, scale, causal)
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        grad_out, q, k, v, out, lse, 0.0, causal, scale=scale
    )


def _cuda_attention_forward(backend: str, q: Tensor, k: Tensor, v: Tensor, scale: float, causal: bool) -> tuple[Tensor, Tensor, tuple]:
    """``backend`` ("cudnn" or "flash": flash attention 2) on CUDA; the aux tuple names the
    backend for ``_cuda_attention_backward``."""
    if backend == "cudnn":
        out, lse, cum_q, cum_k, max_q, max_k, seed, offset, _ = torch.ops.aten._scaled_dot_product_cudnn_attention(
            q, k, v, None, True, 0.0, causal, False, scale=scale
        )
    else:
        out, lse, cum_q, cum_k, max_q, max_k, seed, offset, _ = torch.ops.aten._scaled_dot_product_flash_attention(
            q, k, v, 0.0, causal, False, scale=scale
        )
    return out, lse, (backend, cum_q, cum_k, max_q, max_k, seed, offset)


def _cuda_attention_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, aux: tuple, scale: float, causal: bool):
    backend, cum_q, cum_k, max_q, max_k, seed, offset = aux
    if backend == "cudnn":
        return torch.ops.aten._scaled_dot_product_cudnn_attention_backward(
            grad_out, q, k, v, out, lse, seed, offset, None, cum_q, cum_k, max_q, max_k, 0.0, causal, scale=scale
        )
    return torch.ops.aten._scaled_dot_product_flash_attention_backward(
        grad_out, q, k, v, out, lse, cum_q, cum_k, max_q, max_k, 0.0, causal, seed, offset, scale=scale
    )


# Per CUDA device: whether cuDNN's attention computes what flash attention 2 does for the draft's
# calls (probed once, not a switch).
_CUDNN_AGREES: dict[torch.device, bool] = {}


def _cudnn_agrees(device: torch.device) -> bool:
    """Whether cuDNN's attention, called as ``_flash_forward`` and ``_flash_backward`` call it,
    takes fewer key/value heads than query heads and returns what flash attention 2 returns (the
    output, the natural-log log-sum-exp and the three gradients; causal, and not with fewer
    queries than keys) on this device: probed once with small tensors. Off when the build has no
    cuDNN, cuDNN refuses the shapes, or the results differ (then flash attention 2 runs)."""
    if device not in _CUDNN_AGREES:
        agrees = torch.backends.cudnn.is_available()
        g = torch.Generator(device=device).manual_seed(0)
        try:
            for tq, tk, causal in ((256, 256, True), (128, 384, False)) if agrees else ():
                q = torch.randn(1, tq, 8, 128, device=device, dtype=torch.bfloat16, generator=g).transpose(1, 2)
                k, v = (torch.randn(1, tk, 2, 128, device=device, dtype=torch.bfloat16, generator=g).transpose(1, 2) for _ in range(2))
                dout = torch.randn(1, tq, 8, 128, device=device, dtype=torch.bfloat16, generator=g).transpose(1, 2)
                results = []
                for backend in ("flash", "cudnn"):
                    out, lse, aux = _cuda_attention_forward(backend, q, k, v, 0.09, causal)
                    results.append([out, lse, *_cuda_attention_backward(dout, q, k, v, out, lse, aux, 0.09, causal)])
                want, got = results
                got[1] = got[1].reshape(want[1].shape)  # cuDNN's log-sum-exp may carry a trailing 1
                agrees = all(
                    a.shape == b.shape and (a.float() - b.float()).abs().max().item() < 2e-2 * max(1.0, b.float().abs().max().item())
                    for a, b in zip(got, want)
                )
                if not agrees:
                    break
        except RuntimeError:
            agrees = False
        _CUDNN_AGREES[device] = agrees
    return _CUDNN_AGREES[device]


# Per device type: whether this build's flash kernel takes fewer key/value heads than query heads
# (a probe's cached answer, not a switch).
_NATIVE_GQA: dict[str, bool] = {}


def _native_gqa(device: torch.device) -> bool:
    """Whether this build's flash kernel takes fewer key/value heads than query heads (flash
    attention 2 does; probed once per device type with tiny tensors)."""
    if device.type not in _NATIVE_GQA:
        q = torch.zeros(1, 2, 8, 64, device=device, dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
        try:
            out, lse, _ = _flash_forward(q, q[:, :1], q[:, :1], 0.125, True)
            _NATIVE_GQA[device.type] = out.shape == q.shape
        except RuntimeError:
            _NATIVE_GQA[device.type] = False
    return _NATIVE_GQA[device.type]


def _merge_forward(
    q: Tensor, blocks: tuple[tuple[Tensor, Tensor], ...], ks: Tensor | None, vs: Tensor | None, scale: float
) -> tuple[Tensor, tuple[Tensor, ...], Tensor | None]:
    """Merges flash blocks (each its output and log-sum-exp over a part of step 0's keys) and the
    per-position keys and values of steps 1..n (``ks``/``vs`` stacked: [n, B, Hkv, T, D], or None)
    in one softmax. Returns (out in q's dtype and [B, T, H, D] storage, each block's share of the
    softmax [B, Hkv, G, T], the per-position probabilities p [n, B, Hkv, G, T] or None)."""
    b, hq, t, d = q.shape
    hkv = ks.shape[2] if ks is not None else hq
    g = hq // hkv
    acc = torch.promote_types(q.dtype, torch.float32)  # fp32 (fp64 stays fp64 in tests)
    lses = [lse.reshape(b, hkv, g, t).to(acc) for _, lse in blocks]
    m = lses[0]
    for lse in lses[1:]:
        m = torch.maximum(m, lse)
    if ks is not None:
        qg = q.reshape(b, hkv, g, t, d).to(acc)
        s = (qg[None] * ks[:, :, :, None].to(acc)).sum(-1) * scale  # [n, B, Hkv, G, T]
        m = torch.maximum(m, s.amax(0))
    weights = [torch.exp(lse - m) for lse in lses]
    z = weights[0]
    for w in weights[1:]:
        z = z + w
    if ks is not None:
        a = torch.exp(s - m)
        z = z + a.sum(0)
    shares = tuple(w / z for w in weights)
    out = shares[0][..., None] * blocks[0][0].reshape(b, hkv, g, t, d).to(acc)
    for share, (o, _) in zip(shares[1:], blocks[1:]):
        out = out + share[..., None] * o.reshape(b, hkv, g, t, d).to(acc)
    p = None
    if ks is not None:
        p = a / z
        out = out + (p[..., None] * vs[:, :, :, None].to(acc)).sum(0)
    out = out.to(q.dtype).reshape(b, hq, t, d)
    return out.transpose(1, 2).contiguous().transpose(1, 2), shares, p


def _merge_backward(
    dout: Tensor, out: Tensor, q: Tensor, shares: tuple[Tensor, ...], p: Tensor | None, ks: Tensor | None, vs: Tensor | None, scale: float
) -> tuple[tuple[Tensor, ...], Tensor | None, Tensor | None, Tensor | None]:
    """Gradients of ``_merge_forward``: (dO for each flash block's backward, the extra dq of the
    per-position scores, dks, dvs; the last three None without per-position terms)."""
    b, hq, t, d = q.shape
    hkv = ks.shape[2] if ks is not None else hq
    g = hq // hkv
    acc = torch.promote_types(q.dtype, torch.float32)
    dout = dout.to(acc).reshape(b, hkv, g, t, d)
    block_grads = tuple((share[..., None] * dout).to(q.dtype).reshape(b, hq, t, d).transpose(1, 2).contiguous().transpose(1, 2) for share in shares)
    if ks is None:
        return block_grads, None, None, None
    # D = <dout, out>: the softmax backward's row term, shared by every part.
    row = (dout * out.reshape(b, hkv, g, t, d).to(acc)).sum(-1)
    ds = p * ((dout[None] * vs[:, :, :, None].to(acc)).sum(-1) - row[None])  # [n, B, Hkv, G, T]
    dq = scale * (ds[..., None] * ks[:, :, :, None].to(acc)).sum(0)
    dks = (scale * (ds[..., None] * q.reshape(b, hkv, g, t, d).to(acc)[None]).sum(3)).to(ks.dtype)
    dvs = (p[..., None] * dout[None]).sum(3).to(vs.dtype)
    return block_grads, dq.reshape(b, hq, t, d), dks, dvs


class _FlashTTTAttention(torch.autograd.Function):
    """Flash attention over step 0's keys, merged with the per-position terms of steps 1..i
    through a stable log-sum-exp. Memory is O(T): no [T, T] score matrix is ever formed.

    Step 0's keys come in up to two flash blocks: the square causal block at the queries' own
    positions [s, Tk), and, when the queries start at s > 0, the prefix [0, s), which every query
    sees whole (no mask).

    Backward: the whole thing is one softmax over [blocks, per-position keys]. For a block, the
    flash backward computes dS = P_b * (dO V^T - rowsum(dO * O)) with P_b normalised within the
    block; passing dO := share_b * dout and O := the *merged* output gives exactly the merged
    softmax's gradient (share_b = the block's part of the merged softmax, so share_b * P_b is the
    merged P). The per-position terms get their gradient in closed form.
    """

    @staticmethod
    def forward(ctx, scale: float, compiled: bool, q: Tensor, k0: Tensor, v0: Tensor, *rest: Tensor) -> Tensor:
        s = k0.shape[2] - q.shape[2]
        if s < 0:
            raise ValueError(f"the queries ({q.shape[2]}) outnumber step 0's keys ({k0.shape[2]})")
        flashes = [_flash_forward(q, k, v, scale, causal) for k, v, causal in _key_blocks(k0, v0, s)]
        ctx.scale, ctx.s, ctx.n, ctx.compiled = scale, s, len(rest) // 2, compiled
        ctx.aux = [aux for _, _, aux in flashes]
        lses = [lse for _, lse, _ in flashes]
        if not rest and not s:
            out = flashes[0][0]
            ctx.save_for_backward(q, k0, v0, out, *lses)
            return out
        ctx.triton = triton_support.serves(q)  # the merge kernels run
        if ctx.triton:
            # Stacked in the keys' own [B, T, H, D] storage order (a plain copy), seen as [N, B, H, T, D].
            ks, vs = (torch.stack([x.transpose(1, 2) for x in xs]).transpose(2, 3) if xs else None for xs in (rest[0::2], rest[1::2]))
            out, merged = ttt_merge_kernel.merge_forward(q, [(o, lse) for o, lse, _ in flashes], ks, vs, scale)
            ctx.save_for_backward(q, k0, v0, out, *lses, merged, ks, vs)
            return out
        ks, vs = (torch.stack(rest[0::2]), torch.stack(rest[1::2])) if rest else (None, None)
        out, shares, p = compiled_if(_merge_forward, compiled)(q, tuple((o, lse) for o, lse, _ in flashes), ks, vs, scale)
        ctx.save_for_backward(q, k0, v0, out, *lses, *shares, p, ks, vs)
        return out

    @staticmethod
    def backward(ctx, dout: Tensor):
        scale, s, n = ctx.scale, ctx.s, ctx.n
        saved = ctx.saved_tensors
        q, k0, v0, out = saved[:4]
        nb = len(ctx.aux)
        lses = saved[4 : 4 + nb]
        dq_extra = dks = dvs = None
        if not n and not s:
            block_grads = (_like_layout(dout, q),)
        elif ctx.triton:
            merged, ks, vs = saved[4 + nb :]
            block_grads, dq_extra, dks, dvs = ttt_merge_kernel.merge_backward(dout, out, q, list(lses), merged, ks, vs, scale)
        else:
            shares, (p, ks, vs) = saved[4 + nb : 4 + 2 * nb], saved[4 + 2 * nb :]
            block_grads, dq_extra, dks, dvs = compiled_if(_merge_backward, ctx.compiled)(dout, out, q, shares, p, ks, vs, scale)
        dqs, dk_parts, dv_parts = [], [], []
        for (k, v, causal), grad, lse, aux in zip(_key_blocks(k0, v0, s), block_grads, lses, ctx.aux):
            dq_b, dk_b, dv_b = _flash_backward(_like_layout(grad, q), q, k, v, out, lse, aux, scale, causal)
            dqs.append(dq_b)
            dk_parts.append(dk_b)
            dv_parts.append(dv_b)
        # The blocks' key gradients in position order: the prefix [0, s) first.
        dk0 = dk_parts[0] if not s else torch.cat([dk_parts[1], dk_parts[0]], dim=2)
        dv0 = dv_parts[0] if not s else torch.cat([dv_parts[1], dv_parts[0]], dim=2)
        dq = dqs[0]
        if len(dqs) > 1 or dq_extra is not None:
            dq = compiled_if(_sum_rounded_once, ctx.compiled)([*dqs, *([dq_extra] if dq_extra is not None else [])])
        grads: list[Tensor] = []
        for j in range(n):
            grads += [dks[j], dvs[j]]
        return None, None, dq, dk0, dv0, *grads


def sum_in_fp32(parts: Sequence[Tensor], dtype: torch.dtype) -> Tensor:
    """The parts summed in fp32 (fp64 stays fp64) and rounded once to ``dtype``: one kernel when
    compiled."""
    acc = torch.promote_types(parts[0].dtype, torch.float32)
    total = parts[0].to(acc)
    for part in parts[1:]:
        total = total + part
    return total.to(dtype)


def _sum_rounded_once(parts: list[Tensor]) -> Tensor:
    """The parts of dq summed in fp32 and rounded once to the first's dtype (eager, the casts and
    additions were 1.2 ms of the 7B step's backward). Its own function, so its compiled variants
    (one per number of parts) count against their own recompile limit."""
    return sum_in_fp32(parts, parts[0].dtype)


def _key_blocks(k0: Tensor, v0: Tensor, s: int) -> list[tuple[Tensor, Tensor, bool]]:
    """Step 0's keys and values as flash blocks (keys, values, causal) for queries at [s, Tk): the
    square causal block at the queries' own positions, then the prefix [0, s) when s > 0."""
    return [(k0[:, :, s:], v0[:, :, s:], True)] + ([(k0[:, :, :s], v0[:, :, :s], False)] if s else [])


def _like_layout(x: Tensor, ref: Tensor) -> Tensor:
    """Gives x the memory layout of ref ([B, T, H, D] storage seen as [B, H, T, D]), which the
    flash kernels read without copying (strides of size-1 dimensions do not matter)."""
    if all(a == b for a, b, size in zip(x.stride(), ref.stride(), x.shape) if size > 1):
        return x
    return x.transpose(1, 2).contiguous().transpose(1, 2) if ref.transpose(1, 2).is_contiguous() else x.contiguous()


def flash_ttt_attention(q: Tensor, keys: Sequence[Tensor], values: Sequence[Tensor], scale: float, *, compiled: bool = False) -> Tensor:
    """The training kernel: flash attention over step 0's keys + per-position terms, O(T) memory.
    The queries may be the last rows of step 0's keys only (see the shapes above).
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


def _chunk_math(
    z: Tensor, target_logits: Tensor, need_grad: bool, grad_dtype: torch.dtype, weight: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One chunk's loss sum, correct rows and d loss / d logits, from the logits ``z``; ``weight``
    [rows]: each row's loss and gradient times it."""
    acc = torch.promote_types(z.dtype, torch.float32)  # fp32 accumulation, fp64 kept (tests)
    z = z.to(acc)
    log_p = torch.log_softmax(z, dim=-1)
    target_p = torch.softmax(target_logits.to(acc), dim=-1)
    rows = -(target_p * log_p).sum(-1)
    loss = (rows if weight is None else rows * weight.to(acc)).sum()
    correct = z.argmax(-1) == target_logits.argmax(-1)
    # d/dz of -sum(t * log_softmax(z)) = softmax(z) * sum(t) - t
    grad = None
    if need_grad:
        grad = log_p.exp() * target_p.sum(-1, keepdim=True) - target_p
        grad = (grad if weight is None else grad * weight.to(acc)[:, None]).to(grad_dtype)
    return loss, correct, grad


class HeadGradient:
    """lm_head's weight gradient over several fused-loss calls that share the weight (the TTT
    unroll's steps), summed as the calls run.

    Without it each call keeps its own [V, H] gradient for backward, scales it by the upstream
    gradient there, and autograd adds the calls' gradients one by one: on the 7B draft (32k x 4096)
    that was 14 multiplications and 6 additions over 256 MB tensors, 3.5 ms of a 220 ms step on an
    H200 (docs/perf/train.md), and seven such tensors held at once. Here call i adds
    ``scale_i * dW_i`` into one sum inside its gradient GEMM (cuBLAS's beta = 1), where
    ``scale_i`` is the factor the caller multiplies that call's loss by; ``attach(weight)`` is a
    zero the caller adds to its total, whose backward hands ``sum * upstream`` to the weight. The
    loss calls then give the weight no gradient of their own.
    """

    def __init__(self, *, compiled: bool = False) -> None:
        self.sum: Tensor | None = None
        self.compiled = compiled  # the hand-over's scaling and cast as one compiled kernel

    def add(self, grad_logits: Tensor, x: Tensor, scale: Tensor) -> None:
        xs = x * scale.to(x.dtype)
        if self.sum is None:
            self.sum = grad_logits.t() @ xs
        else:
            self.sum.addmm_(grad_logits.t(), xs)

    def attach(self, weight: Tensor) -> Tensor:
        """A zero scalar (in ``weight``'s dtype) through which the summed gradient reaches ``weight``."""
        if self.sum is None or not weight.requires_grad:
            return weight.detach().new_zeros(())
        return _DeliverGradient.apply(weight, self.sum, self.compiled)


def _scaled_to(grad_sum: Tensor, upstream: Tensor, dtype: torch.dtype) -> Tensor:
    """grad_sum * upstream, computed in fp32 (fp64 stays fp64) and written in ``dtype``: one pass
    when compiled. Eager torch.mul into an fp32 ``out`` from a bf16 sum took 0.56 ms of the 7B
    step on an H200, four times what its memory traffic takes at the card's bandwidth."""
    acc = torch.promote_types(grad_sum.dtype, torch.float32)
    return (grad_sum.to(acc) * upstream.to(acc)).to(dtype)


class _DeliverGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: Tensor, grad_sum: Tensor, compiled: bool) -> Tensor:
        ctx.save_for_backward(grad_sum)
        ctx.dtype, ctx.compiled = weight.dtype, compiled
        return weight.new_zeros(())

    @staticmethod
    def backward(ctx, upstream: Tensor):
        (grad_sum,) = ctx.saved_tensors
        return compiled_if(_scaled_to, ctx.compiled)(grad_sum, upstream, ctx.dtype), None, None


class _FusedSoftCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        weight: Tensor,
        target_logits: Tensor,
        row_weight: Tensor | None,
        chunk: int,
        need_grad: bool,
        compiled: bool,
        head_grad: HeadGradient | None,
        scale: Tensor | None,
    ):
        n = x.shape[0]
        acc = torch.promote_types(x.dtype, torch.float32)
        loss = torch.zeros((), dtype=acc, device=x.device)
        correct = torch.empty(n, dtype=torch.bool, device=x.device)
        grad_logits = torch.empty(n, weight.shape[0], dtype=x.dtype, device=x.device) if need_grad else None
        chunk_math = compiled_if(_chunk_math, compiled)
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            # Same precision path as the reference: logits in the compute dtype, then fp32.
            z = F.linear(x[rows], weight)
            if soft_ce_kernel.serves(z):
                # The Triton twin writes the gradient into its rows of grad_logits.
                out = grad_logits[rows] if need_grad else None
                w = None if row_weight is None else row_weight[rows]
                chunk_loss, correct[rows], _ = soft_ce_kernel.soft_cross_entropy_rows(z, target_logits[rows], need_grad, x.dtype, out=out, weight=w)
            else:
                chunk_loss, correct[rows], grad = chunk_math(z, target_logits[rows], need_grad, x.dtype, None if row_weight is None else row_weight[rows])
                if need_grad:
                    grad_logits[rows] = grad
            loss += chunk_loss
        if need_grad:
            if head_grad is None:
                ctx.save_for_backward(grad_logits @ weight, grad_logits.t() @ x)
            else:
                head_grad.add(grad_logits, x, scale)
                ctx.save_for_backward(grad_logits @ weight)
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_correct: Tensor | None):
        grad_x, *grad_w = ctx.saved_tensors
        scale = grad_loss.to(grad_x.dtype)
        return grad_x * scale, grad_w[0] * scale if grad_w else None, None, None, None, None, None, None, None


def fused_soft_cross_entropy(
    x: Tensor,
    weight: Tensor,
    target_logits: Tensor,
    chunk: int = DEFAULT_CHUNK_ROWS,
    *,
    compiled: bool = False,
    head_grad: tuple[HeadGradient, Tensor] | None = None,
    row_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """x [N, H] (what lm_head reads), weight [V, H] (lm_head), target_logits [N, V]
    -> (sum of CE over rows, correct [N]). Runs lm_head in the autocast dtype when autocast is on.
    ``compiled``: fuse the per-chunk softmax/gradient passes with torch.compile.
    ``head_grad`` = (sum, scale): the weight's gradient goes into ``sum`` (see ``HeadGradient``),
    ``scale`` being the factor the caller multiplies the returned loss by.
    ``row_weight`` [N] (fp32): each row's loss and gradient times it (``correct`` is unweighted)."""
    dtype = _compute_dtype(x)
    need_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    device_type = x.device.type
    sink, scale = head_grad if head_grad is not None and weight.requires_grad else (None, None)
    with torch.autocast(device_type, enabled=False):
        return _FusedSoftCrossEntropy.apply(x.to(dtype), weight.to(dtype), target_logits, row_weight, max(1, chunk), need_grad, compiled, sink, scale)
