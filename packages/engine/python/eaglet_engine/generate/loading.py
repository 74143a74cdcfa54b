"""Builds a Generator from a generation config: the target from its folder, the draft from the
folder `eaglet train` exports, the tap layers from the config or the draft's own config.

On CUDA the generator is the fast path (`fast.FastGenerator`: static caches, CUDA graphs captured
here, at start-up); elsewhere, or for a target whose layers the fast path does not compute, the
eager `Generator`. The ready message says which (`decodePath`)."""

from __future__ import annotations

import logging
import platform
import time

import torch

from ..errors import EngineError
from ..export import read_draft_config, tap_layers_of
from .draft import DraftRunner
from .speculative import Generator
from .static_cache import StaticKVCache, kv_buckets
from .static_target import FastPathUnsupported
from .target import TargetRunner, load_hf_model, resolve_device, resolve_dtype

log = logging.getLogger("eaglet.generate")


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
    num_spec_tokens = cfg.get("numSpecTokens", 2)
    gen, path = None, {"decodePath": "eager"}
    if device.type == "cuda":
        gen, path = fast_generator(target, draft, num_spec_tokens, cfg.get("maxModelLen", 16384))
    gen = gen or Generator(target, draft, num_spec_tokens=num_spec_tokens)
    import transformers

    info = {
        **path,
        "device": device_name(device),
        "dtype": str(dtype).replace("torch.", ""),
        "speculative": draft is not None,
        "numSpecTokens": cfg.get("numSpecTokens", 2) if draft is not None else 0,
        "vocabSize": target.vocab_size,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
    }
    return gen, info


def fast_generator(target: TargetRunner, draft: DraftRunner | None, num_spec_tokens: int, max_model_len: int):
    """The CUDA-graph path with its ready-message fields, or (None, eager fields) when the target's
    layers are not ones it computes. CUDA running out of memory names the setting to lower."""
    from .adapter_shim import RunnerAdapter
    from .fast import build_fast_generator

    t0 = time.perf_counter()
    try:
        gen = build_fast_generator(RunnerAdapter(target), draft.model if draft else None, num_spec_tokens, max_model_len, graphs=True, compile=True)
    except FastPathUnsupported as e:
        log.warning("decoding eagerly (no CUDA graphs): %s", e)
        return None, {"decodePath": "eager"}
    except torch.cuda.OutOfMemoryError as e:
        tc = target.text_config
        heads = tc.num_attention_heads
        head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // heads
        kv = StaticKVCache.bytes_for(tc.num_hidden_layers, getattr(tc, "num_key_value_heads", None) or heads, head_dim, kv_buckets(max_model_len)[-1], target.dtype)
        raise EngineError(
            f"CUDA ran out of memory preparing the decode path for maxModelLen {max_model_len}: its KV cache alone takes {kv / 2**30:.1f} GiB ({e})",
            code="EAGLET_OUT_OF_MEMORY",
            hint="lower maxModelLen (--max-model-len): the KV cache and CUDA graphs are sized for it at start-up",
        ) from e
    log.info("decode path: CUDA graphs, %d KV buckets up to %d, captured in %.1f s (set-up %.1f s)", len(gen.buckets), gen.buckets[-1], gen.capture_seconds, time.perf_counter() - t0)
    return gen, {"decodePath": "graphs", "captureSeconds": round(gen.capture_seconds, 3)}
