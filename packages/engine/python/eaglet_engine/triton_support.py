"""What the training's Triton kernels (``soft_ce_kernel``, ``ttt_merge_kernel``) share: Triton
itself where it is installed, and which tensors a kernel serves."""

from __future__ import annotations

import os

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - torch wheels without Triton: the torch math stays
    triton = tl = None

# Triton chose between compiling and interpreting when it was imported (tests set the variable in
# a subprocess); interpreted, the kernels run on CPU tensors.
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"


def serves(x: Tensor) -> bool:
    """Whether a kernel runs for ``x``: Triton, and CUDA tensors (CPU ones under Triton's
    interpreter), fp32 or narrower; fp64 (the tests' references) keeps the torch math."""
    return triton is not None and x.dtype in (torch.float32, torch.bfloat16, torch.float16) and (x.is_cuda or INTERPRETED)
