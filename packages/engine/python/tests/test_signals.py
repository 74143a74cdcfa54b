"""The engine ends itself when the eaglet process that started it is gone (signals.exit_with_parent)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from eaglet_engine.signals import PARENT_PID_ENV

# Writes nothing while it waits: the only way out before 60 s is the parent watch.
SILENT_WORK = "from eaglet_engine.signals import exit_with_parent; exit_with_parent(0.1); import time; time.sleep(60)"


def _start(parent_pid: int | None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop(PARENT_PID_ENV, None)
    if parent_pid is not None:
        env[PARENT_PID_ENV] = str(parent_pid)
    return subprocess.Popen([sys.executable, "-c", SILENT_WORK], env=env, stderr=subprocess.PIPE, text=True)


def test_exits_soon_after_its_parent_dies():
    parent = subprocess.Popen(["sleep", "60"])
    child = _start(parent.pid)
    try:
        time.sleep(1.0)
        assert child.poll() is None, "exited while its parent was alive"
        parent.kill()
        parent.wait()
        t0 = time.monotonic()
        code = child.wait(timeout=10)
        assert code == 1
        assert time.monotonic() - t0 < 5
        assert f"parent process {parent.pid} is gone" in child.stderr.read()
    finally:
        parent.kill()
        child.kill()


def test_without_the_variable_nothing_is_watched():
    child = _start(None)
    try:
        time.sleep(1.0)
        assert child.poll() is None
    finally:
        child.kill()
