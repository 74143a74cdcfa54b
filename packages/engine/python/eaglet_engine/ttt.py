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

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .draft import Eagle3Draft, TTTCache, ttt_attention_kernel
from .kernels import DEFAULT_CHUNK_ROWS, HeadGradient, compiled_if, fused_soft_cross_entropy


def soft_cross_entropy_reference(logits: Tensor, target_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Eagle3's loss, eager: soft cross-entropy of the draft against the target's distribution over
    the draft vocabulary. logits [N, V] (fp32, with grad), target_logits [N, V] -> (sum of CE over
    rows, correct [N]: draft argmax == target argmax). ``kernels.fused_soft_cross_entropy`` is its
    fast twin (lm_head fused in, logits never kept); every row passed in counts."""
    target_p = torch.softmax(target_logits.to(logits.dtype), dim=-1)
    loss = -(target_p * torch.log_softmax(logits, dim=-1)).sum()
    correct = logits.detach().argmax(-1) == target_logits.argmax(-1)
    return loss, correct


@dataclass
class TTTBatch:
    """What the objective needs for one micro-batch, on the training device.

    ``target_logits`` holds the target's logits over the draft vocabulary only for the positions
    that can be a target (``target_row[b, p]`` indexes it, -1 elsewhere); see
    ``targets.target_signals``.
    """

    input_ids: Tensor  # [B, T] int64
    loss_mask: Tensor  # [B, T] bool
    taps: Tensor  # [B, T, 3 * target_hidden]
    target_logits: Tensor  # [N, draft_vocab]
    target_row: Tensor  # [B, T] int64, -1 where no target is kept
    target_in_draft: Tensor  # [B, T] bool: target argmax is in the draft vocabulary (False on padding)
    valid: Tensor  # [B, T] bool: real (not padding) positions


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
    once per forward, and every step of the unroll uses those copies. Left to autocast, a weight is
    cast again at each step inside the compiled layer (autocast's cast cache does not reach into
    compiled code), and each step's weight gradient is cast back and added to the fp32 ``.grad``
    on its own: on the 7B draft at 4096 tokens that was 17 ms of a 256 ms step on an H200
    (docs/perf/train.md). The steps' weight gradients are then summed in that dtype before the one
    cast back (the GEMMs produce them in it anyway).
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

    def forward(self, batch: TTTBatch, normalisers: Tensor, *, cast: bool = True) -> tuple[Tensor, Tensor]:
        """``cast``: cast the weights to ``weights_dtype`` first (the call that runs the unroll on
        the cast copies passes False)."""
        if cast and self.weights_dtype is not None:
            low = {n: p.to(self.weights_dtype) for n, p in self.named_parameters() if p.is_floating_point() and p.dtype != self.weights_dtype}
            if low:
                return torch.func.functional_call(self, low, (batch, normalisers), {"cast": False})
        draft = self.draft
        b = batch.input_ids.shape[0]
        rows_b, rows_t, start, end = self._counted_rows(batch)
        # Only rows [start, end) are read by some loss: step 0 needs keys on [0, end) (every
        # later query attends to them causally) but queries and outputs only on [start, end), and
        # the later steps run on [start, end) alone. On audio records the prompt and the audio
        # placeholders come first and are never counted, so this skips most of their rows.
        positions = torch.arange(end, device=batch.input_ids.device).expand(b, end)
        cache = TTTCache(self.kernel)
        hidden = draft.project(batch.taps[:, :end])
        acc = torch.promote_types(hidden.dtype, torch.float32)  # fp32 (fp64 in tests)
        total = hidden.new_zeros((), dtype=acc)
        head_grad = HeadGradient()
        stats = []
        for i in range(self.steps):
            # Inputs shift left by one more token each step: position t embeds token t+1+i.
            ids = shift_left(batch.input_ids, 1 + i)[:, :end]
            # Rope positions advance with the step (the draft's i-th token sits at t+i).
            if i == 0:
                hidden = draft.step(draft.embed(ids), hidden, positions, cache, query_start=start)
            else:
                hidden = draft.step(draft.embed(ids[:, start:]), hidden, positions[:, start:] + i, cache)
            bi, ti = rows_b[i], rows_t[i]
            rows = batch.target_row[bi, ti + 1 + i]
            x = compiled_if(head_input_rows, self.compiled)(draft, hidden, bi, ti - start)
            target = batch.target_logits[rows]
            weight = (self.decay**i) / normalisers[i]  # this step's loss factor in the total
            if self.fused:
                loss_sum, correct = fused_soft_cross_entropy(
                    x, draft.lm_head.weight, target, self.chunk_rows, compiled=self.compiled, head_grad=(head_grad, weight)
                )
            else:
                loss_sum, correct = soft_cross_entropy_reference(draft.lm_head(x).to(acc), target)
            total = total + weight * loss_sum.to(acc)
            stats.append(torch.stack([loss_sum.detach().float(), correct.sum().float(), torch.full((), float(bi.numel()), device=hidden.device)]))
        total = total + head_grad.attach(draft.lm_head.weight)  # lm_head's gradient, summed over the steps
        return total, torch.stack(stats)

    def _counted_rows(self, batch: TTTBatch) -> tuple[list[Tensor], list[Tensor], int, int]:
        """(batch, position) indices of the rows each step counts, and the range [start, end) of
        positions holding them all (the whole sequence when none counts), found for the whole
        unroll at once (one device synchronisation instead of one per step)."""
        b, t = batch.input_ids.shape
        counted = torch.zeros(self.steps, b, t, dtype=torch.bool, device=batch.input_ids.device)
        for i in range(self.steps):
            n = t - 1 - i  # positions whose target (t+1+i) exists
            if n > 0:
                counted[i, :, :n] = batch.loss_mask[:, 1 + i : 1 + i + n] & batch.target_in_draft[:, 1 + i : 1 + i + n]
        si, bi, ti = counted.nonzero(as_tuple=True)
        sizes = torch.bincount(si, minlength=self.steps)
        if ti.numel() == 0:
            first, last = 0, t - 1
            sizes_list = sizes.tolist()
        else:
            *sizes_list, first, last = torch.cat([sizes, ti.min()[None], ti.max()[None]]).tolist()
        return list(bi.split(sizes_list)), list(ti.split(sizes_list)), first, last + 1
