"""`build-demo`: builds a target plugin's quickstart model (``TargetDemo.builder``).

The plugin's Python module (on PYTHONPATH through the plugin's enginePath) exposes
``build_demo(out: str, seed: int) -> dict``; it writes a small checkpoint of its family into ``out``
and returns a summary. The engine only runs it, so the family's knowledge stays in its plugin.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import events
from .config import DemoBuildConfig
from .errors import EngineError
from .signals import StopRequested


def run(cfg: DemoBuildConfig, stop: StopRequested) -> dict[str, Any]:  # noqa: ARG001 - a build is not stoppable midway
    try:
        module = importlib.import_module(cfg.module)
    except ImportError as e:
        raise EngineError(f"cannot import the demo builder {cfg.module!r}: {e}", code="EAGLET_TARGET_ADAPTER", hint="the target plugin's enginePath must be on PYTHONPATH (the eaglet CLI does this)") from e
    build = getattr(module, "build_demo", None)
    if build is None:
        raise EngineError(f"{cfg.module} has no build_demo(out, seed)", code="EAGLET_TARGET_ADAPTER")
    events.progress("build-demo", 0, 1, "model", cfg.module)
    summary = build(cfg.out, cfg.seed)
    events.progress("build-demo", 1, 1, "model", cfg.module)
    return {"out": cfg.out, **(summary or {})}
