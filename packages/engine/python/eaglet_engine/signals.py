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
