"""The bench chart: accuracy (with its 95% interval) against cost per item, the Pareto frontier joined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..formatting import count


def draw(summary: dict[str, Any], path: Path) -> Path:
    """Draw ``summary``'s arms into a PNG at ``path`` (matplotlib, Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis = summary["cost_axis"]
    label = "cost per item (USD)" if axis == "cost_per_item_usd" else \
        "tokens per item, prompt + completion (dollar cost unknown or zero)"
    arms = [a for a in summary["arms"] if a.get(axis) is not None and a.get("accuracy") is not None]
    figure, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for arm in arms:
        x, y = arm[axis], 100 * arm["accuracy"]
        errors = [[y - 100 * arm["accuracy_low"]], [100 * arm["accuracy_high"] - y]]
        colour = "tab:red" if arm.get("pareto") else "tab:blue"
        ax.errorbar([x], [y], yerr=errors, fmt="o", color=colour, capsize=4, markersize=7)
        ax.annotate(arm["name"], (x, y), textcoords="offset points", xytext=(7, 5), fontsize=9)
    frontier = sorted((a[axis], 100 * a["accuracy"]) for a in arms if a.get("pareto"))
    if len(frontier) > 1:
        ax.plot([p[0] for p in frontier], [p[1] for p in frontier], "--", color="tab:red", linewidth=1,
                label="Pareto frontier")
        ax.legend(loc="upper left")
    ax.set_xlabel(label)
    ax.set_ylabel("accuracy (%), 95% Wilson interval")
    ax.set_ylim(-2, 102)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.set_title(f"{summary['dataset']}: {count(summary['items'], 'item')}, scored by {summary['scoring']}")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
