"""What a training checkpoint holds and how a run restores it, for an exact resume.

``CheckpointState`` is the part of ``Trainer`` that reads and writes checkpoints: the state dict
(model, optimizer, scheduler, step, data position, unlogged metric sums), the checkpoint folder
(written by rank 0, each rank's own file beside it, published atomically), and the restore that
checks the checkpoint fits the run and drops metric rows logged after it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import checkpoint as ckpt
from . import distributed as dist_env
from . import events
from .config import to_dict
from .draft import DraftConfig
from .errors import EngineError
from .metrics import MetricsLog, StepStats

if TYPE_CHECKING:
    from .config import TrainConfig
    from .data import DataPosition
    from .ttt import TTTObjective
    from .vocab import VocabMapping


class CheckpointState:
    """Checkpoint methods of the trainer; they use the attributes ``Trainer.build`` sets."""

    cfg: TrainConfig
    env: dist_env.DistEnv
    output: Path
    model: torch.nn.Module
    objective: TTTObjective
    draft_config: DraftConfig
    vocab: VocabMapping
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: int
    position: DataPosition
    window: StepStats | None
    metrics_log: MetricsLog
    write_plot: Callable[[], Path | None]  # the trainer's: the curves, redrawn at each checkpoint

    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume restores: model, optimizer, scheduler, step, data position.
        (RNG states are per rank and saved beside it.)"""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state = get_model_state_dict(self.model, options=options)
        return {
            "model": {draft_key(k): v for k, v in model_state.items()},
            "optimizer": get_optimizer_state_dict(self.model, self.optimizer, options=options),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "position": self.position.state_dict(),
            # This rank's unlogged metric sums travel too, so a resumed run logs exactly what an
            # uninterrupted one would.
            "window": (self.window or StepStats.zeros(self.objective.steps)).state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True)
        prefix = _draft_prefix(self.model)
        set_model_state_dict(self.model, {prefix + k: v for k, v in state["model"].items()}, options=options)
        set_optimizer_state_dict(self.model, self.optimizer, state["optimizer"], options=options)
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.position.load_state_dict(state["position"])
        if state.get("window") is not None:
            self.window = StepStats.from_state_dict(state["window"])

    def save_checkpoint(self) -> Path:
        env = self.env
        final = ckpt.step_dir(self.output, self.step)
        tmp = final.with_name(final.name + ".tmp")
        state = self.state_dict()  # collective under FSDP: every rank takes part
        if env.is_main:
            ckpt.write_main_files(
                tmp,
                model_state=state["model"],
                optimizer_state=state["optimizer"],
                scheduler_state=state["scheduler"],
                trainer_state={
                    "step": self.step,
                    "position": state["position"],
                    "draftConfig": self.draft_config.to_dict(),
                    "vocab": {"path": self.vocab.source, "hash": self.vocab.content_hash, "fileHash": self.vocab.metadata.get("hash")},
                    "worldSize": env.world_size,
                    "config": to_dict(self.cfg),
                },
            )
        dist_env.barrier(env)
        ckpt.write_rank_file(tmp, env.rank, {"window": state["window"]})
        dist_env.barrier(env)
        if env.is_main:
            ckpt.publish(tmp, final, self.cfg.keep_checkpoints)
            events.checkpoint(self.step, str(final))
            self.write_plot()
        dist_env.barrier(env)
        return final

    def restore(self, path: Path) -> None:
        data = ckpt.read(path, self.env.rank)
        trainer = data["trainer"]
        if trainer["vocab"]["hash"] != self.vocab.content_hash:
            raise EngineError(
                f"checkpoint {path} was trained with another draft vocabulary mapping ({trainer['vocab']['path']}) than {self.cfg.vocab}",
                code="EAGLET_VOCAB_MISMATCH",
                hint="resume with the vocab file the checkpoint was trained with",
            )
        if DraftConfig.from_dict(trainer["draftConfig"]) != self.draft_config:
            raise EngineError(f"checkpoint {path} holds another draft architecture than this config", code="EAGLET_CHECKPOINT_INVALID")
        if trainer.get("worldSize", 1) != self.env.world_size:
            events.log("warn", f"checkpoint was written by {trainer['worldSize']} rank(s), resuming on {self.env.world_size}: the data order continues, but runs will not be bit-identical")
        rank = data["rank"] or {}
        self.load_state_dict({"model": data["model"], "optimizer": data["optimizer"], "scheduler": data["scheduler"], "step": trainer["step"], "position": trainer["position"], "window": rank.get("window")})
        if "rng" in rank:
            ckpt.set_rng_state(rank["rng"])
        if self.env.is_main:
            self.metrics_log.truncate(self.step)  # rows after the checkpoint are logged again


def draft_key(name: str) -> str:
    """Model state dict key of the wrapped objective -> the draft's own key."""
    for prefix in ("module.draft.", "draft."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _draft_prefix(model: torch.nn.Module) -> str:
    return "draft."
