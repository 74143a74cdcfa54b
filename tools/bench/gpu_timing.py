"""What the GPU benchmarks measure the same way: the copy bandwidth and product rate the floors
are computed from, the card's clock and power while they run, and the training benchmarks' step
figures (eaglet's and the reference trainer's rows alike)."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable

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
      while the GPU finishes the last. The step time is their span over their count: the mean
      interval between step starts, the last one ending at the synchronisation. Not the median:
      the intervals alternate between about 110 and 295 ms on an H200 at 4096 (the host runs a
      step ahead, then waits on the full launch queue for two), and the median of such a series
      lands anywhere between its two modes: it read 18.6k-20.2k tokens/s over five runs of the
      same code on one card, 2026-12-03, while each pair of intervals held at 400-410 ms. The
      median is kept beside it (``pipelined_median_interval_s``), with every interval.
      ``tokens_per_s`` is this view's where it was run.

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
        starts = [*timings["start"], timings["end"][-1]]
        intervals = np.diff(starts)
        pipelined = (starts[-1] - starts[0]) / len(intervals)
        out.update(
            pipelined_step_s=round(pipelined, 4),
            pipelined_steps=len(intervals),
            pipelined_median_interval_s=round(float(np.median(intervals)), 4),
            pipelined_intervals_ms=[round(1e3 * x, 2) for x in intervals],
        )
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
    timed_seconds(device, lambda: dst.copy_(src), 3)
    count = 20
    return 2 * 2**30 * count / timed_seconds(device, lambda: dst.copy_(src), count) / 1e12


def timed_seconds(device: torch.device, work: Callable[[], object], count: int) -> float:
    """Seconds that ``count`` calls of ``work`` take: between CUDA events on a GPU, by the host's
    clock elsewhere (the ``--tiny`` checks of the scripts)."""
    if device.type != "cuda":
        t0 = time.perf_counter()
        for _ in range(count):
            work()
        return time.perf_counter() - t0
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(count):
        work()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def sustained_matmul_tflops(device: torch.device, shape: tuple[int, int, int], seconds: float = 8.0, dtype: torch.dtype = torch.bfloat16) -> float:
    """TFLOP/s this card keeps up on one bf16 product ``[m, k] x [k, n]`` (train_throughput passes
    the target's MLP projection at 4096 tokens, from the model spec it trains), run back to
    back for ``seconds`` and timed over the second half: long enough for the card to reach its
    power limit, as a training run does. An H200 held at its 700 W cap ran the 7B training step
    at about 1,635 MHz against its 1,980 MHz boost (2026-12-03), so a floor from the datasheet's
    rate, or from a product timed cold, is one the card cannot reach."""
    m, k, n = shape
    a = torch.randn(m, k, device=device, dtype=dtype)
    b = torch.randn(k, n, device=device, dtype=dtype)
    out = torch.empty(m, n, device=device, dtype=dtype)

    def product() -> None:
        torch.mm(a, b, out=out)

    timed_seconds(device, product, 3)
    count = max(1, int(seconds / 2 / (timed_seconds(device, product, 10) / 10)))
    timed_seconds(device, product, count)  # the first half: the card warms to its steady clock
    return 2 * m * k * n * count / timed_seconds(device, product, count) / 1e12


class DeviceMonitor:
    """The card's SM clock and power draw, and whether its power limit holds the clock down,
    sampled every 100 ms by ``nvidia-smi`` into a file for as long as the monitor lives; a window
    of host wall-clock time (``time.time()``) is summarised afterwards. Without ``nvidia-smi``, or
    with a driver that does not know the query, the summaries are empty."""

    QUERY = "timestamp,clocks.sm,power.draw,clocks_event_reasons.sw_power_cap"

    def __init__(self, device: torch.device) -> None:
        # Appended to (O_APPEND) and read through a file of its own: nvidia-smi's descriptor shares
        # this one's offset, which a seek to read it would move under its writes.
        self.log = tempfile.NamedTemporaryFile("a", prefix="eaglet-smi-", suffix=".csv")
        self.proc = None
        if device.type == "cuda" and shutil.which("nvidia-smi"):
            card = f"GPU-{torch.cuda.get_device_properties(device).uuid}"  # the card itself, whatever CUDA_VISIBLE_DEVICES says
            command = ["nvidia-smi", "-i", card, f"--query-gpu={self.QUERY}", "--format=csv,noheader,nounits", "-lms", "100"]
            self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.DEVNULL)

    def window(self, start: float, end: float) -> dict:
        """Medians of the SM clock (MHz) and power (W) between two ``time.time()`` readings, and the
        share of samples in which the power cap held the clock down."""
        self.log.flush()
        with open(self.log.name) as f:
            text = f.read()
        samples = []
        for line in text.splitlines():
            fields = [f.strip() for f in line.split(",")]
            try:
                stamp = datetime.datetime.strptime(fields[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()  # the host's local time, as time.time()'s
                samples.append((stamp, float(fields[1]), float(fields[2]), fields[3] == "Active"))
            except (ValueError, IndexError):
                continue
        inside = [s for s in samples if start <= s[0] <= end]
        if not inside:
            return {}
        return {
            "sm_clock_mhz": round(float(np.median([s[1] for s in inside]))),
            "power_w": round(float(np.median([s[2] for s in inside])), 1),
            "power_capped_share": round(sum(s[3] for s in inside) / len(inside), 2),
            "monitor_samples": len(inside),
        }

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
        self.log.close()
