"""Target models: the protocol a target family implements for the engine, and the generic parts.

A target adapter (``TargetAdapter``) hides everything model-specific: how the model loads, how a
batch of prepared records becomes model inputs (audio features for Qwen2-Audio), which modules
are the decoder layers. It lives with its target plugin (e.g. ``eaglet_qwen2_audio`` beside
``plugins/qwen2-audio``) and is named in the train config (``targetAdapter``). An adapter module
exposes ``load_target(model_dir, *, device, dtype, tap_layers=None) -> TargetAdapter``.

What the trainer needs from the target is generic and computed here:

* the three tapped layers' outputs, captured with forward hooks (``capture_layer_outputs``), never
  by asking the model for all hidden states;
* the target's logits over the draft vocabulary and whether its full-vocabulary argmax lies in the
  draft vocabulary, only on the rows a loss can read, chunked over the sequence
  (``target_signals``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from ..errors import EngineError

# Rows per chunk when computing full-vocabulary target logits (bounds a [rows, vocab] temporary).
TARGET_CHUNK_ROWS = 2048


@dataclass(frozen=True)
class TargetInfo:
    """Facts about a loaded target (mirrors @eaglet/core's TargetInfo)."""

    architecture: str
    num_layers: int
    hidden_size: int
    vocab_size: int
    tap_layers: tuple[int, int, int]
    intermediate_size: int | None = None
    num_attention_heads: int | None = None
    bos_token_id: int | None = None
    eos_token_ids: tuple[int, ...] = ()
    audio_token_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TargetBatch:
    """One micro-batch of prepared records, right-padded, on the training device.

    ``audio[b]`` lists record b's clips (16 kHz mono float32), in reading order;
    ``audio_token_counts[b]`` the placeholder tokens of each clip.
    """

    input_ids: Tensor  # [B, T] int64 (padding: 0)
    loss_mask: Tensor  # [B, T] bool
    lengths: Tensor  # [B] int64
    audio: list[list[Any]] = field(default_factory=list)
    audio_token_counts: list[list[int]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    # Model-specific inputs an adapter's ``prepare`` made ahead of time (e.g. log-mel features);
    # moved to the training device with the batch.
    inputs: dict[str, Tensor] = field(default_factory=dict)

    @property
    def valid(self) -> Tensor:
        t = self.input_ids.shape[1]
        return torch.arange(t, device=self.lengths.device)[None, :] < self.lengths[:, None]

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())


@dataclass
class TargetOutput:
    taps: Tensor  # [B, T, 3 * hidden]: the tapped layers' outputs, concatenated
    final_hidden: Tensor  # [B, T, hidden]: the final norm's output (what lm_head reads)


@runtime_checkable
class TargetAdapter(Protocol):
    """Engine-side glue for one target family (see the module docstring)."""

    info: TargetInfo

    def embedding_weight(self) -> Tensor:
        """The token embedding table [vocab, hidden] (the draft shares it, frozen)."""
        ...

    def lm_head_weight(self) -> Tensor:
        """The output projection [vocab, hidden]."""
        ...

    def forward(self, batch: TargetBatch) -> TargetOutput:
        """Runs the frozen target on a batch (no grad) and returns the taps and final hidden state."""
        ...

    def draft_defaults(self) -> dict[str, Any]:
        """Draft config.json fields implied by this target (overridden by the train config)."""
        ...

    def prepare(self, batch: TargetBatch) -> None:
        """Optional: model-specific input work done where batches are built (a background thread,
        one step ahead of the GPU), stored in ``batch.inputs``; checks that need no GPU belong
        here too."""
        ...

    def fuse(self) -> None:
        """Optional: fuse the forward's elementwise work (e.g. ``compile_layers``); called on GPUs
        when the config's ``compile`` allows it."""
        ...


def default_tap_layers(num_layers: int) -> tuple[int, int, int]:
    """Eagle3's default taps: outputs of layers 1, L/2-1 and L-4 (0-based), i.e. vLLM's default
    auxiliary layers (2, L/2, L-3) counted as layer inputs."""
    taps = (1, num_layers // 2 - 1, num_layers - 4)
    if num_layers < 5 or len(set(taps)) < 3:
        raise EngineError(
            f"a {num_layers}-layer target has no three distinct default taps {taps}",
            hint="set draftConfig.eagle_aux_hidden_state_layer_ids explicitly",
        )
    return taps


def load_adapter(module: str, model_dir: str, *, device: torch.device, dtype: torch.dtype, tap_layers: Sequence[int] | None = None) -> TargetAdapter:
    """Imports the adapter module named by the config and loads the target through it."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise EngineError(
            f"cannot import the target adapter module {module!r}: {e}",
            code="EAGLET_TARGET_ADAPTER",
            hint="the target plugin's enginePath must be on PYTHONPATH (the eaglet CLI does this)",
        ) from e
    if not hasattr(mod, "load_target"):
        raise EngineError(f"target adapter module {module!r} has no load_target(model_dir, *, device, dtype, tap_layers)", code="EAGLET_TARGET_ADAPTER")
    adapter = mod.load_target(model_dir, device=device, dtype=dtype, tap_layers=tuple(tap_layers) if tap_layers else None)
    if not isinstance(adapter, TargetAdapter):
        raise EngineError(f"{module}.load_target returned {type(adapter).__name__}, which does not implement TargetAdapter", code="EAGLET_TARGET_ADAPTER")
    return adapter


@contextmanager
def capture_layer_outputs(layers: nn.ModuleList, indices: Sequence[int]) -> Iterator[list[Tensor | None]]:
    """Forward hooks that keep the outputs of ``layers[i]`` for i in ``indices`` (in that order)."""
    captured: list[Tensor | None] = [None] * len(indices)
    handles = []
    for slot, index in enumerate(indices):

        def hook(_module, _inputs, output, slot=slot):
            captured[slot] = output[0] if isinstance(output, (tuple, list)) else output

        handles.append(layers[index].register_forward_hook(hook))
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


def compile_layers(layers: nn.ModuleList) -> None:
    """Compiles each decoder layer's forward with torch.compile (dynamic shapes: one graph serves
    every layer and every sequence length). Hooks stay outside the compiled code, so the taps
    still see each layer's output. Used by adapters' ``fuse``."""
    for layer in layers:
        layer.forward = torch.compile(layer.forward, dynamic=True)


def rows_needed(loss_mask: Tensor, valid: Tensor) -> Tensor:
    """Positions p whose target distribution some TTT step reads: token p-1 is an assistant token
    and p is a real position (step i reads target p = t+1+i for loss_mask[t+i], i.e. p-1)."""
    need = torch.zeros_like(valid)
    need[:, 1:] = loss_mask[:, :-1] & valid[:, 1:]
    return need


@torch.no_grad()
def target_signals(
    final_hidden: Tensor,
    lm_head_weight: Tensor,
    draft_to_target: Tensor,
    t2d: Tensor,
    needed: Tensor,
    chunk_rows: int = TARGET_CHUNK_ROWS,
) -> tuple[Tensor, Tensor, Tensor]:
    """The target's logits over the draft vocabulary and whether its argmax is a draft token.

    Computed only on ``needed`` rows, ``chunk_rows`` at a time, so the full-vocabulary logits
    exist for one chunk at most. Returns (target_logits [N, draft_vocab] in the model dtype,
    target_row [B, T] int64 (-1 where not kept), in_draft [B, T] bool).
    """
    b, t, _ = final_hidden.shape
    bi, ti = needed.nonzero(as_tuple=True)
    n = bi.numel()
    target_row = torch.full((b, t), -1, dtype=torch.int64, device=final_hidden.device)
    target_row[bi, ti] = torch.arange(n, device=final_hidden.device)
    in_draft = torch.zeros(b, t, dtype=torch.bool, device=final_hidden.device)
    logits = torch.empty(n, draft_to_target.numel(), dtype=final_hidden.dtype, device=final_hidden.device)
    for start in range(0, n, chunk_rows):
        rows = slice(start, min(start + chunk_rows, n))
        full = final_hidden[bi[rows], ti[rows]] @ lm_head_weight.t()  # [rows, vocab]
        in_draft[bi[rows], ti[rows]] = t2d[full.argmax(-1)]
        logits[rows] = full[:, draft_to_target]
        del full
    return logits, target_row, in_draft
