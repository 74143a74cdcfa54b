"""`train`: online Eagle3 training from a validated train config (see @eaglet/core TrainEngineConfig).

    python -m eaglet_engine train --config train.json
    torchrun --nproc-per-node 8 -m eaglet_engine train --config train.json
"""

from __future__ import annotations

from typing import Any

from .config import TrainConfig
from .signals import StopRequested
from .trainer import Trainer


def run(cfg: TrainConfig, stop: StopRequested) -> dict[str, Any]:
    trainer = Trainer(cfg, stop)
    try:
        return trainer.build().train()
    finally:
        trainer.close()
