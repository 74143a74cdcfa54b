"""The draft's weights in the compute dtype for one training-time-test unroll: cast once, with a
separate handle per step, so that the steps' weight gradients are summed in one pass.

bf16 training keeps fp32 weights. The unroll runs the same layer ``steps`` times, so each weight
has ``steps`` gradients. Handed one bf16 copy, autograd adds them pairwise as they arrive (six
additions over the whole layer at TTT 7, each reading two tensors and writing one) and then casts
the sum to fp32: on the 7B draft at 4096 tokens on an H200 that was 3.1 ms of the step
(docs/perf/train.md). Here the copy is handed out as one alias per step; autograd keeps each
step's gradient apart, and the cast's backward receives all of them at once and sums them in
fp32 in one kernel (when compiled), reading each once and writing the fp32 gradient once. The
price is memory: the steps' bf16 gradients are all alive at the end of the backward pass (on the
7B draft, 7 x 0.5 GB), while its activations are being freed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .kernels import compiled_if, sum_in_fp32


class _CastForUses(torch.autograd.Function):
    """weight -> ``uses`` aliases of one cast of it to ``dtype``; backward sums the aliases'
    gradients (those that have one) in fp32 into the weight's dtype."""

    @staticmethod
    def forward(ctx, weight: Tensor, dtype: torch.dtype, uses: int, compiled: bool):
        ctx.set_materialize_grads(False)  # an unused alias costs no zero tensor
        ctx.weight_dtype, ctx.compiled = weight.dtype, compiled
        low = weight.to(dtype)
        # Views, all of them: the compiled layer sees the same kind of tensor at every step.
        return tuple(low.view_as(low) for _ in range(uses))

    @staticmethod
    def backward(ctx, *grads: Tensor | None):
        present = [g for g in grads if g is not None]
        if not present:
            return None, None, None, None
        return compiled_if(sum_in_fp32, ctx.compiled)(present, ctx.weight_dtype), None, None, None


class StepWeights:
    """``module``'s floating parameters cast to ``dtype``, one alias per use (``uses`` of them):
    inside ``with weights.use(i)`` the module computes with alias i. Gradients reach the
    parameters themselves (in their dtype), so DDP's hooks and the optimizer see them as usual."""

    def __init__(self, module: nn.Module, dtype: torch.dtype, uses: int, *, compiled: bool = False) -> None:
        params = {n: p for n, p in module.named_parameters() if p.is_floating_point() and p.dtype != dtype}
        # Where each parameter lives, found once (``use`` runs at every step of every unroll).
        self.slots = [(module.get_submodule(owner), attr) for owner, _, attr in (n.rpartition(".") for n in params)]
        aliases = [_CastForUses.apply(p, dtype, uses, compiled) if p.requires_grad else (p.detach().to(dtype),) * uses for p in params.values()]
        self.per_use = [[a[i] for a in aliases] for i in range(uses)]

    @contextmanager
    def use(self, i: int) -> Iterator[None]:
        """The module's parameters are alias i until the block ends. As ``torch.func.functional_call``
        does, the tensors go into the owning modules' ``_parameters`` (``setattr`` accepts only
        ``nn.Parameter`` there)."""
        swapped: list[tuple[nn.Module, str, Tensor]] = []
        try:
            for (owner, attr), tensor in zip(self.slots, self.per_use[i], strict=True):
                swapped.append((owner, attr, owner._parameters[attr]))
                owner._parameters[attr] = tensor
            yield
        finally:
            for owner, attr, original in reversed(swapped):
                owner._parameters[attr] = original
