"""Builds a Generator from a generation config: the target through its plugin's adapter (the same
path training takes), the draft from the folder `eaglet train` exports, and the aux layers the
draft reads (its own config.json's, else the target block's)."""

from __future__ import annotations

import platform

import torch

from ..config import EngineTarget, GenerationConfig
from ..draft import DraftConfig
from ..errors import EngineError
from ..export import aux_layer_ids_of, read_draft_config
from ..targets import load_adapter
from .draft import DraftRunner
from .speculative import Generator
from .target import TargetRunner, resolve_device, resolve_dtype


def aux_layer_ids_for(target: EngineTarget, draft: DraftConfig | None) -> tuple[int, ...]:
    """The layers the draft was trained on (its config.json says, in vLLM's numbering), else the
    target's own."""
    ids = aux_layer_ids_of(draft) if draft is not None else None
    return ids if ids is not None else target.aux_layer_ids


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'' if n == 1 else 's'})"


def build_generator(cfg: GenerationConfig) -> tuple[Generator, dict]:
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    torch.manual_seed(cfg.seed)
    adapter = load_adapter(cfg.target, device=device, dtype=dtype)
    draft_config = read_draft_config(cfg.draft_model) if cfg.draft_model else None
    target = TargetRunner(adapter, aux_layer_ids_for(cfg.target, draft_config))
    draft = None
    if cfg.draft_model:
        draft = DraftRunner.from_folder(cfg.draft_model, adapter.embedding_weight(), device=device, dtype=dtype)
        if draft.target_hidden_size != target.hidden_size or draft.vocab_size != target.vocab_size:
            raise EngineError(
                f"the draft was made for a target of hidden size {draft.target_hidden_size} and vocabulary {draft.vocab_size}, "
                f"this target has {target.hidden_size} and {target.vocab_size}",
                hint="pass the draft trained for this target",
            )
    gen = Generator(target, draft, num_spec_tokens=cfg.num_spec_tokens)
    import transformers

    info = {
        "device": device_name(device),
        "dtype": str(dtype).replace("torch.", ""),
        "speculative": draft is not None,
        "numSpecTokens": cfg.num_spec_tokens if draft is not None else 0,
        "vocabSize": target.vocab_size,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
    }
    return gen, info
