"""The engine side of the protocol: event lines, config validation, the CLI's exit codes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eaglet_engine import config, events
from eaglet_engine.errors import ConfigError

ENGINE_DIR = Path(__file__).resolve().parents[1]


def run_engine(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eaglet_engine", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ENGINE_DIR), **(env or {})},
        timeout=120,
    )


def test_env_command_emits_only_json_events_and_exits_zero():
    proc = run_engine("env")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["type"] for e in lines] == ["done"]
    result = lines[0]["result"]
    assert result["packages"]["torch"]
    assert isinstance(result["cuda"]["available"], bool)


def test_non_finite_values_never_break_the_stream(capsys):
    events.emit("metrics", split="train", step=1, values={"loss": float("nan")})
    events.metrics("train", 2, {"loss": float("inf"), "acc_0": 0.5})
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0])["values"] == {"loss": None}
    assert json.loads(out[1])["values"] == {"acc_0": 0.5}


def test_only_the_first_process_of_each_node_emits(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    events.progress("train", 1)
    assert capsys.readouterr().out == ""
    # Rank 8 on the second node of a multi-node run reports to that node's eaglet.
    monkeypatch.setenv("RANK", "8")
    monkeypatch.setenv("LOCAL_RANK", "0")
    events.progress("train", 2)
    assert json.loads(capsys.readouterr().out) == {"type": "progress", "task": "train", "done": 2}


def test_another_ranks_error_goes_to_stderr_with_its_rank(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    events.error("ValueError: broken shard", code="EAGLET_ENGINE_CRASH", traceback="Traceback ...\nValueError: broken shard")
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout stays rank 0's
    assert "[rank 1] EAGLET_ENGINE_CRASH: ValueError: broken shard" in captured.err and "Traceback ..." in captured.err


def test_config_validation_names_every_bad_field_and_refuses_unknown_keys():
    bad = {"targetModel": "/m", "trainData": [], "outputDir": "/o", "vocab": "/v", "nonsense": 1}
    with pytest.raises(ConfigError) as info:
        config.validate(bad, "train")
    message = str(info.value)
    assert "nonsense" in message  # unknown keys fail
    assert "trainData" in message  # min 1
    assert "ttt" in message  # required after TS filled defaults


def test_unknown_command_is_refused_by_argparse():
    proc = run_engine("no-such-command")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
