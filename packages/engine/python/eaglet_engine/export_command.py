"""`export`: a training checkpoint (or an output folder's newest one) -> exported draft folders.

    python -m eaglet_engine export --config export.json
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from . import checkpoint as ckpt
from . import events
from .config import ExportConfig
from .draft import DraftConfig, Eagle3Draft
from .errors import EngineError
from .export import save_draft
from .signals import StopRequested


def run(cfg: ExportConfig, _stop: StopRequested) -> dict[str, Any]:
    path = ckpt.find_checkpoint(cfg.checkpoint, cfg.checkpoint)
    if path is None:
        raise EngineError(f"no checkpoint found at {cfg.checkpoint}", code="EAGLET_CHECKPOINT_INVALID")
    trainer = ckpt.read(path, 0)["trainer"]
    draft_cfg = DraftConfig.from_dict(trainer["draftConfig"])
    model = Eagle3Draft(draft_cfg)
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    out = Path(cfg.output_dir)
    written: dict[str, str] = {}
    # The training run's target (its config is saved in the checkpoint) is the verifier.
    target = trainer["config"].get("target")
    if not isinstance(target, dict):
        raise EngineError(f"checkpoint {path} was written by an older eaglet (its config has no target block)", code="EAGLET_CHECKPOINT_INVALID", hint="export it with the eaglet version that trained it")
    verifier = {"name_or_path": cfg.target_model or target["model"], "architectures": [target["architecture"]]}
    for fmt in cfg.formats:
        folder = out if len(cfg.formats) == 1 else out / fmt
        save_draft(model, folder, fmt=fmt, verifier=verifier, speculative_tokens=cfg.speculative_tokens)
        written[fmt] = str(folder)
        events.artifact("draft", str(folder), f"Eagle3 draft ({fmt} format) from {path.name}")
    return {"checkpoint": str(path), "step": trainer["step"], "drafts": written}
