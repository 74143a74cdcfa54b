"""The figure of "What moves acceptance" (docs/perf/quality.md) from sweep.sh's run folders.

    node tools/python.mjs tools/bench/quality/sweep_plot.py RUNS OUT.png [NEW_RUNS]

Left: mean acceptance length (bench, 3 draft tokens) against epochs, constant lr and cosine.
Middle: against the draft vocabulary size, with each vocabulary's share of the bench answers'
tokens. Right: by training answers (regenerated at temperature 0, 0.7, 1.0; the original
transcripts; both), after 150 and 300 steps. NEW_RUNS, where given: the same rows on the
engine that trains the prompt's last row (main 73ccb6e on), drawn green. Runs named as in the doc's commands (base-4ep-const is constant lr at 4 epochs); seeds
1 and 2 (NAME-sN), where present, are drawn as points beside seed 0's line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EPOCHS = [1, 2, 4, 8]
VOCABS = [64, 128, 256, 1024, 4096]
BENCH_COVERAGE = {64: 0.674, 128: 0.848, 256: 1.0, 1024: 1.0, 4096: 1.0}  # vocab_coverage.py on prep/bench


def acceptance(run: Path) -> float | None:
    bench = run / "bench.json"
    return json.loads(bench.read_text())["eagle3"]["spec"]["meanAcceptanceLength"] if bench.is_file() else None


def series(runs: Path, names: list[str], xs: list[int], ax, label: str, color: str) -> None:
    points = [(x, acceptance(runs / n)) for x, n in zip(xs, names)]
    points = [(x, y) for x, y in points if y is not None]
    ax.plot([x for x, _ in points], [y for _, y in points], "o-", color=color, label=f"{label} (seed 0)")
    for x, name in zip(xs, names):
        seeds = [y for s in (1, 2) if (y := acceptance(runs / f"{name}-s{s}")) is not None]
        ax.plot([x] * len(seeds), seeds, "x", color=color)


def main() -> None:
    runs, out = Path(sys.argv[1]), Path(sys.argv[2])
    fig, (left, right, data) = plt.subplots(1, 3, figsize=(16, 4.4))
    const = [f"const-{e}ep" if e != 4 else "base-4ep-const" for e in EPOCHS]
    series(runs, const, EPOCHS, left, "constant lr 3e-3", "tab:blue")
    series(runs, [f"cos-{e}ep" for e in EPOCHS], EPOCHS, left, "cosine from 3e-3", "tab:orange")
    new = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    if new is not None:
        series(new, const, EPOCHS, left, "constant, engine training the first draft", "tab:green")
        series(new, [f"cos-{e}ep" for e in EPOCHS], EPOCHS, left, "cosine, engine training the first draft", "tab:olive")
    left.set(xscale="log", xticks=EPOCHS, xticklabels=[f"{e}\n({75 * e} steps)" for e in EPOCHS], xlabel="epochs of 600 records, batches of 8", ylabel="mean acceptance length (3 draft tokens)", title="epochs and schedule")
    vocab = [f"vocab{n}" if n != 4096 else "base-4ep-const" for n in VOCABS]
    series(runs, vocab, VOCABS, right, "300 steps", "tab:blue")
    twin = right.twinx()
    twin.plot(VOCABS, [BENCH_COVERAGE[n] for n in VOCABS], "--", color="gray", label="bench answer tokens covered")
    twin.set(ylabel="share of bench answer tokens in the draft vocabulary", ylim=(0, 1.05))
    right.set(xscale="log", xticks=VOCABS, xticklabels=[str(n) for n in VOCABS], xlabel="draft vocabulary size (240 distinct answer tokens)", title="draft vocabulary")
    answers = [("T=0", "const-2ep", "base-4ep-const"), ("T=0.7", "regen-t0.7-2ep", "regen-t0.7"), ("T=1.0", "regen-t1.0-2ep", "regen-t1.0"), ("original", "original-2ep", "original"), ("both", "mixed-1ep", "mixed")]
    bars = [(runs, -0.27, 150, "tab:gray", ""), (runs, 0.0, 300, "tab:blue", "")]
    if new is not None:
        bars.append((new, 0.27, 300, "tab:green", ", engine training the first draft"))
    for folder, offset, steps, color, engine in bars:
        names = [a[1] if steps == 150 else a[2] for a in answers]
        xs = [i + offset for i in range(len(answers))]
        heights = [acceptance(folder / n) or 0 for n in names]
        data.bar(xs, heights, width=0.27, color=color, alpha=0.6, label=f"{steps} steps{engine} (seed 0)")
        for x, name in zip(xs, names):
            seeds = [y for s in (1, 2) if (y := acceptance(folder / f"{name}-s{s}")) is not None]
            data.plot([x] * len(seeds), seeds, "x", color="black")
    data.set_xticks(range(len(answers)), [a[0] for a in answers])
    data.set(xlabel="training answers (T: regenerated at that temperature)", title="training answers (regenerated, original, both)")
    for ax in (left, right, data):
        ax.minorticks_off()
        ax.set_ylim(1, 4)
        ax.grid(alpha=0.3)
    data.set_ylim(1, 4.9)
    data.legend(loc="upper left", fontsize=7)
    left.legend(loc="lower right", fontsize=8)
    lines, labels = right.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    right.legend(lines + more, labels + more_labels, loc="lower right", fontsize=8)
    fig.suptitle("eaglet bench on 120 held-out prompts, fixture target, CPU fp32 (x: seeds 1, 2)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
