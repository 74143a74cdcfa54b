"""JSON-line events on stdout: the engine's only output channel to the TypeScript side.

Every event has a `type` and matches a schema in @eaglet/core (`EagletEvent`). In distributed runs
the first process of each node (local rank 0) emits, so every node's `eaglet train` shows the run
and ends with its `done`; the values are the same on every node (metrics are all-reduced) and the
files (metrics.jsonl, checkpoints, the export) are written by global rank 0 alone. Logs go to
stderr (the `logging` module), never to stdout.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from typing import Any, TextIO

_lock = threading.Lock()
_out: TextIO | None = None  # None: whatever sys.stdout is at the time


def is_reporter() -> bool:
    """The process that owns stdout: local rank 0 (the only process outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0")) == 0


def redirect_stdout_to_stderr() -> None:
    """Keeps stdout for events alone: libraries that print() then write to stderr instead."""
    global _out
    _out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; a diverged loss becomes null rather than an unparseable line.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def emit(event_type: str, **fields: Any) -> None:
    if not is_reporter():
        return
    line = json.dumps(_clean({"type": event_type, **fields}), separators=(",", ":"), allow_nan=False)
    out = _out or sys.stdout
    with _lock:
        out.write(line + "\n")
        out.flush()


def progress(task: str, done: float, total: float | None = None, unit: str | None = None, message: str | None = None) -> None:
    fields: dict[str, Any] = {"task": task, "done": done}
    if total is not None:
        fields["total"] = total
    if unit is not None:
        fields["unit"] = unit
    if message is not None:
        fields["message"] = message
    emit("progress", **fields)


def metrics(split: str, step: int, values: dict[str, float], epoch: float | None = None) -> None:
    # Non-finite metrics are dropped rather than sent as null (the schema wants numbers).
    finite = {k: float(v) for k, v in values.items() if math.isfinite(float(v))}
    fields: dict[str, Any] = {"split": split, "step": step, "values": finite}
    if epoch is not None:
        fields["epoch"] = epoch
    emit("metrics", **fields)


def log(level: str, message: str) -> None:
    emit("log", level=level, message=message)


def artifact(kind: str, path: str, description: str | None = None) -> None:
    emit("artifact", kind=kind, path=path, **({"description": description} if description else {}))


def checkpoint(step: int, path: str) -> None:
    emit("checkpoint", step=step, path=path)


def error(message: str, code: str = "EAGLET_ENGINE_ERROR", hint: str | None = None, traceback: str | None = None) -> None:
    fields: dict[str, Any] = {"code": code, "message": message}
    if hint:
        fields["hint"] = hint
    if traceback:
        fields["traceback"] = traceback
    if not is_reporter():
        # Only local rank 0 owns stdout; another rank's failure still has to reach the user, through
        # the stderr log whose tail the TS bridge shows when torchrun reports the failed rank.
        detail = f"\n{traceback}" if traceback else (f" ({hint})" if hint else "")
        print(f"[rank {os.environ.get('RANK')}] {code}: {message}{detail}", file=sys.stderr, flush=True)
        return
    emit("error", **fields)


def done(stopped: bool = False, result: Any = None) -> None:
    emit("done", stopped=stopped, **({"result": result} if result is not None else {}))
