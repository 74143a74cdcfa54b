"""Run configs arrive as JSON files written by the TypeScript side. They are validated again here
against JSON Schemas generated from @eaglet/core's zod schemas (the one source of truth), so a
config written by hand or by another tool fails with every bad field named, and unknown keys fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from .errors import ConfigError

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema(name: str) -> dict[str, Any]:
    path = SCHEMA_DIR / f"{name}.schema.json"
    if not path.exists():
        raise ConfigError(f"no schema named {name!r} in {SCHEMA_DIR}")
    return json.loads(path.read_text())


def validate(data: Any, name: str, source: str = "config") -> dict[str, Any]:
    validator = jsonschema.Draft202012Validator(schema(name))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_path(e.absolute_path) or '(root)'}: {e.message}" for e in errors]
        raise ConfigError(f"invalid {name} configuration in {source}:\n" + "\n".join(lines))
    return data


def load(path: str | Path, name: str) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    return validate(data, name, str(path))


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out
