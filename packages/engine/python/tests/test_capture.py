"""Capture and offline training on the tiny Qwen2-Audio (CPU): the captured states are the target's,
offline training follows the online loss curve, a capture killed with -9 (or stopped by a full disk)
resumes to byte-identical files, two gloo ranks write what one process writes, and captures that do
not fit the run are refused naming both sides."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from eaglet_engine import distributed as dist_env
from eaglet_engine.capture import HEAD, MANIFEST, Capture
from eaglet_engine.config import to_dict
from eaglet_engine.errors import EngineError
from eaglet_engine.signals import StopRequested
from eaglet_engine.targets import load_adapter, rows_needed, run_target
from eaglet_engine.trainer import Trainer
from eaglet_engine.vocab import save_vocab

from .fixtures import QWEN2_AUDIO_PYTHON, capture_config, engine_target, make_records, tiny_qwen2_audio, train_config, write_prepared, write_vocab

ENGINE_DIR = Path(__file__).resolve().parents[1]


def _capture(cfg) -> dict:
    return Capture(cfg, dist_env.init("cpu", 120), StopRequested()).run()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("capture-world")
    model = tiny_qwen2_audio(root / "model")
    records = make_records(8, seed=0, audio_every=4)
    train = write_prepared(root / "train", records)
    vocab = write_vocab(root / "vocab.safetensors", records)
    captured = root / "captured"
    _capture(capture_config(model, [train], captured))
    return {"root": root, "model": model, "records": records, "train": train, "vocab": vocab, "captured": captured}


def _files(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir()) if f.is_file()}


def _engine(args: list[str], config: Path, **popen):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ENGINE_DIR), str(QWEN2_AUDIO_PYTHON)]), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return [sys.executable, *args, "-m", "eaglet_engine", "capture", "--config", str(config)], env


def _write(cfg, path: Path) -> Path:
    path.write_text(json.dumps(to_dict(cfg)))
    return path


def test_shards_hold_the_targets_aux_states_and_final_states_on_the_loss_rows(world):
    manifest = json.loads((world["captured"] / MANIFEST).read_text())
    cfg = capture_config(world["model"], [world["train"]], world["captured"])
    adapter = load_adapter(cfg.target, device=torch.device("cpu"), dtype=torch.float32)
    capture = Capture(cfg, dist_env.init("cpu", 120), StopRequested(), adapter)
    records = []
    for shard in manifest["shards"]:
        with safe_open(str(world["captured"] / shard["file"]), framework="pt") as f:
            taps, final = f.get_tensor("taps"), f.get_tensor("final_hidden")
            meta = json.loads(f.metadata()["records"])
        assert taps.dtype == final.dtype == torch.bfloat16 and taps.shape == (shard["tokens"], 3 * 32) and final.shape == (shard["rows"], 32)
        t = r = 0
        for d, s, row, length, rows in meta:
            records.append((taps[t : t + length], final[r : r + rows]))
            t, r = t + length, r + rows
    assert len(records) == manifest["counts"]["records"] == len(world["records"])
    # Record by record through the live target: the stored states are its own, rounded to bf16.
    for i, (taps, final) in enumerate(records):
        batch = capture._to_device(capture._prepare(capture.data.collate([i])))
        out = run_target(adapter, batch, cfg.target.aux_layer_ids)
        need = rows_needed(batch.loss_mask, batch.valid)[0]
        assert torch.equal(taps, out.taps[0].to(torch.bfloat16))
        assert torch.equal(final, out.final_hidden[0][need].to(torch.bfloat16))
        assert int(need.sum()) == int(batch.loss_mask[0, 1:].sum())  # the assistant tokens past position 0 (ttt alignment)
    head = load_file(str(world["captured"] / HEAD))
    assert torch.equal(head["embed_tokens"], adapter.embedding_weight()) and torch.equal(head["lm_head"], adapter.lm_head_weight())
    # Disk per token: 3 aux states of 32 bf16 values per token, one 32-wide state per loss row, plus headers.
    c = manifest["counts"]
    payload = c["tokens"] * 3 * 32 * 2 + c["rows"] * 32 * 2
    assert payload <= sum(s["bytes"] for s in manifest["shards"]) < payload + 1024 * len(manifest["shards"])
    assert manifest["target"]["auxLayerIds"] == [2, 4, 5] and manifest["data"][0]["fingerprint"]


def test_offline_training_follows_the_online_loss_curve_without_loading_the_target(world, tmp_path, monkeypatch):
    common = dict(epochs=100, maxSteps=40, logEvery=1)
    online = Trainer(train_config(tmp_path / "online", world["model"], [world["train"]], world["vocab"], evalData=[str(world["train"])], **common)).build()
    online_result = online.train()

    def no_target(*args, **kwargs):
        raise AssertionError("offline training loaded the target")

    monkeypatch.setattr("eaglet_engine.trainer.load_adapter", no_target)
    captured = str(world["captured"])
    offline = Trainer(train_config(tmp_path / "offline", world["model"], [world["captured"]], world["vocab"], evalData=[captured], **common)).build()
    offline_result = offline.train()

    rows = [[json.loads(line) for line in (tmp_path / run / "out" / "metrics.jsonl").read_text().splitlines()] for run in ("online", "offline")]
    assert [(r["split"], r["step"]) for r in rows[0]] == [(r["split"], r["step"]) for r in rows[1]]
    train_rows = [(a, b) for a, b in zip(*rows, strict=True) if a["split"] == "train"]
    assert len(train_rows) == 40
    # The same seed, batches and masks; only the states' bf16 rounding differs (measured: 1.3e-4 at worst).
    for a, b in train_rows:
        for key in ("loss", "ploss_0", "ploss_1", "ploss_2"):
            assert b[key] == pytest.approx(a[key], rel=1e-3), (a["step"], key)
        for key in ("acc_0", "acc_1", "acc_2"):
            assert abs(a[key] - b[key]) <= 0.05, (a["step"], key)  # a row or two may flip at a tie
    assert train_rows[-1][0]["loss"] < train_rows[0][0]["loss"] - 1  # it learnt, so the curves mean something
    for key, value in online_result["eval"].items():
        assert offline_result["eval"][key] == pytest.approx(value, abs=0.02), key


@pytest.fixture(scope="module")
def sharded(world, tmp_path_factory):
    """24 records in many small shards, and their capture made in one go."""
    root = tmp_path_factory.mktemp("sharded")
    data = write_prepared(root / "data", make_records(24, seed=5, audio_every=3))
    reference = root / "reference"
    _capture(capture_config(world["model"], [data], reference, shardTokens=80, batchTokens=80))
    return {"data": data, "reference": reference, "config": lambda out: capture_config(world["model"], [data], out, shardTokens=80, batchTokens=80)}


def test_a_capture_stopped_then_killed_with_sigkill_resumes_to_byte_identical_files(sharded, tmp_path):
    reference = sharded["reference"]
    manifest = json.loads((reference / MANIFEST).read_text())
    out = tmp_path / "interrupted"
    argv, env = _engine([], _write(sharded["config"](out), tmp_path / "capture.json"))

    def interrupt(sig: signal.Signals) -> tuple[subprocess.Popen, list[dict]]:
        """Runs the capture and sends ``sig`` once it reports a newly committed shard."""
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        seen = []
        for line in proc.stdout:
            seen.append(json.loads(line))
            if seen[-1].get("task") == "capture" and not any(e.get("sent") for e in seen):
                proc.send_signal(sig)
                seen.append({"sent": True})
        proc.wait(timeout=120)
        return proc, seen

    # Ctrl-C: the shard in hand is finished and committed, the run ends cleanly, unfinished.
    proc, seen = interrupt(signal.SIGINT)
    assert proc.returncode == 0 and seen[-1]["type"] == "done" and seen[-1]["stopped"] is True
    stopped_at = len(list(out.glob("shard-*.json")))
    assert not (out / MANIFEST).exists() and 1 <= stopped_at < len(manifest["shards"])
    # kill -9 mid-run: whatever was being written is dropped by the next run.
    proc, _ = interrupt(signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    committed = len(list(out.glob("shard-*.json")))
    assert not (out / MANIFEST).exists() and stopped_at < committed < len(manifest["shards"])

    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:]
    done = json.loads(result.stdout.splitlines()[-1])["result"]
    assert done["shardsWritten"] <= len(manifest["shards"]) - committed + 1  # a shard written but not yet committed is redone
    assert _files(out) == _files(reference)


def test_two_gloo_ranks_write_what_one_process_writes(world, tmp_path):
    out = tmp_path / "two-ranks"
    cfg = capture_config(world["model"], [world["train"]], out, shardTokens=120, nprocPerNode=2)
    argv, env = _engine(["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"], _write(cfg, tmp_path / "capture.json"))
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["type"] for e in events].count("done") == 1  # rank 0 alone reports
    assert any(e["type"] == "progress" and e["task"] == "capture" for e in events)
    single = tmp_path / "one-process"
    _capture(capture_config(world["model"], [world["train"]], single, shardTokens=120))
    assert len(json.loads((single / MANIFEST).read_text())["shards"]) >= 4
    assert _files(out) == _files(single)


def test_captures_that_do_not_fit_the_run_are_refused_naming_both_sides(world, tmp_path):
    model, vocab, captured = world["model"], world["vocab"], world["captured"]

    def refused(match: str, folders, mapping=vocab, **over):
        with pytest.raises(EngineError, match=match):
            Trainer(train_config(tmp_path / "run", model, folders, mapping, **over)).build()

    other_model = tiny_qwen2_audio(tmp_path / "other-model", seed=1)
    refused(rf'another target .*model: "{captured.parent / "model"}" vs "{other_model}"', [captured], target=engine_target(other_model))
    refused(r"auxLayerIds: \[2, 4, 5\] vs \[1, 4, 5\]", [captured], target={**engine_target(model), "auxLayerIds": [1, 4, 5]})
    hub = {"repo": "Qwen/Qwen2-Audio-7B-Instruct", "repoType": "model", "revision": "b" * 40, "path": str(model)}
    refused(r'source: null vs \{"repo"', [captured], target={**engine_target(model), "source": hub})
    # A capture of the Hub checkpoint at one commit, a run at another.
    at_a = tmp_path / "at-commit-a"
    _capture(capture_config(model, [world["train"]], at_a, target={**engine_target(model), "source": {**hub, "revision": "a" * 40}}))
    refused(f'another target .*source.revision: "{"a" * 40}" vs "{"b" * 40}"', [at_a], target={**engine_target(model), "source": hub})
    refused(r"mix capture folders .* with prepared folders", [captured, world["train"]])
    ids = torch.arange(256)
    t2d = torch.zeros(400, dtype=torch.bool)
    t2d[ids] = True
    save_vocab(tmp_path / "vocab-400.safetensors", torch.zeros(256, dtype=torch.int64), t2d)
    refused("covers 400 target ids, the target's vocabulary has 300", [captured], mapping=tmp_path / "vocab-400.safetensors")

    # The prepared data prepared again (other records) after the capture.
    data = write_prepared(tmp_path / "data", make_records(4, seed=7))
    capture = tmp_path / "cap-of-data"
    _capture(capture_config(model, [data], capture))
    before = json.loads((capture / MANIFEST).read_text())["data"][0]["fingerprint"]
    write_prepared(tmp_path / "data", make_records(4, seed=8))
    after = json.loads((data / "manifest.json").read_text())["fingerprint"]
    refused(rf"made from other prepared data than {data} now holds \(fingerprint {before[:12]} captured, {after[:12]} now\)", [capture])
    # Capturing other data into a folder that holds (or was capturing) another capture.
    with pytest.raises(EngineError, match=rf'holds a finished capture of other inputs .*data\[0\]\.fingerprint: "{before}" vs "{after}"'):
        _capture(capture_config(model, [data], capture))
    (capture / MANIFEST).unlink()
    with pytest.raises(EngineError, match="is unfinished"):
        Trainer(train_config(tmp_path / "run", model, [capture], vocab)).build()

    # The same model folder with other weights (a new revision saved in place) between two captures.
    moved = tmp_path / "model-in-place"
    shutil.copytree(model, moved)
    first = tmp_path / "first"
    _capture(capture_config(moved, [world["train"]], first))
    shutil.rmtree(moved)
    shutil.copytree(other_model, moved)
    second = tmp_path / "second"
    _capture(capture_config(moved, [world["train"]], second))
    with pytest.raises(EngineError, match=f"captures {first} and {second} were made with different target weights"):
        Trainer(train_config(tmp_path / "run", moved, [first], vocab, evalData=[str(second)])).build()


def _private_tmpfs_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _private_tmpfs_works(), reason="needs `unshare` with user and mount namespaces: a private tmpfs of a few pages stands for the full disk")
def test_a_full_disk_stops_the_capture_with_a_clear_error_and_the_same_command_resumes(sharded, tmp_path):
    reference = sharded["reference"]
    manifest = json.loads((reference / MANIFEST).read_text())
    page = 4096
    pages = lambda n: -(-n // page) * page  # noqa: E731
    # Room for the head, the run's bookkeeping and three shards: the fourth fills the disk.
    size = pages((reference / HEAD).stat().st_size) + sum(pages(s["bytes"]) + page for s in manifest["shards"][:3]) + 2 * page
    disk = tmp_path / "disk"
    disk.mkdir()
    config = _write(sharded["config"](disk / "capture"), tmp_path / "capture.json")
    argv, env = _engine([], config)
    run = " ".join(argv)
    script = f"""
        mount -t tmpfs -o size={size} tmpfs {disk} || exit 90
        {run} > {tmp_path}/first.out 2> {tmp_path}/first.err; echo $? > {tmp_path}/first.rc
        ls {disk}/capture > {tmp_path}/left.txt
        mount -o remount,size=64m {disk}
        {run} > {tmp_path}/second.out 2> {tmp_path}/second.err; echo $? > {tmp_path}/second.rc
        cp -r {disk}/capture {tmp_path}/result
    """
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    assert (tmp_path / "first.rc").read_text().strip() == "1", (tmp_path / "first.err").read_text()[-2000:]
    error = [e for e in map(json.loads, (tmp_path / "first.out").read_text().splitlines()) if e["type"] == "error"][0]
    assert error["code"] == "EAGLET_DISK_FULL"
    assert error["message"].startswith(f"no space left on the device of {disk}/capture while writing shard-")
    assert f"of {len(manifest['shards'])} shards are committed there" in error["message"]
    assert "run the same command again: it resumes from the committed shards" in error["hint"]
    left = (tmp_path / "left.txt").read_text().split()
    assert MANIFEST not in left and not [f for f in left if f.endswith(".tmp")]  # nothing half-written
    assert 1 <= len([f for f in left if f.endswith(".json") and f.startswith("shard-")]) < len(manifest["shards"])

    assert (tmp_path / "second.rc").read_text().strip() == "0", (tmp_path / "second.err").read_text()[-2000:]
    assert _files(tmp_path / "result") == _files(reference)
