"""Figures: metric against length bin, with bands over seeds. No pyplot: no global figure state,
no display needed."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..store import ResultsStore, atomic_write
from .tables import Series, bin_label, collect


def plot_series(ax, series: list[Series], colours, labels):
    for s, colour, label in zip(series, colours, labels):
        bins = list(s.cells)
        x = [(lo + hi) / 2 for lo, hi in bins]
        mean = np.array([s.cells[b].mean for b in bins])
        ax.plot(x, mean, "o-", color=colour, label=label)
        lo, hi = np.array([s.cells[b].lo for b in bins]), np.array([s.cells[b].hi for b in bins])
        if np.isfinite(lo).all():  # the 95% interval over seeds and examples
            ax.fill_between(x, lo, hi, color=colour, alpha=0.15)
    bins = sorted({b for s in series for b in s.cells})
    ax.set_xticks([(lo + hi) / 2 for lo, hi in bins], [bin_label(b) for b in bins], fontsize=8)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)


def shade_training_range(ax, run: dict):
    train = run["config"]["task"].get("train_lengths")
    if train:
        ax.axvspan(train[0], train[1], color="0.85", zorder=0, label="train lengths")


def panels(n_panels: int) -> tuple[Figure, list]:
    ncols = min(n_panels, 3)
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(4.5 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def save_figure(fig: Figure, path: str | Path) -> Path:
    path = Path(path)  # the format from its suffix: the temporary file's name has another
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png"))


def plot_bins(store: ResultsStore, experiment: str | None, metric: str, path: str | Path) -> Path:
    """One panel per task: `metric` against length bin, one line per (positional scheme, run)."""
    series = collect(store, experiment, metric, by_k=False)
    if not series:
        raise ValueError(f"no {metric!r} results for experiment {experiment!r}")
    by_task = defaultdict(list)
    for s in series:
        by_task[s.run["task"]].append(s)
    fig, axes = panels(len(by_task))
    for ax, (task, task_series) in zip(axes, sorted(by_task.items())):
        task_series.sort(key=lambda s: (s.run["positional"] or "", s.label))
        shade_training_range(ax, task_series[0].run)
        plot_series(ax, task_series, colormaps["tab10"](np.arange(len(task_series)) % 10),
                     [f"{s.run['positional']}: {s.label}" for s in task_series])
        ax.set(title=task, xlabel="length bin", ylabel=metric)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


