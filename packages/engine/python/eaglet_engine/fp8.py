"""The frozen target's linear layers as FP8 products (train config ``targetFp8``).

Why: at 4096 tokens the bf16 target's products are ~70 ms of a ~0.26 s training step on an H200
(docs/perf/train.md), and an H100/H200 multiplies FP8 e4m3 at twice the bf16 rate. The target is
frozen, so its weights are quantised once, at load, and no gradient ever flows through them.

The scaling is row-wise: each weight row (output channel) and each input row (token) gets one
scale that maps its largest magnitude to e4m3's largest value, 448; the product accumulates in
fp32 (``torch._scaled_mm`` with [tokens, 1] and [1, out] scales). ``round_rows`` is the same
rounding in plain arithmetic: the reference the tests hold the kernel to, and what
``tools/bench/quality``'s ``fp8-target`` variant trains with to measure the effect on acceptance.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .errors import EngineError

E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0  # torch.finfo(torch.float8_e4m3fn).max
# The products need e4m3 tensor cores: compute capability 8.9 (Ada) and newer.
MIN_CAPABILITY = (8, 9)


def quantize_rows(t: Tensor) -> tuple[Tensor, Tensor]:
    """t [..., K] -> (e4m3 values [..., K], fp32 scales [..., 1]) with t ~= values * scales; an
    all-zero row gets scale 1 (not 0, which would divide by zero)."""
    amax = t.abs().amax(dim=-1, keepdim=True).float()
    scale = torch.where(amax > 0, amax / E4M3_MAX, torch.ones_like(amax))
    return (t.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3), scale


def round_rows(t: Tensor) -> Tensor:
    """t rounded through e4m3 with one scale per row, back in t's dtype (the plain-arithmetic form
    of what ``Fp8Linear`` multiplies)."""
    values, scale = quantize_rows(t)
    return (values.float() * scale).to(t.dtype)


class Fp8Linear(nn.Module):
    """A frozen ``nn.Linear`` whose product runs in FP8: the weight is quantised here, once; each
    call quantises its input rows and multiplies with ``torch._scaled_mm`` (fp32 accumulation, the
    output in the input's dtype, the bias added in that dtype as nn.Linear does)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight, scale = quantize_rows(linear.weight.detach())
        # _scaled_mm wants the second operand column-major: the [out, in] rows, transposed (a view).
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("weight_scale", scale.reshape(1, -1), persistent=False)
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape(-1, self.in_features)
        values, scale = quantize_rows(rows)
        y = torch._scaled_mm(values, self.weight.t(), scale_a=scale, scale_b=self.weight_scale, out_dtype=x.dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, e4m3 row-wise"


def check_fp8_device(device: torch.device, dtype: torch.dtype) -> None:
    """Refuses a device that cannot run the products, naming the setting: CUDA below compute
    capability 8.9, or CUDA in fp32 (the row-scaled kernel writes only bf16). The CPU runs them
    (slowly: for tests and the tiny fixtures)."""
    if device.type == "cuda":
        cap = torch.cuda.get_device_capability(device)
        if cap < MIN_CAPABILITY:
            raise EngineError(
                f"targetFp8: {torch.cuda.get_device_name(device)} (compute capability {cap[0]}.{cap[1]}) has no FP8 tensor cores (8.9 or newer: Ada, Hopper, Blackwell)",
                code="EAGLET_CONFIG_INVALID",
                hint="set targetFp8 to false",
            )
        if dtype != torch.bfloat16:
            raise EngineError(f"targetFp8 on CUDA needs precision bf16, not {str(dtype).replace('torch.', '')}", code="EAGLET_CONFIG_INVALID", hint="set precision to bf16 or targetFp8 to false")
    elif device.type != "cpu":
        raise EngineError(f"targetFp8 runs on CUDA and the CPU, not on {device.type}", code="EAGLET_CONFIG_INVALID", hint="set targetFp8 to false")


def to_fp8(layers: nn.ModuleList) -> int:
    """Replaces every ``nn.Linear`` inside the decoder layers with an ``Fp8Linear`` (the originals'
    bf16 weights are freed); the embeddings, the media encoder, the norms and lm_head stay as they
    are. Returns how many linears were replaced."""
    replaced = 0
    for layer in layers:
        for parent in list(layer.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear:
                    setattr(parent, name, Fp8Linear(child))
                    replaced += 1
    return replaced
