"""PNG plots for the report (matplotlib, headless). Every scenario uses these two shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on the bench machine
import matplotlib.pyplot as plt


def latency_cdf(
    path: Path,
    series: Mapping[str, Sequence[float]],
    title: str,
    xlabel: str = "latency (ms)",
    ylabel: str = "fraction of jobs",
) -> str:
    """Empirical CDF per series (log x axis when the spread is wide); returns the file name."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    wide = False
    for label, values in series.items():
        ordered = sorted(values)
        if not ordered:
            continue
        n = len(ordered)
        ax.step(ordered, [(i + 1) / n for i in range(n)], where="post", label=f"{label} (n={n})")
        wide = wide or (ordered[0] > 0 and ordered[-1] / ordered[0] > 50)
    if wide:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def bars(path: Path, values: Mapping[str, float], title: str, ylabel: str) -> str:
    """One bar per label, the value printed on top; returns the file name."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = list(values)
    heights = [values[k] for k in labels]
    drawn = ax.bar(range(len(labels)), heights, color="#4c78a8")
    ax.set_xticks(range(len(labels)), labels, rotation=15, ha="right", fontsize=8)
    ax.bar_label(drawn, labels=[f"{h:,.0f}" if h >= 100 else f"{h:,.1f}" for h in heights], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
