"""`capture`: the frozen target runs once over prepared data and writes what offline training reads
(contract: @eaglet/core ``schemas/capture.ts``): the aux layers' hidden states of every position and
the final hidden state on the loss rows, bf16, in safetensors shards; the target's embedding and
lm_head beside them; a manifest that ties them to the target and to the prepared data.

    python -m eaglet_engine capture --config capture.json
    torchrun --nproc-per-node 8 -m eaglet_engine capture --config capture.json

The shards are a pure function of the prepared records and the settings, whatever the number of
ranks: shard k holds the consecutive records of plan k (up to ``shardTokens``), run through the
target in micro-batches of up to ``batchTokens`` padded tokens; rank r writes shards r, r + W, ...
A shard is committed when its file is in place and its commit record (``shard-k.json``: size,
sha256) is written beside it. A run killed at any moment and started again with the same inputs
redoes only the uncommitted shards and, on the same kind of device, writes byte-identical files.
A full disk stops the run with an error that says how much is committed and how much more is
needed; the same command resumes once there is room.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from . import __version__, events
from . import distributed as dist_env
from .config import CaptureConfig, to_dict
from .data import PreparedDataset, _pack, prefetch
from .errors import EngineError
from .signals import StopRequested
from .targets import TargetAdapter, TargetBatch, load_adapter, rows_needed, run_target

SCHEMA_VERSION = 2  # 2: final states at the rows of the alignment that trains the prompt's last row (ttt)
MANIFEST = "capture.json"
PROGRESS = "capture-progress.json"
HEAD = "target-head.safetensors"
STORED_DTYPE = torch.bfloat16
_FILES = re.compile(r"^shard-(\d+)\.(safetensors|json)(\.tmp)?$")
_NO_CUT = 2**62  # records are captured whole; training cuts them to its own maxLength


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


def commit_name(k: int) -> str:
    return f"shard-{k:05d}.json"


def plan_shards(lengths: Sequence[int], shard_tokens: int) -> list[list[int]]:
    """Consecutive record indices per shard, each shard up to ``shard_tokens`` tokens (a longer
    record gets a shard of its own)."""
    shards: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for i, n in enumerate(lengths):
        if current and tokens + n > shard_tokens:
            shards.append(current)
            current, tokens = [], 0
        current.append(i)
        tokens += int(n)
    if current:
        shards.append(current)
    return shards


def prepared_fingerprint(folder: str | Path) -> str:
    """The fingerprint `eaglet data prepare` wrote into the folder's manifest (what identifies the data)."""
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    if not manifest.get("fingerprint"):
        raise EngineError(f"{folder}/manifest.json has no fingerprint", code="EAGLET_DATA_INVALID", hint="prepare the data again with this version of eaglet")
    return str(manifest["fingerprint"])


def target_identity(target: dict[str, Any]) -> dict[str, Any]:
    """The target block as a capture is tied to it: every field; for a checkpoint from the Hub its
    repository and commit stand for the local folder (the snapshot may live in another cache)."""
    out = dict(target)
    if "source" in out:
        out["source"] = {k: out["source"][k] for k in ("repo", "repoType", "revision")}
        out.pop("model", None)
    return out


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """The leaves where two JSON values differ, each as ``path: <a's value> vs <b's value>``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += differences(a.get(key), b.get(key), f"{where}.{key}" if where else key)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and any(isinstance(v, (dict, list)) for v in a):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {json.dumps(a)} vs {json.dumps(b)}"]


class CaptureFolder:
    """The output folder of a capture: what is committed there, and the writes that commit more.
    Every write goes through ``_write`` (temporary file, fsync, rename), so a kill leaves either
    nothing or a whole file, and a full disk becomes one clear error."""

    def __init__(self, path: Path, described: dict[str, Any], plan_tokens: list[int]) -> None:
        self.path = path
        self.described = described  # what this run captures: target, data, settings
        self.fingerprint = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
        self.plan_tokens = plan_tokens  # tokens of each planned shard
        self.hidden_size = 0  # the target's, once loaded: what a token and a loss row take on disk

    def bytes_needed(self, tokens: int) -> int:
        """Disk for ``tokens`` tokens at most: 3 aux states per token, a final state per loss row
        (every token counted as one), bf16."""
        return tokens * 4 * self.hidden_size * 2

    def open(self, overwrite: bool) -> dict[str, Any] | None:
        """(Rank 0.) The finished manifest when the folder already holds this capture; otherwise
        makes the folder ready to continue (stale partial files dropped) and records what runs."""
        self.path.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for f in self.path.iterdir():
                if _FILES.match(f.name) or f.name.startswith((HEAD, MANIFEST, PROGRESS)):
                    f.unlink()
        manifest_path, progress_path = self.path / MANIFEST, self.path / PROGRESS
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("fingerprint") == self.fingerprint:
                self._drop_bookkeeping()  # a run killed right after writing the manifest leaves it
                return manifest
            raise self._other_run("holds a finished capture", manifest)
        if progress_path.is_file():
            progress = json.loads(progress_path.read_text())
            if progress.get("fingerprint") != self.fingerprint:
                raise self._other_run("holds an unfinished capture", progress.get("described", {}))
        else:
            self._write(progress_path, json.dumps({"fingerprint": self.fingerprint, "described": self.described}, indent=2).encode())
        committed = self.committed()
        for f in self.path.iterdir():
            m = _FILES.match(f.name)
            if (m and (m.group(3) or int(m.group(1)) not in committed)) or f.name.endswith(".tmp"):
                f.unlink()  # written after the last commit of an interrupted run
        return None

    def _other_run(self, what: str, theirs: dict[str, Any]) -> EngineError:
        """The refusal of a folder holding another capture (``theirs``: its manifest or what its
        unfinished run recorded), naming what differs."""
        keys = ("target", "data", "precision", "shardTokens", "batchTokens")
        ours = {k: self.described[k] for k in keys}
        theirs = {**{k: theirs.get(k) for k in keys}, "target": target_identity(theirs.get("target") or {})}
        theirs["data"] = [{"folder": d.get("folder"), "fingerprint": d.get("fingerprint")} for d in theirs["data"] or []]
        diff = differences(theirs, ours) or ["its format version"]
        return EngineError(
            f"{self.path} {what} of other inputs or settings (that capture vs this run): {'; '.join(diff)}",
            code="EAGLET_CAPTURE_EXISTS",
            hint="capture into another --out, or pass --overwrite to delete it and start again",
        )

    def committed(self) -> dict[int, dict[str, Any]]:
        """Shard index -> commit record, for every shard a run has committed here."""
        return {k: json.loads((self.path / commit_name(k)).read_text()) for k in self.committed_indices() if (self.path / shard_name(k)).is_file()}

    def committed_indices(self) -> set[int]:
        """The shards whose commit record is written (names only: cheap enough for progress)."""
        return {int(m.group(1)) for name in os.listdir(self.path) if (m := _FILES.match(name)) and m.group(2) == "json" and not m.group(3)}

    def write_shard(self, k: int, tensors: dict[str, torch.Tensor], records: list[list[int]]) -> dict[str, Any]:
        data = save(tensors, metadata={"records": json.dumps(records)})
        self._write(self.path / shard_name(k), data)
        commit = {
            "file": shard_name(k),
            "records": len(records),
            "tokens": int(tensors["taps"].shape[0]),
            "rows": int(tensors["final_hidden"].shape[0]),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        try:
            self._write(self.path / commit_name(k), json.dumps(commit).encode())
        except EngineError:
            (self.path / shard_name(k)).unlink()  # uncommitted: give its space back at once
            raise
        return commit

    def write_head(self, embed: torch.Tensor, lm_head: torch.Tensor) -> None:
        if not (self.path / HEAD).is_file():
            self._write(self.path / HEAD, save({"embed_tokens": embed.detach().cpu().contiguous(), "lm_head": lm_head.detach().cpu().contiguous()}))

    def complete(self, manifest: dict[str, Any]) -> Path:
        """Writes the manifest (the folder is then complete) and drops the run's bookkeeping."""
        path = self.path / MANIFEST
        self._write(path, (json.dumps(manifest, indent=2) + "\n").encode())
        self._drop_bookkeeping()
        return path

    def _drop_bookkeeping(self) -> None:
        for k in self.committed_indices():
            (self.path / commit_name(k)).unlink(missing_ok=True)
        (self.path / PROGRESS).unlink(missing_ok=True)

    def head_summary(self) -> dict[str, Any]:
        """The head file's manifest entry (its sha256 tells captures of different weights apart)."""
        h = hashlib.sha256()
        with open(self.path / HEAD, "rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
        return {"file": HEAD, "sha256": h.hexdigest(), "bytes": (self.path / HEAD).stat().st_size}

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise self._disk_full(path, len(data)) from e

    def _disk_full(self, path: Path, size: int) -> EngineError:
        committed = self.committed()
        left = sum(t for k, t in enumerate(self.plan_tokens) if k not in committed)
        need = self.bytes_needed(left)
        return EngineError(
            f"no space left on the device of {self.path} while writing {path.name} ({_size(size)}): "
            f"{len(committed)} of {len(self.plan_tokens)} shards are committed there, {left:,} tokens are still to capture",
            code="EAGLET_DISK_FULL",
            hint=f"free space (at most {_size(need)} more is needed, {_size(shutil.disk_usage(self.path).free)} is free) and run the same command again: it resumes from the committed shards",
        )


class Capture:
    """One capture run on this rank. ``adapter``: a loaded target (benchmarks pass one built in
    memory); None loads the one the config names."""

    def __init__(self, cfg: CaptureConfig, env: dist_env.DistEnv, stop: StopRequested, adapter: TargetAdapter | None = None) -> None:
        self.cfg, self.env, self.stop, self.adapter = cfg, env, stop, adapter
        self.dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float32
        self.data = PreparedDataset(cfg.data, max_length=_NO_CUT, target=cfg.target.id, audio_token_id=cfg.target.audio_token_id)
        self.plan = plan_shards(self.data.lengths.tolist(), cfg.shard_tokens)

    def described(self) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "schemaVersion": SCHEMA_VERSION,
            "target": target_identity(to_dict(cfg.target)),
            "data": [{"folder": str(Path(f).resolve()), "fingerprint": prepared_fingerprint(f)} for f in cfg.data],
            "precision": cfg.precision,
            "shardTokens": cfg.shard_tokens,
            "batchTokens": cfg.batch_tokens,
        }

    def run(self) -> dict[str, Any]:
        cfg, env = self.cfg, self.env
        lengths = self.data.lengths
        folder = CaptureFolder(Path(cfg.out), self.described(), [int(lengths[s].sum()) for s in self.plan])
        done = folder.open(cfg.overwrite) if env.is_main else None
        dist_env.barrier(env)
        if not env.is_main and (folder.path / MANIFEST).is_file():
            done = json.loads((folder.path / MANIFEST).read_text())
        if done is not None:
            events.log("info", f"{folder.path} already holds this capture ({len(done['shards'])} shards)")
            return self._result(done=True, written=0, tokens=0, seconds=0.0)

        if self.adapter is None:
            events.progress("load-target", 0, 1, "model", cfg.target.model)
            self.adapter = load_adapter(cfg.target, device=env.device, dtype=self.dtype)
            events.progress("load-target", 1, 1, "model")
        info = self.adapter.info
        folder.hidden_size = info.hidden_size
        compiling = cfg.compile == "on" or (cfg.compile == "auto" and env.device.type == "cuda")  # as the trainer decides
        if compiling and hasattr(self.adapter, "fuse"):
            self.adapter.fuse()
        if env.is_main:
            folder.write_head(self.adapter.embedding_weight(), self.adapter.lm_head_weight())
            self._log_size(folder)
        committed = folder.committed()
        mine = [k for k in range(len(self.plan)) if k % env.world_size == env.rank and k not in committed]
        total = int(lengths.sum())
        written = tokens = 0
        started = time.perf_counter()  # the rate is the capture's own: loading the target is not in it
        for k in mine:
            if self.stop:
                break
            records, tensors = self.capture_shard(self.plan[k])
            folder.write_shard(k, tensors, records)
            written += 1
            tokens += int(tensors["taps"].shape[0])
            seconds = time.perf_counter() - started
            now = folder.committed_indices()
            events.progress("capture", sum(folder.plan_tokens[j] for j in now), total, "token", f"{len(now)} of {len(self.plan)} shards | {tokens * env.world_size / max(seconds, 1e-9):,.0f} tok/s")

        stopped = dist_env.any_rank(bool(self.stop), env)
        counted = dist_env.all_reduce_sum(torch.tensor([tokens], dtype=torch.float64, device=env.device), env)
        seconds = time.perf_counter() - started
        if not stopped and env.is_main:
            commits = folder.committed()
            if len(commits) != len(self.plan):
                raise EngineError(f"{len(commits)} of {len(self.plan)} shards are committed after every rank finished", code="EAGLET_INTERNAL")
            path = folder.complete(self._manifest(folder, [commits[k] for k in range(len(self.plan))], info))
            events.artifact("manifest", str(path), "capture manifest")
        dist_env.barrier(env)
        if stopped:
            events.log("info", f"capture stopped on request; {len(folder.committed())} of {len(self.plan)} shards are committed in {folder.path}")
        return self._result(done=False, written=written, tokens=int(counted.item()), seconds=seconds)

    def capture_shard(self, indices: list[int]) -> tuple[list[list[int]], dict[str, torch.Tensor]]:
        """The target over one shard's records, in micro-batches of consecutive records: the
        records' places and sizes, and the tensors the shard file holds."""
        lengths = self.data.lengths
        batches = _pack(indices, lengths, self.cfg.batch_tokens, max_records=len(indices))
        taps, finals, records = [], [], []
        for idx, batch in zip(batches, prefetch(self._prepare(self.data.collate(b)) for b in batches), strict=True):
            batch = self._to_device(batch)
            out = run_target(self.adapter, batch, self.cfg.target.aux_layer_ids)
            valid = batch.valid
            need = rows_needed(batch.loss_mask, valid)
            taps.append(out.taps[valid].to(STORED_DTYPE).cpu())
            finals.append(out.final_hidden[need].to(STORED_DTYPE).cpu())
            rows = need.sum(dim=1).tolist()
            for b, i in enumerate(idx):
                ref = self.data.refs[i]
                records.append([ref.dataset, ref.shard, ref.row, ref.length, int(rows[b])])
        return records, {"taps": torch.cat(taps), "final_hidden": torch.cat(finals)}

    def _prepare(self, batch: TargetBatch) -> TargetBatch:
        """Media inputs and the adapter's data checks, in the data thread (as the trainer does)."""
        batch.inputs = self.adapter.media_inputs(batch.clips, self.env.device)
        if self.env.device.type == "cuda":
            batch.inputs = {k: v.pin_memory() for k, v in batch.inputs.items()}
        if hasattr(self.adapter, "check"):
            self.adapter.check(batch)
        return batch

    def _to_device(self, batch: TargetBatch) -> TargetBatch:
        d = self.env.device
        batch.inputs = {k: v.to(d, non_blocking=True) for k, v in batch.inputs.items()}
        batch.input_ids, batch.loss_mask, batch.lengths = batch.input_ids.to(d), batch.loss_mask.to(d), batch.lengths.to(d)
        return batch

    def _manifest(self, folder: CaptureFolder, shards: list[dict[str, Any]], info) -> dict[str, Any]:
        tokens = sum(s["tokens"] for s in shards)
        return {
            "schemaVersion": SCHEMA_VERSION,
            "fingerprint": folder.fingerprint,
            "target": to_dict(self.cfg.target),
            "numLayers": info.num_layers,
            "hiddenSize": info.hidden_size,
            "vocabSize": info.vocab_size,
            "data": [
                {"folder": d["folder"], "fingerprint": d["fingerprint"], "chatTemplate": m.get("chatTemplate", ""), "tokenizerHash": m.get("tokenizerHash", "")}
                for d, m in zip(folder.described["data"], self.data.manifests, strict=True)
            ],
            "dtype": "bfloat16",
            "precision": self.cfg.precision,
            "shardTokens": self.cfg.shard_tokens,
            "batchTokens": self.cfg.batch_tokens,
            "head": folder.head_summary(),
            "shards": shards,
            "counts": {"records": len(self.data), "tokens": tokens, "rows": sum(s["rows"] for s in shards), "skippedNoLoss": len(self.data.report.skipped_no_loss)},
            "bytesPerToken": round(sum(s["bytes"] for s in shards) / max(1, tokens), 2),
            "createdWith": f"eaglet-engine {__version__}",
        }

    def _log_size(self, folder: CaptureFolder) -> None:
        """What the capture will take on disk (an upper bound) next to what is free; a full disk
        later stops the run resumably."""
        need = folder.bytes_needed(sum(folder.plan_tokens))
        free = shutil.disk_usage(folder.path).free
        level = "warn" if free < need else "info"
        events.log(level, f"capturing {len(self.data)} records ({sum(folder.plan_tokens):,} tokens) into {len(self.plan)} shards: up to {_size(need)} on disk, {_size(free)} free")

    def _result(self, *, done: bool, written: int, tokens: int, seconds: float) -> dict[str, Any]:
        return {
            "out": str(Path(self.cfg.out).resolve()),
            "alreadyDone": done,
            "shardsWritten": written,
            "shards": len(self.plan),
            "tokens": tokens,
            "seconds": round(seconds, 3),
            "tokensPerSecond": round(tokens / seconds, 1) if seconds > 0 else 0.0,
        }


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def run(cfg: CaptureConfig, stop: StopRequested) -> dict[str, Any]:
    env = dist_env.init(cfg.device, cfg.dist_timeout_seconds)
    try:
        return Capture(cfg, env, stop).run()
    finally:
        dist_env.close()
