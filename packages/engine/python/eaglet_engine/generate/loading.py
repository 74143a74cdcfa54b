"""Builds a Generator from a generation config: the target from its folder, the draft from the
folder `eaglet train` exports, the tap layers from the config or the draft's own config."""

from __future__ import annotations

import platform

import torch

from ..errors import EngineError
from ..export import read_draft_config, tap_layers_of
from .draft import DraftRunner
from .speculative import Generator
from .target import TargetRunner, load_hf_model, resolve_device, resolve_dtype


def tap_layers_for(cfg: dict, num_layers: int) -> list[int]:
    """Config `tapLayers` (layer outputs) first; else the draft's vLLM aux ids (state after k
    layers, so output of layer k-1); else vLLM's default."""
    if cfg.get("tapLayers"):
        return list(cfg["tapLayers"])
    if cfg.get("draftModel"):
        taps = tap_layers_of(read_draft_config(cfg["draftModel"]))
        if taps:
            return list(taps)
    return TargetRunner.default_tap_layers(num_layers)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'' if n == 1 else 's'})"


def build_generator(cfg: dict) -> tuple[Generator, dict]:
    if cfg.get("cpuThreads"):
        torch.set_num_threads(int(cfg["cpuThreads"]))
    device = resolve_device(cfg.get("device", "auto"))
    dtype = resolve_dtype(cfg.get("dtype", "auto"), device)
    torch.manual_seed(cfg.get("seed", 0))
    model = load_hf_model(cfg["targetModel"], device, dtype)
    from .target import text_config

    taps = tap_layers_for(cfg, text_config(model.config).num_hidden_layers)
    target = TargetRunner(model, tap_layers=taps, model_dir=cfg["targetModel"])
    draft = None
    if cfg.get("draftModel"):
        draft = DraftRunner.from_folder(cfg["draftModel"], target.embed_tokens, device=device, dtype=dtype)
        if draft.target_hidden_size != target.hidden_size or draft.vocab_size != target.vocab_size:
            raise EngineError(
                f"the draft was made for a target of hidden size {draft.target_hidden_size} and vocabulary {draft.vocab_size}, "
                f"this target has {target.hidden_size} and {target.vocab_size}",
                hint="pass the draft trained for this target",
            )
    gen = Generator(target, draft, num_spec_tokens=cfg.get("numSpecTokens", 2))
    import transformers

    info = {
        "device": device_name(device),
        "dtype": str(dtype).replace("torch.", ""),
        "speculative": draft is not None,
        "numSpecTokens": cfg.get("numSpecTokens", 2) if draft is not None else 0,
        "vocabSize": target.vocab_size,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
    }
    return gen, info
