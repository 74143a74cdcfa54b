"""The experiment table of docs/perf/quality.md from ``draft_experiment.py`` output folders.

    node tools/python.mjs tools/bench/quality/summarise.py RUN_DIR...

One Markdown row per run: eval acc_0 at every eval step, the last eval's acc_i, the bigram
baseline, and the first eval step at which acc_0 beat it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(run: Path) -> tuple[list[int], str]:
    summary = json.loads((run / "summary.json").read_text())
    evals = summary["eval"]
    steps = [e["step"] for e in evals]
    last = evals[-1]
    accs = [v for k, v in sorted(last.items()) if k.startswith("acc_")]
    bigram = last["bigram_acc"]
    beat = next((e["step"] for e in evals if e["acc_0"] > e["bigram_acc"]), None)
    change = " ".join(summary["set"] + [f"variant {v}" for v in summary["variant"]]) or "(engine as is)"
    cells = [run.name, change, *(f"{e['acc_0']:.2f}" for e in evals), " / ".join(f"{a:.2f}" for a in accs), f"{bigram:.2f}", str(beat or "never")]
    return steps, "| " + " | ".join(cells) + " |"


def main() -> None:
    runs = [Path(p) for p in sys.argv[1:]]
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
