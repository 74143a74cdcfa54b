"""The training-time test (TTT): Eagle3's training objective, unrolled over ``steps`` draft steps.

``TTTObjective`` is an ``nn.Module`` so that DDP / FSDP2 can wrap it from outside (their hooks run
around ``forward``); the draft model itself knows nothing of ranks.

Alignment (as in the reference implementation; T = sequence length, t = position):

* step 0 at position t reads the target's fused hidden state at t and the embedding of token
  t+1, and learns the target's distribution at position t+1 (the token after t+1);
* step i reads its own previous output at t, the embedding of token t+1+i, and learns the
  target's distribution at t+1+i; its rope position is t+i;
* the row counts when the token it reads, t+1+i, is an assistant token (``loss_mask``) and the
  target's argmax at t+1+i lies in the draft vocabulary. Rows whose target would lie beyond the
  sequence do not exist (the reference pads them with zero logits; we leave them out).

The reference counts a row when its own token, t+i, is an assistant token instead. That leaves
the prompt's last row untrained (it reads the first answer token), and in decoding that row makes
every request's first draft: on the fixture of docs/perf/quality.md every first draft after the
prefill was rejected, for the reference's drafts and ours alike (120 of 462 verifications, mean
acceptance length 3.17); counting the rows the draft is queried at raised it to 3.8. About as
many rows count (per assistant span one row moves from its end, which no decoding reads, to the
row before its start).

loss_i = (sum of soft cross-entropy over counted rows) / normaliser_i, total = sum_i decay^i
loss_i. The trainer's normaliser is the number of assistant tokens at step i over the whole
optimizer step (all micro-batches and ranks), so accumulation and data parallelism give the
gradient of one big batch, and ploss_i is a mean per assistant token. (The reference divides by
every position of its single sequence, prompt and audio included, which makes its ploss depend on
how long the prompt is; the minimiser is the same.) ``acc_i`` = correct rows / assistant tokens
at step i (a row whose target argmax is outside the draft vocabulary counts as wrong, as in the
reference).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .draft import Eagle3Draft, TTTCache, ttt_attention_kernel
from .kernels import DEFAULT_CHUNK_ROWS, HeadGradient, compiled_if, fused_soft_cross_entropy
from .step_weights import StepWeights


def soft_cross_entropy_reference(logits: Tensor, target_logits: Tensor, row_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Eagle3's loss, eager: soft cross-entropy of the draft against the target's distribution over
    the draft vocabulary. logits [N, V] (fp32, with grad), target_logits [N, V] -> (sum of CE over
    rows, each times its ``row_weight`` if given; correct [N]: draft argmax == target argmax).
    ``kernels.fused_soft_cross_entropy`` is its fast twin (lm_head fused in, logits never kept)."""
    target_p = torch.softmax(target_logits.to(logits.dtype), dim=-1)
    rows = -(target_p * torch.log_softmax(logits, dim=-1)).sum(-1)
    loss = (rows if row_weight is None else rows * row_weight.to(rows.dtype)).sum()
    correct = logits.detach().argmax(-1) == target_logits.argmax(-1)
    return loss, correct


@dataclass
class TTTBatch:
    """What the objective needs for one micro-batch, on the training device.

    ``target_logits`` holds the target's logits over the draft vocabulary only for the positions
    that can be a target, row j for position ``needed[1][j]`` of record ``needed[0][j]``, ordered by
    position then record (``targets.needed_rows``; ``target_row[b, p]`` indexes it too, -1
    elsewhere); ``needed_positions`` is a host copy of those positions, from which the objective
    plans its rows without reading the device. See ``targets.target_signals``.
    """

    input_ids: Tensor  # [B, T] int64
    loss_mask: Tensor  # [B, T] bool
    taps: Tensor  # [B, T, 3 * target_hidden]
    target_logits: Tensor  # [N, draft_vocab]
    target_row: Tensor  # [B, T] int64, -1 where no target is kept
    target_in_draft: Tensor  # [B, T] bool: target argmax is in the draft vocabulary (False on padding)
    valid: Tensor  # [B, T] bool: real (not padding) positions
    needed: tuple[Tensor, Tensor]  # [N] int64 each: (record, position) of target_logits' rows
    needed_positions: Tensor  # [N] int64 on the host: needed[1], ascending


def step_token_counts(loss_mask: Tensor, valid: Tensor, steps: int) -> Tensor:
    """Assistant tokens counted at each TTT step (the acc_i denominators): loss_mask[t+1+i] for
    the rows t whose target position t+1+i exists. Works on CPU tensors before the target runs, so normalisers for a whole
    optimizer step are known up front."""
    t = loss_mask.shape[1]
    counts = []
    for i in range(steps):
        n = t - 1 - i
        if n <= 0:
            counts.append(torch.zeros((), dtype=torch.int64))
            continue
        counts.append((loss_mask[:, 1 + i : 1 + i + n] & valid[:, 1 + i : 1 + i + n]).sum().to(torch.int64).cpu())
    return torch.stack(counts)


def shift_left(x: Tensor, by: int) -> Tensor:
    """x[:, by:] padded with zeros at the end (the reference's `padding(left=False)`, `by` times)."""
    if by == 0:
        return x
    pad = torch.zeros_like(x[:, :by])
    return torch.cat([x[:, by:], pad], dim=1)


def _using(weights: StepWeights | None, i: int):
    """Step i's weights when the objective casts them (``weights_dtype``), else the parameters."""
    return weights.use(i) if weights is not None else contextlib.nullcontext()


def head_input_rows(draft: Eagle3Draft, hidden: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """What lm_head reads at the rows a loss counts, in one function so that torch.compile fuses
    the row gather into the final norm, forward and backward (eager, the gather, the norm's five
    passes and their backward took about 3 ms of the 7B draft's step on an H200)."""
    return draft.head_input(hidden[b, t])


class TTTObjective(nn.Module):
    """forward(batch, normalisers) -> (total loss, per-step stats [steps, 3] = loss sum, correct, rows).

    ``normalisers`` [steps]: what each step's loss sum is divided by (for exact gradient
    accumulation, the assistant-token counts of the whole optimizer step divided by the number of
    ranks). ``fused=False`` uses the materialised-logits loss (the reference path); ``compiled``
    fuses the kernels' elementwise work with torch.compile.

    ``weights_dtype`` (bf16/fp16 training over fp32 weights): every floating parameter is cast to it
    once per forward, and every step of the unroll uses that copy (``StepWeights``: one alias per
    step, whose gradients are summed in fp32 in one pass). Left to autocast, a weight is cast again
    at each step inside the compiled layer (autocast's cast cache does not reach into compiled
    code), and each step's weight gradient is cast back and added to the fp32 ``.grad`` on its
    own: on the 7B draft at 4096 tokens that was 17 ms of a 256 ms step on an H200
    (docs/perf/train.md).
    """

    def __init__(
        self,
        draft: Eagle3Draft,
        steps: int,
        decay: float,
        kernel: str = "flash",
        fused: bool = True,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        compiled: bool = False,
        weights_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.draft = draft
        self.steps = steps
        self.decay = decay
        self.kernel = ttt_attention_kernel(kernel, compiled=compiled)
        self.fused = fused
        self.chunk_rows = chunk_rows
        self.compiled = compiled
        self.weights_dtype = weights_dtype

    def forward(self, batch: TTTBatch, normalisers: Tensor) -> tuple[Tensor, Tensor]:
        draft = self.draft
        weights = StepWeights(draft, self.weights_dtype, self.steps, compiled=self.compiled) if self.weights_dtype is not None else None
        b = batch.input_ids.shape[0]
        firsts, start, end = self._rows_plan(batch)
        # Only rows [start, end) are read by some loss: step 0 needs keys on [0, end) (every
        # later query attends to them causally) but queries and outputs only on [start, end), and
        # the later steps run on [start, end) alone. On audio records the prompt and the audio
        # placeholders come first and are never counted, so this skips most of their rows.
        positions = torch.arange(end, device=batch.input_ids.device).expand(b, end)
        cache = TTTCache(self.kernel)
        with _using(weights, 0):
            hidden = draft.project(batch.taps[:, :end])
        acc = torch.promote_types(hidden.dtype, torch.float32)  # fp32 (fp64 in tests)
        total = hidden.new_zeros((), dtype=acc)
        head_grad = HeadGradient(compiled=self.compiled)
        # A row counts where the target's argmax is a draft token: a weight of 1, else 0 (its loss
        # and gradient vanish, and it is never correct). Weights rather than a selection keep every
        # shape known on the host: nothing here waits for the GPU.
        in_draft = batch.target_in_draft[batch.needed].to(acc)
        stats = []
        for i in range(self.steps):
            # Inputs shift left by one more token each step: position t embeds token t+1+i.
            ids = shift_left(batch.input_ids, 1 + i)[:, :end]
            # Step i reads the targets at positions p >= 1 + i from row t = p - 1 - i: the needed
            # rows from firsts[i] on (they are ordered by position).
            k = firsts[i]
            bi, ti = batch.needed[0][k:], batch.needed[1][k:] - (1 + i)
            target, counts = batch.target_logits[k:], in_draft[k:]
            weight = (self.decay**i) / normalisers[i]  # this step's loss factor in the total
            with _using(weights, i):
                # Rope positions advance with the step (the draft's i-th token sits at t+i).
                if i == 0:
                    hidden = draft.step(draft.embed(ids), hidden, positions, cache, query_start=start)
                else:
                    hidden = draft.step(draft.embed(ids[:, start:]), hidden, positions[:, start:] + i, cache)
                x = compiled_if(head_input_rows, self.compiled)(draft, hidden, bi, ti - start)
                if self.fused:
                    loss_sum, correct = fused_soft_cross_entropy(
                        x, draft.lm_head.weight, target, self.chunk_rows, compiled=self.compiled, head_grad=(head_grad, weight), row_weight=counts.float()
                    )
                else:
                    loss_sum, correct = soft_cross_entropy_reference(draft.lm_head(x).to(acc), target, counts)
            total = total + weight * loss_sum.to(acc)
            stats.append(torch.stack([loss_sum.detach().float(), (correct & (counts > 0)).sum().float(), counts.sum().float()]))
        # lm_head's gradient, summed over the steps, straight to the parameter (outside the steps'
        # weights: in its own dtype, with no cast back).
        total = total + head_grad.attach(draft.lm_head.weight)
        return total, torch.stack(stats)

    def _rows_plan(self, batch: TTTBatch) -> tuple[list[int], int, int]:
        """From the host copy of the needed positions: for each step the first needed row it reads
        (step i reads positions p >= 1 + i), and the range [start, end) of rows holding every row
        read (the whole sequence when none is)."""
        positions = batch.needed_positions
        n = positions.numel()
        firsts = [int(torch.searchsorted(positions, 1 + i)) for i in range(self.steps)]
        rows = [int(positions[k]) - 1 - i for i, k in enumerate(firsts) if k < n]
        if not rows:
            return firsts, 0, batch.input_ids.shape[1]
        return firsts, min(rows), int(positions[-1])
