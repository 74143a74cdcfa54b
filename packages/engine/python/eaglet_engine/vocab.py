"""The draft vocabulary mapping written by `eaglet data vocab` (contract: @eaglet/core
`schemas/prepared.ts`, VOCAB_TENSORS): safetensors with ``d2t`` int64 [draft_vocab] (target id =
i + d2t[i]), ``t2d`` bool [vocab], ``freq`` int64 [vocab], and string metadata (``hash``, sizes,
tokenizer hash, datasets).

A mapping is identified by its tensors, not its file name: training, resume and warm start compare
d2t/t2d themselves, so a regenerated mapping is refused even if it kept the old file name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from .errors import EngineError


@dataclass(frozen=True)
class VocabMapping:
    d2t: torch.Tensor  # int64 [draft_vocab_size]
    t2d: torch.Tensor  # bool [vocab_size]
    freq: torch.Tensor | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def draft_vocab_size(self) -> int:
        return int(self.d2t.numel())

    @property
    def vocab_size(self) -> int:
        return int(self.t2d.numel())

    @property
    def draft_to_target(self) -> torch.Tensor:
        """Target id of each draft id, int64 [draft_vocab_size] (ascending)."""
        return torch.arange(self.draft_vocab_size, dtype=torch.int64) + self.d2t

    @property
    def content_hash(self) -> str:
        """sha256 over d2t (int64 little-endian) then t2d (one byte per entry): eaglet's own identity
        of the mapping, independent of how the file's metadata hash was computed."""
        h = hashlib.sha256()
        h.update(self.d2t.to(torch.int64).contiguous().numpy().astype("<i8").tobytes())
        h.update(self.t2d.to(torch.uint8).contiguous().numpy().tobytes())
        return h.hexdigest()

    def same_as(self, d2t: torch.Tensor, t2d: torch.Tensor) -> bool:
        return torch.equal(self.d2t.cpu(), d2t.cpu().to(torch.int64)) and torch.equal(self.t2d.cpu(), t2d.cpu().to(torch.bool))


def check_mapping(d2t: torch.Tensor, t2d: torch.Tensor, where: str) -> None:
    """d2t and t2d must describe the same set of target ids, in ascending order, without repeats."""
    if d2t.dim() != 1 or t2d.dim() != 1:
        raise EngineError(f"{where}: d2t and t2d must be 1-D (got {tuple(d2t.shape)} and {tuple(t2d.shape)})", code="EAGLET_VOCAB_INVALID")
    targets = torch.arange(d2t.numel(), dtype=torch.int64) + d2t.to(torch.int64)
    problems = []
    if targets.numel() and (targets.min() < 0 or targets.max() >= t2d.numel()):
        problems.append("d2t maps outside the target vocabulary")
    elif targets.numel() > 1 and not bool((targets[1:] > targets[:-1]).all()):
        problems.append("draft ids do not map to ascending, distinct target ids")
    elif int(t2d.sum()) != d2t.numel() or not bool(t2d[targets].all()):
        problems.append(f"t2d marks {int(t2d.sum())} target ids but d2t maps {d2t.numel()} (they must be the same set)")
    if problems:
        raise EngineError(
            f"{where}: invalid draft vocabulary mapping: {problems[0]}",
            code="EAGLET_VOCAB_INVALID",
            hint="rebuild it with `eaglet data vocab`",
        )


def load_vocab(path: str | Path) -> VocabMapping:
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"vocab file {path} does not exist", code="EAGLET_VOCAB_INVALID", hint="build it with `eaglet data vocab`")
    try:
        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            missing = {"d2t", "t2d"} - names
            if missing:
                raise EngineError(f"vocab file {path} lacks tensor(s) {sorted(missing)}", code="EAGLET_VOCAB_INVALID")
            d2t = f.get_tensor("d2t")
            t2d = f.get_tensor("t2d")
            freq = f.get_tensor("freq") if "freq" in names else None
            metadata = dict(f.metadata() or {})
    except EngineError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt file must name itself
        raise EngineError(f"vocab file {path} is not a readable safetensors file: {e}", code="EAGLET_VOCAB_INVALID") from e
    if d2t.dtype != torch.int64:
        raise EngineError(f"{path}: d2t must be int64, is {d2t.dtype}", code="EAGLET_VOCAB_INVALID")
    if t2d.dtype != torch.bool:
        raise EngineError(f"{path}: t2d must be bool, is {t2d.dtype}", code="EAGLET_VOCAB_INVALID")
    check_mapping(d2t, t2d, str(path))
    mapping = VocabMapping(d2t=d2t, t2d=t2d, freq=freq, metadata=metadata, source=str(path))
    if "hash" in metadata and metadata["hash"] != mapping.content_hash:
        raise EngineError(
            f"{path}: the mapping's tensors do not match the hash in its metadata (edited or corrupt)",
            code="EAGLET_VOCAB_INVALID",
            hint="rebuild it with `eaglet data vocab`",
        )
    return mapping


def save_vocab(path: str | Path, d2t: torch.Tensor, t2d: torch.Tensor, freq: torch.Tensor | None = None, metadata: dict[str, str] | None = None) -> None:
    """Writes a mapping in the contract's layout (used by tests and tools; `eaglet data vocab` is
    the production writer)."""
    from safetensors.torch import save_file

    check_mapping(d2t, t2d, str(path))
    tensors = {"d2t": d2t.to(torch.int64).contiguous(), "t2d": t2d.to(torch.bool).contiguous()}
    if freq is not None:
        tensors["freq"] = freq.to(torch.int64).contiguous()
    mapping = VocabMapping(d2t=tensors["d2t"], t2d=tensors["t2d"])
    meta = {
        "hash": mapping.content_hash,
        "draft_vocab_size": str(d2t.numel()),
        "vocab_size": str(t2d.numel()),
        **(metadata or {}),
    }
    save_file(tensors, str(path), metadata=meta)
