"""`train`: online Eagle3 training from a validated train config (see @eaglet/core TrainEngineConfig).

    python -m eaglet_engine train --config train.json
    torchrun --nproc-per-node 8 -m eaglet_engine train --config train.json
"""

from __future__ import annotations

from typing import Any

from . import distributed
from .config import TrainConfig
from .errors import EngineError
from .signals import StopRequested
from .trainer import Trainer


def run(cfg: TrainConfig, stop: StopRequested) -> dict[str, Any]:
    trainer = Trainer(cfg, stop)
    try:
        return trainer.build().train()
    except RuntimeError as e:
        if not distributed.peer_lost(e):
            raise
        raise EngineError(
            f"rank {trainer.env.rank} lost contact with another rank: {str(e).splitlines()[0]}",
            code="EAGLET_PEER_LOST",
            hint="a node or process of this run died or stopped answering: see the other nodes' logs, then restart every node with --resume",
        ) from e
    finally:
        trainer.close()
