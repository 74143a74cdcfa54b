"""torch.compile for the fast path's steps: one-token calls get their own autotuned compilation.

A one-token step multiplies every weight matrix by one vector, so it is bound by reading weights,
and which kernel reads a given shape fastest is found only by timing. On an H200 cuBLAS's choice
read the 7B's projections at 61-91% of the copy bandwidth; inductor's max-autotune, which times
its Triton matrix-product templates against cuBLAS for each shape, took a whole decode step from
5.05 to 4.71 ms, and gained nothing at five tokens (docs/perf/decode.md). So on CUDA a one-token
call goes to a static-shape max-autotune compilation and every other token count keeps the
general (dynamic-shape) one.

Autotuning costs about 20 s per function on the first start; inductor's on-disk cache
(TORCHINDUCTOR_CACHE_DIR, by default under the system's temporary folder) keeps the chosen kernels
for later starts on that machine.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def one_token_compiled(general: Callable, fn: Callable, token_dim: int, device: torch.device) -> Callable:
    """`general` (fn compiled for every shape), except that on CUDA calls whose first argument
    holds one token along `token_dim` run `fn` compiled by max-autotune for that shape."""
    if device.type != "cuda":
        return general
    one = torch.compile(fn, mode="max-autotune-no-cudagraphs", dynamic=False)

    def call(x, *args):
        return (one if x.shape[token_dim] == 1 else general)(x, *args)

    return call
