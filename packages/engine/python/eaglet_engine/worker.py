"""`worker`: a long-lived generation process for the embedded backend.

It loads the target (and the Eagle3 draft, when given) once, writes `ready`, then answers requests
read as JSON lines on stdin (schema `GenerateRequest` in @eaglet/core) one at a time, in order:
`tokens` messages while generating (when asked to stream), then `result` or `failed`. `cancel`
stops a request at the next token; `shutdown`, end of stdin, or SIGINT/SIGTERM end the worker
after the current request. The TS side templates prompts and decodes audio; this process gets token
ids and float32 16 kHz PCM.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import sys
import threading
import traceback

import numpy as np

from . import config as config_mod
from . import events
from .config import AudioPart, GenerateRequest, GenerationConfig
from .errors import ConfigError, EngineError
from .generate.loading import build_generator
from .generate.speculative import GenerationParams

log = logging.getLogger("eaglet.worker")
_END = object()


def _reader(requests: "queue.Queue[object]", cancelled: set[str]) -> None:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError as e:
            events.emit("log", level="error", message=f"worker: request is not JSON: {e}")
            continue
        op = req.get("op")
        if op == "cancel":
            cancelled.add(str(req.get("id")))
        elif op == "shutdown":
            break
        else:
            requests.put(req)
    requests.put(_END)


def _pcm(entry: AudioPart) -> np.ndarray:
    raw = base64.b64decode(entry.pcm)
    if len(raw) % 4:
        raise EngineError("audio pcm is not float32 (byte count not a multiple of 4)", code="EAGLET_BAD_REQUEST")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def run(cfg: GenerationConfig, stop) -> dict:
    gen, info = build_generator(cfg)
    max_len = cfg.max_model_len
    if cfg.warmup:
        gen.generate([1, 2, 3], None, GenerationParams(max_tokens=4, speculative=gen.draft is not None, max_model_len=max_len))
    events.emit("ready", **info)
    requests: queue.Queue[object] = queue.Queue()
    cancelled: set[str] = set()
    threading.Thread(target=_reader, args=(requests, cancelled), daemon=True).start()
    served = 0
    while not stop:
        try:
            raw = requests.get(timeout=0.2)
        except queue.Empty:
            continue
        if raw is _END:
            break
        rid = str(raw.get("id", ""))
        try:
            req: GenerateRequest = config_mod.parse(raw, "generate-request", f"request {rid or '(no id)'}")
            if len(req.input_ids) >= max_len:
                raise EngineError(f"the prompt has {len(req.input_ids)} tokens; maxModelLen is {max_len}", code="EAGLET_PROMPT_TOO_LONG")
            if req.speculative and gen.draft is None:
                raise EngineError("speculative decoding asked for, but this worker has no draft", code="EAGLET_BAD_REQUEST")
            params = GenerationParams(
                max_tokens=req.max_tokens,
                temperature=req.temperature,
                top_p=req.top_p,
                stop_token_ids=list(req.stop_token_ids),
                seed=req.seed,
                speculative=req.speculative,
                max_model_len=max_len,
            )
            on_tokens = (lambda toks: events.emit("tokens", id=rid, ids=toks)) if req.stream else None
            out = gen.generate(
                list(req.input_ids),
                [_pcm(a) for a in req.audio],
                params,
                on_tokens=on_tokens,
                should_stop=lambda: rid in cancelled or bool(stop),
            )
            events.emit("result", id=rid, result=out.to_json())
            served += 1
        except ConfigError as e:
            events.emit("failed", id=rid, code="EAGLET_BAD_REQUEST", message=str(e))
        except EngineError as e:
            events.emit("failed", id=rid, code=e.code, message=str(e))
        except Exception as e:  # noqa: BLE001 - one bad request must not end the worker
            log.error("request %s failed:\n%s", rid, traceback.format_exc())
            events.emit("failed", id=rid, code="EAGLET_GENERATION_FAILED", message=f"{type(e).__name__}: {e}")
        finally:
            cancelled.discard(rid)
    return {"served": served}
