"""The generation worker's stdin/stdout protocol, run as the TS side runs it (a real process)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from eaglet_engine.config import to_dict

from .fixtures import QWEN2_AUDIO_PYTHON
from .tiny_models import AUDIO_TOKEN, save_target, target_block, tiny_qwen2_audio, write_random_draft

ENGINE = Path(__file__).resolve().parents[1]


def test_worker_answers_requests_in_order_and_survives_bad_ones(tmp_path):
    model = tiny_qwen2_audio()
    target = save_target(model, tmp_path / "target")
    draft = write_random_draft(tmp_path / "draft", model, [2, 3, 4], draft_vocab=48)
    # The draft's own aux layers decide which states it reads; the target block's are the fallback.
    block = to_dict(target_block(target, (1, 2, 3)))
    cfg = {"target": block, "draftModel": str(draft), "numSpecTokens": 2, "device": "cpu", "dtype": "fp32", "maxModelLen": 256, "seed": 0, "warmup": False, "cpuThreads": 1}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    pcm = base64.b64encode((np.sin(np.arange(16000) / 10) * 0.1).astype("<f4").tobytes()).decode()
    n_audio = 13  # a 1 s clip gives 25 audio tokens, so 13 placeholders cannot match
    requests = [
        {"op": "generate", "id": "a", "inputIds": [1, 2, 3, 4], "maxTokens": 6, "stream": True},
        {"op": "generate", "id": "b", "inputIds": [1, 2, 3, 4], "maxTokens": 6, "speculative": True},
        {"op": "generate", "id": "too-long", "inputIds": list(range(300)), "maxTokens": 6},
        {"op": "generate", "id": "bad-audio", "inputIds": [1, AUDIO_TOKEN, 2], "audio": [{"pcm": "AAAA"}], "maxTokens": 4},
        {"op": "generate", "id": "mismatch", "inputIds": [1] + [AUDIO_TOKEN] * n_audio + [2], "audio": [{"pcm": pcm}], "maxTokens": 4},
        {"op": "shutdown"},
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "eaglet_engine", "worker", "--config", str(tmp_path / "cfg.json")],
        input="\n".join(json.dumps(r) for r in requests) + "\n",
        capture_output=True,
        text=True,
        cwd=ENGINE,
        env={"PYTHONPATH": f"{ENGINE}:{QWEN2_AUDIO_PYTHON}", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    msgs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert msgs[0]["type"] == "ready" and msgs[0]["speculative"] is True
    assert msgs[0]["decodePath"] == "eager"  # CUDA graphs are for CUDA devices
    by_id = {}
    for m in msgs[1:]:
        by_id.setdefault(m.get("id"), []).append(m)
    streamed = [t for m in by_id["a"] if m["type"] == "tokens" for t in m["ids"]]
    result_a = by_id["a"][-1]["result"]
    assert streamed == result_a["outputIds"] and len(streamed) == 6
    assert by_id["b"][-1]["result"]["outputIds"] == result_a["outputIds"]  # greedy: speculative == baseline
    assert by_id["b"][-1]["result"]["spec"]["numDraftTokens"] == 2 * by_id["b"][-1]["result"]["spec"]["numDrafts"]
    assert by_id["too-long"][-1] == {"type": "failed", "id": "too-long", "code": "EAGLET_PROMPT_TOO_LONG", "message": by_id["too-long"][-1]["message"]}
    assert by_id["bad-audio"][-1]["type"] == "failed" and "float32" in by_id["bad-audio"][-1]["message"]
    # refused, not crashed: the worker goes on serving
    assert by_id["mismatch"][-1]["type"] == "failed"
    assert msgs[-1] == {"type": "done", "stopped": False, "result": {"served": 2}}
