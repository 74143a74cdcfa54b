"""Side-by-side table and curves of eaglet and reference (AngelSlim) runs.

    node tools/python.mjs tools/bench/quality/reference/compare.py --out curves.png \\
        --run eaglet=runs/eaglet-s0 --run eaglet=runs/eaglet-s1 --run angelslim=runs/angelslim-s0 ...

Each run folder holds metrics.jsonl (rows ``{"split": "train"|"eval", "step", "acc_0", ...}``: the
format of eaglet's trainer, which train_reference.py also writes) and, optionally, bench.json (an
``eaglet bench`` report of that run's draft). Runs with the same label are seeds of one trainer:
the table gives mean ± half the range over them, per eval step and draft position, and the mean
acceptance length of the bench.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def read_rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]


def spread(values: list[float]) -> str:
    mean = sum(values) / len(values)
    half = (max(values) - min(values)) / 2
    return f"{mean:.2f} ± {half:.2f}" if len(values) > 1 else f"{mean:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, metavar="LABEL=DIR")
    p.add_argument("--out", required=True, help="curves PNG")
    args = p.parse_args()

    runs: dict[str, list[Path]] = defaultdict(list)
    for item in args.run:
        label, _, folder = item.partition("=")
        runs[label].append(Path(folder))

    print("| trainer | seeds | step | " + " | ".join(f"eval acc_{i}" for i in range(5)) + " | acceptance length |")
    print("|---|---:|---:|" + "---:|" * 6)
    for label, folders in runs.items():
        evals = defaultdict(lambda: defaultdict(list))  # step -> acc key -> values
        for folder in folders:
            for row in read_rows(folder):
                if row["split"] == "eval":
                    for i in range(5):
                        evals[row["step"]][f"acc_{i}"].append(row[f"acc_{i}"])
        lengths = [
            json.loads((f / "bench.json").read_text())["eagle3"]["spec"]["meanAcceptanceLength"]
            for f in folders
            if (f / "bench.json").is_file()
        ]
        last = max(evals)
        for step in sorted(evals):
            accs = " | ".join(spread(evals[step][f"acc_{i}"]) for i in range(5))
            length = spread(lengths) if step == last and lengths else ""
            print(f"| {label} | {len(folders)} | {step} | {accs} | {length} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (train_ax, eval_ax) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    colours = dict(zip(runs, ["tab:blue", "tab:red", "tab:green", "tab:purple"]))
    for label, folders in runs.items():
        for n, folder in enumerate(folders):
            rows = read_rows(folder)
            train = [r for r in rows if r["split"] == "train"]
            for i, style in ((0, "-"), (2, "--"), (4, ":")):
                train_ax.plot(
                    [r["step"] for r in train],
                    [r[f"acc_{i}"] for r in train],
                    style,
                    color=colours[label],
                    alpha=0.8,
                    label=f"{label} acc_{i}" if n == 0 else None,
                )
            last = [r for r in rows if r["split"] == "eval"][-1]
            positions = sorted(int(k[4:]) for k in last if k.startswith("acc_"))
            eval_ax.plot(
                positions,
                [last[f"acc_{i}"] for i in positions],
                marker="o",
                color=colours[label],
                alpha=0.8,
                label=f"{label} (step {last['step']})" if n == 0 else None,
            )
    train_ax.set_title("train acc_i (mean over each log window)")
    train_ax.set_xlabel("step")
    eval_ax.set_title("eval acc_i at the last eval, by draft position i (draft-dev)")
    eval_ax.set_xlabel("draft position i")
    eval_ax.set_xticks(range(5))
    for ax in (train_ax, eval_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    train_ax.set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
