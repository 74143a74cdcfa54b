"""Eagle3's loss: soft cross-entropy of the draft against the target's distribution over the draft
vocabulary, on the rows that count (assistant tokens whose target argmax is in the draft
vocabulary), plus the accuracy metric (draft argmax == target argmax).

Two implementations of the same function:

* ``soft_cross_entropy_reference``: logits materialised, autograd does the rest. Obviously right.
* ``fused_soft_cross_entropy``: lm_head and loss fused in chunks; the gradient of the logits is
  formed chunk by chunk in the forward pass, so neither the fp32 logits nor the softmax are kept
  for backward (the largest activation of a naive implementation at long context). Tests prove
  both give the same loss, metrics and gradients.

Rows are already selected by the caller: every row passed in counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Rows per chunk of the fused loss: bounds its fp32 temporaries to chunk x draft_vocab.
DEFAULT_CHUNK_ROWS = 2048


def soft_cross_entropy_reference(logits: Tensor, target_logits: Tensor) -> tuple[Tensor, Tensor]:
    """logits [N, V] (fp32, with grad), target_logits [N, V] -> (sum of CE over rows, correct [N])."""
    target_p = torch.softmax(target_logits.to(logits.dtype), dim=-1)
    loss = -(target_p * torch.log_softmax(logits, dim=-1)).sum()
    correct = logits.detach().argmax(-1) == target_logits.argmax(-1)
    return loss, correct


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


# The chunk's elementwise work: eager, or fused into a few kernels by ``compile_kernels``.
_chunk = _chunk_math


def compile_kernels(enabled: bool = True) -> None:
    """Fuses the loss's per-chunk softmax/gradient passes with torch.compile (dynamic shapes);
    ``enabled=False`` goes back to eager."""
    global _chunk
    _chunk = torch.compile(_chunk_math, dynamic=True) if enabled else _chunk_math


class _FusedSoftCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, target_logits: Tensor, chunk: int, need_grad: bool):
        n = x.shape[0]
        acc = torch.promote_types(x.dtype, torch.float32)
        loss = torch.zeros((), dtype=acc, device=x.device)
        correct = torch.empty(n, dtype=torch.bool, device=x.device)
        grad_logits = torch.empty(n, weight.shape[0], dtype=x.dtype, device=x.device) if need_grad else None
        for start in range(0, n, chunk):
            rows = slice(start, min(start + chunk, n))
            # Same precision path as the reference: logits in the compute dtype, then fp32.
            chunk_loss, correct[rows], grad = _chunk(F.linear(x[rows], weight), target_logits[rows], need_grad, x.dtype)
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
        return grad_x * scale, grad_w * scale, None, None, None


def fused_soft_cross_entropy(
    x: Tensor, weight: Tensor, target_logits: Tensor, chunk: int = DEFAULT_CHUNK_ROWS
) -> tuple[Tensor, Tensor]:
    """x [N, H] (what lm_head reads), weight [V, H] (lm_head), target_logits [N, V]
    -> (sum of CE over rows, correct [N]). Runs lm_head in the autocast dtype when autocast is on."""
    dtype = _compute_dtype(x)
    need_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    device_type = x.device.type
    with torch.autocast(device_type, enabled=False):
        return _FusedSoftCrossEntropy.apply(x.to(dtype), weight.to(dtype), target_logits, max(1, chunk), need_grad)
