"""Training metrics: the per-step sums a run accumulates between log lines, the values they give,
and the file they are logged to.

``StepStats`` is part of a checkpoint (each rank's unlogged sums), so a resumed run logs exactly
what an uninterrupted one would; ``MetricsLog`` is the run's metrics.jsonl.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


@dataclass
class StepStats:
    """Sums over micro-batches (and, once reduced, ranks) of one or more optimizer steps.

    The loss sums, correct counts, objective and gradient norm may live on the training device:
    a step returns them there and the window adds them there, so no step waits for the GPU to
    finish before the host queues the next one (reading them is a synchronisation; the trainer
    reads once per log line). ``counts`` and the wall-clock fields are host values."""

    steps: int
    loss_sum: Tensor  # [steps_ttt]
    correct: Tensor  # [steps_ttt]
    counts: Tensor  # [steps_ttt], on the host
    objective: float | Tensor = 0.0
    grad_norm: float | Tensor = 0.0
    tokens: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def zeros(cls, ttt_steps: int, device: torch.device | None = None) -> StepStats:
        z = torch.zeros(ttt_steps, dtype=torch.float64, device=device)
        return cls(0, z.clone(), z.clone(), torch.zeros(ttt_steps, dtype=torch.float64))

    def add(self, other: StepStats) -> None:
        self.steps += other.steps
        # Not in place: a window restored from a checkpoint (host) takes a step's sums (device).
        self.loss_sum = self.loss_sum.to(other.loss_sum.device) + other.loss_sum
        self.correct = self.correct.to(other.correct.device) + other.correct
        self.counts += other.counts
        self.objective = self.objective + other.objective
        self.grad_norm = self.grad_norm + other.grad_norm
        self.tokens += other.tokens
        self.seconds += other.seconds

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "loss_sum": self.loss_sum.tolist(),
            "correct": self.correct.tolist(),
            "counts": self.counts.tolist(),
            "objective": float(self.objective),
            "grad_norm": float(self.grad_norm),
            "tokens": self.tokens,
            "seconds": self.seconds,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> StepStats:
        t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        return cls(state["steps"], t(state["loss_sum"]), t(state["correct"]), t(state["counts"]), state["objective"], state["grad_norm"], state["tokens"], state["seconds"])

    def values(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.steps:
            out["loss"] = float(self.objective) / self.steps
        counts = self.counts.clamp(min=1)
        loss_sum, correct = self.loss_sum.cpu(), self.correct.cpu()
        for i in range(len(self.counts)):
            out[f"ploss_{i}"] = float(loss_sum[i] / counts[i])
        for i in range(len(self.counts)):
            out[f"acc_{i}"] = float(correct[i] / counts[i])
        return out


class MetricsLog:
    """A run's metrics.jsonl, one row per logged step (train and eval), and those rows in memory
    for the curves. Only rank 0 writes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    def truncate(self, step: int) -> None:
        """Drops the rows logged after ``step`` (a run resumed from there logs them again)."""
        if not self.path.is_file():
            return
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        kept = [r for r in rows if r["step"] <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.rows = kept
