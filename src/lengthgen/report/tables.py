"""The report's shared pieces: results pooled over seeds per configuration and length bin, and
tables printed with rich or as Markdown.

Seeds of one configuration are pooled: two runs are seeds of each other when their stored configs
agree on everything but `seed` (and the labels `name`, `experiment`, `device`). A `Pooled` value is
the mean over seeds, with the sample standard deviation and the seed count when there is more than
one. Only runs that reached an outcome (finished or diverged) are reported.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, fields

import numpy as np
from rich.console import Console
from rich.table import Table

from ..config import judged_bin
from ..groups import group_values
from ..records import Run
from ..stats import mean_interval
from ..store import DONE_STATUSES, ResultsStore, short_key
from .claims import configuration_id, experiment_point

Bin = tuple[int, int]


@dataclass(frozen=True)
class Pooled:
    """A metric over the seeds of one configuration: the mean, its 95% bootstrap interval over seeds
    and examples (`stats.mean_interval`), the sample std over seeds and each seed's value."""

    mean: float
    std: float  # sample std over seeds (ddof=1); NaN for a single seed
    n: int
    lo: float = math.nan
    hi: float = math.nan
    values: tuple[float, ...] = ()

    @classmethod
    def of(cls, results: list[tuple[float, int]]) -> Pooled:
        """From one (value, example count) per seed."""
        values = [float(v) for v, _ in results]
        finite = all(math.isfinite(v) and 0 <= v <= 1 for v in values) and all(c for _, c in results)
        ci = mean_interval(values, [c for _, c in results]) if finite else None
        return cls(float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
                   len(values), ci.lo if ci else math.nan, ci.hi if ci else math.nan, tuple(values))

    def __str__(self):
        ci = f" [{self.lo:.2f}, {self.hi:.2f}]" if math.isfinite(self.lo) else ""
        return f"{self.mean:.3f}{ci}" + ("" if self.n == 1 else f" (n={self.n})")


@dataclass
class Series:
    """One configuration's metric per length bin, pooled over its seeds (for one k, in the sparsity view)."""

    run: Run  # the configuration's lowest-seed run, for its config and denormalised columns
    label: str  # the run name (unnamed: the scheme, or the run's key prefix for one seed), unique among the series
    k: int | None
    cells: dict[Bin, Pooled]


def _k_of(grp: str) -> int | None:
    """The sparse tasks' k of a breakdown group (None for the pooled row and other variables)."""
    return group_values(grp).get("k")


def collect(store: ResultsStore, experiment: str | None, metric: str, *, by_k: bool) -> list[Series]:
    """Series of `metric` for the whole bin (by_k=False) or for each `k=` group (by_k=True)."""
    runs = {r.key: r for r in store.runs(experiment=experiment) if r.status in DONE_STATUSES}
    config_id = {key: configuration_id(r.config) for key, r in runs.items()}
    values: dict[tuple[str, int | None], dict[Bin, list[tuple[float, int]]]] = defaultdict(lambda: defaultdict(list))
    for m in store.metrics(experiment=experiment):
        k = _k_of(m.grp)
        if m.run_key in runs and m.metric == metric and (k is not None if by_k else m.grp == ""):
            values[config_id[m.run_key], k][m.bin].append((m.value, m.count))

    first_run = {}
    for key, run in sorted(runs.items(), key=lambda kv: kv[1].seed or 0):
        first_run.setdefault(config_id[key], run)
    seeds = Counter(config_id.values())
    # A run's name (seeds pooled); unnamed, its scheme when seeds are pooled, else its key.
    named = {cid: experiment_point(run.name) or (run.positional if seeds[cid] > 1 else short_key(run.key))
             for cid, run in first_run.items()}
    label_count = Counter(named.values())
    # Differently configured runs that share a label stay apart, told apart by their first run's key.
    labels = {cid: label if label_count[label] == 1 else f"{label} #{short_key(first_run[cid].key)}"
              for cid, label in named.items()}
    series = [Series(first_run[cid], labels[cid], k, {b: Pooled.of(v) for b, v in sorted(per_bin.items())})
              for (cid, k), per_bin in values.items()]
    return sorted(series, key=lambda s: (s.label, s.k or 0))


def bin_label(b: Bin) -> str:
    return f"[{b[0]},{b[1]}]"


RUN_FIELDS = frozenset(f.name for f in fields(Run))


def _field(run: Run, name: str):
    """A run column (task, positional, seed, ...) or a dotted config path (model.n_layers)."""
    if name in RUN_FIELDS:
        return getattr(run, name)
    value = run.config
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def bin_columns(series: list[Series], head: list[str]) -> tuple[list[str], list[Bin]]:
    bins = sorted({b for s in series for b in s.cells})
    return [*head, *map(bin_label, bins)], bins


def results_table(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_greedy",
                  group_by: tuple[str, ...] = ("task", "positional")) -> tuple[list[str], list[list]]:
    """Columns: the group_by fields, `run`, one per length bin. Bin cells are `Pooled` values or None."""
    series = collect(store, experiment, metric, by_k=False)
    columns, bins = bin_columns(series, [*group_by, "run"])
    rows = [[*(str(_field(s.run, g)) for g in group_by), s.label, *(s.cells.get(b) for b in bins)]
            for s in series]
    return columns, sorted(rows, key=lambda r: r[:len(group_by) + 1])


def diverged_table(store: ResultsStore, experiment: str | None = None) -> tuple[list[str], list[list]]:
    """Runs that diverged: they have no metrics, so no other table shows them."""
    runs = store.runs(experiment=experiment, status="diverged")
    return (["run", "task", "positional", "seed", "diverged at step"],
            [[r.name or r.key, r.task, r.positional, r.seed, r.steps_done] for r in runs])


def unfinished_table(store: ResultsStore, experiment: str | None = None) -> tuple[list[str], list[list]]:
    """Runs that failed, and stale runs (left `running` by a process that is gone): rerunning their
    command resumes them from their checkpoints. Live runs are not listed."""
    runs = store.runs(experiment=experiment, status="failed") + store.stale_runs(experiment)
    return (["run", "task", "positional", "seed", "status", "host", "process", "last heartbeat"],
            [[r.name or r.key, r.task, r.positional, r.seed,
              "failed" if r.status == "failed" else "stale", r.host, r.pid,
              r.heartbeat] for r in runs])


def cell_text(value) -> str:
    return "–" if value is None else str(value)


def print_table(columns: list[str], rows: list[list], title: str | None = None, console: Console | None = None):
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="right" if c.startswith("[") else "left")
    for row in rows:
        table.add_row(*map(cell_text, row))
    (console or Console()).print(table)


def markdown_table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |",
             "| " + " | ".join("---:" if c.startswith("[") else "---" for c in columns) + " |"]
    lines += ["| " + " | ".join(cell_text(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return "\n".join(lines)




HEADLINE_METRICS = ("exact_match_greedy", "exact_match_tf", "loss")  # the first a run has is its headline


def runs_table(store: ResultsStore, experiment: str | None = None, task: str | None = None,
               status: str | None = None) -> tuple[list[str], list[list]]:
    """One row per run: key, name, experiment, task, scheme, seed, status, steps and its headline
    metric on the judged bin (the config's own, else the longest)."""
    runs = [r for r in store.runs(experiment=experiment, status=status) if task is None or r.task == task]
    values: dict[str, dict] = defaultdict(dict)
    for m in store.metrics(keys=[r.key for r in runs]):
        if m.grp == "":
            values[m.run_key][m.metric, m.lo, m.hi] = m.value
    rows = []
    for r in runs:
        rows.append([r.key, r.name or "–", experiment or r.experiment or "–", r.task, r.positional,
                     r.seed, r.status, r.steps_done, _headline(r, values[r.key])])
    return ["key", "name", "experiment", "task", "scheme", "seed", "status", "steps", "headline"], rows


def _headline(run: Run, values: dict) -> str | None:
    bins = sorted({(lo, hi) for _, lo, hi in values})
    if not bins:
        return None
    lo, hi = judged_bin(bins, run.config["task"].get("judged_bin"))
    for metric in HEADLINE_METRICS:
        if (metric, lo, hi) in values:
            return f"{metric} {bin_label((lo, hi))} {values[metric, lo, hi]:.3f}"
    return None
