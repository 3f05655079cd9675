"""Figures: metric against length bin, with bands over seeds. Plot functions return matplotlib
Figures and the report saves them (`save_figures`: PNG, PDF, SVG). No pyplot: no global figure
state, no display needed. Lines take Okabe and Ito's palette, which readers with any common
colour-vision deficiency tell apart; axes name metrics in words and legends name runs by scheme
and name."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..errors import InputError
from ..records import Run
from ..store import ResultsStore, atomic_write
from .claims import LABELS_EXCLUDED, experiment_point
from .tables import Series, bin_label, collect

# Okabe & Ito (2008), "Color Universal Design"; yellow last: it is faint on white.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
FORMATS = ("png", "pdf", "svg")
METRIC_LABELS = {"exact_match_greedy": "exact match (greedy)", "exact_match_tf": "exact match (teacher-forced)",
                 "token_acc": "token accuracy", "exact_match_greedy_oracle": "exact match (greedy, the task's IDs)",
                 "position_acc": "position-ID accuracy", "loss": "loss (nats)", "lr": "learning rate",
                 "id_exact_match": "in-distribution exact match"}


def metric_label(metric: str) -> str:
    """An axis label: `exact match (greedy)` for `exact_match_greedy`, other names with spaces."""
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def palette(n: int) -> list[str]:
    return [OKABE_ITO[i % len(OKABE_ITO)] for i in range(n)]


def run_labels(runs: list[Run]) -> list[str]:
    """Legend entries for runs: the name without its seed, else the scheme; runs that would share an
    entry also get the config fields they differ in (`d_model=32`), never a key."""
    labels = [experiment_point(r.name) or r.positional or "run" for r in runs]
    counts = Counter(labels)
    fields = [_flat({k: v for k, v in r.config.items() if k not in LABELS_EXCLUDED}) for r in runs]
    out = []
    for label, run, own in zip(labels, runs, fields):
        if counts[label] == 1:
            out.append(label)
            continue
        others = [f for lab, f in zip(labels, fields) if lab == label]
        differing = [k for k in sorted({k for f in others for k in f}) if len({repr(f.get(k)) for f in others}) > 1]
        shown = [f"{k.rsplit('.', 1)[-1]}={own.get(k)}" for k in differing[:2]] or [f"seed={run.seed}"]
        out.append(f"{label} ({', '.join(shown)})")
    return out


def _flat(config: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in config.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


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


def shade_training_range(ax, run: Run):
    train = run.config["task"].get("train_lengths")
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


def save_figures(fig: Figure, stem: str | Path, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """`fig` as `<stem>.png` (and `.pdf`, `.svg`: whichever `formats` names)."""
    stem = Path(stem)
    return [save_figure(fig, stem.with_name(f"{stem.name}.{fmt}")) for fmt in formats]


def check_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InputError(f"figure formats {', '.join(formats) or '(none)'}: expected some of {', '.join(FORMATS)}")
    return formats


def plot_bins(store: ResultsStore, experiment: str | None, metric: str) -> Figure:
    """One panel per task, its schemes on shared axes: `metric` against length bin, one line per
    configuration, labelled by scheme and run name."""
    series = collect(store, experiment, metric, by_k=False)
    if not series:
        raise InputError(f"no {metric!r} results for experiment {experiment!r}")
    by_task = defaultdict(list)
    for s in series:
        by_task[s.run.task].append(s)
    fig, axes = panels(len(by_task))
    for ax, (task, task_series) in zip(axes, sorted(by_task.items())):
        task_series.sort(key=lambda s: (s.run.positional or "", s.label))
        shade_training_range(ax, task_series[0].run)
        schemes = [s.run.positional or "" for s in task_series]
        labels = [label if label.startswith(scheme) else f"{scheme}: {label}"
                  for scheme, label in zip(schemes, run_labels([s.run for s in task_series]))]
        plot_series(ax, task_series, palette(len(task_series)), labels)
        ax.set(title=task, xlabel="length bin", ylabel=metric_label(metric))
        ax.legend(fontsize=7)
    return fig
