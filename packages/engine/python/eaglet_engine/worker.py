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

from . import events
from .errors import EngineError
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


def _pcm(entry: dict) -> np.ndarray:
    raw = base64.b64decode(entry["pcm"])
    if len(raw) % 4:
        raise EngineError("audio pcm is not float32 (byte count not a multiple of 4)", code="EAGLET_BAD_REQUEST")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def run(cfg: dict, stop) -> dict:
    gen, info = build_generator(cfg)
    max_len = cfg.get("maxModelLen", 16384)
    if cfg.get("warmup"):
        gen.generate([1, 2, 3], None, GenerationParams(max_tokens=4, speculative=gen.draft is not None, max_model_len=max_len))
    events.emit("ready", **info)
    requests: queue.Queue[object] = queue.Queue()
    cancelled: set[str] = set()
    threading.Thread(target=_reader, args=(requests, cancelled), daemon=True).start()
    served = 0
    while not stop:
        try:
            req = requests.get(timeout=0.2)
        except queue.Empty:
            continue
        if req is _END:
            break
        rid = str(req.get("id", ""))
        try:
            if req.get("op") != "generate":
                raise EngineError(f"unknown op {req.get('op')!r}", code="EAGLET_BAD_REQUEST")
            ids = req["inputIds"]
            if len(ids) >= max_len:
                raise EngineError(f"the prompt has {len(ids)} tokens; maxModelLen is {max_len}", code="EAGLET_PROMPT_TOO_LONG")
            speculative = bool(req.get("speculative", False))
            if speculative and gen.draft is None:
                raise EngineError("speculative decoding asked for, but this worker has no draft", code="EAGLET_BAD_REQUEST")
            params = GenerationParams(
                max_tokens=int(req["maxTokens"]),
                temperature=float(req.get("temperature", 0.0)),
                top_p=float(req.get("topP", 1.0)),
                stop_token_ids=list(req.get("stopTokenIds", [])),
                seed=req.get("seed"),
                speculative=speculative,
                max_model_len=max_len,
            )
            stream = bool(req.get("stream", False))
            on_tokens = (lambda toks: events.emit("tokens", id=rid, ids=toks)) if stream else None
            out = gen.generate(
                ids,
                [_pcm(a) for a in req.get("audio", [])],
                params,
                on_tokens=on_tokens,
                should_stop=lambda: rid in cancelled or bool(stop),
            )
            events.emit("result", id=rid, result=out.to_json())
            served += 1
        except EngineError as e:
            events.emit("failed", id=rid, code=e.code, message=str(e))
        except Exception as e:  # noqa: BLE001 - one bad request must not end the worker
            log.error("request %s failed:\n%s", rid, traceback.format_exc())
            events.emit("failed", id=rid, code="EAGLET_GENERATION_FAILED", message=f"{type(e).__name__}: {e}")
        finally:
            cancelled.discard(rid)
    return {"served": served}
