"""`plot-bench`: the benchmark report as a figure (PNG at the report's `files.plot`).

Three panels: throughput of each run (with the speedup), request latency (mean, p50, p90), and the
Eagle3 acceptance rate per draft position (with the mean acceptance length, +1 stated).
"""

from __future__ import annotations

from pathlib import Path

from .errors import EngineError


def run(report: dict, stop) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = (report.get("files") or {}).get("plot")
    if not out:
        raise EngineError("the report names no files.plot to write", code="EAGLET_CONFIG_INVALID")
    runs = [r for r in (report.get("baseline"), report.get("eagle3")) if r]
    spec = (report.get("eagle3") or {}).get("spec")
    fig, axes = plt.subplots(1, 3 if spec else 2, figsize=(13 if spec else 9, 3.8))
    colors = {"baseline": "#7f8c8d", "eagle3": "#2e86de"}

    ax = axes[0]
    ax.bar([r["mode"] for r in runs], [r["throughput"] for r in runs], color=[colors[r["mode"]] for r in runs])
    for i, r in enumerate(runs):
        ax.text(i, r["throughput"], f"{r['throughput']:.1f}", ha="center", va="bottom")
    title = "throughput (output tok/s)"
    if report.get("speedup"):
        title += f"\nspeedup {report['speedup']:.2f}x"
    ax.set_title(title)

    ax = axes[1]
    width = 0.38
    stats = ["mean", "p50", "p90"]
    for j, r in enumerate(runs):
        xs = [i + (j - (len(runs) - 1) / 2) * width for i in range(3)]
        ax.bar(xs, [r["latency"][s] for s in stats], width, label=r["mode"], color=colors[r["mode"]])
    ax.set_xticks(range(3), stats)
    ax.set_title("request latency (s)")
    ax.legend()

    if spec:
        ax = axes[2]
        rates = spec["acceptanceRatePerPosition"]
        ax.bar(range(len(rates)), rates, color=colors["eagle3"])
        ax.set_ylim(0, 1)
        ax.set_xticks(range(len(rates)))
        ax.set_xlabel("draft position")
        ax.set_title(f"acceptance per draft position\nmean acceptance length {spec['meanAcceptanceLength']:.2f}\n(= 1 + accepted / drafts)", fontsize=10)

    cfg = report["config"]
    fig.suptitle(
        f"{report['target']} on {report['backend']} ({report['machine']['device']}), "
        f"{cfg['numSpecTokens']} spec tokens, temperature {cfg['temperature']}",
        fontsize=10,
    )
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return {"plot": out}
