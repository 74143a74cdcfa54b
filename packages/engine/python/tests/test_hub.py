"""`hub`: Hub ids resolve through huggingface_hub's own cache, offline, with the commit recorded;
a missing entry gives one clear error. The cache is laid out as the library lays it out
(models--org--name/refs/<branch> naming a commit, snapshots/<commit>/files), in a temporary HF_HOME
with HF_HUB_OFFLINE=1: no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ENGINE_DIR = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(home: Path, repo: str, repo_type: str, files: dict[str, str], branch: str = "main", commit: str = COMMIT) -> Path:
    """A repository in the Hub cache layout under ``home`` (HF_HOME): what a download leaves."""
    folder = home / "hub" / f"{repo_type}s--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / commit
    for name, text in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_text(text)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / branch).write_text(commit)
    return snapshot


def run_hub(home: Path, cfg: dict, tmp_path: Path) -> tuple[int, list[dict]]:
    path = tmp_path / "hub.json"
    path.write_text(json.dumps(cfg))
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ENGINE_DIR)}
    env.pop("HF_HUB_CACHE", None)
    proc = subprocess.run([sys.executable, "-m", "eaglet_engine", "hub", "--config", str(path)], capture_output=True, text=True, env=env, timeout=120)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def test_a_cached_model_resolves_offline_to_its_snapshot_and_commit(tmp_path):
    home = tmp_path / "hf"
    snapshot = hub_cache(home, "org/tiny-model", "model", {"config.json": "{}"})
    code, events = run_hub(home, {"repo": "org/tiny-model"}, tmp_path)
    assert code == 0, events
    assert events[-1]["result"] == {"repo": "org/tiny-model", "repoType": "model", "revision": COMMIT, "path": str(snapshot)}
    # a revision by branch name and by commit
    hub_cache(home, "org/tiny-model", "model", {"config.json": "{}"}, branch="v2", commit="f" * 40)
    code, events = run_hub(home, {"repo": "org/tiny-model", "revision": "v2"}, tmp_path)
    assert code == 0 and events[-1]["result"]["revision"] == "f" * 40 and events[-1]["result"]["requested"] == "v2"
    code, events = run_hub(home, {"repo": "org/tiny-model", "revision": COMMIT}, tmp_path)
    assert code == 0 and events[-1]["result"]["path"] == str(snapshot)


def test_a_cached_dataset_resolves_with_its_files(tmp_path):
    home = tmp_path / "hf"
    snapshot = hub_cache(home, "org/speech", "dataset", {"train.jsonl": "{}\n", "audios/a.flac": "x"})
    code, events = run_hub(home, {"repo": "org/speech", "repoType": "dataset"}, tmp_path)
    assert code == 0, events
    assert Path(events[-1]["result"]["path"]) == snapshot and (snapshot / "audios" / "a.flac").is_file()


def test_offline_with_no_cached_copy_is_one_clear_error_naming_the_id_and_the_fix(tmp_path):
    code, events = run_hub(tmp_path / "empty", {"repo": "org/not-here", "revision": "main"}, tmp_path)
    assert code == 1
    error = events[-1]
    assert error["type"] == "error" and error["code"] == "EAGLET_HUB_OFFLINE"
    assert "org/not-here@main is not in the local Hub cache" in error["message"] and "HF_HUB_OFFLINE is set" in error["message"]
    assert "huggingface-cli download org/not-here" in error["hint"]
