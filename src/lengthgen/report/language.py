"""The language-modelling view (DESIGN §4.5): per run, the loss of each position bucket at each
evaluated context (and context-extension method), and a figure of loss against position bucket at
the longest context, one line per run."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib import colormaps

from ..store import DONE_STATUSES, ResultsStore
from .claims import experiment_point
from .plots import panels, save_figure
from .tables import bin_label

METRIC = "loss"


def _context_order(grp: str) -> tuple[int, str]:
    """ctx=1L < ctx=2L < ... ; the plain model before its extension methods."""
    ctx, _, ext = grp.partition(",")
    size = ctx.removeprefix("ctx=").removesuffix("L")
    return (int(size) if size.isdigit() else 10**9, ext)


def loss_cells(store: ResultsStore, experiment: str | None) -> dict:
    """{(run, context group): {(lo, hi): [loss per seed]}} over the runs' `loss` rows."""
    done = {r["key"] for r in store.runs(experiment=experiment) if r["status"] in DONE_STATUSES}
    cells: dict = defaultdict(lambda: defaultdict(list))
    for m in store.metrics(experiment=experiment):
        if m["run_key"] in done and m["metric"] == METRIC and m["grp"].startswith("ctx="):
            cells[experiment_point(m["name"]) or m["run_key"], m["grp"]][m["lo"], m["hi"]].append(m["value"])
    return cells


def loss_table(store: ResultsStore, experiment: str | None = None) -> tuple[list[str], list[list]]:
    """Columns: run, context, one per position bucket; cells: mean loss over seeds (nats)."""
    cells = loss_cells(store, experiment)
    buckets = sorted({b for per_bucket in cells.values() for b in per_bucket})
    rows = []
    for (run, grp), per_bucket in sorted(cells.items(), key=lambda kv: (kv[0][0], _context_order(kv[0][1]))):
        rows.append([run, grp.removeprefix("ctx="),
                     *(f"{np.mean(per_bucket[b]):.3f}" if b in per_bucket else None for b in buckets)])
    return ["run", "context", *map(bin_label, buckets)], rows


def plot_loss_by_position(store: ResultsStore, experiment: str | None, path: str | Path) -> Path:
    """Loss per position bucket at the longest plain context, one line per run."""
    cells = loss_cells(store, experiment)
    longest = max((g for _, g in cells if "," not in g), key=_context_order)
    series = {run: per_bucket for (run, grp), per_bucket in sorted(cells.items()) if grp == longest}
    fig, (ax,) = panels(1)
    colours = colormaps["tab10"](np.arange(len(series)) % 10)
    for colour, (run, per_bucket) in zip(colours, series.items()):
        buckets = sorted(per_bucket)
        ax.plot(range(len(buckets)), [np.mean(per_bucket[b]) for b in buckets], "o-", color=colour, label=run)
        ax.set_xticks(range(len(buckets)), [bin_label(b) for b in buckets], fontsize=8)
    ax.set(title=f"loss per position bucket at {longest.removeprefix('ctx=')}", xlabel="positions",
           ylabel="loss (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
