"""StepWeights: one cast of each weight per unroll, one alias per step, the steps' gradients summed
in fp32 once."""

import pytest
import torch
from torch import nn

from eaglet_engine.step_weights import StepWeights


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(8, 8, bias=True)
        self.scale = nn.Parameter(torch.rand(8) + 0.5)
        self.frozen = nn.Parameter(torch.randn(8), requires_grad=False)

    def forward(self, x):
        return self.inner(x) * self.scale + self.frozen


def test_each_use_computes_with_its_alias_and_the_parameters_get_the_sum_of_the_uses_gradients():
    torch.manual_seed(0)
    net = _Net()
    xs = [torch.randn(5, 8) for _ in range(3)]
    weights = StepWeights(net, torch.bfloat16, uses=3)
    total = 0
    for i, x in enumerate(xs):
        with weights.use(i):
            assert net.inner.weight.dtype == torch.bfloat16 and net.scale.dtype == torch.bfloat16
            y = net(x.bfloat16())
            total = total + (y.float() ** 2).sum() * (i + 1)
    assert isinstance(net.inner.weight, nn.Parameter) and net.inner.weight.dtype == torch.float32  # restored
    total.backward()

    # Reference: the same products from the same bf16 weights, each use's gradient in fp64.
    ref = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in net.named_parameters() if p.requires_grad}
    for i, x in enumerate(xs):
        low = {n: p.detach().bfloat16().requires_grad_(p.requires_grad) for n, p in net.named_parameters()}
        y = torch.func.functional_call(net, low, (x.bfloat16(),))
        grads = torch.autograd.grad((y.float() ** 2).sum() * (i + 1), [low[n] for n in ref])
        for n, g in zip(ref, grads, strict=True):
            ref[n] += g.double()
    for n, p in net.named_parameters():
        if not p.requires_grad:
            assert p.grad is None
            continue
        assert p.grad.dtype == torch.float32
        # Each use's bf16 gradient is summed in fp32: the only rounding is the final one to fp32.
        torch.testing.assert_close(p.grad.double(), ref[n], rtol=1e-6, atol=1e-6)


def test_an_unused_alias_adds_nothing_and_a_failing_step_restores_the_parameters():
    net = _Net()
    weights = StepWeights(net, torch.bfloat16, uses=4)
    with weights.use(2):
        loss = net(torch.ones(2, 8, dtype=torch.bfloat16)).float().sum()
    loss.backward()
    assert net.inner.bias.grad is not None and net.inner.bias.grad.dtype == torch.float32
    torch.testing.assert_close(net.inner.bias.grad, (torch.ones(8) * net.scale.detach().bfloat16().float() * 2))

    with pytest.raises(RuntimeError, match="boom"), weights.use(1):
        raise RuntimeError("boom")
    assert all(isinstance(p, nn.Parameter) and p.dtype == torch.float32 for p in net.parameters())
