"""The decode loop: the target alone (baseline), or Eagle3 with a chain of N draft tokens.

One speculative iteration, with `pos` target positions cached and token x_pos pending:
  1. chain: the draft proposes d_1..d_N, each step feeding back its own output hidden state;
  2. verify: one target forward over [x_pos, d_1..d_N] gives the target's distribution at every
     draft position plus one more; greedy or rejection-rule verification accepts a prefix d_1..d_a
     and adds one target token (the bonus, or the correction at the first rejection);
  3. roll back: the target cache keeps positions up to pos+a; the draft cache drops its chain
     positions and re-reads positions pos..pos+a from the target's hidden states (catch-up).
Counters follow vLLM: each verification adds 1 draft, N draft tokens, a accepted tokens, and 1 at
positions 0..a-1; the token after prefill comes from the target alone and counts as no draft.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .draft import DraftRunner
from .sampling import Verification, probabilities, sample, verify_greedy, verify_sampling
from .target import TargetRunner


@dataclass
class GenerationParams:
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop_token_ids: list[int] = field(default_factory=list)
    seed: int | None = None
    speculative: bool = False
    max_model_len: int | None = None
    """Longest prompt + output the caller allows (the worker's ``maxModelLen``); None: no limit
    beyond ``max_tokens``."""


@dataclass
class SpecCounters:
    num_spec_tokens: int
    num_drafts: int = 0
    num_draft_tokens: int = 0
    num_accepted_tokens: int = 0
    accepted_per_position: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.accepted_per_position = self.accepted_per_position or [0] * self.num_spec_tokens

    def record(self, accepted: int) -> None:
        self.num_drafts += 1
        self.num_draft_tokens += self.num_spec_tokens
        self.num_accepted_tokens += accepted
        for i in range(accepted):
            self.accepted_per_position[i] += 1

    def to_json(self) -> dict:
        return {
            "numDrafts": self.num_drafts,
            "numDraftTokens": self.num_draft_tokens,
            "numAcceptedTokens": self.num_accepted_tokens,
            "acceptedPerPosition": list(self.accepted_per_position),
        }


@dataclass
class GenerationOutput:
    output_ids: list[int]
    finish_reason: str
    prompt_tokens: int
    prefill_seconds: float
    seconds: float
    ttft_seconds: float
    target_steps: int
    counters: SpecCounters | None

    def to_json(self) -> dict:
        out = {
            "outputIds": self.output_ids,
            "finishReason": self.finish_reason,
            "promptTokens": self.prompt_tokens,
            "prefillSeconds": self.prefill_seconds,
            "seconds": self.seconds,
            "ttftSeconds": self.ttft_seconds,
            "targetSteps": self.target_steps,
        }
        if self.counters is not None:
            out["spec"] = self.counters.to_json()
        return out


class Generator:
    def __init__(self, target: TargetRunner, draft: DraftRunner | None, num_spec_tokens: int) -> None:
        self.target = target
        self.draft = draft
        self.num_spec_tokens = num_spec_tokens
        if draft is not None:
            if draft.target_hidden_size != target.hidden_size:
                raise ValueError(f"draft expects target hidden size {draft.target_hidden_size}, target has {target.hidden_size}")
            if draft.vocab_size != target.vocab_size:
                raise ValueError(f"draft vocab_size {draft.vocab_size} differs from the target's {target.vocab_size}")
            # Target id of every draft-vocabulary entry, to place draft probabilities in the full vocabulary.
            self._draft_ids = draft.draft_to_target(torch.arange(draft.draft_vocab_size, device=draft.d2t.device))

    def _sync(self) -> None:
        if self.target.device.type == "cuda":
            torch.cuda.synchronize(self.target.device)

    def generate(
        self,
        prompt_ids: list[int],
        audio: list[np.ndarray] | None,
        params: GenerationParams,
        on_tokens: Callable[[list[int]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> GenerationOutput:
        if params.speculative and self.draft is None:
            raise ValueError("speculative decoding needs a draft model")
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.target.device).manual_seed(params.seed)
        greedy = params.temperature == 0
        stops = set(params.stop_token_ids)
        start = time.perf_counter()
        target = self.target
        target.reset()
        step = target.forward(prompt_ids, audio, logits_for="last", want_taps=params.speculative)
        target_steps = 1
        first = self._pick(step.logits[-1], greedy, params, generator)
        self._sync()
        ttft = time.perf_counter() - start
        output: list[int] = []
        finish = self._emit(output, [first], stops, params, on_tokens)
        counters = SpecCounters(self.num_spec_tokens) if params.speculative else None
        prefill = ttft
        pos = len(prompt_ids)  # target positions cached; output[-1] is pending
        if params.speculative and finish is None:
            draft = self.draft
            draft.reset()
            hidden = draft.fuse(step.taps)
            ids = torch.as_tensor(prompt_ids[1:] + [first], device=target.device)
            out, logits = draft.step(ids, hidden, start=0)
            self._sync()
            prefill = time.perf_counter() - start
        while finish is None:
            if should_stop is not None and should_stop():
                finish = "cancelled"
                break
            room = params.max_model_len
            if room is not None and pos + 1 + (self.num_spec_tokens if params.speculative else 0) > room:
                finish = "length"
                break
            pending = output[-1]
            if not params.speculative:
                step = target.forward([pending], want_taps=False)
                target_steps += 1
                pos += 1
                new = [self._pick(step.logits[-1], greedy, params, generator)]
            else:
                drafts, draft_probs = self._chain(out[-1:], logits[-1], pos, greedy, params, generator)
                step = target.forward([pending] + drafts, want_taps=True)
                target_steps += 1
                verdict = self._verify(drafts, draft_probs, step.logits, greedy, params, generator)
                a = verdict.accepted
                counters.record(a)
                target.crop(pos + 1 + a)
                draft = self.draft
                draft.cache.crop(pos)
                hidden = draft.fuse(step.taps[: a + 1])
                out, logits = draft.step(torch.as_tensor(verdict.tokens, device=target.device), hidden, start=pos)
                pos += a + 1
                new = verdict.tokens
            finish = self._emit(output, new, stops, params, on_tokens)
        self._sync()
        return GenerationOutput(
            output_ids=output,
            finish_reason=finish,
            prompt_tokens=len(prompt_ids),
            prefill_seconds=prefill,
            seconds=time.perf_counter() - start,
            ttft_seconds=ttft,
            target_steps=target_steps,
            counters=counters,
        )

    def _pick(self, logits: torch.Tensor, greedy: bool, params: GenerationParams, generator) -> int:
        if greedy:
            return int(logits.argmax().item())
        return sample(probabilities(logits, params.temperature, params.top_p), generator)

    def _chain(self, hidden, logits, pos, greedy, params, generator) -> tuple[list[int], torch.Tensor | None]:
        """N draft tokens (target ids) and, when sampling, their distributions over the target vocabulary."""
        draft = self.draft
        tokens: list[int] = []
        dists: list[torch.Tensor] = []
        for k in range(self.num_spec_tokens):
            if k > 0:
                hidden, step_logits = draft.step(torch.as_tensor([tokens[-1]], device=hidden.device), hidden, start=pos + k - 1)
                logits = step_logits[-1]
                hidden = hidden[-1:]
            if greedy:
                tokens.append(int(self._draft_ids[logits.argmax()].item()))
            else:
                q_draft = probabilities(logits, params.temperature, params.top_p)
                tokens.append(int(self._draft_ids[sample(q_draft, generator)].item()))
                q = torch.zeros(self.target.vocab_size, device=q_draft.device, dtype=q_draft.dtype)
                dists.append(q.index_copy_(0, self._draft_ids, q_draft))
        return tokens, (torch.stack(dists) if dists else None)

    def _verify(self, drafts, draft_probs, target_logits, greedy, params, generator) -> Verification:
        if greedy:
            return verify_greedy(drafts, target_logits)
        p = probabilities(target_logits, params.temperature, params.top_p)
        return verify_sampling(drafts, draft_probs, p, generator)

    @staticmethod
    def _emit(output: list[int], new: list[int], stops: set[int], params: GenerationParams, on_tokens) -> str | None:
        """Appends tokens up to a stop token or max_tokens; returns the finish reason once finished."""
        finish = None
        kept: list[int] = []
        for t in new:
            kept.append(t)
            if t in stops:
                finish = "stop"
                break
            if len(output) + len(kept) >= params.max_tokens:
                finish = "length"
                break
        output.extend(kept)
        if on_tokens is not None and kept:
            on_tokens(kept)
        return finish
