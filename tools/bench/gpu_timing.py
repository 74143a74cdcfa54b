"""What the GPU benchmarks measure the same way: the copy bandwidth the floors are computed from,
and the training benchmarks' step figures (eaglet's and the reference trainer's rows alike)."""

from __future__ import annotations

import numpy as np
import torch


def step_figures(timings: dict[str, list[float]], warmup: int, length: int, world_size: int = 1) -> dict:
    """A training benchmark row's timing fields. Two views of the same trainer, one after the
    other in one process:

    * synchronised steps (``timings["step"]``, with ``timings["target"]`` their target part): the
      device is synchronised around each step and its target phase, so the phases can be told
      apart; medians after ``warmup`` steps.
    * pipelined steps (``timings["start"]``: host clock at each step's start, ``timings["end"]``:
      after the last one and a synchronisation): run as training runs, the host queueing a step
      while the GPU finishes the last; the step time is the median interval between step starts
      (a step no longer waits for the GPU, but the host cannot run further ahead than the CUDA
      launch queue holds, about a thousand kernels, under one step of the 7B setup: in the steady
      state the intervals are the GPU's). ``tokens_per_s`` is this view's where it was run.

    Tokens/s are per GPU (each rank runs one record of ``length`` tokens a step) and in total."""
    step = float(np.median(timings["step"][warmup:]))
    tgt = float(np.median(timings["target"][warmup:]))
    out = dict(
        step_s=round(step, 4),
        target_s=round(tgt, 4),
        draft_and_optimizer_s=round(step - tgt, 4),
        target_share=round(tgt / step, 3),
        synced_tokens_per_s=round(length / step, 1),
        steps_timed=len(timings["step"]) - warmup,
    )
    if timings.get("start") and timings.get("end"):
        intervals = np.diff([*timings["start"], timings["end"][-1]])
        pipelined = float(np.median(intervals))
        # Every interval too: the median of the same code moved by 8% between runs on one card
        # (docs/perf/train.md, 2026-12-03); whether a few steps or all of them were slower tells
        # a pause (collection, a stalled data thread) from a slower steady state.
        out.update(pipelined_step_s=round(pipelined, 4), pipelined_steps=len(timings["start"]), pipelined_intervals_ms=[round(1e3 * x, 2) for x in intervals])
        step = pipelined
    out.update(tokens_per_s=round(length / step, 1), tokens_per_s_total=round(world_size * length / step, 1))
    return out


class StepClock:
    """Which view (``step_figures``) a benchmark's step ``index`` (0-based) belongs to: the first
    ``warmup + synced`` steps are synchronised, the next ``pipelined`` are not."""

    def __init__(self, warmup: int, synced: int, pipelined: int) -> None:
        self.synced_steps, self.total = warmup + synced, warmup + synced + pipelined

    def synced(self, index: int) -> bool:
        return index < self.synced_steps

    def last(self, index: int) -> bool:
        return index == self.total - 1


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
