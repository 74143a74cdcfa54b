"""The training benchmarks' arithmetic (tools/bench/gpu_timing.py): what a row's step time is made
of, and the card monitor's summaries. The benchmarks themselves run on a GPU; these are the parts
whose mistakes would print a wrong figure without failing."""

import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tools" / "bench"))
from gpu_timing import DeviceMonitor, step_figures, sustained_matmul_tflops  # noqa: E402


def _timings(intervals_ms: list[float]) -> dict:
    starts = [100.0]
    for ms in intervals_ms[:-1]:
        starts.append(starts[-1] + ms / 1e3)
    return {"step": [0.2] * 6, "target": [0.1] * 6, "start": starts, "end": [starts[-1] + intervals_ms[-1] / 1e3]}


# Intervals between step starts of 32 pipelined steps of the 7B setup at 4096, as measured on an
# H200 on 2026-12-03 (tools/bench/train_throughput.py): the host's step starts alternate short and
# long (it runs a step ahead, then waits on the full launch queue), each pair two of the GPU's steps.
MEASURED_MS = [
    109.46, 191.49, 204.52, 196.64, 212.89, 282.38, 107.76, 301.0, 112.41, 296.12, 114.45, 287.57, 114.6, 299.58, 107.82, 299.4,
    107.23, 298.53, 109.33, 297.11, 108.95, 298.69, 110.94, 300.92, 112.06, 299.52, 109.23, 293.56, 110.3, 298.22, 111.59, 286.45,
]


def test_pipelined_steps_are_timed_by_their_span_not_by_the_median_of_alternating_intervals():
    row = step_figures(_timings(MEASURED_MS), warmup=1, length=4096)
    span_s = sum(MEASURED_MS) / 1e3
    assert row["pipelined_steps"] == 32
    assert row["pipelined_step_s"] == pytest.approx(span_s / 32, abs=1e-4)  # 0.2028 s
    assert row["tokens_per_s"] == pytest.approx(4096 * 32 / span_s, rel=1e-4)  # 20,197
    # The median of the same series, kept in the row, says 0.2006 s (20,421 tokens/s): it lands
    # between the two modes wherever the few middle values put it.
    assert row["pipelined_median_interval_s"] == pytest.approx(0.2006, abs=1e-4)
    assert row["pipelined_intervals_ms"] == MEASURED_MS
    # Two intervals swapped: the same work in the same span, the same figure.
    swapped = [*MEASURED_MS[:5], MEASURED_MS[6], MEASURED_MS[5], *MEASURED_MS[7:]]
    again = step_figures(_timings(swapped), warmup=1, length=4096)
    assert again["pipelined_step_s"] == row["pipelined_step_s"]


def test_synchronised_steps_are_medians_after_the_warmup():
    row = step_figures({"step": [9.0, 0.2, 0.21, 0.19], "target": [9.0, 0.1, 0.1, 0.1]}, warmup=1, length=1000)
    assert row["step_s"] == 0.2 and row["target_s"] == 0.1 and row["steps_timed"] == 3
    assert row["tokens_per_s"] == 5000.0 and "pipelined_step_s" not in row


def test_the_monitor_summarises_the_samples_inside_a_window():
    monitor = DeviceMonitor(torch.device("cpu"))  # no nvidia-smi on a CPU device: samples written here
    try:
        now = time.time()

        def stamp(t: float) -> str:
            return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"

        lines = [
            f"{stamp(now - 5)}, 1980, 80.0, Not Active",  # before the window
            f"{stamp(now + 0.1)}, 1650, 690.5, Active",
            f"{stamp(now + 0.2)}, 1620, 699.0, Active",
            f"{stamp(now + 0.3)}, 1700, 650.0, Not Active",
            "No devices were found",  # what nvidia-smi prints when it cannot answer: skipped
            f"{stamp(now + 9)}, 1980, 90.0, Not Active",  # after it
        ]
        monitor.log.write("\n".join(lines) + "\n")
        summary = monitor.window(now, now + 1)
        assert summary == {"sm_clock_mhz": 1650, "power_w": 690.5, "power_capped_share": 0.67, "monitor_samples": 3}
        assert monitor.window(now + 20, now + 30) == {}
    finally:
        monitor.close()


def test_the_sustained_rate_counts_two_flops_a_multiply_add():
    rate = sustained_matmul_tflops(torch.device("cpu"), (64, 32, 48), seconds=0.05, dtype=torch.float32)
    assert 0 < rate < 100  # TFLOP/s: a CPU's, not a count off by 1e12
