"""The tables of docs/perf/quality.md from ``draft_experiment.py`` output folders.

    node tools/python.mjs tools/bench/quality/summarise.py RUN_DIR...
    node tools/python.mjs tools/bench/quality/summarise.py --acceptance RUN_DIR...
    node tools/python.mjs tools/bench/quality/summarise.py --draft-log FILE...

Default ("Experiments"): one Markdown row per run: eval acc_0 at every eval step, the last eval's
acc_i, the bigram baseline, and the first eval step at which acc_0 beat it.

``--acceptance`` ("What moves acceptance", runs of ``sweep.sh``): the last eval's step and acc_i,
the bigram baseline, and from the run's bench.json the mean acceptance length and the acceptance
rate per draft position; the training and bench wall seconds.

``--draft-log`` (files of ``draft_log/sitecustomize.py``): how many draft tokens were accepted in
each request's first draft and in its later ones.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def change_of(summary: dict) -> str:
    return " ".join(summary["set"] + [f"variant {v}" for v in summary["variant"]]) or "(engine as is)"


def row(run: Path) -> tuple[list[int], str]:
    summary = json.loads((run / "summary.json").read_text())
    evals = summary["eval"]
    steps = [e["step"] for e in evals]
    last = evals[-1]
    accs = [v for k, v in sorted(last.items()) if k.startswith("acc_")]
    bigram = last["bigram_acc"]
    beat = next((e["step"] for e in evals if e["acc_0"] > e["bigram_acc"]), None)
    cells = [run.name, change_of(summary), *(f"{e['acc_0']:.2f}" for e in evals), " / ".join(f"{a:.2f}" for a in accs), f"{bigram:.2f}", str(beat or "never")]
    return steps, "| " + " | ".join(cells) + " |"


def acceptance_row(run: Path) -> str:
    summary = json.loads((run / "summary.json").read_text())
    last = summary["eval"][-1]
    accs = [v for k, v in sorted(last.items()) if k.startswith("acc_")]
    eagle3 = json.loads((run / "bench.json").read_text())["eagle3"]
    spec = eagle3["spec"]
    cells = [
        run.name,
        str(last["step"]),
        " / ".join(f"{a:.2f}" for a in accs),
        f"{last['bigram_acc']:.2f}",
        f"{spec['meanAcceptanceLength']:.2f}",
        " / ".join(f"{a:.2f}" for a in spec["acceptanceRatePerPosition"]),
        f"{summary['seconds']:.0f} + {eagle3['wallSeconds']:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def draft_log_rows(path: Path) -> list[str]:
    first, later = Counter(), Counter()
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        (first if entry["draft"] == 0 else later)[entry["accepted"]] += 1
    rows = []
    for name, counts in (("first draft of a request", first), ("later drafts", later)):
        total = sum(counts.values())
        mean = sum(a * n for a, n in counts.items()) / max(1, total)
        spread = ", ".join(f"{a}: {counts[a]}" for a in sorted(counts))
        rows.append(f"| {path} | {name} | {total} | {mean:.2f} | {spread} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--acceptance", action="store_true")
    mode.add_argument("--draft-log", action="store_true")
    p.add_argument("paths", nargs="+", type=Path)
    args = p.parse_args()
    runs = args.paths
    if args.draft_log:
        print("| log | drafts | count | mean accepted | drafts by tokens accepted |")
        print("|---|---|---:|---:|---|")
        for path in runs:
            print("\n".join(draft_log_rows(path)))
        return
    if args.acceptance:
        done = [r for r in runs if (r / "summary.json").is_file() and (r / "bench.json").is_file()]
        if not done:
            raise SystemExit("no run with summary.json and bench.json in the given folders")
        print("| run | steps | eval acc_0 .. acc_4 | bigram | acceptance length | accepted per position | seconds (train + bench) |")
        print("|---|---:|---|---:|---:|---|---:|")
        for run in done:
            print(acceptance_row(run))
        return
    rows = [row(r) for r in runs if (r / "summary.json").is_file()]
    if not rows:
        raise SystemExit("no summary.json in the given folders")
    steps = rows[0][0]
    print("| run | change | " + " | ".join(f"acc_0 @{s}" for s in steps) + " | last acc_0..k | bigram | beats bigram at |")
    print("|" + "---|" * (len(steps) + 5))
    for run_steps, line in rows:
        if run_steps != steps:
            raise SystemExit("runs with different eval steps cannot share a table")
        print(line)


if __name__ == "__main__":
    main()
