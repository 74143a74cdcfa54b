"""The train window's sums: a step hands them over as tensors (on the training device, so no step
waits for the GPU), the window adds them there, and what it logs and checkpoints is plain numbers
equal to the sums of the steps."""

import json

import torch

from eaglet_engine.metrics import StepStats


def _step(loss, correct, objective, grad_norm, tokens=10, seconds=0.5):
    return StepStats(
        steps=1,
        loss_sum=torch.tensor(loss, dtype=torch.float64),
        correct=torch.tensor(correct, dtype=torch.float64),
        counts=torch.tensor([4.0, 2.0], dtype=torch.float64),
        objective=torch.tensor(objective, dtype=torch.float64),
        grad_norm=torch.tensor(grad_norm, dtype=torch.float64),
        tokens=tokens,
        seconds=seconds,
    )


def test_the_window_adds_tensor_sums_and_logs_and_checkpoints_plain_numbers():
    window = StepStats.zeros(2)
    window.add(_step([2.0, 1.0], [3.0, 1.0], 1.5, 0.25))
    window.add(_step([1.0, 0.5], [4.0, 2.0], 0.5, 0.75))
    values = window.values()
    assert values["loss"] == 1.0  # (1.5 + 0.5) / 2 steps
    assert values["ploss_0"] == 3.0 / 8 and values["ploss_1"] == 1.5 / 4
    assert values["acc_0"] == 7.0 / 8 and values["acc_1"] == 3.0 / 4
    state = json.loads(json.dumps(window.state_dict()))  # plain numbers: the checkpoint's JSON
    assert state["objective"] == 2.0 and state["grad_norm"] == 1.0 and state["tokens"] == 20

    # A resumed window (host tensors from the checkpoint) keeps adding the steps' tensors.
    resumed = StepStats.from_state_dict(state)
    resumed.add(_step([1.0, 1.0], [1.0, 1.0], 1.0, 0.5))
    window.add(_step([1.0, 1.0], [1.0, 1.0], 1.0, 0.5))
    assert resumed.values() == window.values()
    assert resumed.state_dict() == window.state_dict()
