"""One mode (baseline or Eagle3) of the offline benchmark, as the reference does it with vLLM:
`LLM(model=target, max_model_len, max_num_seqs, limit_mm_per_prompt={"audio": N},
speculative_config={"method": "eagle3", "model": draft, "num_speculative_tokens": N})`, prompts
rendered with the model's own chat template, audio as `multi_modal_data={"audio": [(pcm, rate)]}`
at the target's sample rate. The spec-decode counters come from `llm.get_metrics()`
(`disable_log_stats=False`), read before and after each pass so a pass counts only its own.

The process stays up: it loads its LLM once, says `ready`, then runs one pass over the prompts per
`{"op": "pass"}` line on stdin until `{"op": "shutdown"}` or the end of stdin. eaglet runs one
such process per mode, both loaded at once, and alternates passes between them round by round.

Nothing here knows a model family: support the installed vLLM lacks for a target (e.g. Eagle3 for
its architecture) comes from the target plugin's own `vllm.general_plugins` entry point, which vLLM
loads from the PYTHONPATH eaglet sets.
"""

from __future__ import annotations

import time

import numpy as np

COUNTERS = {
    "vllm:spec_decode_num_drafts": "numDrafts",
    "vllm:spec_decode_num_draft_tokens": "numDraftTokens",
    "vllm:spec_decode_num_accepted_tokens": "numAcceptedTokens",
}
PER_POS = "vllm:spec_decode_num_accepted_tokens_per_pos"


def read_counters(llm, n: int) -> dict:
    out = {"numDrafts": 0, "numDraftTokens": 0, "numAcceptedTokens": 0, "acceptedPerPosition": [0] * n}
    for m in llm.get_metrics():
        if m.name in COUNTERS:
            out[COUNTERS[m.name]] += int(m.value)
        elif m.name == PER_POS:
            for i, v in enumerate(m.values[:n]):
                out["acceptedPerPosition"][i] += int(v)
    return out


def diff(after: dict, before: dict) -> dict:
    return {
        k: ([a - b for a, b in zip(after[k], before[k])] if isinstance(after[k], list) else after[k] - before[k]) for k in after
    }


def gpu_memory_utilization(configured: float | None, engines: int) -> float | None:
    """The share of GPU memory of one engine: the configured fraction (absent: vLLM's default)
    split evenly between the engines loaded at once, so both fit on the same GPUs. None leaves it
    to vLLM. vLLM's CPU build sizes its KV cache from VLLM_CPU_KVCACHE_SPACE, so there nothing is
    split."""
    if configured is None and engines == 1:
        return None
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        return configured
    if configured is None:
        from vllm.engine.arg_utils import EngineArgs

        configured = EngineArgs.gpu_memory_utilization
    return configured / engines


def build_llm(cfg: dict, mode: str):
    """The LLM of one mode. `config` arrives resolved by TS (every default filled in, the vLLM
    backend's own settings in `backendOptions`); nothing here has a default of its own."""
    from vllm import LLM

    bench, options = cfg["config"], cfg["config"]["backendOptions"]
    kwargs = dict(
        model=bench["targetModel"],
        max_model_len=bench["maxModelLen"],
        max_num_seqs=bench["maxNumSeqs"],
        tensor_parallel_size=bench["tp"],
        seed=bench["seed"],
        limit_mm_per_prompt={"audio": options["maxAudiosPerPrompt"]},
        enforce_eager=options["enforceEager"],
        disable_log_stats=False,
    )
    if "dtype" in cfg["run"]:
        kwargs["dtype"] = cfg["run"]["dtype"]
    memory = gpu_memory_utilization(options.get("gpuMemoryUtilization"), cfg["run"]["engines"])
    if memory is not None:
        kwargs["gpu_memory_utilization"] = memory
    if mode == "eagle3":
        kwargs["speculative_config"] = {
            "method": "eagle3",
            "model": bench["draftModel"],
            "num_speculative_tokens": bench["numSpecTokens"],
            **options["speculativeConfig"],
        }
    kwargs.update(options["engineArgs"])
    return LLM(**kwargs)


def render(tokenizer, messages: list[dict]) -> str:
    """The model's own chat template, given messages as eaglet's templates give them (and as
    text-only templates expect): a message of text parts only as its text, a message with audio
    as a list of parts, audio as the template looks for it."""
    conv = []
    for m in messages:
        if all(p["type"] == "text" for p in m["content"]):
            conv.append({"role": m["role"], "content": "".join(p["text"] for p in m["content"])})
            continue
        parts = [{"type": "text", "text": p["text"]} if p["type"] == "text" else {"type": "audio", "audio_url": "audio"} for p in m["content"]]
        conv.append({"role": m["role"], "content": parts})
    return tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)


class BenchSession:
    """One mode's LLM and the prompts, ready to run passes."""

    def __init__(self, cfg: dict):
        self.bench, self.mode = cfg["config"], cfg["mode"]
        self.llm = build_llm(cfg, self.mode)
        tokenizer = self.llm.get_tokenizer()
        self.prompts = cfg["prompts"]
        self.inputs = []
        for p in self.prompts:
            audio = [(np.fromfile(a, dtype="<f4"), cfg["run"]["sampleRate"]) for a in p["audio"]]
            item = {"prompt": render(tokenizer, p["messages"])}
            if audio:
                item["multi_modal_data"] = {"audio": audio}
            self.inputs.append(item)

    def run_pass(self, limit: dict | None, emit) -> dict:
        """Every prompt once (`limit`: the first `prompts` ones, at most `maxTokens` new tokens each)."""
        from vllm import SamplingParams

        bench, mode = self.bench, self.mode
        count = limit["prompts"] if limit else len(self.inputs)
        inputs, prompts = self.inputs[:count], self.prompts[:count]
        params = SamplingParams(
            temperature=bench["temperature"],
            top_p=bench["topP"],
            max_tokens=limit["maxTokens"] if limit else bench["outputLen"],
            seed=bench["seed"],
            ignore_eos=not bench["stopAtEos"],
        )
        n = bench["numSpecTokens"]
        before = read_counters(self.llm, n) if mode == "eagle3" else None
        requests, outputs = [], []
        if bench["maxNumSeqs"] == 1:
            # One request at a time: its latency is the call's wall time (what max_num_seqs=1 does anyway).
            for i, item in enumerate(inputs):
                t0 = time.perf_counter()
                out = self.llm.generate([item], params, use_tqdm=False)[0]
                latency = time.perf_counter() - t0
                requests.append(_request(prompts[i]["id"], out, latency))
                outputs.append({"id": prompts[i]["id"], "ids": list(out.outputs[0].token_ids)})
                emit("progress", task=f"bench {mode} (vllm)", done=i + 1, total=len(inputs), unit="prompt")
        else:
            start = time.perf_counter()
            outs = self.llm.generate(inputs, params, use_tqdm=False)
            wall = time.perf_counter() - start
            for i, out in enumerate(outs):
                # Batched: per-request latency is the whole batch's wall time unless vLLM reports finer.
                requests.append(_request(prompts[i]["id"], out, wall))
                outputs.append({"id": prompts[i]["id"], "ids": list(out.outputs[0].token_ids)})
        result = {"requests": requests, "outputs": outputs}
        if mode == "eagle3":
            result["counters"] = diff(read_counters(self.llm, n), before)
        return result


def serve(cfg: dict, emit, commands) -> None:
    """Loads the mode's LLM, says `ready`, then answers each `pass` command with a `pass` message."""
    import json

    import vllm

    session = BenchSession(cfg)
    emit("ready", versions={"vllm": vllm.__version__})
    for line in commands:
        if not line.strip():
            continue
        command = json.loads(line)
        if command["op"] == "shutdown":
            return
        if command["op"] != "pass":
            raise ValueError(f"unknown command {command['op']!r} (expected pass or shutdown)")
        emit("pass", result=session.run_pass(command.get("limit"), emit))


def _request(rid: str, out, latency: float) -> dict:
    o = out.outputs[0]
    return {
        "id": rid,
        "promptTokens": len(out.prompt_token_ids or []),
        "outputTokens": len(o.token_ids),
        "latency": latency,
        "finishReason": o.finish_reason or "stop",
    }
