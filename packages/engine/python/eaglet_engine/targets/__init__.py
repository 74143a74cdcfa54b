"""Target models: the adapter interface a target family implements, and the one target path that
training and generation share.

A target adapter (``TargetAdapter``) is the only Python that knows a model family: how its
checkpoint loads, where its text decoder and its layers are, how media (audio) becomes input
features and how those merge into the token embeddings. It lives with its target plugin (in the
plugin's Python folder), which the engine config names in its
target block (``EngineTarget.adapter``). An adapter module exposes
``load_target(target: EngineTarget, *, device, dtype) -> TargetAdapter``; text-only families can
subclass ``targets.causal_lm.CausalLMTarget``, audio-in families with placeholder tokens
``targets.audio_lm.AudioPlaceholderTarget``.

Everything else is generic and here (training) or in ``generate.target`` (generation):

* the hidden states of the aux layers, in vLLM's numbering (id k: the state after k decoder
  layers, 0 = the embeddings), captured with forward hooks (``AuxStates``), never by asking the
  model for all hidden states;
* the decoder call on ``input_embeddings`` (``run_target``);
* the target's logits over the draft vocabulary and whether its full-vocabulary argmax lies in the
  draft vocabulary, only on the rows a loss can read, chunked over the sequence
  (``target_signals``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from ..config import EngineTarget
from ..errors import EngineError
from ..generate.row_argmax import row_argmax

# Rows per chunk when computing full-vocabulary target logits (bounds a [rows, vocab] temporary).
TARGET_CHUNK_ROWS = 2048


@dataclass(frozen=True)
class TargetInfo:
    """What the engine reads off a loaded target (the facts come from the plugin's declaration)."""

    architecture: str
    num_layers: int
    hidden_size: int
    vocab_size: int
    audio_token_id: int | None = None


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
    # The adapter's media inputs (``media_inputs``: e.g. log-mel features), made ahead of time in
    # the data thread and moved to the training device with the batch.
    inputs: dict[str, Tensor] = field(default_factory=dict)
    # ``needed_rows``: found on the host (the trainer's data thread), so that what reads them knows
    # how many there are without reading the device.
    needed: tuple[Tensor, Tensor] | None = None

    @property
    def valid(self) -> Tensor:
        t = self.input_ids.shape[1]
        return torch.arange(t, device=self.lengths.device)[None, :] < self.lengths[:, None]

    @property
    def num_tokens(self) -> int:
        return int(self.lengths.sum())

    @property
    def clips(self) -> list[Any]:
        """Every clip of the batch, record by record, in reading order."""
        return [clip for record in self.audio for clip in record]


@dataclass
class TargetOutput:
    taps: Tensor  # [B, T, 3 * hidden]: the aux layers' hidden states, concatenated
    final_hidden: Tensor  # [B, T, hidden]: the final norm's output (what lm_head reads)


@runtime_checkable
class TargetAdapter(Protocol):
    """Engine-side glue for one target family (see the module docstring). Optional members:
    ``check(batch)`` (refuse data that does not fit the model, run where batches are built),
    ``encode_media(input_ids, inputs)`` (run the media encoder where batches are built, a batch
    ahead; ``input_embeddings`` then takes its output in place of the media inputs), ``fuse()``
    (compile the forward's elementwise work, on GPUs when the config's ``compile`` allows it) and
    ``fuse_media()`` (compile only the media encoder: the CUDA-graph decode path
    runs the decoder's layers its own way and compiles the prefill's encoder with this)."""

    info: TargetInfo
    layers: nn.ModuleList
    """The text decoder's layers (the aux states are their outputs)."""
    decoder: nn.Module
    """The text decoder: called with ``inputs_embeds`` and a cache, returns ``last_hidden_state``
    after its final norm."""

    def embedding_weight(self) -> Tensor:
        """The token embedding table [vocab, hidden] (the draft shares it, frozen)."""
        ...

    def lm_head_weight(self) -> Tensor:
        """The output projection [vocab, hidden]."""
        ...

    def media_inputs(self, clips: Sequence[Any], device: torch.device) -> dict[str, Tensor]:
        """Model inputs for a batch's media clips (16 kHz mono float32, in reading order), as
        host tensors computed on ``device`` where that is faster; {} for no clips."""
        ...

    def input_embeddings(self, input_ids: Tensor, media: dict[str, Tensor]) -> Tensor:
        """Token embeddings [B, T, hidden] with the media encoder's output merged at its
        placeholder positions (``media`` from ``media_inputs``, or from ``encode_media`` where the
        adapter has it, already on the model's device)."""
        ...


def load_adapter(target: EngineTarget, *, device: torch.device, dtype: torch.dtype) -> TargetAdapter:
    """Imports the adapter module the target block names and loads the checkpoint through it."""
    if not (Path(target.model) / "config.json").is_file():
        raise EngineError(f"{target.model} has no config.json", code="EAGLET_TARGET_INVALID", hint="pass a local Hugging Face model folder")
    try:
        mod = importlib.import_module(target.adapter)
    except ImportError as e:
        raise EngineError(
            f"cannot import the target adapter module {target.adapter!r}: {e}",
            code="EAGLET_TARGET_ADAPTER",
            hint="the target plugin's enginePath must be on PYTHONPATH (the eaglet CLI does this)",
        ) from e
    if not hasattr(mod, "load_target"):
        raise EngineError(f"target adapter module {target.adapter!r} has no load_target(target, *, device, dtype)", code="EAGLET_TARGET_ADAPTER")
    adapter = mod.load_target(target, device=device, dtype=dtype)
    if not isinstance(adapter, TargetAdapter):
        raise EngineError(f"{target.adapter}.load_target returned {type(adapter).__name__}, which does not implement TargetAdapter", code="EAGLET_TARGET_ADAPTER")
    check_aux_layer_ids(target.aux_layer_ids, adapter.info.num_layers, "target.auxLayerIds")
    return adapter


def stored_dtype(model_dir: str | Path) -> str | None:
    """The dtype a checkpoint folder holds its weights in: config.json's ``torch_dtype`` (or
    ``dtype``, at the top or in ``text_config``), else the first floating tensor's in its
    safetensors; None when neither says."""
    import json

    folder = Path(model_dir)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for block in (config, config.get("text_config") or {}):
        for key in ("torch_dtype", "dtype"):
            if isinstance(block.get(key), str):
                return block[key]
    index = folder / "model.safetensors.index.json"
    try:
        first = sorted(set(json.loads(index.read_text())["weight_map"].values()))[0] if index.is_file() else "model.safetensors"
        from safetensors import safe_open

        with safe_open(str(folder / first), "pt") as f:
            for key in f.keys():
                dtype = f.get_slice(key).get_dtype()
                if dtype.startswith(("F", "BF")):
                    return {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}.get(dtype, dtype)
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return None


def describe_dtype(dtype: torch.dtype, asked: str, device: torch.device, model_dir: str | Path) -> str:
    """The dtype a model runs in, why, and what its checkpoint stores: what a report states so a CPU
    run in float32 is not read as the checkpoint's bfloat16 (``asked``: the config's setting)."""
    name = str(dtype).replace("torch.", "")
    why = f"auto: {name} on {device.type}" if asked == "auto" else f"{asked} as configured"
    stored = stored_dtype(model_dir)
    return f"{name} ({why}; the checkpoint stores {stored})" if stored else f"{name} ({why})"


def check_aux_layer_ids(ids: Sequence[int], num_layers: int, where: str) -> tuple[int, ...]:
    """Refuses aux layer ids that a target of ``num_layers`` layers does not have."""
    if len(ids) != 3 or len(set(ids)) != 3 or not all(0 <= k <= num_layers for k in ids):
        raise EngineError(
            f"{where}: aux layer ids {list(ids)} must be three distinct ids in 0..{num_layers} (the state after k of the target's {num_layers} layers)",
            code="EAGLET_CONFIG_INVALID",
        )
    return tuple(ids)


class AuxStates:
    """Forward hooks that keep the aux layers' hidden states, in vLLM's numbering: id k is the
    output of ``layers[k - 1]`` (the input of ``layers[0]`` for k = 0, the embeddings). The hooks
    stay until ``remove``; ``take`` returns the states of the last forward, concatenated."""

    def __init__(self, layers: nn.ModuleList, aux_layer_ids: Sequence[int]) -> None:
        self.ids = tuple(aux_layer_ids)
        self._states: dict[int, Tensor] = {}
        self._handles = []
        for k in sorted(set(self.ids)):
            if k == 0:
                self._handles.append(layers[0].register_forward_pre_hook(self._pre_hook(k), with_kwargs=True))
            else:
                self._handles.append(layers[k - 1].register_forward_hook(self._hook(k)))

    def _hook(self, k: int):
        def hook(_module, _inputs, output):
            self._states[k] = output[0] if isinstance(output, (tuple, list)) else output

        return hook

    def _pre_hook(self, k: int):
        def hook(_module, args, kwargs):
            self._states[k] = args[0] if args else kwargs["hidden_states"]

        return hook

    def take(self) -> Tensor:
        """[..., 3 * hidden]: the states of the last forward, in ``aux_layer_ids`` order."""
        states = torch.cat([self._states[k] for k in self.ids], dim=-1)
        self._states.clear()
        return states

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


@torch.no_grad()
def run_target(adapter: TargetAdapter, batch: TargetBatch, aux_layer_ids: Sequence[int]) -> TargetOutput:
    """The frozen target on a training batch (media inputs already in ``batch.inputs``): the aux
    layers' states and the final hidden state. Right padding + causal attention: real positions
    never see padding, so no attention mask is passed and attention stays on the flash path."""
    embeds = adapter.input_embeddings(batch.input_ids, batch.inputs)
    aux = AuxStates(adapter.layers, aux_layer_ids)
    try:
        out = adapter.decoder(inputs_embeds=embeds, attention_mask=causal_only(adapter.decoder), use_cache=False)
        return TargetOutput(taps=aux.take(), final_hidden=out.last_hidden_state)
    finally:
        aux.remove()


def causal_only(decoder: nn.Module) -> dict[str, None] | None:
    """What to pass a transformers decoder as ``attention_mask`` so that it builds no masks: for a
    decoder whose every layer attends fully, ``{"full_attention": None}`` (no mask: SDPA runs
    causal). Left to build them, it checks the position ids for packed sequences on the host, a
    wait for the GPU every forward (our batches are right-padded, one record a row: there is
    nothing to find). None (let it build them) for decoders with sliding-window layers or without
    ``layer_types``."""
    types = getattr(getattr(decoder, "config", None), "layer_types", None)
    return {"full_attention": None} if types and set(types) == {"full_attention"} else None


def compile_layers(layers: nn.ModuleList) -> None:
    """Compiles each decoder layer's forward with torch.compile (dynamic shapes: one graph serves
    every layer and every sequence length). Hooks stay outside the compiled code, so the aux
    states are still seen. Used by adapters' ``fuse``."""
    for layer in layers:
        layer.forward = torch.compile(layer.forward, dynamic=True)


def needed_rows(loss_mask: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """The (record, position) indices of ``rows_needed``, ordered by position, then record (so
    the rows TTT step i reads, positions from 1 + i on, are a suffix). Computed where the batch
    is: call it while the batch is on the host (``nonzero`` of a device tensor waits for the GPU)."""
    positions, records = rows_needed(loss_mask, valid).t().nonzero(as_tuple=True)
    return records, positions


def rows_needed(loss_mask: Tensor, valid: Tensor) -> Tensor:
    """Positions p whose target distribution some TTT step reads: token p is an assistant token and
    a real position past the first (step i reads target p = t+1+i when loss_mask[t+1+i]; see
    ``ttt``'s alignment)."""
    need = loss_mask & valid
    need[:, 0] = False
    return need


@torch.no_grad()
def target_signals(
    final_hidden: Tensor,
    lm_head_weight: Tensor,
    draft_to_target: Tensor,
    t2d: Tensor,
    needed: tuple[Tensor, Tensor],
    chunk_rows: int = TARGET_CHUNK_ROWS,
) -> tuple[Tensor, Tensor, Tensor]:
    """The target's logits over the draft vocabulary and whether its argmax is a draft token.

    Computed only on the ``needed`` rows ((batch, position) indices, ``needed_rows``), ``chunk_rows``
    at a time, so the full-vocabulary logits exist for one chunk at most. Returns (target_logits
    [N, draft_vocab] in the model dtype, target_row [B, T] int64 (-1 where not kept), in_draft
    [B, T] bool).
    """
    b, t, _ = final_hidden.shape
    bi, ti = needed
    n = bi.numel()
    target_row = torch.full((b, t), -1, dtype=torch.int64, device=final_hidden.device)
    target_row[bi, ti] = torch.arange(n, device=final_hidden.device)
    in_draft = torch.zeros(b, t, dtype=torch.bool, device=final_hidden.device)
    logits = torch.empty(n, draft_to_target.numel(), dtype=final_hidden.dtype, device=final_hidden.device)
    # The argmax and its lookup in one Triton pass on CUDA (torch's argmax read the 7B target's
    # 156k-wide rows at half the memory bandwidth of an H200); the table as int8, which the
    # kernel loads like any id table.
    table = t2d.to(torch.int8)
    for start in range(0, n, chunk_rows):
        rows = slice(start, min(start + chunk_rows, n))
        full = final_hidden[bi[rows], ti[rows]] @ lm_head_weight.t()  # [rows, vocab]
        in_draft[bi[rows], ti[rows]] = row_argmax(full, table).bool()
        # Written straight into the output (``full[:, ids]`` made a copy first).
        torch.index_select(full, 1, draft_to_target, out=logits[rows])
        del full
    return logits, target_row, in_draft
