"""The learning-rate schedule of a training run."""

from __future__ import annotations

import math


class Schedule:
    """Learning-rate multiplier: linear warmup, then constant or cosine down to min_ratio.
    A class (not a lambda) so the scheduler state pickles."""

    def __init__(self, kind: str, warmup: int, total: int, min_ratio: float) -> None:
        self.kind, self.warmup, self.total, self.min_ratio = kind, warmup, max(1, total), min_ratio

    def __call__(self, step: int) -> float:
        if self.warmup and step < self.warmup:
            return (step + 1) / self.warmup
        if self.kind == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
