"""Prepared data (contract: @eaglet/core ``schemas/prepared.ts`` and ``manifest.ts``): Arrow IPC
shards read memory-mapped, an index of record lengths, length-aware batching to a token budget,
and the data position that makes resume exact.

The batch plan of an epoch is a pure function of (record lengths, seed, epoch, batching config):
shuffle, sort by length inside pools, pack micro-batches up to ``max_tokens`` padded tokens, and
shuffle the micro-batches. Optimizer step s of an epoch takes micro-batches
[s * W * A, (s + 1) * W * A) of the plan; rank r takes every W-th of them (W ranks, A
accumulation steps). A checkpoint therefore needs only (epoch, step in epoch).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import torch

from .errors import EngineError
from .targets import TargetBatch

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
COLUMNS = ("id", "source_file", "source_line", "input_ids", "loss_mask", "num_tokens", "audio", "audio_token_counts")
POOL_BATCHES = 64  # micro-batches per sorting pool: local length-sorting, global randomness


@dataclass(frozen=True)
class RecordRef:
    dataset: int
    shard: int
    row: int
    length: int  # after the max-length policy
    truncated: bool = False


@dataclass
class Record:
    id: str
    input_ids: np.ndarray  # int32 [T]
    loss_mask: np.ndarray  # uint8 [T]
    audio: list[np.ndarray]  # float32 clips
    audio_token_counts: list[int]


@dataclass
class IndexReport:
    records: int = 0
    kept: int = 0
    truncated: int = 0
    skipped_too_long: list[str] = field(default_factory=list)
    skipped_no_loss: list[str] = field(default_factory=list)


def _fail(message: str, hint: str | None = None) -> EngineError:
    return EngineError(message, code="EAGLET_DATA_INVALID", hint=hint)


class PreparedDataset:
    """One or more prepared folders, indexed. ``max_length``: longer records are cut there when the
    cut leaves every audio placeholder run whole (audio precedes the reply in practice), and
    skipped otherwise; records left without assistant tokens are skipped. Both are reported."""

    def __init__(
        self,
        folders: Sequence[str | Path],
        *,
        max_length: int,
        target: str | None = None,
        chat_template: str | None = None,
        audio_token_id: int | None = None,
    ) -> None:
        self.folders = [Path(f) for f in folders]
        self.max_length = max_length
        self.audio_token_id = audio_token_id
        self.manifests: list[dict] = []
        self._shards: list[list[pa.Table]] = []
        self._shard_paths: list[list[Path]] = []
        for folder in self.folders:
            manifest = self._read_manifest(folder, target, chat_template)
            self.manifests.append(manifest)
            tables, paths = [], []
            for shard in manifest["shards"]:
                path = folder / shard["file"]
                tables.append(self._open_shard(path))
                paths.append(path)
            self._shards.append(tables)
            self._shard_paths.append(paths)
        hashes = {m.get("tokenizerHash") for m in self.manifests}
        if len(hashes) > 1:
            raise _fail(f"prepared datasets {', '.join(map(str, self.folders))} were tokenized with different tokenizers ({sorted(map(str, hashes))})")
        self.refs, self.report = self._index()

    # -- reading --------------------------------------------------------------------------------

    @staticmethod
    def _read_manifest(folder: Path, target: str | None, chat_template: str | None) -> dict:
        path = folder / "manifest.json"
        if not path.is_file():
            raise _fail(f"{folder} is not a prepared dataset: no manifest.json", hint="make it with `eaglet data prepare`")
        try:
            manifest = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise _fail(f"{path}: not valid JSON: {e}") from None
        if manifest.get("schemaVersion") != SCHEMA_VERSION:
            raise _fail(
                f"{path}: schemaVersion {manifest.get('schemaVersion')!r}, this engine reads {SCHEMA_VERSION}",
                hint="prepare the data again with this version of eaglet",
            )
        if target and manifest.get("target") != target:
            raise _fail(f"{path}: prepared for target {manifest.get('target')!r}, training target is {target!r}")
        if chat_template and manifest.get("chatTemplate") != chat_template:
            raise _fail(
                f"{path}: prepared with chat template {manifest.get('chatTemplate')!r}, the config asks for {chat_template!r}",
                hint="the template at training must be the one the data was rendered with; prepare again or fix chatTemplate",
            )
        if not isinstance(manifest.get("shards"), list):
            raise _fail(f"{path}: field shards is missing or not a list")
        return manifest

    @staticmethod
    def _open_shard(path: Path) -> pa.Table:
        try:
            table = ipc.open_file(pa.memory_map(str(path), "r")).read_all()
        except FileNotFoundError:
            raise _fail(f"shard {path} listed in the manifest does not exist") from None
        except pa.ArrowInvalid as e:
            raise _fail(f"shard {path} is not an Arrow IPC file: {e}") from None
        missing = [c for c in COLUMNS if c not in table.column_names]
        if missing:
            raise _fail(f"shard {path} lacks column(s) {missing}")
        return table

    def _index(self) -> tuple[list[RecordRef], IndexReport]:
        report = IndexReport()
        refs: list[RecordRef] = []
        for d, tables in enumerate(self._shards):
            for s, table in enumerate(tables):
                lengths = table.column("num_tokens").to_numpy()
                ids = table.column("id").to_pylist()
                mask_col = table.column("loss_mask").combine_chunks()
                offsets = mask_col.offsets.to_numpy()
                mask_values = mask_col.values.to_numpy(zero_copy_only=False)
                cum = np.concatenate([[0], np.cumsum(mask_values, dtype=np.int64)])
                for row, n in enumerate(lengths.tolist()):
                    report.records += 1
                    start = int(offsets[row])
                    if int(offsets[row + 1]) - start != n:
                        raise _fail(f"{self._shard_paths[d][s]} row {row} (id {ids[row]}): num_tokens {n} but loss_mask has {int(offsets[row + 1]) - start} entries")
                    length, truncated = n, False
                    if n > self.max_length:
                        if not self._can_truncate(d, s, row):
                            report.skipped_too_long.append(ids[row])
                            continue
                        length, truncated = self.max_length, True
                    if cum[start + length] - cum[start] == 0:
                        report.skipped_no_loss.append(ids[row])
                        continue
                    refs.append(RecordRef(d, s, row, length, truncated))
                    report.truncated += truncated
        report.kept = len(refs)
        if not refs:
            raise _fail(f"no trainable records in {', '.join(map(str, self.folders))} ({report.records} read; {len(report.skipped_too_long)} too long, {len(report.skipped_no_loss)} without assistant tokens)")
        return refs, report

    def _can_truncate(self, d: int, s: int, row: int) -> bool:
        if self.audio_token_id is None:
            return True
        ids = self._shards[d][s].column("input_ids")[row].values.to_numpy()
        audio = np.nonzero(ids == self.audio_token_id)[0]
        return audio.size == 0 or int(audio[-1]) < self.max_length

    def record(self, ref: RecordRef, with_audio: bool = True) -> Record:
        """The record ``ref`` names, cut to its length (without its clips: ``with_audio=False``)."""
        table = self._shards[ref.dataset][ref.shard]
        path = self._shard_paths[ref.dataset][ref.shard]
        rid = table.column("id")[ref.row].as_py()
        ids = table.column("input_ids")[ref.row].values.to_numpy()[: ref.length]
        mask = table.column("loss_mask")[ref.row].values.to_numpy()[: ref.length]
        if not with_audio:
            return Record(rid, ids, mask, [], [])
        audio_scalar = table.column("audio")[ref.row]
        audio = [np.asarray(clip.values.to_numpy(zero_copy_only=False), dtype=np.float32) for clip in audio_scalar.values] if audio_scalar.is_valid and len(audio_scalar.values) else []
        counts = [int(c) for c in table.column("audio_token_counts")[ref.row].as_py() or []]
        if len(counts) != len(audio):
            raise _fail(f"{path} row {ref.row} (id {rid}): {len(audio)} audio clips but {len(counts)} audio_token_counts")
        return Record(rid, ids, mask, audio, counts)

    def collate(self, indices: Sequence[int]) -> TargetBatch:
        """Micro-batch ``indices`` (positions in ``refs``) as the trainer reads it."""
        return collate(self, indices)

    def loss_mask(self, index: int) -> np.ndarray:
        """Record ``index``'s loss mask (after the max-length cut), without reading its audio."""
        ref = self.refs[index]
        return self._shards[ref.dataset][ref.shard].column("loss_mask")[ref.row].values.to_numpy()[: ref.length]

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([r.length for r in self.refs], dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------


def _pack(order: Sequence[int], lengths: np.ndarray, max_tokens: int, max_records: int) -> list[list[int]]:
    """Greedy packing of records (in the given order) into micro-batches whose padded size
    (records x longest) stays within max_tokens."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = int(lengths[i])
        if current and (len(current) + 1 > max_records or max(longest, n) * (len(current) + 1) > max_tokens):
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    if current:
        batches.append(current)
    return batches


def plan_epoch(lengths: np.ndarray, *, max_tokens: int, max_records: int, seed: int, epoch: int, shuffle: bool = True) -> list[list[int]]:
    """The epoch's micro-batches (record indices). Deterministic in its arguments."""
    if not shuffle:
        order = sorted(range(len(lengths)), key=lambda i: (int(lengths[i]), i))
        return _pack(order, lengths, max_tokens, max_records)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    pool = POOL_BATCHES * max_records
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool].tolist(), key=lambda i: (int(lengths[i]), i))
        batches += _pack(chunk, lengths, max_tokens, max_records)
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


@dataclass
class DataPosition:
    """Where training is in the data: checkpointed, restored exactly."""

    epoch: int = 0
    step_in_epoch: int = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])


class BatchPlanner:
    """Turns the dataset into optimizer steps: lists of micro-batches for this rank."""

    def __init__(self, dataset: PreparedDataset, *, max_tokens: int, max_records: int, grad_accumulation: int, world_size: int, rank: int, seed: int) -> None:
        self.dataset = dataset
        self.max_tokens, self.max_records = max_tokens, max_records
        self.accum, self.world, self.rank, self.seed = grad_accumulation, world_size, rank, seed
        self._plans: dict[int, list[list[int]]] = {}

    def plan(self, epoch: int) -> list[list[int]]:
        if epoch not in self._plans:
            self._plans = {epoch: plan_epoch(self.dataset.lengths, max_tokens=self.max_tokens, max_records=self.max_records, seed=self.seed, epoch=epoch)}
        return self._plans[epoch]

    @property
    def micro_batches_per_step(self) -> int:
        return self.world * self.accum

    def steps_in_epoch(self, epoch: int) -> int:
        return len(self.plan(epoch)) // self.micro_batches_per_step

    def step_batches(self, epoch: int, step: int) -> tuple[list[list[int]], list[list[int]]]:
        """(this rank's micro-batches, every rank's micro-batches) of optimizer step `step`."""
        group = self.plan(epoch)[step * self.micro_batches_per_step : (step + 1) * self.micro_batches_per_step]
        return group[self.rank :: self.world], group


def collate(dataset: PreparedDataset, indices: Sequence[int]) -> TargetBatch:
    """Right-padded CPU tensors for one micro-batch."""
    records = [dataset.record(dataset.refs[i]) for i in indices]
    t = max(len(r.input_ids) for r in records)
    input_ids = torch.zeros(len(records), t, dtype=torch.int64)
    loss_mask = torch.zeros(len(records), t, dtype=torch.bool)
    for b, r in enumerate(records):
        input_ids[b, : len(r.input_ids)] = torch.from_numpy(r.input_ids.astype(np.int64))
        loss_mask[b, : len(r.loss_mask)] = torch.from_numpy(r.loss_mask.astype(np.bool_))
    return TargetBatch(
        input_ids=input_ids,
        loss_mask=loss_mask,
        lengths=torch.tensor([len(r.input_ids) for r in records], dtype=torch.int64),
        audio=[r.audio for r in records],
        audio_token_counts=[r.audio_token_counts for r in records],
        ids=[r.id for r in records],
    )


def collate_masks(dataset: PreparedDataset, indices: Sequence[int], t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss mask and validity of a micro-batch without its audio (for the loss normalisers)."""
    masks = torch.zeros(len(indices), t, dtype=torch.bool)
    valid = torch.zeros(len(indices), t, dtype=torch.bool)
    for b, i in enumerate(indices):
        m = dataset.loss_mask(i)
        masks[b, : len(m)] = torch.from_numpy(m.astype(bool))
        valid[b, : len(m)] = True
    return masks, valid


def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """Runs an iterator in a background thread, `depth` items ahead (CPU work overlaps the GPU).

    When the consumer stops early (a run ends at maxSteps mid-epoch, an exception), closing this
    generator stops the thread and waits for the item it is making: a daemon thread left inside a
    torch op at interpreter exit is killed by CPython while it unwinds C++ frames, and the process
    aborts ("terminate called without an active exception"), failing a run that had finished.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer
            put(e)
            return
        put(done)

    thread = threading.Thread(target=work, name="eaglet-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
