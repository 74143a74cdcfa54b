"""Run configs arrive as JSON files written by the TypeScript side. They are validated again here
against JSON Schemas generated from @eaglet/core's zod schemas (the one source of truth), so a
config written by hand or by another tool fails with every bad field named, and unknown keys fail.

The loader fills in what a hand-written config leaves out from the schema's own ``default``s (the
zod defaults, never a literal of the engine's), then builds a typed, frozen dataclass whose fields
are the schema's properties in snake_case (a test holds the two equal, nesting included). Engine
code reads ``cfg.max_model_len``, not ``cfg.get("maxModelLen", 16384)``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jsonschema

from .errors import ConfigError

SCHEMA_DIR = Path(__file__).parent / "schemas"

# --------------------------------------------------------------------------------------------
# Typed configs (field names: the schema's camelCase properties in snake_case)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSource:
    """Where a Hub input came from (@eaglet/core ``HubSource``): repository, commit, snapshot folder."""

    repo: str
    repo_type: str
    requested: str | None
    revision: str
    path: str


@dataclass(frozen=True)
class EngineTarget:
    """The resolved target block (@eaglet/core ``EngineTarget``): which adapter loads which checkpoint."""

    id: str
    adapter: str
    model: str
    architecture: str
    aux_layer_ids: tuple[int, ...]
    audio_token_id: int | None
    source: HubSource | None = None


@dataclass(frozen=True)
class Ttt:
    steps: int
    loss_decay: float
    attention: str


@dataclass(frozen=True)
class Optimizer:
    lr: float
    weight_decay: float
    betas: tuple[float, ...]
    eps: float
    grad_clip: float


@dataclass(frozen=True)
class Schedule:
    kind: str
    warmup_steps: int
    min_lr_ratio: float


@dataclass(frozen=True)
class Batching:
    max_tokens: int
    max_records: int
    grad_accumulation: int


@dataclass(frozen=True)
class ExportSpec:
    formats: tuple[str, ...]
    speculative_tokens: int


@dataclass(frozen=True)
class TrainConfig:
    """``train``: @eaglet/core ``TrainEngineConfig``. ``draft_config`` is the resolved draft
    ``config.json`` body (its own field names, read by ``DraftConfig.from_dict``)."""

    target: EngineTarget
    draft_config: dict[str, Any]
    train_data: tuple[str, ...]
    eval_data: tuple[str, ...]
    output_dir: str
    max_length: int
    chat_template: str | None
    vocab: str
    ttt: Ttt
    optimizer: Optimizer
    schedule: Schedule
    batching: Batching
    epochs: int
    max_steps: int | None
    log_every: int
    eval_every: int
    save_every: int
    keep_checkpoints: int
    precision: str
    target_fp8: bool
    compile: str
    device: str
    nproc_per_node: int
    parallel: str
    nnodes: int
    node_rank: int | None
    rdzv_endpoint: str | None
    rdzv_id: str
    rdzv_timeout_seconds: int
    dist_timeout_seconds: int
    resume: bool | str
    overwrite: bool
    warm_start: str | None
    export: ExportSpec
    plot: bool
    seed: int


@dataclass(frozen=True)
class CaptureConfig:
    """``capture``: @eaglet/core ``CaptureEngineConfig``."""

    target: EngineTarget
    data: tuple[str, ...]
    out: str
    shard_tokens: int
    batch_tokens: int
    precision: str
    compile: str
    device: str
    nproc_per_node: int
    dist_timeout_seconds: int
    overwrite: bool


@dataclass(frozen=True)
class GenerationConfig:
    """``worker``: @eaglet/core ``GenerationEngineConfig``."""

    target: EngineTarget
    draft_model: str | None
    num_spec_tokens: int
    device: str
    dtype: str
    max_model_len: int
    seed: int
    cpu_threads: int
    warmup: bool


@dataclass(frozen=True)
class AudioPart:
    pcm: str


@dataclass(frozen=True)
class GenerateRequest:
    """One request on the worker's stdin: @eaglet/core ``GenerateRequest``."""

    op: str
    id: str
    input_ids: tuple[int, ...]
    audio: tuple[AudioPart, ...]
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop_token_ids: tuple[int, ...]
    speculative: bool
    stream: bool


@dataclass(frozen=True)
class ExportConfig:
    """``export``: @eaglet/core ``ExportConfig``."""

    checkpoint: str
    output_dir: str
    formats: tuple[str, ...]
    speculative_tokens: int
    target_model: str | None


@dataclass(frozen=True)
class HubResolveConfig:
    """``hub``: @eaglet/core ``HubResolveConfig``."""

    repo: str
    revision: str | None
    repo_type: str


@dataclass(frozen=True)
class DemoBuildConfig:
    """``build-demo``: @eaglet/core ``DemoBuildConfig``."""

    module: str
    out: str
    seed: int


# Schema name -> the dataclass its validated configs become (schemas without one stay dicts).
TYPED: dict[str, type] = {
    "train": TrainConfig,
    "capture": CaptureConfig,
    "generation": GenerationConfig,
    "generate-request": GenerateRequest,
    "export": ExportConfig,
    "hub": HubResolveConfig,
    "build-demo": DemoBuildConfig,
}

# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def schema(name: str) -> dict[str, Any]:
    path = SCHEMA_DIR / f"{name}.schema.json"
    if not path.exists():
        raise ConfigError(f"no schema named {name!r} in {SCHEMA_DIR}")
    return json.loads(path.read_text())


def with_defaults(data: Any, node: dict[str, Any]) -> Any:
    """A copy of ``data`` with every absent property whose schema states a ``default`` filled in,
    recursively into the objects (and arrays of objects) present."""
    if isinstance(data, dict) and "properties" in node:
        out = dict(data)
        for key, sub in node["properties"].items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            elif key in out:
                out[key] = with_defaults(out[key], sub)
        return out
    if isinstance(data, list) and isinstance(node.get("items"), dict):
        return [with_defaults(item, node["items"]) for item in data]
    return data


def validate(data: Any, name: str, source: str = "config") -> dict[str, Any]:
    """The config with the schema's defaults filled in, after checking it against the schema."""
    spec = schema(name)
    data = with_defaults(data, spec)
    validator = jsonschema.Draft202012Validator(spec)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_path(e.absolute_path) or '(root)'}: {e.message}" for e in errors]
        raise ConfigError(f"invalid {name} configuration in {source}:\n" + "\n".join(lines))
    return data


def parse(data: Any, name: str, source: str = "config") -> Any:
    """Validates ``data`` (defaults filled in) and builds its typed config when the schema has one."""
    valid = validate(data, name, source)
    return from_dict(TYPED[name], valid) if name in TYPED else valid


def load(path: str | Path, name: str) -> Any:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    return parse(data, name, str(path))


# --------------------------------------------------------------------------------------------
# dict <-> dataclass
# --------------------------------------------------------------------------------------------

T = TypeVar("T")


def camel(name: str) -> str:
    """``num_spec_tokens`` -> ``numSpecTokens`` (the zod schemas' spelling)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def field_types(cls: type) -> dict[str, Any]:
    """Each field's resolved type (the annotations are strings under ``from __future__``)."""
    return typing.get_type_hints(cls)


def dataclass_of(tp: Any) -> type | None:
    """The dataclass a field holds (``X`` or ``X | None``), or None."""
    if dataclasses.is_dataclass(tp):
        return tp  # type: ignore[return-value]
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return inner[0] if len(inner) == 1 and dataclasses.is_dataclass(inner[0]) else None
    return None


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """A typed config from a validated dict: nested objects become their dataclasses, arrays
    become tuples, absent optional fields None."""
    kwargs: dict[str, Any] = {}
    for name, tp in field_types(cls).items():
        value = data.get(camel(name))
        if value is None:
            kwargs[name] = None
            continue
        nested = dataclass_of(tp)
        item = typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else None
        if nested is not None:
            value = from_dict(nested, value)
        elif item is not None and dataclasses.is_dataclass(item):
            value = tuple(from_dict(item, v) for v in value)  # type: ignore[arg-type]
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def to_dict(cfg: Any) -> Any:
    """A typed config back to its JSON shape (camelCase keys; None fields left out)."""
    if dataclasses.is_dataclass(cfg):
        return {camel(f.name): to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if getattr(cfg, f.name) is not None}
    if isinstance(cfg, (tuple, list)):
        return [to_dict(v) for v in cfg]
    return cfg


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out
