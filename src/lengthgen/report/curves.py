"""Learning curves per length bin (`train.curve_bins`): does extrapolation keep improving after
the training lengths saturate? One panel per configuration, one line per bin, the mean over seeds
with the seeds' range shaded."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib import colormaps

from ..store import DONE_STATUSES, ResultsStore
from .claims import configuration_id, experiment_point
from .plots import panels, save_figure

CURVE_NAME = re.compile(r"(?P<metric>\w+)@(?P<lo>\d+)-(?P<hi>\d+)$")


def bin_curves(store: ResultsStore, experiment: str | None) -> dict[str, dict[tuple[int, int], dict[int, list[float]]]]:
    """{configuration label: {bin: {step: [value per seed]}}} of every run with curves per bin."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in store.runs(experiment=experiment):
        if run["status"] not in DONE_STATUSES:
            continue
        label = experiment_point(run["name"]) or configuration_id(run["config"])
        for point in store.curves(run["key"]):
            match = CURVE_NAME.match(point["name"])
            if match:
                out[label][int(match["lo"]), int(match["hi"])][point["step"]].append(point["value"])
    return out


def plot_curves(store: ResultsStore, experiment: str | None, path: str | Path) -> Path | None:
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
    return save_figure(fig, path)
