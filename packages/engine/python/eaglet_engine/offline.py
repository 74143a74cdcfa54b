"""Offline training: the trainer's target source and data when ``trainData`` and ``evalData`` name
capture folders (``eaglet data capture``; contract: @eaglet/core ``schemas/capture.ts``).

``CapturedTarget`` gives the trainer what a loaded target gives it (its facts, the embedding the
draft shares, lm_head, and per batch the aux states and the final hidden state) from a capture's
files, so the target's decoder is never loaded. ``CapturedDataset`` is the prepared data the
capture was made from, read exactly as online training reads it (the same records, max-length
cut, batches and loss masks), each micro-batch carrying its captured states in ``inputs``. The
trainer's objective then sees what online training would have computed, rounded to bf16.

Refused, naming both sides: a mix of capture and prepared folders; a capture made with another
target than the run's (checkpoint, Hub commit, aux layers) or whose target weights differ from
another capture's; a capture whose prepared data has since been prepared again; an unfinished
capture.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor

from .capture import HEAD, MANIFEST, PROGRESS, SCHEMA_VERSION, differences, prepared_fingerprint, target_identity
from .config import EngineTarget, TrainConfig, to_dict
from .data import PreparedDataset, collate
from .errors import ConfigError, EngineError
from .targets import TargetBatch, TargetInfo, TargetOutput, rows_needed

OPEN_SHARDS = 256


@dataclass(frozen=True)
class Capture:
    """A complete capture folder and its manifest."""

    folder: Path
    manifest: dict[str, Any]


def is_capture(folder: str | Path) -> bool:
    """A folder a capture wrote to, finished or not."""
    return any((Path(folder) / name).is_file() for name in (MANIFEST, PROGRESS, HEAD))


def open_capture(folder: str | Path) -> Capture:
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        done = len(list(folder.glob("shard-*.json")))
        raise EngineError(
            f"capture {folder} is unfinished ({done} shards committed, no {MANIFEST})",
            code="EAGLET_DATA_INVALID",
            hint="run the same `eaglet data capture` command again: it resumes and completes the folder",
        )
    manifest = json.loads((folder / MANIFEST).read_text())
    if manifest.get("schemaVersion") != SCHEMA_VERSION:
        raise EngineError(f"{folder / MANIFEST}: schemaVersion {manifest.get('schemaVersion')!r}, this engine reads {SCHEMA_VERSION}", code="EAGLET_DATA_INVALID", hint="capture the data again with this version of eaglet")
    return Capture(folder, manifest)


def open_captures(cfg: TrainConfig) -> dict[str, Capture]:
    """Folder -> capture, for every data folder of the run; {} when it trains online. A run reads
    either captures only or prepared folders only."""
    folders = [*cfg.train_data, *cfg.eval_data]
    captured = [f for f in folders if is_capture(f)]
    if not captured:
        return {}
    prepared = [f for f in folders if f not in captured]
    if prepared:
        raise ConfigError(
            f"trainData/evalData mix capture folders ({', '.join(captured)}) with prepared folders ({', '.join(prepared)}); offline training reads captures only",
            hint="capture the prepared folders too (`eaglet data capture`), or train online from prepared folders only",
        )
    captures = {f: open_capture(f) for f in folders}
    first = captures[folders[0]]
    for folder, capture in captures.items():
        _check_target(capture, cfg.target)
        if capture.manifest["head"]["sha256"] != first.manifest["head"]["sha256"]:
            raise EngineError(
                f"captures {first.folder} and {folder} were made with different target weights (embedding and lm_head sha256 {first.manifest['head']['sha256'][:12]} vs {capture.manifest['head']['sha256'][:12]})",
                code="EAGLET_CAPTURE_MISMATCH",
                hint="capture every folder with the same target checkpoint",
            )
    return captures


def _check_target(capture: Capture, target: EngineTarget) -> None:
    """The capture's target must be the run's: the same checkpoint (Hub commit, or local folder),
    plugin, architecture, aux layers and audio placeholder."""
    diff = differences(target_identity(capture.manifest["target"]), target_identity(to_dict(target)))
    if diff:
        raise EngineError(
            f"capture {capture.folder} was made with another target than this run's (capture vs run): {'; '.join(diff)}",
            code="EAGLET_CAPTURE_MISMATCH",
            hint="train with the target the capture names, or capture again for this target (`eaglet data capture --model ... --aux-layers ...` with the draft's aux layers)",
        )


class CapturedTarget:
    """What the trainer reads from a target, from captures (see the module docstring)."""

    def __init__(self, info: TargetInfo, embed: Tensor, lm_head: Tensor) -> None:
        self.info = info
        self._embed, self._lm_head = embed, lm_head

    @classmethod
    def open(cls, captures: Sequence[Capture], target: EngineTarget, *, device: torch.device, dtype: torch.dtype) -> CapturedTarget:
        first = captures[0]
        m = first.manifest
        head = load_file(str(first.folder / HEAD), device=str(device))
        info = TargetInfo(architecture=target.architecture, num_layers=m["numLayers"], hidden_size=m["hiddenSize"], vocab_size=m["vocabSize"], audio_token_id=target.audio_token_id)
        return cls(info, head["embed_tokens"].to(dtype), head["lm_head"].to(dtype))

    def embedding_weight(self) -> Tensor:
        return self._embed

    def lm_head_weight(self) -> Tensor:
        return self._lm_head

    def media_inputs(self, clips: Sequence[Any], device: torch.device) -> dict[str, Tensor]:  # noqa: ARG002 - the states are captured
        return {}

    def output(self, batch: TargetBatch) -> TargetOutput:
        """The captured states of a batch on the device (``CapturedDataset.collate`` put them in
        ``inputs``), in the run's dtype, as ``targets.run_target`` returns a live target's."""
        dtype = self._lm_head.dtype
        return TargetOutput(taps=batch.inputs["taps"].to(dtype), final_hidden=batch.inputs["final_hidden"].to(dtype))


class CapturedDataset(PreparedDataset):
    """The prepared data behind some captures, indexed and cut as online training does, whose
    micro-batches carry their captured states (``inputs["taps"]``, ``inputs["final_hidden"]``,
    zero outside the loss rows). Audio is never read."""

    def __init__(self, captures: Sequence[Capture], *, max_length: int, target: str | None = None, chat_template: str | None = None, audio_token_id: int | None = None) -> None:
        folders = []
        for capture in captures:
            for data in capture.manifest["data"]:
                _check_prepared(capture, data)
                folders.append(data["folder"])
        super().__init__(folders, max_length=max_length, target=target, chat_template=chat_template, audio_token_id=audio_token_id)
        self.hidden_size = int(captures[0].manifest["hiddenSize"])
        # (prepared dataset, shard, row) -> (capture shard file, first tap, length, first loss row, loss rows)
        self._where: dict[tuple[int, int, int], tuple[Path, int, int, int, int]] = {}
        base = 0
        for capture in captures:
            for shard in capture.manifest["shards"]:
                path = capture.folder / shard["file"]
                with safe_open(str(path), framework="pt") as f:
                    records = json.loads((f.metadata() or {})["records"])
                tap = row = 0
                for d, s, r, length, rows in records:
                    self._where[(base + d, s, r)] = (path, tap, length, row, rows)
                    tap, row = tap + length, row + rows
            base += len(capture.manifest["data"])
        missing = [ref for ref in self.refs if (ref.dataset, ref.shard, ref.row) not in self._where]
        if missing:
            raise EngineError(f"{len(missing)} prepared records have no captured states (first: folder {folders[missing[0].dataset]}, shard {missing[0].shard}, row {missing[0].row})", code="EAGLET_DATA_INVALID", hint="capture the data again")
        self._files: OrderedDict[Path, Any] = OrderedDict()  # open shards, most recently read last

    def record(self, ref, with_audio: bool = False):  # noqa: ARG002 - captures replace the audio
        return super().record(ref, with_audio=False)

    def collate(self, indices: Sequence[int]) -> TargetBatch:
        batch = collate(self, indices)
        b, t = batch.input_ids.shape
        h = self.hidden_size
        taps = torch.zeros(b, t, 3 * h, dtype=torch.bfloat16)
        final = torch.zeros(b, t, h, dtype=torch.bfloat16)
        for k, i in enumerate(indices):
            ref = self.refs[i]
            path, tap, length, row, rows = self._where[(ref.dataset, ref.shard, ref.row)]
            n = int(batch.lengths[k])
            f = self._open(path)
            taps[k, :n] = f.get_slice("taps")[tap : tap + n]
            # Loss rows of the (possibly cut) record, chosen as the capture chose them: the first ones of the whole record's.
            positions = rows_needed(batch.loss_mask[k : k + 1, :n], torch.ones(1, n, dtype=torch.bool))[0].nonzero(as_tuple=True)[0]
            if len(positions) > rows or (n == length and len(positions) != rows):
                raise EngineError(f"{path}: record {batch.ids[k]} has {rows} captured loss rows, its prepared loss mask {len(positions)}", code="EAGLET_DATA_INVALID", hint="capture the data again")
            final[k, positions] = f.get_slice("final_hidden")[row : row + len(positions)]
        batch.inputs = {"taps": taps, "final_hidden": final}
        return batch

    def _open(self, path: Path):
        """The shard's memory map, kept open for the next batches; at most ``OPEN_SHARDS`` at once
        (each is a mapping of the process, and a large capture has thousands of shards)."""
        if path in self._files:
            self._files.move_to_end(path)
        else:
            self._files[path] = safe_open(str(path), framework="pt")
            if len(self._files) > OPEN_SHARDS:
                self._files.popitem(last=False)
        return self._files[path]


def _check_prepared(capture: Capture, data: dict[str, Any]) -> None:
    folder = Path(data["folder"])
    if not (folder / "manifest.json").is_file():
        raise EngineError(
            f"capture {capture.folder} reads token ids and loss masks from the prepared folder {folder}, which holds no manifest.json",
            code="EAGLET_DATA_INVALID",
            hint="put the prepared folder back where it was captured from, or capture again",
        )
    now = prepared_fingerprint(folder)
    if now != data["fingerprint"]:
        raise EngineError(
            f"capture {capture.folder} was made from other prepared data than {folder} now holds (fingerprint {data['fingerprint'][:12]} captured, {now[:12]} now)",
            code="EAGLET_CAPTURE_MISMATCH",
            hint=f"capture it again: eaglet data capture --data {folder} --out {capture.folder} --overwrite",
        )
