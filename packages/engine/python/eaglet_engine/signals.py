"""Cooperative cancellation: SIGINT/SIGTERM set a flag that long loops check at safe points.

The first signal asks the work to stop after the current step (it then checkpoints and emits
`done` with `stopped: true`); a second signal interrupts immediately.
"""

from __future__ import annotations

import signal
import threading


class StopRequested:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def install(self) -> "StopRequested":
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: object) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping now")
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def request(self) -> None:
        self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


PARENT_PID_ENV = "EAGLET_PARENT_PID"


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """Ends this process when the eaglet process that started it is gone.

    The TypeScript side runs the engine in its own process group (so a stop reaches torchrun's
    workers), which also means a SIGKILL of `eaglet` itself, or its machine session ending, leaves
    the engine orphaned, holding GPUs and its peers' collectives. `runEngine` passes its pid in
    EAGLET_PARENT_PID (torchrun hands the environment to every worker); when that pid is gone this
    process exits at once, as a crash would: training resumes from its last checkpoint, and the
    other nodes' collectives fail fast instead of waiting out their timeout.
    """
    import os
    import sys

    value = os.environ.get(PARENT_PID_ENV)
    if not value:
        return
    parent = int(value)

    def watch() -> None:
        while True:
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                try:
                    sys.stderr.write(f"eaglet engine: its parent process {parent} is gone; exiting\n")
                    sys.stderr.flush()
                except OSError:
                    pass  # the parent held our stderr too
                os._exit(1)
            except PermissionError:
                pass  # alive, owned by someone else (a reused pid is not ours to judge)
            threading.Event().wait(poll_seconds)

    threading.Thread(target=watch, name="eaglet-parent-watch", daemon=True).start()
