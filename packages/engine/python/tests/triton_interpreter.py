"""Kernel checks on the CPU: a script run under Triton's interpreter (TRITON_INTERPRET=1), which
runs the same kernel source as CUDA does. The interpreter is chosen when Triton is first
imported, hence a subprocess rather than this test process."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def interpreted_rows(script: str) -> list[dict]:
    """Runs `script` under the interpreter; returns the JSON list it prints on its last line."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
