"""Tables and plots of per-length-bin results read from the results store.

Seeds of one configuration are pooled: two runs are seeds of each other when their stored configs
agree on everything but `seed` (and the labels `name`, `experiment`, `device`). Cells show the mean
over seeds, with the sample standard deviation and the seed count when there is more than one.
Only runs that reached an outcome (finished or diverged) are reported.

Sparse tasks (Golowich et al.) report per-k groups (`grp` = `k=1`, `k=2`, ...); when those are
present `report` adds the sparsity view: accuracy per (run, k) and length bin.

Tasks with a C-RASP prediction (crasp.library.predict) run with APE (with or without the positional
regulariser) or NoPE get the view of Huang et al. (2025): per task and scheme, the bins, the
predicted and observed outcome and whether they agree, plus a figure with one panel per task. For
a protocol experiment (protocol.py) its rows are the protocol's decisions, averaged over the
chosen configuration's successful seeds.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure  # no pyplot: no global figure state, no display needed
from rich.console import Console
from rich.table import Table

from .store import DONE_STATUSES, ResultsStore

Bin = tuple[int, int]


@dataclass(frozen=True)
class Cell:
    mean: float
    std: float  # sample std over seeds (ddof=1); NaN for a single seed
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Cell:
        return cls(float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                   len(values))

    def __str__(self):
        return f"{self.mean:.3f}" if self.n == 1 else f"{self.mean:.3f} ± {self.std:.3f} (n={self.n})"


@dataclass
class Series:
    """One configuration's metric per length bin, pooled over its seeds (for one k, in the sparsity view)."""

    run: dict  # the configuration's lowest-seed run, for its config and denormalised columns
    label: str  # the run name (or a config hash when unnamed), unique among the series
    k: int | None
    cells: dict[Bin, Cell]


def _config_id(run: dict) -> str:
    cfg = {k: v for k, v in run["config"].items() if k not in ("seed", "name", "experiment", "device", "data_workers")}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]


def _k_of(grp: str) -> int | None:
    return int(grp[2:]) if re.fullmatch(r"k=\d+", grp) else None


def collect(store: ResultsStore, experiment: str | None, metric: str, *, by_k: bool) -> list[Series]:
    """Series of `metric` for the whole bin (by_k=False) or for each `k=` group (by_k=True)."""
    runs = {r["key"]: r for r in store.runs(experiment=experiment) if r["status"] in DONE_STATUSES}
    config_id = {key: _config_id(r) for key, r in runs.items()}
    values: dict[tuple[str, int | None], dict[Bin, list[float]]] = defaultdict(lambda: defaultdict(list))
    for m in store.metrics(experiment=experiment):
        k = _k_of(m["grp"])
        if m["run_key"] in runs and m["metric"] == metric and (k is not None if by_k else m["grp"] == ""):
            values[config_id[m["run_key"]], k][m["lo"], m["hi"]].append(m["value"])

    first_run = {}
    for key, run in sorted(runs.items(), key=lambda kv: kv[1]["seed"] or 0):
        first_run.setdefault(config_id[key], run)
    named = {cid: run["name"] or cid for cid, run in first_run.items()}
    label_count = Counter(named.values())
    # Differently configured runs that share a name stay apart, told apart by their config hash.
    labels = {cid: label if label_count[label] == 1 else f"{label} #{cid}" for cid, label in named.items()}
    series = [Series(first_run[cid], labels[cid], k, {b: Cell.of(v) for b, v in sorted(per_bin.items())})
              for (cid, k), per_bin in values.items()]
    return sorted(series, key=lambda s: (s.label, s.k or 0))


def _bin_label(b: Bin) -> str:
    return f"[{b[0]},{b[1]}]"


def _field(run: dict, name: str):
    """A run column (task, positional, seed, ...) or a dotted config path (model.n_layers)."""
    if name in run:
        return run[name]
    value = run["config"]
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _grid(series: list[Series], head: list[str]) -> tuple[list[str], list[Bin]]:
    bins = sorted({b for s in series for b in s.cells})
    return [*head, *map(_bin_label, bins)], bins


def results_table(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_greedy",
                  group_by: tuple[str, ...] = ("task", "positional")) -> tuple[list[str], list[list]]:
    """Columns: the group_by fields, `run`, one per length bin. Bin cells are `Cell`s or None."""
    series = collect(store, experiment, metric, by_k=False)
    columns, bins = _grid(series, [*group_by, "run"])
    rows = [[*(str(_field(s.run, g)) for g in group_by), s.label, *(s.cells.get(b) for b in bins)]
            for s in series]
    return columns, sorted(rows, key=lambda r: r[:len(group_by) + 1])


def _k_train(s: Series, all_series: list[Series]) -> int:
    """The largest k trained on: the task's `k` parameter, else the largest k evaluated."""
    k = s.run["config"]["task"].get("params", {}).get("k")
    if k is None:
        return max(o.k for o in all_series if o.run is s.run)
    return max(k) if isinstance(k, list) else int(k)


def sparsity_table(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_greedy"
                   ) -> tuple[list[str], list[list]]:
    """Columns: `run`, `K_train`, `k`, one per length bin; one row per (run, k)."""
    series = collect(store, experiment, metric, by_k=True)
    columns, bins = _grid(series, ["run", "K_train", "k"])
    return columns, [[s.label, _k_train(s, series), s.k, *(s.cells.get(b) for b in bins)] for s in series]


def _text(value) -> str:
    return "–" if value is None else str(value)


def print_table(columns: list[str], rows: list[list], title: str | None = None, console: Console | None = None):
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right" if c.startswith("[") else "left")
    for row in rows:
        table.add_row(*map(_text, row))
    (console or Console()).print(table)


def markdown_table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |",
             "| " + " | ".join("---:" if c.startswith("[") else "---" for c in columns) + " |"]
    lines += ["| " + " | ".join(_text(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _plot_series(ax, series: list[Series], colours, labels):
    for s, colour, label in zip(series, colours, labels):
        bins = list(s.cells)
        x = [(lo + hi) / 2 for lo, hi in bins]
        mean = np.array([s.cells[b].mean for b in bins])
        ax.plot(x, mean, "o-", color=colour, label=label)
        std = np.array([s.cells[b].std if s.cells[b].n > 1 else 0.0 for b in bins])
        if std.any():
            ax.fill_between(x, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=colour, alpha=0.15)
    bins = sorted({b for s in series for b in s.cells})
    ax.set_xticks([(lo + hi) / 2 for lo, hi in bins], [_bin_label(b) for b in bins], fontsize=8)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)


def _shade_training_range(ax, run: dict):
    train = run["config"]["task"].get("train_lengths")
    if train:
        ax.axvspan(train[0], train[1], color="0.85", zorder=0, label="train lengths")


def _figure(n_panels: int) -> tuple[Figure, list]:
    ncols = min(n_panels, 3)
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(4.5 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def plot_accuracy_vs_length(store: ResultsStore, experiment: str | None, metric: str, path: str | Path) -> Path:
    """One panel per run: `metric` against length bin, one line per k (Golowich et al.'s figure)."""
    series = collect(store, experiment, metric, by_k=True)
    if not series:
        raise ValueError(f"no per-k {metric!r} results for experiment {experiment!r}")
    by_run = defaultdict(list)
    for s in series:
        by_run[s.label].append(s)
    ks = sorted({s.k for s in series})
    cmap, k_span = colormaps["viridis"], max(ks[-1] - ks[0], 1)
    fig, axes = _figure(len(by_run))
    for ax, (label, run_series) in zip(axes, by_run.items()):
        _shade_training_range(ax, run_series[0].run)
        _plot_series(ax, run_series, [cmap(0.9 * (s.k - ks[0]) / k_span) for s in run_series],
                     [f"k={s.k}" for s in run_series])
        ax.set(title=label, xlabel="length bin", ylabel=metric)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_bins(store: ResultsStore, experiment: str | None, metric: str, path: str | Path) -> Path:
    """One panel per task: `metric` against length bin, one line per (positional scheme, run)."""
    series = collect(store, experiment, metric, by_k=False)
    if not series:
        raise ValueError(f"no {metric!r} results for experiment {experiment!r}")
    by_task = defaultdict(list)
    for s in series:
        by_task[s.run["task"]].append(s)
    fig, axes = _figure(len(by_task))
    for ax, (task, task_series) in zip(axes, sorted(by_task.items())):
        task_series.sort(key=lambda s: (s.run["positional"] or "", s.label))
        _shade_training_range(ax, task_series[0].run)
        _plot_series(ax, task_series, colormaps["tab10"](np.arange(len(task_series)) % 10),
                     [f"{s.run['positional']}: {s.label}" for s in task_series])
        ax.set(title=task, xlabel="length bin", ylabel=metric)
        ax.legend(fontsize=7)
    return _save(fig, path)


# -- predicted vs observed length generalization (Huang et al. 2025, DESIGN §4.2) ---------------

GENERALIZES_AT = 0.9  # observed to generalize: mean metric on the longest bin >= this


def scheme_label(positional: str, positional_reg: float) -> str:
    return f"{positional}+reg {positional_reg:g}" if positional_reg else positional


def predicted_to_generalize(task: str, positional: str) -> bool | None:
    """The C-RASP prediction (crasp.library.predict) for APE (with or without the positional
    regulariser) and NoPE; None for other schemes and for tasks the library does not cover."""
    from .crasp.library import predict

    if positional not in ("ape", "nope"):
        return None
    try:
        prediction = predict(task)
    except ValueError:
        return None
    return prediction.ape if positional == "ape" else prediction.nope


@dataclass
class PredictionRow:
    task: str
    scheme: str
    positional: str
    chosen: str  # the protocol's chosen configuration and rule, or the run label
    seeds: str  # "successful/attempted" under the protocol, else the seed count
    run: dict  # a representative run (its config: training lengths)
    cells: dict[Bin, Cell]
    predicted: bool | None

    @property
    def longest_bin(self) -> Bin | None:
        return max(self.cells, key=lambda b: (b[1], b[0])) if self.cells else None

    @property
    def learned(self) -> bool:
        """Learned in distribution: mean on the first (training-length) bin >= GENERALIZES_AT. A
        model that never fit its training lengths says nothing about length generalization."""
        first = min(self.cells, key=lambda b: (b[0], b[1]), default=None)
        return first is not None and self.cells[first].mean >= GENERALIZES_AT

    @property
    def observed(self) -> bool | None:
        b = self.longest_bin
        return None if b is None or not self.learned else self.cells[b].mean >= GENERALIZES_AT

    @property
    def agrees(self) -> bool | None:
        if self.predicted is None or self.observed is None:
            return None
        return self.predicted == self.observed


def _protocol_rows(store: ResultsStore, experiment: str | None, metric: str) -> list[PredictionRow]:
    from .protocol import bin_values

    rows = []
    for entry in store.decisions(experiment):
        d = entry["decision"]
        seeds = d["seeds"]
        keys = seeds["successful"] or seeds["attempted"]
        overrides = " ".join(f"{k.split('.')[-1]}={v}" for k, v in d["chosen"]["overrides"].items())
        shown = f"{len(seeds['successful'])}/{len(seeds['attempted'])}" + ("" if seeds["successful"] else " (all shown)")
        cells = {b: Cell.of(v) for b, v in bin_values(store, keys, metric).items()}
        rows.append(PredictionRow(d["task"], scheme_label(d["positional"], d["positional_reg"]), d["positional"],
                                  f"{overrides} ({d['chosen']['rule']})", shown, store.get_run(keys[0]), cells,
                                  predicted_to_generalize(d["task"], d["positional"])))
    return rows


def prediction_rows(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_tf"
                    ) -> list[PredictionRow]:
    """One row per (task, scheme): from the protocol's decisions when the experiment has them
    (mean over its successful seeds), else one per configuration pooled over seeds. Only tasks and
    schemes with a prediction are listed."""
    rows = _protocol_rows(store, experiment, metric)
    if not rows:
        for s in collect(store, experiment, metric, by_k=False):
            reg = s.run["config"].get("train", {}).get("positional_reg", 0.0)
            n = max(c.n for c in s.cells.values())
            rows.append(PredictionRow(s.run["task"], scheme_label(s.run["positional"], reg), s.run["positional"],
                                      s.label, str(n), s.run, s.cells,
                                      predicted_to_generalize(s.run["task"], s.run["positional"])))
    rows = [r for r in rows if r.predicted is not None]
    return sorted(rows, key=lambda r: (r.task, r.scheme, r.chosen))


def _verdict(value: bool | None) -> str | None:
    return None if value is None else ("generalizes" if value else "fails")


def prediction_table(rows: list[PredictionRow]) -> tuple[list[str], list[list]]:
    """Columns: task, scheme, chosen, seeds, one per length bin, predicted, observed, agrees."""
    bins = sorted({b for r in rows for b in r.cells})
    columns = ["task", "scheme", "chosen", "seeds", *map(_bin_label, bins), "predicted", "observed", "agrees"]
    return columns, [[r.task, r.scheme, r.chosen, r.seeds, *(r.cells.get(b) for b in bins), _verdict(r.predicted),
                      _verdict(r.observed) if r.learned else "not learned",
                      None if r.agrees is None else ("yes" if r.agrees else "NO")]
                     for r in rows]


def prediction_caption(rows: list[PredictionRow], metric: str) -> str:
    longest = {r.longest_bin for r in rows if r.longest_bin}
    where = _bin_label(next(iter(longest))) if len(longest) == 1 else "its longest bin"
    agree = [r.agrees for r in rows if r.agrees is not None]
    return (f"{metric}: predicted (C-RASP; APE+reg uses the APE prediction) vs observed length generalization "
            f"(observed generalizes iff the mean on {where} is >= {GENERALIZES_AT:.0%}; rows whose first, "
            f"in-distribution bin is below {GENERALIZES_AT:.0%} are 'not learned' and not judged); "
            f"{sum(agree)}/{len(agree)} judged rows agree")


def plot_predictions(rows: list[PredictionRow], metric: str, path: str | Path) -> Path:
    """One panel per task: metric per bin, one line per scheme; the title gives the predictions
    (green: APE predicted to generalize, red: predicted to fail)."""
    by_task = defaultdict(list)
    for r in rows:
        by_task[r.task].append(r)
    fig, axes = _figure(len(by_task))
    for ax, (task, task_rows) in zip(axes, sorted(by_task.items())):
        _shade_training_range(ax, task_rows[0].run)
        series = [Series(r.run, r.scheme, None, r.cells) for r in task_rows]
        _plot_series(ax, series, colormaps["tab10"](np.arange(len(series)) % 10), [r.scheme for r in task_rows])
        ax.axhline(GENERALIZES_AT, color="0.4", ls=":", lw=1)
        ape, nope = predicted_to_generalize(task, "ape"), predicted_to_generalize(task, "nope")
        ax.set_title(f"{task}\npredicted: APE {_verdict(ape)}, NoPE {_verdict(nope)}", fontsize=9,
                     color="tab:green" if ape else "tab:red")
        ax.set(xlabel="length bin", ylabel=metric)
        ax.legend(fontsize=7)
    return _save(fig, path)


def report(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_greedy",
           out_dir: str | Path | None = None, markdown: bool = False, console: Console | None = None) -> list[Path]:
    """Print the tables (rich, or Markdown when `markdown`) and write the plots into out_dir.

    Runs with per-k groups get the sparsity table and plot; the other runs get the per-bin plot.
    With `markdown` and an out_dir, the Markdown (plots embedded) is also written to
    `<experiment>_<metric>.md` there. Returns the paths written.
    """
    console = console or Console()
    results, sparsity = results_table(store, experiment, metric), sparsity_table(store, experiment, metric)
    if not results[1] and not sparsity[1]:
        available = sorted({m["metric"] for m in store.metrics(experiment=experiment)})
        console.print(f"no finished runs with {metric!r} results" + (f" in experiment {experiment!r}"
                      if experiment else "") + (f"; metrics stored: {', '.join(available)}" if available else ""))
        return []
    tables = [(f"{metric} per length bin", results)]
    if sparsity[1]:
        tables.append((f"{metric} per k and length bin", sparsity))
    predictions = prediction_rows(store, experiment, metric)
    if predictions:
        tables.append((prediction_caption(predictions, metric), prediction_table(predictions)))

    paths = []
    stem = re.sub(r"[^\w.-]+", "_", f"{experiment or 'all'}_{metric}")
    if out_dir is not None:
        sparse_runs = {row[0] for row in sparsity[1]}
        run_column = results[0].index("run")
        if sparse_runs:
            paths.append(plot_accuracy_vs_length(store, experiment, metric, Path(out_dir) / f"{stem}_by_k.png"))
        if any(row[run_column] not in sparse_runs for row in results[1]):
            paths.append(plot_bins(store, experiment, metric, Path(out_dir) / f"{stem}_bins.png"))
        if predictions:
            paths.append(plot_predictions(predictions, metric, Path(out_dir) / f"{stem}_predictions.png"))
    if markdown:
        text = "\n\n".join([f"### {title}\n\n{markdown_table(*table)}" for title, table in tables]
                           + [f"![{p.stem}]({p.name})" for p in paths]) + "\n"
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        if out_dir is not None:
            paths.append(Path(out_dir) / f"{stem}.md")
            paths[-1].write_text(text)
    else:
        for title, (columns, rows) in tables:
            print_table(columns, rows, title, console)
    return paths
