"""Engine changes for draft-quality experiments, one per name: each replaces one piece of the engine
in this process only, so a hypothesis (docs/perf/quality.md) is one flag against the same code.

``draft_experiment.py --variant NAME`` applies them in its own process; ``controls/sitecustomize.py``
applies the one named by ``EAGLET_QUALITY_VARIANT`` in every engine process started with that
folder on PYTHONPATH (how the draft-quality regression test is shown to fail on a broken objective).
"""

from __future__ import annotations

import torch

from eaglet_engine import draft as draft_mod
from eaglet_engine import trainer as trainer_mod
from eaglet_engine.fp8 import round_rows


def _normal_init(std: float):
    """The draft's linear layers from normal(0, std), as the engine initialised them before
    docs/perf/quality.md's first finding (std 0.02, Llama's initializer_range); the engine's own
    initialisation is PyTorch's default, as the reference's."""

    def reset_parameters(self, generator=None) -> None:
        for module in self.modules():
            if isinstance(module, torch.nn.Linear):
                with torch.no_grad():
                    module.weight.normal_(0.0, std, generator=generator)
            elif isinstance(module, draft_mod.RMSNorm):
                torch.nn.init.ones_(module.weight)

    draft_mod.Eagle3Draft.reset_parameters = reset_parameters


def _no_hidden_input() -> None:
    """The hidden-state input dropped (zeros): what a draft learns from token embeddings alone."""
    project = draft_mod.Eagle3Draft.project
    draft_mod.Eagle3Draft.project = lambda self, taps: project(self, torch.zeros_like(taps))


def _zero_loss_mask() -> None:
    """A broken objective: no row counts in training (the loss mask zeroed inside the objective);
    eval still scores every assistant token, so the metrics show what the draft learnt."""
    from eaglet_engine import ttt

    plan = ttt.TTTObjective._rows_plan

    def none_counted(self, batch):
        if self.training:  # every step's rows start past the last needed one: none is read
            return [batch.needed_positions.numel()] * self.steps, 0, batch.input_ids.shape[1]
        return plan(self, batch)

    ttt.TTTObjective._rows_plan = none_counted


def _sequence_normaliser() -> None:
    """The reference's loss normaliser: every real position of the step's sequences (prompt and
    audio included) instead of eaglet's assistant tokens, for every TTT step."""
    train_step = trainer_mod.Trainer.train_step

    def step(self, micro_batches, all_counts):
        ttt_steps = self.objective.steps
        positions = float(sum(int(b.lengths.sum()) for b in micro_batches))
        return train_step(self, micro_batches, torch.full((ttt_steps,), positions, dtype=torch.float64))

    trainer_mod.Trainer.train_step = step


def _fp8_target() -> None:
    """The frozen target's text-decoder products in FP8 (issue 14's optional lever: those products
    are 71.5 of a 4096-token step's 256 ms on an H200): every linear layer of `decoder.layers`
    multiplies its input and weight rounded through e4m3 with row-wise scales, accumulating in
    fp32 (emulated here, so it runs on a CPU). The audio encoder, embeddings, norms, attention and
    lm_head stay as they are; the draft trains on these states and targets and is benchmarked
    against the unmodified target. The rounding is the engine's (`eaglet_engine.fp8.round_rows`),
    which the train config's `targetFp8` multiplies with torch._scaled_mm (a test holds the two
    equal); this variant keeps the plain-arithmetic form the recorded figures were made with."""
    import torch.nn.functional as F

    load_adapter = trainer_mod.load_adapter

    def fp8_forward(self, x):
        return F.linear(round_rows(x), round_rows(self.weight), self.bias)

    def load(*args, **kwargs):
        adapter = load_adapter(*args, **kwargs)
        linears = [m for m in adapter.decoder.layers.modules() if isinstance(m, torch.nn.Linear)]
        for m in linears:
            m.forward = fp8_forward.__get__(m)
        print(f"[fp8-target] {len(linears)} linear layers of the target's decoder in emulated FP8", flush=True)
        return adapter

    trainer_mod.load_adapter = load


VARIANTS = {
    "init-normal-0.02": lambda: _normal_init(0.02),
    "no-hidden-input": _no_hidden_input,
    "zero-loss-mask": _zero_loss_mask,
    "normaliser-sequence": _sequence_normaliser,
    "fp8-target": _fp8_target,
}
