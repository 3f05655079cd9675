"""The claims' statistics from stored metric rows (lengthgen.stats): the sparsity slope table.

Input: metric rows as the store returns them, plain dicts with keys run_key, lo, hi, grp, metric,
value, count, name, seed (and task, positional, ... which are ignored). Runs are grouped by their
name without the seed ("K6 seed=1" -> "K6"); each group is one K_train, its seeds the replicates.
"""

from __future__ import annotations

import re

import numpy as np

from ..groups import group_values
from ..stats import LEARNED, RESAMPLES, SlopeResult, mean_interval, slope_interval

SEED_IN_NAME = re.compile(r"\s*\bseed=\S+")


def experiment_point(name: str) -> str:
    """A run's name without its seed: the point of the experiment that seeds replicate."""
    return SEED_IN_NAME.sub("", name or "").strip()


def seed_means(rows: list[dict], metric: str = "exact_match_greedy", *, resamples: int = RESAMPLES,
               seed: int = 0) -> list[dict]:
    """Mean over seeds with its 95% interval per (experiment point, bin, group), for tables and bands.

    Returns plain dicts: point, lo, hi, grp, seeds, mean, ci_lo, ci_hi (sorted by point, grp, bin)."""
    cells: dict = {}
    for r in rows:
        if r["metric"] == metric and r["count"] and np.isfinite(r["value"]):
            cells.setdefault((experiment_point(r["name"]), r["grp"] or "", r["lo"], r["hi"]), []).append(r)
    out = []
    for (point, grp, lo, hi), rs in sorted(cells.items()):
        est = mean_interval([r["value"] for r in rs], [r["count"] for r in rs], resamples=resamples, seed=seed)
        out.append(dict(point=point, lo=lo, hi=hi, grp=grp, seeds=len(rs), mean=est.value, ci_lo=est.lo, ci_hi=est.hi))
    return out


def _per_k(rows: list[dict], metric: str) -> dict:
    """{point: {run_key: {(lo, hi): {k: (value, count)}}}} over the rows of `metric` with a k group."""
    out: dict = {}
    for r in rows:
        k = group_values(r["grp"] or "").get("k")
        if r["metric"] != metric or k is None or r["count"] is None or not np.isfinite(r["value"]):
            continue
        point = out.setdefault(experiment_point(r["name"]), {})
        point.setdefault(r["run_key"], {}).setdefault((r["lo"], r["hi"]), {})[k] = (r["value"], r["count"])
    return out


def sparsity_slopes(rows: list[dict], metric: str = "exact_match_greedy", *, train_bin: tuple[int, int] | None = None,
                    learned: float = LEARNED, resamples: int = RESAMPLES, seed: int = 0) -> list[dict]:
    """Per (experiment point, bin beyond training): the slope of accuracy against k with its interval.

    The training bin is `train_bin`, by default each point's lowest bin (the presets list the
    in-distribution bin first); bins beyond training are those starting after it ends. A k counts
    for a seed only where that seed's training-bin accuracy is >= `learned`. Seeds missing a bin
    or a k are left out of that bin. Returns plain dicts, sorted by K_train then bin:
    point, k_train, lo, hi, seeds, slope, slope_lo, slope_hi, drop_slope(_lo, _hi), spearman(_lo, _hi),
    holds (slope interval below 0), ks, mean_acc, learned_seeds (per k)."""
    table = []
    for point, runs in _per_k(rows, metric).items():
        bins = sorted({b for per_bin in runs.values() for b in per_bin})
        tb = tuple(train_bin) if train_bin is not None else bins[0]
        ks = sorted({k for per_bin in runs.values() for per_k in per_bin.values() for k in per_k})
        for lo, hi in (b for b in bins if b[0] > tb[1]):
            keys = [key for key, per_bin in runs.items()
                    if all(k in per_bin.get(tb, {}) and k in per_bin.get((lo, hi), {}) for k in ks)]
            if not keys:
                continue
            acc = np.array([[runs[key][(lo, hi)][k][0] for k in ks] for key in keys])
            count = np.array([[runs[key][(lo, hi)][k][1] for k in ks] for key in keys])
            train_acc = np.array([[runs[key][tb][k][0] for k in ks] for key in keys])
            train_count = np.array([[runs[key][tb][k][1] for k in ks] for key in keys])
            res = slope_interval(ks, acc, count, train_acc, train_count=train_count, learned=learned,
                                 resamples=resamples, seed=seed)
            table.append(_row(point, max(ks), lo, hi, len(keys), res))
    return sorted(table, key=lambda r: (r["k_train"], r["point"], r["lo"]))


def _row(point: str, k_train: int, lo: int, hi: int, seeds: int, res: SlopeResult) -> dict:
    row = dict(point=point, k_train=k_train, lo=lo, hi=hi, seeds=seeds, holds=res.holds, ks=list(res.ks),
               mean_acc=list(res.mean_acc), learned_seeds=list(res.learned_seeds))
    for name in ("slope", "drop_slope", "spearman"):
        est = getattr(res, name)
        row.update({name: est.value, f"{name}_lo": est.lo, f"{name}_hi": est.hi})
    return row


def slope_table(table: list[dict]) -> tuple[list[str], list[list]]:
    """`sparsity_slopes` as report columns and rows (the claim holds where the interval is below 0)."""
    columns = ["run", "bin", "seeds", "learned k (seeds)", "slope in k [95% CI]", "Spearman rho [95% CI]",
               "falls with k"]
    rows = [[r["point"], f"[{r['lo']},{r['hi']}]", r["seeds"],
             " ".join(f"{k}:{n}" for k, n in zip(r["ks"], r["learned_seeds"])),
             f"{r['slope']:+.3f} [{r['slope_lo']:+.3f}, {r['slope_hi']:+.3f}]",
             f"{r['spearman']:+.2f} [{r['spearman_lo']:+.2f}, {r['spearman_hi']:+.2f}]",
             "yes" if r["holds"] else "no"] for r in table]
    return columns, rows


def format_sparsity_slopes(table: list[dict]) -> str:
    """Markdown table of `sparsity_slopes`: one line per (point, bin)."""
    lines = ["| run | bin | seeds | learned k (seeds) | slope of accuracy in k [95% CI] | Spearman rho [95% CI] | "
             "falls with k |", "| --- | --- | ---: | --- | --- | --- | --- |"]
    for r in table:
        learned = " ".join(f"{k}:{n}" for k, n in zip(r["ks"], r["learned_seeds"]))
        lines.append(f"| {r['point']} | [{r['lo']},{r['hi']}] | {r['seeds']} | {learned} | "
                     f"{r['slope']:+.3f} [{r['slope_lo']:+.3f}, {r['slope_hi']:+.3f}] | "
                     f"{r['spearman']:+.2f} [{r['spearman_lo']:+.2f}, {r['spearman_hi']:+.2f}] | "
                     f"{'yes' if r['holds'] else 'no'} |")
    return "\n".join(lines)
