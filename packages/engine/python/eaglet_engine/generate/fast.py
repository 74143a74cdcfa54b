"""The fast decode path: static KV caches, CUDA graphs, sampling and verification on the GPU.

`FastGenerator.generate` has the eager `Generator`'s interface and output, and the same loop (see
`speculative.py`), rearranged so each step is one fixed sequence of kernels on buffers allocated at
start-up, captured once per (step kind, greedy or sampling, KV bucket) as a CUDA graph:

  decode step: the target on the pending token, its next token picked on the device;
  speculative step: the draft chain of N tokens, the target's verification of N+1 tokens, the
    acceptance (greedy or the rejection rule) and the draft's catch-up, all on the device.

The catch-up re-reads all N+1 verified positions, not only the accepted ones, so its shape never
changes; rows after the accepted ones are ignored, and their keys stay masked (attention sees a
position only once a later step has written it again). Positions, the pending token and the
draft's last state live in device tensors that the steps update themselves, so the host only
picks a graph (by the KV length it needs), replays it and reads [accepted, tokens] back: one host
sync per verification. Without graphs (CPU, tests) the same step functions run eagerly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Callable, Literal

import numpy as np
import torch
from torch import Tensor

from ..errors import EngineError
from ..targets import TargetAdapter
from .device_sampling import pick, probabilities, verify_greedy, verify_rejection
from .graphs import GraphBank
from .speculative import GenerationOutput, GenerationParams, Generator, SpecCounters
from .static_cache import bucket_for, kv_buckets
from .static_draft import StaticDraft
from .static_target import StaticTarget

StepKind = Literal["decode", "spec"]


class FastGenerator:
    def __init__(self, adapter, target: StaticTarget, draft: StaticDraft | None, num_spec_tokens: int, max_model_len: int, graphs: bool) -> None:
        self.adapter = adapter
        self.target = target
        self.draft = draft
        self.num_spec_tokens = num_spec_tokens
        self.max_model_len = max_model_len
        self.buckets = kv_buckets(max_model_len)
        if self.buckets[-1] > target.capacity or (draft is not None and self.buckets[-1] > draft.cache.capacity):
            raise ValueError(f"maxModelLen {max_model_len} exceeds the static caches' capacity {target.capacity}")
        if draft is not None:
            if draft.target_hidden_size != target.hidden_size:
                raise ValueError(f"draft expects target hidden size {draft.target_hidden_size}, target has {target.hidden_size}")
            if draft.vocab_size != target.lm_head_weight.shape[0]:
                raise ValueError(f"draft vocab_size {draft.vocab_size} differs from the target's {target.lm_head_weight.shape[0]}")
        self.device = target.device
        n = num_spec_tokens
        with torch.inference_mode():
            zeros = lambda *shape, dtype=torch.long: torch.zeros(*shape, dtype=dtype, device=self.device)  # noqa: E731
            self.pos = zeros(1)  # target positions cached = the pending token's position
            self.pending = zeros(1)  # the last emitted token, not yet in the target's cache
            self.result = zeros(n + 2)  # [accepted, emitted tokens...] of the last step
            self.u = zeros(2 * n + 1, dtype=torch.float32)  # uniforms of the next step
            self.temperature = torch.ones((), device=self.device)
            self.top_p = torch.ones((), device=self.device)
            self.offsets = torch.arange(n + 1, device=self.device)
            if draft is not None:
                self.d_hidden = zeros(1, draft.hidden_size, dtype=draft.dtype)  # the draft's last output state
                self.d_logits = zeros(1, draft.draft_vocab_size, dtype=torch.float32)  # ... and its logits
        self.graphs = GraphBank(self.device) if graphs else None
        if graphs:
            self.capture()

    @property
    def path(self) -> str:
        """'graphs' (captured CUDA graphs) or 'static' (the same steps run eagerly)."""
        return "graphs" if self.graphs is not None else "static"

    @property
    def capture_seconds(self) -> float:
        return self.graphs.seconds if self.graphs is not None else 0.0

    # -- the steps (device work only: every tensor they touch exists before capture) -----------

    def decode_step(self, bucket: int, greedy: bool) -> None:
        h, _ = self.target.forward(self.target.embed(self.pending), self.pos, bucket)
        token = pick(self.target.logits(h), greedy, self.temperature, self.top_p, self.u[:1])
        self.pending.copy_(token)
        self.pos.add_(1)
        self.result[1:2].copy_(token)

    def chain(self, bucket: int, greedy: bool) -> tuple[Tensor, Tensor | None]:
        """N draft tokens (target ids) and, when sampling, their distributions [N, V]."""
        draft = self.draft
        hidden, logits = self.d_hidden, self.d_logits
        tokens, dists = [], []
        for k in range(self.num_spec_tokens):
            if k > 0:
                hidden, logits = draft.step(tokens[-1], hidden, self.pos + (k - 1), bucket)
            token, q = draft.propose(logits, self.pos + (k + 1), greedy, self.temperature, self.top_p, self.u[k : k + 1])
            tokens.append(token)
            dists.append(q)
        return torch.cat(tokens), (None if greedy else torch.cat(dists))

    def verify(self, drafts: Tensor, draft_probs: Tensor | None, bucket: int, greedy: bool) -> tuple[Tensor, Tensor, Tensor]:
        """The target over [pending, drafts]: (accepted [1], emitted [N+1], taps [N+1, 3H])."""
        n = self.num_spec_tokens
        h, taps = self.target.forward(self.target.embed(torch.cat([self.pending, drafts])), self.pos + self.offsets, bucket, want_taps=True)
        logits = self.target.logits(h)
        if greedy:
            accepted, emitted = verify_greedy(drafts, logits)
        else:
            p = probabilities(logits, self.temperature, self.top_p)
            accepted, emitted = verify_rejection(drafts, draft_probs, p, self.u[n : 2 * n], self.u[2 * n :])
        return accepted, emitted, taps

    def catch_up(self, accepted: Tensor, emitted: Tensor, taps: Tensor, bucket: int) -> None:
        """The draft re-reads the verified positions; state moves past the accepted tokens."""
        out, logits = self.draft.step(emitted, self.draft.fuse(taps), self.pos + self.offsets, bucket)
        self.d_hidden.copy_(out.index_select(0, accepted))
        self.d_logits.copy_(logits.index_select(0, accepted))
        self.pending.copy_(emitted.index_select(0, accepted))
        self.pos.add_(accepted + 1)
        self.result[:1].copy_(accepted)
        self.result[1:].copy_(emitted)

    def spec_step(self, bucket: int, greedy: bool) -> None:
        drafts, q = self.chain(bucket, greedy)
        accepted, emitted, taps = self.verify(drafts, q, bucket, greedy)
        self.catch_up(accepted, emitted, taps, bucket)

    def _step_fn(self, kind: StepKind, greedy: bool, bucket: int) -> Callable[[], None]:
        step = self.spec_step if kind == "spec" else self.decode_step
        return lambda: step(bucket, greedy)

    # -- capture and replay ---------------------------------------------------------------------

    def capture(self, kinds: tuple[StepKind, ...] | None = None, modes: tuple[bool, ...] = (True, False), buckets: list[int] | None = None) -> None:
        """Captures each (kind, greedy, bucket) step once; `modes` lists greedy (True) / sampling."""
        kinds = kinds or (("decode", "spec") if self.draft is not None else ("decode",))
        with torch.inference_mode():
            for bucket in buckets or self.buckets:
                for greedy in modes:
                    for kind in kinds:
                        if (kind, greedy, bucket) not in self.graphs:
                            self.pos.zero_()
                            self.graphs.capture((kind, greedy, bucket), self._step_fn(kind, greedy, bucket))
            self.pos.zero_()

    def run_step(self, kind: StepKind, greedy: bool, bucket: int) -> None:
        if self.graphs is not None:
            self.graphs.replay((kind, greedy, bucket))
        else:
            with torch.inference_mode():
                self._step_fn(kind, greedy, bucket)()

    # -- generation -----------------------------------------------------------------------------

    def _draw(self, generator: torch.Generator | None) -> None:
        torch.rand(self.u.shape, generator=generator, device=self.device, out=self.u)

    @torch.inference_mode()
    def _prefill(self, prompt_ids: list[int], audio: list[np.ndarray] | None, greedy: bool, speculative: bool, generator) -> int:
        ids = torch.as_tensor(prompt_ids, dtype=torch.long, device=self.device)
        media = self.adapter.media_inputs(audio, self.device) if audio else {}
        embeds = self.adapter.input_embeddings(ids[None], media)[0]
        positions = torch.arange(len(prompt_ids), device=self.device)
        h, taps = self.target.forward(embeds, positions, None, want_taps=speculative)
        if not greedy:
            self._draw(generator)
        token = pick(self.target.logits(h[-1:]), greedy, self.temperature, self.top_p, self.u[:1])
        self.pending.copy_(token)
        self.pos.fill_(len(prompt_ids))
        first = int(token.item())
        if speculative:
            out, logits = self.draft.step(torch.cat([ids[1:], token]), self.draft.fuse(taps), positions, None)
            self.d_hidden.copy_(out[-1:])
            self.d_logits.copy_(logits[-1:])
        return first

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.inference_mode()
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
        limit = self.max_model_len if params.max_model_len is None else min(params.max_model_len, self.max_model_len)
        if len(prompt_ids) >= limit:
            raise EngineError(
                f"the prompt has {len(prompt_ids)} tokens; this engine decodes at most {limit} (maxModelLen, the KV length its caches and CUDA graphs were built for)",
                code="EAGLET_PROMPT_TOO_LONG",
            )
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(params.seed)
        greedy = params.temperature == 0
        if not greedy:
            self.temperature.fill_(params.temperature)
            self.top_p.fill_(params.top_p)
        speculative = params.speculative
        n = self.num_spec_tokens if speculative else 0
        kind: StepKind = "spec" if speculative else "decode"
        stops = set(params.stop_token_ids)
        start = time.perf_counter()
        first = self._prefill(prompt_ids, audio, greedy, speculative, generator)
        ttft = time.perf_counter() - start
        output: list[int] = []
        finish = Generator._emit(output, [first], stops, params, on_tokens)
        counters = SpecCounters(self.num_spec_tokens) if speculative else None
        self._sync()
        prefill = time.perf_counter() - start
        pos = len(prompt_ids)  # target positions cached; output[-1] is pending
        target_steps = 1
        while finish is None:
            if should_stop is not None and should_stop():
                finish = "cancelled"
                break
            if pos + 1 + n > limit:
                finish = "length"
                break
            if not greedy:
                self._draw(generator)
            self.run_step(kind, greedy, bucket_for(self.buckets, pos + 1 + n))
            values = self.result.tolist()  # the step's one host sync
            target_steps += 1
            if speculative:
                accepted = values[0]
                counters.record(accepted)
                new = values[1 : accepted + 2]
            else:
                new = values[1:2]
            pos += len(new)
            finish = Generator._emit(output, new, stops, params, on_tokens)
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


def build_fast_generator(
    adapter: TargetAdapter, aux_layer_ids: Sequence[int], draft_model, num_spec_tokens: int, max_model_len: int, *, graphs: bool, compile: bool
) -> FastGenerator:
    """A FastGenerator over the target plugin's adapter (`decoder`, `lm_head_weight()`,
    `media_inputs`, `input_embeddings`, optional `fuse_media`), the aux layers the draft reads, and
    an optional Eagle3Draft. Raises FastPathUnsupported for a target whose layers the fast path
    does not compute."""
    capacity = kv_buckets(max_model_len)[-1]
    target = StaticTarget(adapter.decoder, adapter.lm_head_weight(), aux_layer_ids, capacity, compile=compile)
    fused = target.fused.configs if target.fused is not None else None  # the draft runs the same kernels with the shapes tuned for them
    draft = StaticDraft(draft_model, capacity, compile=compile, fused_configs=fused) if draft_model is not None else None
    if compile and hasattr(adapter, "fuse_media"):
        adapter.fuse_media()  # the prefill's media encoder; compiled on the first request with media
    return FastGenerator(adapter, target, draft, num_spec_tokens, max_model_len, graphs=graphs)
