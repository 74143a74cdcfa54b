"""Training curves as a picture: loss and acc_i per step, train and eval (matplotlib, optional)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def plot_curves(rows: Sequence[dict[str, Any]], out: Path, ttt_steps: int) -> Path | None:
    """Writes a two-panel PNG (objective; acc_0..acc_k) from metrics.jsonl rows. Returns None when
    matplotlib is not installed (the numbers stay in metrics.jsonl)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plot (metrics.jsonl has the numbers)")
        return None
    train = [r for r in rows if r["split"] == "train"]
    evals = [r for r in rows if r["split"] == "eval"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.5))
    if train:
        ax_loss.plot([r["step"] for r in train], [r.get("loss") for r in train], label="train objective")
    for i in range(ttt_steps):
        key = f"ploss_{i}"
        if evals and key in evals[0]:
            ax_loss.plot([r["step"] for r in evals], [r[key] for r in evals], "o--", markersize=3, label=f"eval ploss_{i}", alpha=0.7)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss")
    ax_loss.legend(fontsize=7)
    colors = plt.get_cmap("viridis")
    for i in range(ttt_steps):
        color = colors(i / max(1, ttt_steps - 1))
        key = f"acc_{i}"
        if train and key in train[0]:
            ax_acc.plot([r["step"] for r in train], [r[key] for r in train], color=color, label=f"train acc_{i}")
        if evals and key in evals[0]:
            ax_acc.plot([r["step"] for r in evals], [r[key] for r in evals], "o--", color=color, label=f"eval acc_{i}", markersize=3)
    bigram = [r for r in evals if "bigram_acc" in r]
    if bigram:
        # The trivial baseline acc_0 must beat (see baseline.py).
        ax_acc.plot([r["step"] for r in bigram], [r["bigram_acc"] for r in bigram], ":", color="red", label="eval bigram table (baseline for acc_0)")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy (draft argmax = target argmax)")
    ax_acc.set_ylim(0, 1)
    ax_acc.set_title("acc_i per TTT step")
    ax_acc.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
