"""Two processes under torchrun: on CPU (gloo, fp32: exact equivalence) everywhere, and on two GPUs
(NCCL, bf16, torch.compile: the production path) where torch sees at least two CUDA devices.
DDP: Ctrl-C stops both ranks after the same step with one checkpoint, and the run, resumed, ends
where a single process with the same global batch (two accumulation steps) ends. FSDP2: the same
equivalence, with the sharded state gathered for the checkpoint and the export."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from eaglet_engine.config import to_dict
from eaglet_engine.trainer import Trainer

from .fixtures import QWEN2_AUDIO_PYTHON, make_records, tiny_qwen2_audio, train_config, write_prepared, write_vocab

ENGINE_DIR = Path(__file__).resolve().parents[1]

# Per device: the config overrides and how close the two-rank run must land to the single process.
# On GPUs bf16 kernels (flash attention's backward, NCCL's reduction order) are not bit-reproducible:
# the bound is the one the single-GPU resume test uses.
SETUPS = {
    "cpu": (dict(device="cpu", precision="fp32", compile="off"), dict(rtol=1e-4, atol=1e-6)),
    # bf16 autocast on the CPU: the objective casts the draft's weights once per micro-batch
    # (functional_call inside DDP's forward); the bound is bf16 rounding's, as on GPUs.
    "cpu-bf16": (dict(device="cpu", precision="bf16", compile="off"), dict(rtol=1e-2, atol=5e-3)),
    "cuda": (
        dict(device="cuda", precision="bf16", compile="auto", draftConfig={"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "torch_dtype": "bfloat16"}),
        dict(rtol=1e-2, atol=5e-3),  # + bf16 rounding of the export
    ),
}


def _torchrun(config: dict, path: Path) -> tuple[list[str], dict[str, str]]:
    """Writes the train config and returns the argv and environment that run it on two ranks, as
    the TS bridge does: the engine and the adapter first on PYTHONPATH, then the caller's."""
    path.write_text(json.dumps(to_dict(config)))
    pythonpath = os.pathsep.join(p for p in (str(ENGINE_DIR), str(QWEN2_AUDIO_PYTHON), os.environ.get("PYTHONPATH", "")) if p)
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "eaglet_engine", "train", "--config", str(path)]
    return argv, {**os.environ, "PYTHONPATH": pythonpath, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices (the multi-GPU device machine runs it)")),
]


@pytest.mark.parametrize("device", [*DEVICES, "cpu-bf16"])
def test_torchrun_two_ranks_stop_on_sigint_and_match_a_single_process(tmp_path, device):
    overrides, close = SETUPS[device]
    model = tiny_qwen2_audio(tmp_path / "model")
    records = make_records(12, seed=0, audio_every=4)
    data = write_prepared(tmp_path / "train", records)
    vocab = write_vocab(tmp_path / "vocab.safetensors", records)
    common = dict(epochs=50, maxSteps=12, logEvery=1, **overrides)

    cfg = train_config(tmp_path / "ddp", model, [data], vocab, **common, batching={"maxRecords": 1, "maxTokens": 128, "gradAccumulation": 1})
    argv, env = _torchrun(cfg, tmp_path / "ddp.json")
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # as the TS bridge starts it: the signal reaches torchrun, which forwards it
    )
    events = []
    try:
        for line in proc.stdout:
            event = json.loads(line)
            events.append(event)
            if event["type"] == "progress" and event["task"] == "train" and event["done"] >= 1 and not any(e.get("signalled") for e in events):
                os.killpg(proc.pid, signal.SIGINT)
                events.append({"signalled": True})
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    stderr = proc.stderr.read()
    done = [e for e in events if e.get("type") == "done"]
    assert len(done) == 1 and done[0]["stopped"] is True, stderr[-3000:]
    assert not [e for e in events if e.get("type") == "error"], stderr[-3000:]
    checkpoints = [e for e in events if e.get("type") == "checkpoint"]
    assert len(checkpoints) == 1
    stopped_at = checkpoints[0]["step"]
    assert 1 <= stopped_at < 12
    ckpt = Path(checkpoints[0]["path"])
    assert (ckpt / "rank0.pt").is_file() and (ckpt / "rank1.pt").is_file()
    # Every event line came from rank 0 alone: one log line per logged step.
    train_metrics = [e for e in events if e.get("type") == "metrics"]
    assert [m["step"] for m in train_metrics] == list(range(1, stopped_at + 1))

    # Resume the two-rank checkpoint in one process with two accumulation steps: same global batch.
    single = dict(common, batching={"maxRecords": 1, "maxTokens": 128, "gradAccumulation": 2})
    resumed = Trainer(train_config(tmp_path / "ddp", model, [data], vocab, resume=True, **single)).build()
    assert resumed.step == stopped_at
    resumed.train()
    reference = Trainer(train_config(tmp_path / "single", model, [data], vocab, **single)).build()
    reference.train()
    a, b = resumed.state_dict()["model"], reference.state_dict()["model"]
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), **close), (k, (a[k].float() - b[k].float()).abs().max().item())


@pytest.mark.parametrize("device", DEVICES)
def test_torchrun_two_ranks_with_fsdp2_match_a_single_process_and_export(tmp_path, device):
    overrides, close = SETUPS[device]
    model = tiny_qwen2_audio(tmp_path / "model")
    records = make_records(8, seed=1, audio_every=4)
    data = write_prepared(tmp_path / "train", records)
    vocab = write_vocab(tmp_path / "vocab.safetensors", records)
    common = dict(epochs=50, maxSteps=4, logEvery=2, **overrides)
    cfg = train_config(tmp_path / "fsdp", model, [data], vocab, **common, parallel="fsdp", batching={"maxRecords": 1, "maxTokens": 128, "gradAccumulation": 1})
    argv, env = _torchrun(cfg, tmp_path / "fsdp.json")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    errors = [line for line in proc.stdout.splitlines() if '"error"' in line]
    assert proc.returncode == 0, "\n".join(errors) + proc.stderr[-3000:]
    done = [e for e in map(json.loads, proc.stdout.splitlines()) if e["type"] == "done"]
    assert done and done[0]["result"]["steps"] == 4
    exported = Path(done[0]["result"]["draft"]["vllm"])

    single = dict(common, batching={"maxRecords": 1, "maxTokens": 128, "gradAccumulation": 2})
    reference = Trainer(train_config(tmp_path / "single", model, [data], vocab, **single)).build()
    reference.train()
    from eaglet_engine.export import load_draft

    sharded = load_draft(exported, dtype=torch.float32).state_dict()
    for k, v in reference.draft.state_dict().items():
        # the export is in the config's torch_dtype (float32 on CPU: exact) of the fp32 master weights
        a, b = sharded[k].float().cpu(), v.float().cpu()
        assert torch.allclose(a, b, **close), (k, (a - b).abs().max().item())
