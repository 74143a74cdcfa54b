"""Training checkpoints that rebuild themselves: model (fp32 master weights), optimizer, scheduler,
RNG of every rank, data position, the draft config and the vocabulary mapping they belong to.

Layout of ``OUTPUT/checkpoints/step-00000100/``:

* ``model.safetensors``: the draft's trainable parameters and ``d2t``/``t2d`` (no embedding);
* ``optimizer.pt``, ``scheduler.pt``: full (unsharded) state dicts, keyed by parameter name;
* ``rank{r}.pt``: rank r's own state: Python, NumPy, torch CPU and CUDA generator states and its
  unlogged metric sums;
* ``trainer.json``: step, data position, draft config, vocab hash, the training config.

A checkpoint is written to ``step-N.tmp`` and renamed when complete, so a crash mid-write never
leaves a checkpoint that looks whole. ``latest`` names the newest one.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import EngineError

TRAINER_FILE = "trainer.json"


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def step_dir(output_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(output_dir) / f"step-{step:08d}"


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def write_rank_file(tmp: Path, rank: int, extra: dict[str, Any]) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    torch.save({"rng": rng_state(), **extra}, tmp / f"rank{rank}.pt")


def write_main_files(tmp: Path, *, model_state: dict[str, torch.Tensor], optimizer_state: dict, scheduler_state: dict, trainer_state: dict) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, str(tmp / "model.safetensors"))
    torch.save(optimizer_state, tmp / "optimizer.pt")
    torch.save(scheduler_state, tmp / "scheduler.pt")
    (tmp / TRAINER_FILE).write_text(json.dumps(trainer_state, indent=2) + "\n")


def publish(tmp: Path, final: Path, keep: int) -> None:
    """Makes a written checkpoint visible (atomic rename), points ``latest`` at it and keeps the
    newest ``keep`` checkpoints."""
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    root = final.parent
    (root / "latest").write_text(final.name + "\n")
    complete = sorted(p for p in root.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp") and (p / TRAINER_FILE).is_file())
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def holds_run(output_dir: str | Path) -> bool:
    """Whether a training run has written to OUTPUT: metrics, or a checkpoint folder."""
    root = checkpoint_dir(output_dir)
    return (Path(output_dir) / "metrics.jsonl").is_file() or (root.is_dir() and any(root.glob("step-*")))


def find_checkpoint(output_dir: str | Path, resume: bool | str) -> Path | None:
    """``resume: true`` -> the newest complete checkpoint under OUTPUT/checkpoints (None if there is
    none); a path -> that checkpoint (or the newest under it, if it is an output or checkpoints folder)."""
    if resume is False:
        return None
    if resume is True:
        root = checkpoint_dir(output_dir)
    else:
        root = Path(resume)
        if (root / TRAINER_FILE).is_file():
            return root
        if (root / "checkpoints").is_dir():
            root = root / "checkpoints"
    if not root.is_dir():
        if resume is True:
            return None
        raise EngineError(f"resume: {root} is not a checkpoint or a folder holding checkpoints", code="EAGLET_CHECKPOINT_INVALID")
    latest = root / "latest"
    if latest.is_file():
        candidate = root / latest.read_text().strip()
        if (candidate / TRAINER_FILE).is_file():
            return candidate
    complete = sorted(p for p in root.glob("step-*") if (p / TRAINER_FILE).is_file())
    if complete:
        return complete[-1]
    if resume is True:
        return None
    raise EngineError(f"resume: no complete checkpoint in {root}", code="EAGLET_CHECKPOINT_INVALID")


def read(path: Path, rank: int) -> dict[str, Any]:
    trainer = json.loads((path / TRAINER_FILE).read_text())
    rank_file = path / f"rank{rank}.pt"
    return {
        "trainer": trainer,
        "model": load_file(str(path / "model.safetensors")),
        "optimizer": torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False),
        "scheduler": torch.load(path / "scheduler.pt", map_location="cpu", weights_only=False),
        "rank": torch.load(rank_file, map_location="cpu", weights_only=False) if rank_file.is_file() else None,
    }
