"""The training objective against a naive reference written the way the original code is:
materialised attention scores, full-vocabulary target logits, every tensor shifted by padding each
step. Loss, per-step metrics and every gradient must agree."""

import pytest
import torch

from eaglet_engine.draft import TTTCache
from eaglet_engine.kernels import fused_soft_cross_entropy
from eaglet_engine.targets import needed_rows, target_signals
from eaglet_engine.ttt import TTTBatch, TTTObjective, soft_cross_entropy_reference, step_token_counts

from .tiny import tiny_draft, tiny_draft_config


def _pad_left_shift(x):
    """The reference's `padding(x, left=False)`: drop the first position, append zeros."""
    return torch.cat([x[:, 1:], torch.zeros_like(x[:, :1])], dim=1)


def naive_ttt(draft, input_ids, loss_mask, valid, taps, target_full, steps, decay):
    """Reference implementation (float64): eager attention, full logits, padding shifts.

    Differs from the original in two documented ways: a row whose target position lies beyond the
    record (padding, or past the end) is not counted (the original pads with zero logits there);
    and a row counts when the token it reads is an assistant token (the original: its own token),
    so the prompt's last row, which makes a request's first draft, is trained (``ttt``'s docstring).
    """
    t2d = draft.t2d
    hidden = draft.project(taps)
    cache = TTTCache("eager")
    b, t = input_ids.shape
    pos = torch.arange(t).expand(b, t)
    ids = _pad_left_shift(input_ids)
    target = _pad_left_shift(target_full)
    target_valid = _pad_left_shift(valid)
    lm = _pad_left_shift(loss_mask)  # row t reads token t+1
    losses, stats = [], []
    for i in range(steps):
        hidden = draft.step(draft.embed(ids), hidden, pos + i, cache)
        logits = draft.logits(hidden)
        target_p = torch.softmax(target[..., t2d].double(), dim=-1)
        position_mask = t2d[target.argmax(-1)] & lm & target_valid
        loss_sum = -(position_mask[..., None] * target_p * torch.log_softmax(logits, -1)).sum()
        correct = ((logits.argmax(-1) == target_p.argmax(-1)) & position_mask).sum()
        losses.append(loss_sum)
        stats.append((loss_sum.item(), int(correct), int((lm & target_valid).sum())))
        ids, target, lm, target_valid = map(_pad_left_shift, (ids, target, lm, target_valid))
    return losses, stats


def _problem(seed=0, b=3, t=29, steps=5, answer_from_start=False):
    torch.manual_seed(seed)
    # A small draft vocabulary, so that a random draft is right often enough to test acc.
    draft = tiny_draft(tiny_draft_config(draft_vocab_size=6), seed=seed).double()
    cfg = draft.config
    lengths = torch.tensor([t, t - 7, t - 15])[:b]
    valid = torch.arange(t)[None] < lengths[:, None]
    input_ids = torch.randint(0, cfg.vocab_size, (b, t)) * valid
    # Assistant tokens: a span in the second half of each record (its last token included).
    loss_mask = torch.zeros(b, t, dtype=torch.bool)
    for r, n in enumerate(lengths.tolist()):
        loss_mask[r, n // 2 : n] = True
    if answer_from_start:  # the first record answers from its second token: row 0 counts
        loss_mask[0, 1:] = True
    taps = torch.randn(b, t, cfg.fused_width, dtype=torch.float64)
    final_hidden = torch.randn(b, t, 16, dtype=torch.float64)
    lm_head = torch.randn(cfg.vocab_size, 16, dtype=torch.float64)
    # Push many argmaxes into the draft vocabulary, but not all (both cases must be exercised).
    lm_head[draft.t2d] *= 2.5
    return draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head, steps


def _batch(draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head, **signals):
    """The objective's batch for a ``_problem`` (in the draft's dtype), as the trainer makes it:
    the target's signals on the rows a loss can read."""
    dtype = draft.fc.weight.dtype
    mapping = torch.arange(draft.config.draft_vocab_size) + draft.d2t
    needed = needed_rows(loss_mask, valid)
    logits, target_row, in_draft = target_signals(final_hidden.to(dtype), lm_head.to(dtype), mapping, draft.t2d, needed, **signals)
    return TTTBatch(input_ids, loss_mask, taps.to(dtype), logits, target_row, in_draft & valid, valid, needed, needed[1])


@pytest.mark.parametrize(
    "fused,kernel,answer_from_start",
    [(True, "flash", False), (False, "eager", False), (True, "eager", False), (False, "flash", False), (True, "flash", True), (False, "eager", True)],
)
def test_objective_equals_naive_reference_loss_metrics_and_gradients(fused, kernel, answer_from_start):
    draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head, steps = _problem(answer_from_start=answer_from_start)
    decay = 0.8
    target_full = final_hidden @ lm_head.t()

    ref_losses, ref_stats = naive_ttt(draft, input_ids, loss_mask, valid, taps, target_full, steps, decay)
    counts = step_token_counts(loss_mask, valid, steps)
    assert [s[2] for s in ref_stats] == counts.tolist()
    ref_total = sum(decay**i * ref_losses[i] / counts[i] for i in range(steps))
    ref_total.backward()
    ref_grads = {n: p.grad.clone() for n, p in draft.named_parameters()}
    draft.zero_grad()

    batch = _batch(draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head, chunk_rows=7)
    assert 0 < int(batch.target_in_draft.sum()) < int(valid.sum())  # both cases occur
    objective = TTTObjective(draft, steps=steps, decay=decay, kernel=kernel, fused=fused, chunk_rows=5)
    # The unroll skips the rows before the first counted one (here the prompt halves), unless a
    # record counts from row 0; both cases are checked against the reference, which runs every row.
    start = objective._rows_plan(batch)[1]
    assert start == 0 if answer_from_start else start > 0
    total, stats = objective(batch, counts.double())
    total.backward()

    assert torch.allclose(total, ref_total, rtol=1e-12, atol=0)
    for i in range(steps):
        assert stats[i, 0].item() == pytest.approx(ref_stats[i][0], rel=1e-6)  # stats are fp32
        assert int(stats[i, 1]) == ref_stats[i][1]
    assert sum(int(s[1]) for s in ref_stats) > 0  # accuracy is not trivially zero
    for name, p in draft.named_parameters():
        err = ((p.grad - ref_grads[name]).norm() / ref_grads[name].norm()).item()
        assert err < 1e-10, f"{name}: {err}"


def test_fused_loss_equals_reference_in_fp32_and_bf16_and_skips_grads_in_eval():
    g = torch.Generator().manual_seed(0)
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
        x = torch.randn(37, 24, generator=g).to(dtype).requires_grad_()
        w = (torch.randn(50, 24, generator=g) * 0.3).to(dtype).requires_grad_()
        target = torch.randn(37, 50, generator=g).to(dtype)
        loss_a, correct_a = fused_soft_cross_entropy(x, w, target, chunk=8)
        loss_a.backward(torch.tensor(0.37))
        ga = (x.grad.clone(), w.grad.clone())
        x.grad = w.grad = None
        loss_b, correct_b = soft_cross_entropy_reference(torch.nn.functional.linear(x, w).float(), target)
        (0.37 * loss_b).backward()
        assert loss_a.item() == pytest.approx(loss_b.item(), rel=tol)
        assert torch.equal(correct_a, correct_b)
        for a, b in zip(ga, (x.grad, w.grad)):
            assert ((a.double() - b.double()).norm() / b.double().norm()).item() < tol
    with torch.no_grad():
        loss, _ = fused_soft_cross_entropy(x, w, target)
    assert loss.grad_fn is None


def test_step_counts_are_the_accuracy_denominators():
    loss_mask = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 1, 1, 0, 0, 0]], dtype=torch.bool)
    valid = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    # step i counts loss_mask[t+1+i] where t+1+i is a real position: the assistant tokens from position 1+i on
    assert step_token_counts(loss_mask, valid, 3).tolist() == [3 + 2, 3 + 1, 2 + 0]


def test_weights_cast_once_per_forward_give_autocasts_gradients():
    """``weights_dtype``: every parameter is cast to bf16 once per forward (the seven steps share
    the copies), and the gradients land in the fp32 ``.grad`` equal to autocast's own casting
    within bf16 rounding (the steps' weight gradients are summed in bf16 before the cast back)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class ParameterCasts(TorchDispatchMode):
        def __init__(self, params):
            super().__init__()
            self.ptrs = {p.data_ptr(): n for n, p in params}
            self.casts: dict[str, int] = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._to_copy.default and args[0].data_ptr() in self.ptrs:
                name = self.ptrs[args[0].data_ptr()]
                self.casts[name] = self.casts.get(name, 0) + 1
            return func(*args, **(kwargs or {}))

    draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head, steps = _problem()
    draft = draft.float()
    counts = step_token_counts(loss_mask, valid, steps)
    batch = _batch(draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head)

    def run(weights_dtype):
        draft.zero_grad()
        objective = TTTObjective(draft, steps=steps, decay=0.8, weights_dtype=weights_dtype)
        with ParameterCasts(draft.named_parameters()) as casts, torch.autocast("cpu", dtype=torch.bfloat16):
            total, _ = objective(batch, counts.double())
        total.backward()
        return total.item(), {n: p.grad.clone() for n, p in draft.named_parameters()}, casts.casts

    loss_autocast, grads_autocast, _ = run(None)
    loss_once, grads_once, casts = run(torch.bfloat16)
    assert casts == {n: 1 for n, _ in draft.named_parameters()}
    assert loss_once == pytest.approx(loss_autocast, rel=1e-3)
    for name, g in grads_once.items():
        assert g.dtype == torch.float32
        err = ((g - grads_autocast[name]).norm() / grads_autocast[name].norm()).item()
        assert err < 1e-2, f"{name}: {err}"


def test_a_batch_without_counted_rows_gives_zero_loss_and_zero_counts():
    """Nothing to learn from (no assistant token): the unroll runs on every row and adds nothing."""
    draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head, steps = _problem()
    loss_mask = torch.zeros_like(loss_mask)
    batch = _batch(draft, input_ids, loss_mask, valid, taps, final_hidden, lm_head)
    objective = TTTObjective(draft, steps=steps, decay=0.8, kernel="flash")
    assert objective._rows_plan(batch)[1:] == (0, input_ids.shape[1])
    total, stats = objective(batch, torch.ones(steps, dtype=torch.float64))
    assert total.item() == 0.0 and not stats.any()
