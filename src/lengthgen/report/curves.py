"""Training curves. `plot_training`: loss, learning rate and in-distribution exact match against
step, one line per run. `plot_curves`: learning curves per length bin (`train.curve_bins`): does
extrapolation keep improving after the training lengths saturate? One panel per configuration, one
line per bin, the mean over seeds with the seeds' range shaded."""

from __future__ import annotations

import math
import re
from collections import defaultdict

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..records import Run
from ..store import DONE_STATUSES, ResultsStore
from .claims import configuration_id
from .plots import metric_label, palette, panels, run_labels

CURVE_NAME = re.compile(r"(?P<metric>\w+)@(?P<lo>\d+)-(?P<hi>\d+)$")
TRAINING_CURVES = ("loss", "id_exact_match", "lr")
MAX_LEGEND = 12  # more configurations than this: no legend (it would cover the panel)


def _done_runs(store: ResultsStore, experiment: str | None) -> list[Run]:
    return [r for r in store.runs(experiment=experiment) if r.status in DONE_STATUSES]


def plot_training(store: ResultsStore, experiment: str | None) -> Figure | None:
    """One panel per training curve the runs stored (loss, in-distribution exact match, learning
    rate), one colour per configuration (its seeds share it, labelled once); None when no run
    stored any. Loss that spans decades is shown on a log scale."""
    labels = configuration_labels(_done_runs(store, experiment))
    colours = dict(zip(sorted(set(labels.values())), palette(len(set(labels.values())))))
    curves: dict[str, list[tuple[str, list, list]]] = defaultdict(list)
    for run, label in labels.items():
        points = defaultdict(lambda: ([], []))
        for p in store.curves(run):
            if p.name in TRAINING_CURVES:
                points[p.name][0].append(p.step)
                points[p.name][1].append(p.value)
        for name, (steps, values) in points.items():
            curves[name].append((label, steps, values))
    if not curves:
        return None
    names = [n for n in TRAINING_CURVES if n in curves]
    fig, axes = panels(len(names))
    for ax, name in zip(axes, names):
        lines, shown = sorted(curves[name]), set()
        for label, steps, values in lines:
            ax.plot(steps, values, color=colours[label], lw=1, alpha=0.8, label=None if label in shown else label)
            shown.add(label)
        ax.set(title=metric_label(name), xlabel="step", ylabel=metric_label(name),
               yscale="log" if name == "loss" and _spans_decades([v for _, _, vs in lines for v in vs]) else "linear")
        ax.grid(alpha=0.3)
        if len(shown) <= MAX_LEGEND:
            ax.legend(fontsize=7)
    return fig


def configuration_labels(runs: list[Run]) -> dict[str, str]:
    """{run key: its configuration's label}: seeds of one configuration share the label of its
    lowest seed."""
    first = {}
    for run in sorted(runs, key=lambda r: r.seed or 0):
        first.setdefault(configuration_id(run.config), run)
    label = dict(zip(first, run_labels(list(first.values()))))
    return {run.key: label[configuration_id(run.config)] for run in runs}


def _spans_decades(values: list[float]) -> bool:
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    return bool(positive) and max(positive) > 30 * min(positive)


def bin_curves(store: ResultsStore, experiment: str | None) -> dict[str, dict[tuple[int, int], dict[int, list[float]]]]:
    """{configuration label: {bin: {step: [value per seed]}}} of every run with curves per bin."""
    runs = _done_runs(store, experiment)
    label = configuration_labels(runs)
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        for point in store.curves(run.key):
            match = CURVE_NAME.match(point.name)
            if match:
                out[label[run.key]][int(match["lo"]), int(match["hi"])][point.step].append(
                    point.value)
    return out


def plot_curves(store: ResultsStore, experiment: str | None) -> Figure | None:
    """The learning curves per bin of an experiment's configurations; None when no run has any."""
    curves = bin_curves(store, experiment)
    if not curves:
        return None
    fig, axes = panels(len(curves))
    for ax, (label, by_bin) in zip(axes, sorted(curves.items())):
        colours = colormaps["viridis"](np.linspace(0, 0.9, len(by_bin)))
        for colour, ((lo, hi), by_step) in zip(colours, sorted(by_bin.items())):
            steps = sorted(by_step)
            values = [np.asarray(by_step[s]) for s in steps]
            ax.plot(steps, [v.mean() for v in values], color=colour, label=f"[{lo},{hi}]")
            ax.fill_between(steps, [v.min() for v in values], [v.max() for v in values], color=colour, alpha=0.2)
        ax.set(title=label, xlabel="step", ylabel="exact match", ylim=(-0.02, 1.02))
        ax.legend(fontsize=7, title="length bin", title_fontsize=7)
    return fig
