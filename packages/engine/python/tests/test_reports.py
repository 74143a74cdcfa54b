"""What training and serving reports state: the curves' panels hold comparable quantities, and a
model's dtype is stated with what its checkpoint stores."""

import json

import pytest
import torch
from safetensors.torch import save_file

from eaglet_engine.plot import curves_figure
from eaglet_engine.targets import describe_dtype, stored_dtype


def _rows(ttt: int) -> list[dict]:
    rows = []
    for step in (10, 20):
        values = {f"ploss_{i}": 2.0 - i * 0.1 for i in range(ttt)} | {f"acc_{i}": 0.5 for i in range(ttt)}
        rows.append({"split": "train", "step": step, "loss": 5.0, **values})
        rows.append({"split": "eval", "step": step, "loss": 4.0, "bigram_acc": 0.3, **values})
    return rows


def test_curves_put_the_objective_the_per_step_losses_and_the_accuracies_on_panels_of_their_own():
    pytest.importorskip("matplotlib")
    fig = curves_figure(_rows(3), 3, "initialised fresh (seed 0); precision fp32 on cpu")
    labels = [sorted(line.get_label() for line in ax.lines) for ax in fig.axes]
    assert labels[0] == ["eval objective", "train objective"]
    assert labels[1] == sorted(f"{split} ploss_{i}" for split in ("train", "eval") for i in range(3))
    assert labels[2] == sorted([f"{split} acc_{i}" for split in ("train", "eval") for i in range(3)] + ["eval bigram table (baseline for acc_0)"])
    assert fig.axes[2].get_ylim() == (0, 1)
    assert fig._suptitle.get_text() == "initialised fresh (seed 0); precision fp32 on cpu"


def test_a_dtype_is_stated_with_why_and_what_the_checkpoint_stores(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"torch_dtype": "bfloat16"}}))
    assert stored_dtype(tmp_path) == "bfloat16"
    cpu = torch.device("cpu")
    assert describe_dtype(torch.float32, "auto", cpu, tmp_path) == "float32 (auto: float32 on cpu; the checkpoint stores bfloat16)"
    assert describe_dtype(torch.bfloat16, "bf16", cpu, tmp_path) == "bfloat16 (bf16 as configured; the checkpoint stores bfloat16)"
    # No dtype in config.json: the first floating tensor of the weights says it.
    (tmp_path / "config.json").write_text("{}")
    save_file({"ids": torch.zeros(2, dtype=torch.int64), "w": torch.zeros(2, dtype=torch.float16)}, str(tmp_path / "model.safetensors"))
    assert stored_dtype(tmp_path) == "float16"
    assert describe_dtype(torch.float32, "auto", cpu, tmp_path / "missing") == "float32 (auto: float32 on cpu)"
