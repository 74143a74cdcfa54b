"""What the GPU benchmarks measure the same way: the copy bandwidth the floors are computed from."""

from __future__ import annotations

import torch


def copy_bandwidth_tbs(device: torch.device) -> float:
    """TB/s of a 1 GiB bf16 device-to-device copy (bytes read and written both counted), timed
    between events around 20 copies after 3 warm-ups. Not inside a CUDA graph: there a copy is a
    memcpy node run by the copy engines, which measured 2.7 TB/s against 4.26 on an H200."""
    n = 2**30 // 2
    src = torch.randn(n, device=device, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        dst.copy_(src)
    end.record()
    end.synchronize()
    return 2 * 2**30 * 20 / (start.elapsed_time(end) / 1e3) / 1e12
