"""Where a training step's time goes: torch.profiler over whole steps of the 7B setup of
train_throughput.py (same target, draft and data), CUDA kernels ranked by time.

    python tools/bench/profile_step.py --length 4096 [--tiny]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_throughput as tt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--length", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--rows", type=int, default=45)
    parser.add_argument("--trace", help="write a Chrome trace here")
    parser.add_argument("--sort", choices=["cuda", "cpu"], default="cuda", help="rank ops by GPU time or by host (CPU) time")
    parser.add_argument("--target-fp8", action="store_true", help="the target decoder's linears in FP8 (the train config's targetFp8)")
    args = parser.parse_args()
    tt.events.redirect_stdout_to_stderr()
    tt.events.emit = lambda *a, **k: None
    denv = tt.dist_env.init("cpu" if args.tiny or not torch.cuda.is_available() else "cuda", timeout_seconds=1800)
    device = denv.device
    spec, draft_cfg, draft_vocab = (tt.TINY, tt.DRAFT_TINY, tt.DRAFT_VOCAB_TINY) if args.tiny else (tt.QWEN2_AUDIO_7B, tt.DRAFT_7B, tt.DRAFT_VOCAB_7B)
    target = tt.build_target(spec, device, torch.float32 if device.type == "cpu" else torch.bfloat16)
    vocab_size = spec["text_config"]["vocab_size"]
    # Profiled: pipelined steps (run as training runs them, unsynchronised), after 3 warm-up and
    # 1 synchronised step; one more pipelined step after them ends the run with a synchronisation.
    ns = argparse.Namespace(warmup=3, steps=1, pipelined_steps=args.steps + 2, ttt=7, variant="flash", no_compile=args.no_compile, parallel="ddp")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ids = torch.arange(draft_vocab, dtype=torch.int64)
        t2d = torch.zeros(vocab_size, dtype=torch.bool)
        t2d[ids] = True
        tt.save_vocab(work / "vocab.safetensors", ids - torch.arange(draft_vocab), t2d)

        from torch.profiler import ProfilerActivity, profile, schedule

        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        prof = profile(activities=activities, schedule=schedule(wait=ns.warmup, warmup=1, active=args.steps, repeat=1), record_shapes=False)

        original = tt.BenchTrainer.train_step

        def stepped(self, *a, **k):
            out = original(self, *a, **k)
            prof.step()
            return out

        tt.BenchTrainer.train_step = stepped
        annotate_phases()
        prof.start()
        t0 = time.perf_counter()
        row = tt.run_length(target, args.length, ns, work, work / "vocab.safetensors", spec, tt.resolved_draft_config(draft_cfg, spec, draft_vocab), denv, target_fp8=args.target_fp8)
        prof.stop()
        print(json.dumps(row), f"{time.perf_counter() - t0:.1f}s", flush=True)
    key = "self_cuda_time_total" if device.type == "cuda" and args.sort == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=args.rows, max_name_column_width=70)
    print(table, file=sys.__stdout__)
    if args.trace:
        prof.export_chrome_trace(args.trace)
    if device.type == "cuda" and args.trace:
        for line in phases(args.trace):
            print(line, file=sys.__stdout__)


PHASES = ("target", "target signals", "draft forward", "draft backward", "clip", "optimizer")


def annotate_phases() -> None:
    """Names the step's phases in the trace (``record_function`` ranges on the host), by wrapping
    the functions the trainer calls for each, here rather than in the trainer."""
    from torch.profiler import record_function

    from eaglet_engine import trainer as trainer_mod
    from eaglet_engine.ttt import TTTObjective

    def wrap(owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapped(*a, **k):
            with record_function(label):
                return original(*a, **k)

        setattr(owner, name, wrapped)

    wrap(tt.Trainer, "target_forward", "target")
    wrap(trainer_mod, "target_signals", "target signals")
    wrap(TTTObjective, "forward", "draft forward")
    wrap(torch.Tensor, "backward", "draft backward")
    wrap(tt.Trainer, "clip_and_step", "clip")  # the norm (and its scaling pass where it has one)
    wrap(torch.optim.AdamW, "step", "optimizer")


# Kernel names that mark GEMMs and attention kernels.
GEMM_KERNELS = ("nvjet", "gemm", "cutlass", "xmma")
ATTENTION_KERNELS = ("sdpa", "flash", "fmha")


def kernel_phases(events: list[dict]):
    """kernel -> (the phase whose range was open on the host when it was launched, its launch
    event or None): on the launching thread; else, for a thread with no range of its own, the main
    thread's "draft backward" if open (the autograd engine's thread launches the backward);
    everything else is the data thread's (the audio encoder, a batch ahead) or the trainer's glue."""
    # Launches through the runtime (cudaLaunchKernel) or the driver (cuLaunchKernel: Triton's, cuBLAS's)
    launches = {e["args"]["correlation"]: e for e in events if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    ranges = [e for e in events if e.get("cat") == "user_annotation" and e.get("name") in PHASES]
    range_threads = {r["tid"] for r in ranges}

    def phase(kernel: dict) -> tuple[str, dict | None]:
        launch = launches.get(kernel.get("args", {}).get("correlation"))
        if launch is None:
            return "unattributed", None
        ts = launch["ts"]
        open_ = [r for r in ranges if r["ts"] <= ts <= r["ts"] + r["dur"]]
        same = [r for r in open_ if r["tid"] == launch["tid"]]
        if not same and launch["tid"] not in range_threads:
            same = [r for r in open_ if r["name"] == "draft backward"]
        pick = min(same, key=lambda r: r["dur"], default=None)
        return (pick["name"] if pick else "outside the phases (data thread, glue)"), launch

    return phase


def by_phase(events: list[dict], step: list[dict]) -> list[str]:
    """The step's kernels grouped by phase (``kernel_phases``): count, GPU time, GEMM time and the
    idle time before them."""
    phase = kernel_phases(events)
    rows: dict[str, list] = {}
    prev_end = None
    for e in step:
        r = rows.setdefault(phase(e)[0], [0, 0.0, 0.0, 0.0])
        r[0] += 1
        r[1] += e["dur"]
        if any(s in e["name"].lower() for s in GEMM_KERNELS):
            r[2] += e["dur"]
        if prev_end is not None:
            r[3] += max(0.0, e["ts"] - prev_end)
        prev_end = e["ts"] + e["dur"]
    out = ["  by phase (kernels attributed by the host range open at their launch):", "    phase                                   kernels   busy ms   GEMM ms   idle before them ms"]
    for name in [*PHASES, *sorted(set(rows) - set(PHASES))]:
        if name in rows:
            n, busy, gemm, idle = rows[name]
            out.append(f"    {name:38} {n:8d} {busy / 1000:9.1f} {gemm / 1000:9.1f} {idle / 1000:9.1f}")
    return out


def phases(trace_path: str) -> list[str]:
    """GPU time of one (pipelined) step from a Chrome trace: its kernels from the end of one
    optimizer step to the end of the next, its idle gaps, and its time by phase."""
    events = json.loads(Path(trace_path).read_text())["traceEvents"]
    k = sorted((e for e in events if e.get("cat") == "kernel"), key=lambda e: e["ts"])
    adam = [i for i, e in enumerate(k) if "multi_tensor" in e["name"]]
    ends = [i for j, i in enumerate(adam) if j + 1 == len(adam) or adam[j + 1] - i > 50]
    if len(ends) < 2:
        return ["fewer than two steps in the trace"]
    step = k[ends[0] + 1 : ends[1] + 1]

    out = [f"one step: {len(step)} kernels, GPU busy {sum(e['dur'] for e in step) / 1000:.1f} ms, span {(step[-1]['ts'] + step[-1]['dur'] - step[0]['ts']) / 1000:.1f} ms"]
    out += idle_gaps(events, step)
    out += by_phase(events, step)
    out += by_op(events, step)
    return out


def by_op(events: list[dict], step: list[dict], top: int = 12) -> list[str]:
    """The step's kernels other than GEMMs and attention, grouped by the innermost host op that
    launched them (the aten op, or the compiled graph), per phase: where the non-GEMM time goes."""
    import bisect

    phase = kernel_phases(events)
    ops: dict[int, list[dict]] = {}
    for e in events:
        if e.get("cat") == "cpu_op" and e.get("dur", 0) > 0:
            ops.setdefault(e["tid"], []).append(e)
    starts = {}
    for tid, lst in ops.items():
        lst.sort(key=lambda e: e["ts"])
        starts[tid] = [e["ts"] for e in lst]

    def op_of(launch: dict) -> str:
        lst, st = ops.get(launch["tid"], []), starts.get(launch["tid"], [])
        i = bisect.bisect_right(st, launch["ts"])
        inner = outer = None
        for e in reversed(lst[max(0, i - 400) : i]):
            if e["ts"] + e["dur"] >= launch["ts"]:
                inner = inner or e["name"]
                if e["name"].startswith("autograd::engine::evaluate_function: "):
                    outer = e["name"].split(": ", 1)[1]
        if inner is None:
            return "(no host op)"
        return f"{outer} > {inner}" if outer and outer != inner else inner

    table: dict[str, dict[str, list]] = {}
    for k in step:
        name = k["name"].lower()
        if any(s in name for s in (*GEMM_KERNELS, *ATTENTION_KERNELS)):
            continue
        ph, launch = phase(k)
        op = op_of(launch) if launch else "?"
        r = table.setdefault(ph, {}).setdefault(op, [0, 0.0])
        r[0] += 1
        r[1] += k["dur"]
    out = ["  kernels other than GEMM and attention, by the host op that launched them (ms, kernels):"]
    for ph in [*PHASES, *sorted(set(table) - set(PHASES))]:
        if ph not in table:
            continue
        rows = sorted(table[ph].items(), key=lambda kv: -kv[1][1])
        total = sum(v[1] for v in table[ph].values())
        out.append(f"    {ph}: {total / 1000:.1f} ms")
        for op, (n, dur) in rows[:top]:
            out.append(f"      {dur / 1000:6.2f} {n:5d}  {op[:90]}")
    return out


def idle_gaps(events: list[dict], step: list[dict], top: int = 8) -> list[str]:
    """The step's longest GPU idle gaps, each with the kernels around it and the CUDA runtime
    calls (e.g. a stream synchronisation, a blocking copy) that cover most of it on the host:
    what the GPU waited for."""
    runtime = [e for e in events if e.get("cat") in ("cuda_runtime", "cuda_driver") and e.get("dur", 0) > 0]
    gaps = []
    for a, b in zip(step, step[1:]):
        gap = b["ts"] - (a["ts"] + a["dur"])
        if gap > 0:
            gaps.append((gap, a, b))
    gaps.sort(key=lambda g: -g[0])
    total = sum(g[0] for g in gaps)
    out = [f"  GPU idle inside the step: {total / 1000:.1f} ms in {len(gaps)} gaps; the longest:"]
    for gap, a, b in gaps[:top]:
        start, end = a["ts"] + a["dur"], b["ts"]
        covering = sorted(
            (e for e in runtime if e["ts"] < end and e["ts"] + e["dur"] > start and min(end, e["ts"] + e["dur"]) - max(start, e["ts"]) > 0.5 * gap),
            key=lambda e: -e["dur"],
        )
        calls = ", ".join(f"{e['name']} {e['dur'] / 1000:.2f} ms" for e in covering[:3]) or "no runtime call covers it (the host was busy elsewhere)"
        out.append(f"    {gap / 1000:6.2f} ms after {a['name'][:60]!r} before {b['name'][:60]!r}: {calls}")
    return out


if __name__ == "__main__":
    main()
