"""Training curves as a picture (matplotlib, optional): one panel per kind of quantity, so every
axis holds comparable numbers.

1. the objective the optimizer minimises (the decayed sum of the TTT steps' losses), train and eval;
2. each TTT step's own loss ``ploss_i``, train and eval (one step's loss, not a sum);
3. ``acc_i``, train and eval, with the bigram table that acc_0 must beat.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def plot_curves(rows: Sequence[dict[str, Any]], out: Path, ttt_steps: int, subtitle: str = "") -> Path | None:
    """Writes a three-panel PNG from metrics.jsonl rows; ``subtitle`` says how the run was set up
    (draft origin, precision). Returns None when matplotlib is not installed (the numbers stay in
    metrics.jsonl)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plot (metrics.jsonl has the numbers)")
        return None
    fig = curves_figure(rows, ttt_steps, subtitle)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out


def curves_figure(rows: Sequence[dict[str, Any]], ttt_steps: int, subtitle: str = ""):
    """The figure ``plot_curves`` saves: panels (objective, ploss_i, acc_i), each line labelled
    "<split> <quantity>" (matplotlib must be importable)."""
    import matplotlib.pyplot as plt

    train = [r for r in rows if r["split"] == "train"]
    evals = [r for r in rows if r["split"] == "eval"]
    fig, (ax_obj, ax_ploss, ax_acc) = plt.subplots(1, 3, figsize=(17, 4.8))
    colors = plt.get_cmap("viridis")

    def curves(ax, key: str, label: str, color=None) -> None:
        for split, style in ((train, "-"), (evals, "o--")):
            points = [(r["step"], r[key]) for r in split if key in r]
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, style, color=color, markersize=3, label=f"{'train' if split is train else 'eval'} {label}")

    curves(ax_obj, "loss", "objective")
    ax_obj.set_title("objective: sum of decay^i x ploss_i")
    ax_obj.set_ylabel("loss (nats, summed over TTT steps)")
    for i in range(ttt_steps):
        color = colors(i / max(1, ttt_steps - 1))
        curves(ax_ploss, f"ploss_{i}", f"ploss_{i}", color)
        curves(ax_acc, f"acc_{i}", f"acc_{i}", color)
    ax_ploss.set_title("loss per TTT step")
    ax_ploss.set_ylabel("loss (nats per token)")
    bigram = [r for r in evals if "bigram_acc" in r]
    if bigram:
        # The trivial baseline acc_0 must beat (see baseline.py).
        ax_acc.plot([r["step"] for r in bigram], [r["bigram_acc"] for r in bigram], ":", color="red", label="eval bigram table (baseline for acc_0)")
    ax_acc.set_ylabel("accuracy (draft argmax = target argmax)")
    ax_acc.set_ylim(0, 1)
    ax_acc.set_title("acc_i per TTT step")
    for ax in (ax_obj, ax_ploss, ax_acc):
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=7, ncol=2 if ax is not ax_obj else 1)
    if subtitle:
        fig.suptitle(subtitle, fontsize=9)
    fig.tight_layout()
    return fig
