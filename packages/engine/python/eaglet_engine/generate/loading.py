"""Builds a Generator from a generation config: the target through its plugin's adapter (the same
path training takes), the draft from the folder `eaglet train` exports, and the aux layers the
draft reads (its own config.json's, else the target block's).

On CUDA the generator is the fast path (`fast.FastGenerator`: static caches, CUDA graphs captured
here, at start-up); elsewhere, or for a target whose layers the fast path does not compute, the
eager `Generator`. The ready message says which (`decodePath`)."""

from __future__ import annotations

import logging
import platform
import time

import torch

from ..config import EngineTarget, GenerationConfig
from ..draft import DraftConfig
from ..errors import EngineError
from ..export import aux_layer_ids_of, read_draft_config
from ..targets import TargetAdapter, describe_dtype, load_adapter
from .draft import DraftRunner
from .speculative import Generator
from .static_cache import StaticKVCache, kv_buckets
from .static_target import FastPathUnsupported
from .target import TargetRunner, resolve_device, resolve_dtype

log = logging.getLogger("eaglet.generate")


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
    gen, path = None, {"decodePath": "eager"}
    if device.type == "cuda":
        gen, path = fast_generator(adapter, target.aux_layer_ids, draft, cfg.num_spec_tokens, cfg.max_model_len)
    gen = gen or Generator(target, draft, num_spec_tokens=cfg.num_spec_tokens)
    import transformers

    info = {
        **path,
        "device": device_name(device),
        "dtype": describe_dtype(dtype, cfg.dtype, device, cfg.target.model),
        "speculative": draft is not None,
        "numSpecTokens": cfg.num_spec_tokens if draft is not None else 0,
        "vocabSize": target.vocab_size,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version()},
    }
    return gen, info


def fast_generator(adapter: TargetAdapter, aux_layer_ids: tuple[int, ...], draft: DraftRunner | None, num_spec_tokens: int, max_model_len: int):
    """The CUDA-graph path with its ready-message fields, or (None, eager fields) when the target's
    layers are not ones it computes. CUDA running out of memory names the setting to lower."""
    from .fast import build_fast_generator

    t0 = time.perf_counter()
    try:
        gen = build_fast_generator(adapter, aux_layer_ids, draft.model if draft else None, num_spec_tokens, max_model_len, graphs=True, compile=True)
    except FastPathUnsupported as e:
        log.warning("decoding eagerly (no CUDA graphs): %s", e)
        return None, {"decodePath": "eager"}
    except torch.cuda.OutOfMemoryError as e:
        tc = adapter.decoder.config
        heads = tc.num_attention_heads
        head_dim = getattr(tc, "head_dim", None) or tc.hidden_size // heads
        kv = StaticKVCache.bytes_for(tc.num_hidden_layers, getattr(tc, "num_key_value_heads", None) or heads, head_dim, kv_buckets(max_model_len)[-1], adapter.lm_head_weight().dtype)
        raise EngineError(
            f"CUDA ran out of memory preparing the decode path for maxModelLen {max_model_len}: its KV cache alone takes {kv / 2**30:.1f} GiB ({e})",
            code="EAGLET_OUT_OF_MEMORY",
            hint="lower maxModelLen (--max-model-len): the KV cache and CUDA graphs are sized for it at start-up",
        ) from e
    log.info("decode path: CUDA graphs, %d KV buckets up to %d, captured in %.1f s (set-up %.1f s); one-token steps: %s kernels", len(gen.buckets), gen.buckets[-1], gen.capture_seconds, time.perf_counter() - t0, gen.target.decode_kernels)
    return gen, {"decodePath": "graphs", "captureSeconds": round(gen.capture_seconds, 3), "decodeKernels": gen.target.decode_kernels}
