"""What the GPU benchmarks measure the same way: the copy bandwidth the floors are computed from,
and the training benchmarks' step figures (eaglet's and the reference trainer's rows alike)."""

from __future__ import annotations

import numpy as np
import torch


def step_figures(timings: dict[str, list[float]], warmup: int, length: int, world_size: int = 1) -> dict:
    """A training benchmark row's timing fields from per-step wall times (``timings["step"]``) and
    the target part of each (``timings["target"]``): medians after the warm-up steps; tokens/s per
    GPU (each rank runs one record of ``length`` tokens a step) and in total."""
    step = float(np.median(timings["step"][warmup:]))
    tgt = float(np.median(timings["target"][warmup:]))
    return dict(
        step_s=round(step, 4),
        target_s=round(tgt, 4),
        draft_and_optimizer_s=round(step - tgt, 4),
        target_share=round(tgt / step, 3),
        tokens_per_s=round(length / step, 1),
        tokens_per_s_total=round(world_size * length / step, 1),
        steps_timed=len(timings["step"]) - warmup,
    )


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
