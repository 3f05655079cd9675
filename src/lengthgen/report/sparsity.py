"""The sparsity view (Golowich et al.): accuracy per (run, k) and length bin, and its figure."""

from __future__ import annotations

from collections import defaultdict

from matplotlib import colormaps
from matplotlib.figure import Figure

from ..errors import InputError
from ..store import ResultsStore
from .plots import metric_label, panels, plot_series, run_labels, shade_training_range
from .tables import Series, bin_columns, collect


def _k_train(s: Series, all_series: list[Series]) -> int:
    """The largest k trained on: the task's `k` parameter, else the largest k evaluated."""
    k = s.run.config["task"].get("params", {}).get("k")
    if k is None:
        return max(o.k for o in all_series if o.run is s.run)
    return max(k) if isinstance(k, list) else int(k)


def sparsity_table(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_greedy"
                   ) -> tuple[list[str], list[list]]:
    """Columns: `run`, `K_train`, `k`, one per length bin; one row per (run, k)."""
    series = collect(store, experiment, metric, by_k=True)
    columns, bins = bin_columns(series, ["run", "K_train", "k"])
    return columns, [[s.label, _k_train(s, series), s.k, *(s.cells.get(b) for b in bins)] for s in series]


def plot_accuracy_vs_length(store: ResultsStore, experiment: str | None, metric: str) -> Figure:
    """One panel per run: `metric` against length bin, one line per k (Golowich et al.'s figure; k
    in viridis, dark to light, which reads in grey too)."""
    series = collect(store, experiment, metric, by_k=True)
    if not series:
        raise InputError(f"no per-k {metric!r} results for experiment {experiment!r}")
    by_run = defaultdict(list)
    for s in series:
        by_run[s.label].append(s)
    ks = sorted({s.k for s in series})
    cmap, k_span = colormaps["viridis"], max(ks[-1] - ks[0], 1)
    fig, axes = panels(len(by_run))
    titles = run_labels([run_series[0].run for run_series in by_run.values()])
    for ax, title, run_series in zip(axes, titles, by_run.values()):
        shade_training_range(ax, run_series[0].run)
        plot_series(ax, run_series, [cmap(0.9 * (s.k - ks[0]) / k_span) for s in run_series],
                     [f"k={s.k}" for s in run_series])
        ax.set(title=title, xlabel="length bin", ylabel=metric_label(metric))
        ax.legend(fontsize=7)
    return fig


