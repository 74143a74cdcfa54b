"""The Eagle3 trainer: the frozen target runs inside the training job (online), or its outputs are
read from captures (offline, offline.py), and the draft learns from them with the training-time test.

``Trainer`` holds everything a run needs and has one method per stage, so a subclass can replace a
stage (``target_step`` for another target signal, ``train_step`` for another update rule) without
copying the loop. ``state_dict``/``load_state_dict`` (trainer_state.py) cover what a checkpoint
must restore for an exact resume; the metric sums are metrics.py's, the learning-rate schedule
schedule.py's. Rank 0 alone writes files; the first process of each node emits events.

Why one file of ~550 lines: the stages share the run's state (model, optimiser, data position,
schedule, metrics) and a subclass overrides them one by one; split across modules, each stage would
reach back into the others' attributes. What is separable already lives apart (the objective in
ttt.py, checkpoints in trainer_state.py/checkpoint.py, data in data.py, offline targets in offline.py).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import checkpoint as ckpt
from . import distributed as dist_env
from . import events, fp8
from .baseline import BigramTable
from .capture import STORED_DTYPE
from .config import TrainConfig
from .data import BatchPlanner, DataPosition, PreparedDataset, collate_masks, plan_epoch, prefetch
from .draft import DraftConfig, Eagle3Draft, build_draft
from .errors import ConfigError, EngineError
from .export import aux_layer_ids_of, load_draft, save_draft
from .metrics import MetricsLog, StepStats
from .offline import CapturedDataset, CapturedTarget, open_captures
from .schedule import Schedule
from .signals import StopRequested
from .targets import TargetAdapter, TargetBatch, TargetOutput, load_adapter, needed_rows, run_target, stored_dtype, target_signals
from .trainer_state import CheckpointState, draft_key
from .ttt import TTTBatch, TTTObjective, step_token_counts
from .vocab import load_vocab

log = logging.getLogger(__name__)


def _dtype(precision: str, device: torch.device) -> torch.dtype:
    return torch.bfloat16 if precision == "bf16" else torch.float32


class Trainer(CheckpointState):
    def __init__(self, cfg: TrainConfig, stop: StopRequested | None = None, env: dist_env.DistEnv | None = None) -> None:
        self.cfg = cfg
        self.stop = stop if stop is not None else StopRequested()  # (falsy until a stop is requested)
        self.env = env if env is not None else dist_env.init(cfg.device, cfg.dist_timeout_seconds)
        self.output = Path(cfg.output_dir)
        self.step = 0
        self.position = DataPosition()
        self.metrics_log = MetricsLog(self.output / "metrics.jsonl")
        self.window: StepStats | None = None  # train metrics since the last log line
        self._last_progress = 0.0
        self._shown: dict[str, float] = {}  # the last train metrics row, for the progress line

    # ------------------------------------------------------------------------------------------
    # build
    # ------------------------------------------------------------------------------------------

    def build(self) -> Trainer:
        cfg, env = self.cfg, self.env
        if cfg.resume is False and ckpt.holds_run(self.output):
            # The TS side refuses this first (claimTrainOutput); a config written by hand meets it here.
            raise EngineError(
                f"outputDir {self.output} holds an earlier run: a new one would mix its metrics and checkpoints with it",
                code="EAGLET_OUTPUT_EXISTS",
                hint="continue it with resume: true, or train into an empty folder (eaglet train --overwrite deletes it first)",
            )
        torch.manual_seed(cfg.seed)
        self.amp_dtype = _dtype(cfg.precision, env.device)
        self.vocab = load_vocab(cfg.vocab)
        self.captures = open_captures(cfg)  # {} unless the data folders are captures (offline training)
        self.target = self.build_target()
        if cfg.target_fp8 and not self.captures:
            self.target_to_fp8()
        self.draft_config = self.check_draft_config()
        self.draft = self.build_draft()
        if self.fusing:
            self.fuse()
        # One cast of the weights per micro-batch (see TTTObjective); FSDP2 manages its own
        # parameters' storage, so under it autocast casts them as before.
        weights_dtype = self.amp_dtype if self.amp_dtype != torch.float32 and not (env.distributed and cfg.parallel == "fsdp") else None
        self.objective = TTTObjective(
            self.draft, steps=cfg.ttt.steps, decay=cfg.ttt.loss_decay, kernel=self.ttt_kernel(), compiled=self.fusing, weights_dtype=weights_dtype
        )
        self.model = dist_env.wrap(self.objective, env, cfg.parallel)
        self.optimizer = self.build_optimizer()
        self.train_data = self.build_dataset(cfg.train_data)
        self.eval_data = self.build_dataset(cfg.eval_data) if cfg.eval_data else None
        # The trivial baseline reported next to acc_0 on the eval split.
        self.bigram = BigramTable.from_dataset(self.train_data, self.vocab.vocab_size).to(env.device) if self.eval_data is not None else None
        b = cfg.batching
        self.planner = BatchPlanner(self.train_data, max_tokens=b.max_tokens, max_records=b.max_records, grad_accumulation=b.grad_accumulation, world_size=env.world_size, rank=env.rank, seed=cfg.seed)
        steps_per_epoch = self.planner.steps_in_epoch(0)
        if steps_per_epoch == 0:
            raise ConfigError(
                f"the training data makes {len(self.planner.plan(0))} micro-batches, fewer than one optimizer step needs "
                f"({self.planner.micro_batches_per_step} = {env.world_size} ranks x {b.grad_accumulation} accumulation)"
            )
        self.total_steps = steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        s = cfg.schedule
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, Schedule(s.kind, s.warmup_steps, self.total_steps, s.min_lr_ratio))
        resume_from = ckpt.find_checkpoint(self.output, cfg.resume)
        if resume_from is not None:
            self.restore(resume_from)
        elif cfg.resume is not False and cfg.resume is not True:
            raise EngineError(f"no checkpoint at {cfg.resume}", code="EAGLET_CHECKPOINT_INVALID")
        elif cfg.resume is True and env.is_main:
            self.metrics_log.truncate(0)  # resume found no checkpoint: a run killed before its first starts over
        self._log_setup(steps_per_epoch, resume_from)
        return self

    @property
    def fusing(self) -> bool:
        """torch.compile's fusion of elementwise work: on GPUs unless the config says off."""
        mode = self.cfg.compile
        return mode == "on" or (mode == "auto" and self.env.device.type == "cuda")

    def fuse(self) -> None:
        """Compiles the target's layers (when its adapter offers ``fuse``) and the draft's layer
        around its attention kernel; the objective's kernels are told by ``compiled``."""
        # The data thread runs compiled code too (the audio encoder, a batch ahead). While one
        # thread compiles, torch.fx's tracing flag is set for the whole process, and by default
        # a compiled function called from another thread then raises ("Detected that you are
        # using FX to symbolically trace a dynamo-optimized function"): on an H200 run the encoder
        # fell back to eager for good that way. Off, such a call runs its function eagerly once.
        torch._dynamo.config.error_on_nested_fx_trace = False
        if hasattr(self.target, "fuse"):
            self.target.fuse()
        self.draft.fuse()
        events.log("info", "fusing elementwise work with torch.compile (the first steps compile; set compile: 'off' to skip)")

    def build_target(self) -> TargetAdapter | CapturedTarget:
        target = self.cfg.target
        if self.captures:
            adapter = CapturedTarget.open(list(self.captures.values()), target, device=self.env.device, dtype=self.amp_dtype)
            events.log("info", f"training offline from {len(self.captures)} capture folder(s): the target's decoder is not loaded")
            if self.cfg.target_fp8:
                events.log("warn", "targetFp8 has no effect offline: the captures hold the states of the target as it was captured")
        else:
            events.progress("load-target", 0, 1, "model", target.model)
            adapter = load_adapter(target, device=self.env.device, dtype=self.amp_dtype)
            events.progress("load-target", 1, 1, "model")
        if adapter.info.vocab_size != self.vocab.vocab_size:
            raise EngineError(
                f"the vocab mapping {self.cfg.vocab} covers {self.vocab.vocab_size} target ids, the target's vocabulary has {adapter.info.vocab_size}",
                code="EAGLET_VOCAB_INVALID",
                hint="build the mapping for this target with `eaglet data vocab`",
            )
        return adapter

    def target_to_fp8(self) -> None:
        """targetFp8: the target decoder's linears multiply in FP8 from here on (before ``fuse``,
        so the compiled layers hold the FP8 products)."""
        fp8.check_fp8_device(self.env.device, self.amp_dtype)
        n = fp8.to_fp8(self.target.layers)
        events.log("info", f"targetFp8: {n} linear layers of the target's decoder multiply in FP8 e4m3 (row-wise scales); the draft trains on those states")

    def check_draft_config(self) -> DraftConfig:
        """The draft config as `eaglet train` resolved it (nothing is merged here), checked against
        the vocabulary mapping and the target: a mismatch names both sides."""
        try:
            draft = DraftConfig.from_dict(self.cfg.draft_config)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"draftConfig: {e}") from e
        info, vocab = self.target.info, self.vocab
        for what, ours, theirs, source in (
            ("vocab_size", draft.vocab_size, vocab.vocab_size, f"the vocab mapping {self.cfg.vocab}"),
            ("draft_vocab_size", draft.draft_vocab_size, vocab.draft_vocab_size, f"the vocab mapping {self.cfg.vocab}"),
            ("target_hidden_size", draft.target_hidden_size or draft.hidden_size, info.hidden_size, f"the target {self.cfg.target.model}"),
            ("eagle_aux_hidden_state_layer_ids", aux_layer_ids_of(draft), self.cfg.target.aux_layer_ids, "the target block's auxLayerIds"),
        ):
            if ours != theirs:
                raise ConfigError(f"draftConfig.{what} is {_show(ours)} but {source} has {_show(theirs)}", hint="let `eaglet train` resolve the draft config")
        return draft

    def build_draft(self) -> Eagle3Draft:
        cfg, env = self.cfg, self.env
        if cfg.warm_start:
            draft = load_draft(cfg.warm_start, device=env.device, dtype=torch.float32)
            if not self.vocab.same_as(draft.d2t, draft.t2d):
                raise EngineError(
                    f"warmStart {cfg.warm_start} was trained with another draft vocabulary mapping than {cfg.vocab}",
                    code="EAGLET_VOCAB_MISMATCH",
                    hint="a warm start must keep its mapping: pass the vocab file it was trained with",
                )
            if draft.config != self.draft_config:
                raise EngineError(f"warmStart {cfg.warm_start} has another architecture than the configured draft: {draft.config} vs {self.draft_config}", code="EAGLET_DRAFT_INVALID")
        else:
            draft = build_draft(self.draft_config, seed=cfg.seed, device=env.device)
            draft.set_vocab(self.vocab.d2t, self.vocab.t2d)
        draft.set_embedding(self.target.embedding_weight())
        return draft

    def build_optimizer(self) -> torch.optim.Optimizer:
        o = self.cfg.optimizer
        params = [p for p in self.model.parameters() if p.requires_grad]
        fused = self.env.device.type == "cuda"
        return torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), eps=o.eps, weight_decay=o.weight_decay, fused=fused)

    def build_dataset(self, folders: tuple[str, ...]) -> PreparedDataset:
        cfg = self.cfg
        options = dict(max_length=cfg.max_length, target=cfg.target.id, chat_template=cfg.chat_template, audio_token_id=self.target.info.audio_token_id)
        data = CapturedDataset([self.captures[f] for f in folders], **options) if self.captures else PreparedDataset(folders, **options)
        r = data.report
        if r.truncated or r.skipped_too_long or r.skipped_no_loss:
            events.log(
                "warn",
                f"{', '.join(folders)}: {r.kept} of {r.records} records used; {r.truncated} cut at maxLength {cfg.max_length}, "
                f"{len(r.skipped_too_long)} skipped (longer than maxLength with audio after the cut), "
                f"{len(r.skipped_no_loss)} skipped (no assistant tokens)",
            )
        return data

    def ttt_kernel(self) -> str:
        """The TTT attention kernel: the configured one, except that fp32 on CUDA runs the eager
        reference, since PyTorch's CUDA flash attention (the flash kernel's core) takes only 16-bit
        inputs. Same function; the eager kernel's memory grows with the square of the length."""
        kernel = self.cfg.ttt.attention
        if kernel == "flash" and self.env.device.type == "cuda" and self.amp_dtype == torch.float32:
            events.log("warn", "precision fp32 on cuda: the TTT attention runs the eager kernel (PyTorch's CUDA flash attention takes only 16-bit inputs); bf16 keeps the flash kernel and its linear memory")
            return "eager"
        return kernel

    @property
    def precision(self) -> str:
        """What the run computes in, stated beside what the target checkpoint stores (a CPU run
        in fp32 of a bf16 checkpoint, or the reverse, reads differently)."""
        name = str(self.amp_dtype).replace("torch.", "")
        if self.captures:
            source = f"the target's captured states (stored {str(STORED_DTYPE).replace('torch.', '')}) read as {name}"
        else:
            stored = stored_dtype(self.cfg.target.model)
            source = f"target weights {name}{f' (the checkpoint stores {stored})' if stored else ''}"
            if self.cfg.target_fp8:
                source += ", the decoder's linears in FP8 e4m3"
        autocast = " under bfloat16 autocast" if self.amp_dtype != torch.float32 else ""
        return f"precision {self.cfg.precision} on {self.env.device.type}: {source}, draft weights float32{autocast}"

    @property
    def draft_origin(self) -> str:
        return f"warm start from {self.cfg.warm_start}" if self.cfg.warm_start else f"initialised fresh (seed {self.cfg.seed})"

    def _log_setup(self, steps_per_epoch: int, resume_from: Path | None) -> None:
        n_params = sum(p.numel() for p in self.draft.parameters())
        info = self.target.info
        events.log(
            "info",
            f"target {info.architecture}: {info.num_layers} layers, hidden {info.hidden_size}, aux layers {list(self.cfg.target.aux_layer_ids)} (vLLM numbering); "
            f"draft {_count(n_params)} trainable parameters, draft vocab {self.draft_config.draft_vocab_size}, {self.draft_origin}; "
            f"{len(self.train_data)} training records, {steps_per_epoch} steps/epoch, {self.total_steps} steps; "
            f"{self.env.world_size} rank(s) on {self.env.device.type} ({self.cfg.parallel if self.env.distributed else 'single process'}); "
            f"{self.precision}",
        )
        if resume_from is not None:
            events.log("info", f"resumed from {resume_from} at step {self.step} (epoch {self.position.epoch}, step {self.position.step_in_epoch} of it)")

    # ------------------------------------------------------------------------------------------
    # steps
    # ------------------------------------------------------------------------------------------

    def prepare(self, batch: TargetBatch) -> TargetBatch:
        """The target's media inputs (e.g. log-mel features, computed on the training device), its
        data checks and, where it offers ``encode_media``, its media encoder (the audio encoder,
        on the device): run in the data thread a batch ahead, so the step's own thread has no
        reason to wait for the GPU before it has queued the target's forward. Host tensors (with
        what the batch already carries: captured states, offline) are kept in pinned memory."""
        batch.inputs = {**batch.inputs, **self.target.media_inputs(batch.clips, self.env.device)}
        if hasattr(self.target, "check"):
            self.target.check(batch)
        if hasattr(self.target, "encode_media"):
            batch.inputs = self.target.encode_media(batch.input_ids, batch.inputs)
        batch.needed = needed_rows(batch.loss_mask, batch.valid)
        if self.env.device.type == "cuda":
            batch.inputs = {k: v.pin_memory() if v.device.type == "cpu" else v for k, v in batch.inputs.items()}
            batch.input_ids, batch.loss_mask, batch.lengths = (x.pin_memory() for x in (batch.input_ids, batch.loss_mask, batch.lengths))
            batch.needed = tuple(x.pin_memory() for x in batch.needed)
        return batch

    def to_device(self, batch: TargetBatch) -> TargetBatch:
        """The batch's tensors on the training device; ``needed`` stays on the host (see
        ``target_step``). Only a prepared batch: without ``prepare`` the target would run with
        none of its media inputs, silently (a tool once measured a target that heard no audio)."""
        d = self.env.device
        if batch.needed is None:
            raise ValueError("Trainer.to_device: the batch was not prepared; call Trainer.prepare first (media inputs, checks, the rows the signals need)")
        batch.inputs = {k: v.to(d, non_blocking=True) for k, v in batch.inputs.items()}
        batch.input_ids = batch.input_ids.to(d, non_blocking=True)
        batch.loss_mask = batch.loss_mask.to(d, non_blocking=True)
        batch.lengths = batch.lengths.to(d, non_blocking=True)
        return batch

    def target_forward(self, batch: TargetBatch) -> TargetOutput:
        """The frozen target on a prepared batch on the device: aux states and final hidden state
        (offline: the captured ones)."""
        if isinstance(self.target, CapturedTarget):
            return self.target.output(batch)
        return run_target(self.target, batch, self.cfg.target.aux_layer_ids)

    @torch.no_grad()
    def target_step(self, batch: TargetBatch) -> TTTBatch:
        """Runs the frozen target and turns its outputs into what the objective reads."""
        out = self.target_forward(batch)
        valid = batch.valid
        needed = tuple(x.to(self.env.device, non_blocking=True) for x in batch.needed)
        logits, target_row, in_draft = target_signals(out.final_hidden, self.target.lm_head_weight(), self._draft_to_target(), self.draft.t2d, needed)
        return TTTBatch(batch.input_ids, batch.loss_mask, out.taps, logits, target_row, in_draft & valid, valid, needed, batch.needed[1])

    def _target_argmax(self, batch: TTTBatch) -> Tensor:
        """The target's argmax id at every position whose logits were kept (-1 elsewhere); exact
        where ``target_in_draft`` (the full-vocabulary argmax is then a draft token)."""
        argmax = torch.full_like(batch.target_row, -1)
        kept = batch.target_row >= 0
        argmax[kept] = self._draft_to_target()[batch.target_logits[batch.target_row[kept]].argmax(-1)]
        return argmax

    def _draft_to_target(self) -> Tensor:
        if not hasattr(self, "_d2t_index"):
            self._d2t_index = self.vocab.draft_to_target.to(self.env.device)
        return self._d2t_index

    def micro_step(self, batch: TargetBatch, normalisers: Tensor, backward: bool = True) -> tuple[Tensor, Tensor]:
        return self.objective_step(self.target_step(self.to_device(batch)), normalisers, backward)

    def objective_step(self, ttt_batch: TTTBatch, normalisers: Tensor, backward: bool = True) -> tuple[Tensor, Tensor]:
        with torch.autocast(self.env.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype != torch.float32):
            total, stats = self.model(ttt_batch, normalisers)
        if backward:
            total.backward()
        return total.detach(), stats.detach()

    def train_step(self, micro_batches: list[TargetBatch], all_counts: Tensor) -> StepStats:
        """One optimizer step over this rank's micro-batches. ``all_counts``: assistant tokens per
        TTT step over every rank's micro-batches of this step (the loss normalisers)."""
        start = time.perf_counter()
        self.model.train()
        ttt_steps = self.objective.steps
        # Each rank divides by the global count times 1/world: DDP/FSDP average over ranks.
        # non_blocking: a blocking copy to the GPU waits for everything queued before it (the last
        # step's backward), which would leave the GPU idle while this step's target is queued.
        normalisers = (all_counts.clamp(min=1).double() / self.env.world_size).to(self.env.device, non_blocking=True)
        stats = torch.zeros(ttt_steps, 3, dtype=torch.float64, device=self.env.device)
        objective = torch.zeros((), dtype=torch.float64, device=self.env.device)
        tokens = 0
        for i, batch in enumerate(micro_batches):
            sync = i == len(micro_batches) - 1
            tokens += batch.num_tokens  # before micro_step moves the lengths to the device (then a wait)
            with _no_sync(self.model, not sync):
                total, s = self.micro_step(batch, normalisers)
            objective += total.double()
            stats += s.double()
        grad_norm = self.clip_and_step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        # The sums stay on the device: reading them here would make the host wait for this step's
        # backward and optimizer before it queues the next step's target forward, whose kernel
        # launches (not the GPU) set that phase's pace (docs/perf/train.md, "The host ahead").
        return StepStats(
            steps=1,
            loss_sum=stats[:, 0],
            correct=stats[:, 1],
            counts=torch.zeros(ttt_steps, dtype=torch.float64),  # filled by the caller (global counts)
            objective=objective,  # this rank's share x world size (see normalisers)
            grad_norm=grad_norm.double(),
            tokens=tokens,
            seconds=time.perf_counter() - start,
        )

    def clip_and_step(self) -> Tensor:
        """Scales the gradients down to a global norm of at most ``grad_clip`` (0: no limit) and
        steps the optimizer; returns the norm before clipping.

        Fused AdamW divides every gradient by the ``grad_scale`` tensor it is given (the hook
        torch.amp.GradScaler uses), in the kernel that reads them anyway; the clip factor travels
        that way instead of a multiplication pass over every gradient first (0.8 ms of the 7B
        step on an H200, docs/perf/train.md). FSDP2's sharded gradients take the usual path."""
        clip = self.cfg.optimizer.grad_clip
        max_norm = clip if clip > 0 else float("inf")
        params = [p for p in self.model.parameters() if p.requires_grad]
        grads = [p.grad for p in params if p.grad is not None]
        if self.optimizer.defaults.get("fused") and not any(hasattr(g, "full_tensor") for g in grads):
            grad_norm = torch.nn.utils.get_total_norm(grads)
            # clip_grad_norm_'s factor, as the divisor the kernel wants.
            factor = (max_norm / (grad_norm + 1e-6)).clamp(max=1.0)
            self.optimizer.grad_scale = factor.reciprocal() if clip > 0 else None  # type: ignore[attr-defined]
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
                grad_norm = grad_norm.full_tensor()
        self.optimizer.step()
        return grad_norm

    # ------------------------------------------------------------------------------------------
    # loop
    # ------------------------------------------------------------------------------------------

    def _step_inputs(self):
        """Yields (epoch, step in epoch, this rank's CPU micro-batches, global counts) from the data
        position on, prefetched in a background thread."""
        cfg = self.cfg
        ttt_steps = self.objective.steps
        epoch, step_in_epoch = self.position.epoch, self.position.step_in_epoch

        def gen():
            e, s = epoch, step_in_epoch
            while e < cfg.epochs:
                n = self.planner.steps_in_epoch(e)
                while s < n:
                    mine, every = self.planner.step_batches(e, s)
                    batches = [self.prepare(self.train_data.collate(idx)) for idx in mine]
                    counts = torch.zeros(ttt_steps, dtype=torch.int64)
                    for idx in every:
                        lengths = self.train_data.lengths[idx]
                        b = collate_masks(self.train_data, idx, int(lengths.max()))
                        counts += step_token_counts(b[0], b[1], ttt_steps)
                    yield e, s, batches, counts
                    s += 1
                e, s = e + 1, 0

        return prefetch(gen())

    def train(self) -> dict[str, Any]:
        cfg, env = self.cfg, self.env
        log_every, eval_every, save_every = cfg.log_every, cfg.eval_every, cfg.save_every
        if self.window is None:
            self.window = StepStats.zeros(self.objective.steps, env.device)
        started = time.perf_counter()
        steps_at_start = self.step
        stopped = False
        for epoch, step_in_epoch, batches, counts in self._step_inputs():
            if self.step >= self.total_steps:
                break
            stats = self.train_step(batches, counts)
            stats.counts = counts.double()
            self.position = DataPosition(epoch, step_in_epoch + 1)
            if self.position.step_in_epoch >= self.planner.steps_in_epoch(epoch):
                self.position = DataPosition(epoch + 1, 0)
            self.window.add(stats)
            done = self.step >= self.total_steps
            elapsed = time.perf_counter() - started
            logged = self.step % log_every == 0 or done
            if logged:  # reads the window's sums from the device: the one wait per log line
                self._shown = self.log_metrics(self.window)
            self._progress(self.window, elapsed, self.step - steps_at_start, force=logged)
            if logged:
                self.window = StepStats.zeros(self.objective.steps, env.device)
            if self.eval_data is not None and eval_every and self.step % eval_every == 0 and not done:
                self.evaluate()
            stop_now = dist_env.any_rank(bool(self.stop), env)
            if stop_now or done or (save_every and self.step % save_every == 0):
                self.save_checkpoint()
            if stop_now:
                stopped = True
                events.log("info", f"stopped at step {self.step} on request; resume with --resume")
                break
            if done:
                break
        result: dict[str, Any] = {
            "steps": self.step,
            "totalSteps": self.total_steps,
            "outputDir": str(self.output),
            "stopped": stopped,
            "precision": self.precision,
            "draftOrigin": self.draft_origin,
        }
        if not stopped:
            if self.eval_data is not None:
                result["eval"] = self.evaluate()
            result["draft"] = self.export()
        self.write_plot()
        return result

    def _progress(self, window: StepStats, elapsed: float, steps_done: int, force: bool) -> None:
        """The progress line: rate and ETA from host clocks, loss and accuracies from the last log
        line (the window's own sums are on the device; reading them between log lines would stall
        the step pipeline)."""
        now = time.perf_counter()
        if not force and now - self._last_progress < 0.5:
            return
        self._last_progress = now
        per_step = elapsed / max(1, steps_done)
        eta = per_step * (self.total_steps - self.step)
        tok_s = window.tokens * self.env.world_size / max(window.seconds, 1e-9)
        v = self._shown
        shown = ""
        if v:
            accs = " ".join(f"{v[f'acc_{i}']:.2f}" for i in range(self.objective.steps))
            shown = f"loss {v.get('loss', float('nan')):.3f} acc {accs} | "
        message = f"{shown}{tok_s:,.0f} tok/s | ETA {_duration(eta)}"
        events.progress("train", self.step, self.total_steps, "step", message)

    def log_metrics(self, stats: StepStats) -> dict[str, float]:
        """The train window's metrics, summed over ranks, as one metrics row."""
        env = self.env
        scalars = [torch.as_tensor(v, dtype=torch.float64, device=env.device).reshape(1) for v in (stats.objective, stats.grad_norm, float(stats.tokens))]
        packed = torch.cat([stats.loss_sum.to(env.device), stats.correct.to(env.device), *scalars])
        # Loss sums and correct counts are per rank; counts are already global.
        packed = dist_env.all_reduce_sum(packed, env)
        n = len(stats.counts)
        stats.loss_sum, stats.correct = packed[:n].cpu(), packed[n : 2 * n].cpu()
        values = stats.values()
        values["loss"] = float(packed[2 * n]) / max(1, stats.steps) / env.world_size
        values["grad_norm"] = float(packed[2 * n + 1]) / max(1, stats.steps) / env.world_size
        values["tokens_per_s"] = float(packed[2 * n + 2]) / max(stats.seconds, 1e-9)
        values["lr"] = float(self.scheduler.get_last_lr()[0])
        return self.write_metrics("train", values)

    def write_metrics(self, split: str, values: dict[str, float]) -> dict[str, float]:
        """One metrics row (train or eval): the event, and on rank 0 the row in the metrics log."""
        epoch = round(self.position.epoch + self.position.step_in_epoch / max(1, self.planner.steps_in_epoch(self.position.epoch)), 4)
        events.metrics(split, self.step, values, epoch=epoch)
        if self.env.is_main:
            row = {"split": split, "step": self.step, "epoch": epoch, "time": time.time(), **values}
            self.metrics_log.append(row)
        return values

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        assert self.eval_data is not None
        env = self.env
        self.model.eval()
        b = self.cfg.batching
        plan = plan_epoch(self.eval_data.lengths, max_tokens=b.max_tokens, max_records=b.max_records, seed=0, epoch=0, shuffle=False)
        mine = plan[env.rank :: env.world_size]
        ttt_steps = self.objective.steps
        stats = torch.zeros(ttt_steps, 3, dtype=torch.float64, device=env.device)
        counts = torch.zeros(ttt_steps, dtype=torch.float64)
        ones = torch.ones(ttt_steps, dtype=torch.float64, device=env.device)
        bigram_correct = torch.zeros(1, dtype=torch.float64, device=env.device)
        events.progress("eval", 0, len(mine), "batch", f"step {self.step}")
        for done, batch in enumerate(prefetch(self.prepare(self.eval_data.collate(idx)) for idx in mine), start=1):
            counts += step_token_counts(batch.loss_mask, batch.valid, ttt_steps).double()
            ttt_batch = self.target_step(self.to_device(batch))
            _, s = self.objective_step(ttt_batch, ones, backward=False)
            stats += s.double()
            if self.bigram is not None:
                bigram_correct += self.bigram.correct(ttt_batch.input_ids, ttt_batch.loss_mask, ttt_batch.target_in_draft, self._target_argmax(ttt_batch))
            events.progress("eval", done, len(mine), "batch", f"step {self.step}")
        packed = dist_env.all_reduce_sum(torch.cat([stats[:, 0], stats[:, 1], counts.to(env.device), bigram_correct]), env).cpu()
        result = StepStats(0, packed[:ttt_steps], packed[ttt_steps : 2 * ttt_steps], packed[2 * ttt_steps : 3 * ttt_steps])
        self.model.train()
        values = result.values()  # already reduced
        # The objective the training rows log as `loss`, on the eval split: comparable with it.
        values["loss"] = sum(self.objective.decay**i * values[f"ploss_{i}"] for i in range(ttt_steps))
        if self.bigram is not None:
            values["bigram_acc"] = float(packed[-1] / result.counts[0].clamp(min=1))
        return self.write_metrics("eval", values)

    # ------------------------------------------------------------------------------------------
    # outputs
    # ------------------------------------------------------------------------------------------

    def export(self) -> dict[str, str]:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        state = {draft_key(k): v for k, v in state.items()}
        out: dict[str, str] = {}
        if self.env.is_main:
            spec = self.cfg.export
            events.progress("export", 0, len(spec.formats), "format")
            for done, fmt in enumerate(spec.formats, start=1):
                folder = self.output / ("draft" if fmt == "vllm" else f"draft-{fmt}")
                save_draft(
                    self.draft,
                    folder,
                    fmt=fmt,
                    verifier={"name_or_path": self.cfg.target.model, "architectures": [self.cfg.target.architecture]},
                    speculative_tokens=spec.speculative_tokens,
                    state_dict=state,
                )
                out[fmt] = str(folder)
                events.progress("export", done, len(spec.formats), "format", fmt)
                events.artifact("draft", str(folder), f"Eagle3 draft ({fmt} format)")
        dist_env.barrier(self.env)
        return out

    def write_plot(self) -> Path | None:
        if not self.env.is_main or not self.metrics_log.rows or not self.cfg.plot:
            return None
        from .plot import plot_curves

        path = plot_curves(self.metrics_log.rows, self.output / "curves.png", self.objective.steps, f"{self.draft_origin}; {self.precision}")
        if path is not None:
            events.artifact("plot", str(path), "training curves: loss and acc_i per step")
        return path

    def close(self) -> None:
        dist_env.close()


class _no_sync:
    """DDP's no_sync for all but the last micro-batch of an accumulation; a no-op otherwise."""

    def __init__(self, model: torch.nn.Module, active: bool) -> None:
        self.ctx = model.no_sync() if active and hasattr(model, "no_sync") else None

    def __enter__(self):
        return self.ctx.__enter__() if self.ctx else None

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc) if self.ctx else False


def _show(value: Any) -> str:
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k"


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
