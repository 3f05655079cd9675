"""The claims' statistics from stored metric rows (lengthgen.stats): the sparsity slope table and
the coupling gain table.

Input: metric rows as the store returns them (`records.MetricRow`: run_key, lo, hi, grp, metric,
value, count, name, seed; task, positional, ... are ignored). For the sparsity table runs
are grouped by their name without the seed ("K6 seed=1" -> "K6"); each group is one K_train, its
seeds the replicates. The coupling table reads each run's scheme from its stored config (the rows do
not carry it), and its replicates are the runs whose configs agree on everything but the seed.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache

import numpy as np

from ..groups import group_values
from ..records import MetricRow
from ..stats import LEARNED, RESAMPLES, Estimate, SlopeResult, gain_interval, mean_interval, slope_interval
from ..store import short_key
from ..tasks import make_task

SEED_IN_NAME = re.compile(r"\s*\bseed=\S+")


def experiment_point(name: str) -> str:
    """A run's name without its seed: the point of the experiment that seeds replicate."""
    return SEED_IN_NAME.sub("", name or "").strip()


def _point(row: MetricRow) -> str:
    """A metric row's experiment point; unnamed runs by their scheme."""
    return experiment_point(row.name) or row.positional or ""


def seed_means(rows: list[MetricRow], metric: str = "exact_match_greedy", *, resamples: int = RESAMPLES,
               seed: int = 0) -> list[dict]:
    """Mean over seeds with its 95% interval per (experiment point, bin, group), for tables and bands.

    Returns plain dicts: point, lo, hi, grp, seeds, mean, ci_lo, ci_hi (sorted by point, grp, bin)."""
    cells: dict = {}
    for r in rows:
        if r.metric == metric and r.count and np.isfinite(r.value):
            cells.setdefault((_point(r), r.grp or "", r.lo, r.hi), []).append(r)
    out = []
    for (point, grp, lo, hi), rs in sorted(cells.items()):
        est = mean_interval([r.value for r in rs], [r.count for r in rs], resamples=resamples, seed=seed)
        out.append(dict(point=point, lo=lo, hi=hi, grp=grp, seeds=len(rs), mean=est.value, ci_lo=est.lo, ci_hi=est.hi))
    return out


def _per_k(rows: list[MetricRow], metric: str) -> dict:
    """{point: {run_key: {(lo, hi): {k: (value, count)}}}} over the rows of `metric` with a k group."""
    out: dict = {}
    for r in rows:
        k = group_values(r.grp or "").get("k")
        if r.metric != metric or k is None or r.count is None or not np.isfinite(r.value):
            continue
        point = out.setdefault(_point(r), {})
        point.setdefault(r.run_key, {}).setdefault(r.bin, {})[k] = (r.value, r.count)
    return out


def sparsity_slopes(rows: list[MetricRow], metric: str = "exact_match_greedy", *, train_bin: tuple[int, int] | None = None,
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


def interval_text(value: float, lo: float, hi: float, digits: int = 3) -> str:
    """`+v [+lo, +hi]`; `–` where the estimate is undefined (no learned k, one seed), without the
    interval where only that is."""
    if not np.isfinite(value):
        return "–"
    text = f"{value:+.{digits}f}"
    return text + (f" [{lo:+.{digits}f}, {hi:+.{digits}f}]" if np.isfinite(lo) and np.isfinite(hi) else "")


def slope_table(table: list[dict]) -> tuple[list[str], list[list]]:
    """`sparsity_slopes` as report columns and rows (the claim holds where the interval is below 0)."""
    columns = ["run", "bin", "seeds", "learned k (seeds)", "slope in k [95% CI]", "Spearman rho [95% CI]",
               "falls with k"]
    rows = [[r["point"], f"[{r['lo']},{r['hi']}]", r["seeds"],
             " ".join(f"{k}:{n}" for k, n in zip(r["ks"], r["learned_seeds"])),
             interval_text(r["slope"], r["slope_lo"], r["slope_hi"]),
             interval_text(r["spearman"], r["spearman_lo"], r["spearman_hi"], 2),
             "yes" if r["holds"] else "no"] for r in table]
    return columns, rows


def format_sparsity_slopes(table: list[dict]) -> str:
    """Markdown table of `sparsity_slopes`: one line per (point, bin)."""
    lines = ["| run | bin | seeds | learned k (seeds) | slope of accuracy in k [95% CI] | Spearman rho [95% CI] | "
             "falls with k |", "| --- | --- | ---: | --- | --- | --- | --- |"]
    for r in table:
        learned = " ".join(f"{k}:{n}" for k, n in zip(r["ks"], r["learned_seeds"]))
        lines.append(f"| {r['point']} | [{r['lo']},{r['hi']}] | {r['seeds']} | {learned} | "
                     f"{interval_text(r['slope'], r['slope_lo'], r['slope_hi'])} | "
                     f"{interval_text(r['spearman'], r['spearman_lo'], r['spearman_hi'], 2)} | "
                     f"{'yes' if r['holds'] else 'no'} |")
    return "\n".join(lines)


# --- coupling / PPC: gain over the best plain scheme ----------------------------------------

LABELS_EXCLUDED = ("seed", "name", "experiment", "device", "data_workers")  # not part of a configuration
SCHEME_NAMES = {"nope": "NoPE", "ape": "APE", "rope": "RoPE", "fire": "FIRE", "t5": "T5", "alibi": "ALiBi",
                "abacus": "Abacus"}
PLAIN, COUPLED = "plain", "coupled"
NO_ESTIMATE = Estimate(np.nan, np.nan, np.nan)


def configuration_id(config: dict) -> str:
    """Hash of a stored config without its seed and labels: runs sharing it are seeds of each other."""
    cfg = {k: v for k, v in config.items() if k not in LABELS_EXCLUDED}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]


def coupling_scheme(config: dict) -> tuple[str, str] | None:
    """(PLAIN or COUPLED, scheme name) of a run from its stored config; None for a task without the
    `positions` switch (tasks.coupled) or one this version does not know.

    Plain: sequential IDs, named by the positional scheme (NoPE, APE, RoPE, FIRE). Coupled: the task's
    coupled IDs fed to APE ("coupling", Cho et al.'s), to another scheme ("coupling-RoPE"), or PPC
    (`model.predict_positions`: decoding with the IDs the position head predicts). Scalable-Softmax
    attention (`model.attention_scale: log_length`) adds "+SSMax" to either kind."""
    task, model = config["task"], config["model"]
    positions = _positions(task["name"], json.dumps(task.get("params", {}), sort_keys=True))
    if positions is None:
        return None
    scheme = SCHEME_NAMES.get(model["positional"], model["positional"])
    ssmax = "+SSMax" if model.get("attention_scale", "none") == "log_length" else ""
    if positions == "sequential":
        return PLAIN, scheme + ssmax
    if positions != "coupled":
        return None
    prefix = "PPC" if model.get("predict_positions") else "coupling"
    return COUPLED, (prefix if model["positional"] == "ape" else f"{prefix}-{scheme}") + ssmax


@lru_cache(maxsize=None)
def _positions(name: str, params_json: str) -> str | None:
    """A task's `positions` (its own default where the config left it out), built once per task and
    parameters rather than once per run; None for a task without the switch or unknown here."""
    try:
        return make_task(name, **json.loads(params_json)).params().get("positions")
    except ValueError:
        return None


def _task_identity(task: dict) -> tuple[str, str, tuple[int, int]]:
    """A task's name, its parameters other than `positions`, and its training lengths: plain and
    coupled runs are compared only where all three agree."""
    params = {k: v for k, v in task.get("params", {}).items() if k != "positions"}
    return task["name"], json.dumps(params, sort_keys=True), tuple(task["train_lengths"])


def _coupling_entries(configs: dict[str, dict]) -> dict:
    """{task identity: {(kind, scheme, configuration id): {run_key: seed}}} over the classified runs."""
    out: dict = {}
    for key, config in configs.items():
        scheme = coupling_scheme(config)
        if scheme is not None:
            entry = out.setdefault(_task_identity(config["task"]), {}).setdefault((*scheme, configuration_id(config)), {})
            entry[key] = config["seed"]
    return out


def _task_labels(identities) -> dict:
    """The task name, with its training lengths and parameters where two identities share a name."""
    names = [t[0] for t in identities]
    return {t: t[0] if names.count(t[0]) == 1 else f"{t[0]} {t[1]} train {list(t[2])}" for t in identities}


def _scheme_labels(entries: dict, names: dict[str, str]) -> dict:
    """Each entry's scheme name; a scheme run in several configurations adds its run name (or key prefix)."""
    schemes = [scheme for _, scheme, _ in entries]
    labels = {}
    for (kind, scheme, cid), runs in entries.items():
        first = min(runs, key=runs.get)
        point = experiment_point(names.get(first, "")) or short_key(first)
        labels[kind, scheme, cid] = scheme if schemes.count(scheme) == 1 else f"{scheme} [{point}]"
    return labels


def coupling_gains(rows: list[MetricRow], configs: dict[str, dict], metric: str = "exact_match_greedy", *,
                   resamples: int = RESAMPLES, seed: int = 0) -> list[dict]:
    """Per task, coupled scheme and bin beyond training: the gain of the scheme's mean `metric` over
    the best plain scheme's (`stats.gain_interval`), and for PPC the gap PPC - oracle (`<metric>_oracle`,
    the same runs decoding with the task's IDs; seeds paired).

    configs: {run_key: stored config} of the runs to judge (rows of other runs are ignored). Bins beyond
    training start after the task's longest training length; `multiple` is the bin's end over it (2x,
    4x). Only tasks with both plain and coupled runs appear. Returns plain dicts sorted by task,
    scheme, bin: task, scheme, lo, hi, multiple, seeds, mean, best_plain, best_plain_mean, gain,
    gain_lo, gain_hi, holds (gain interval above 0), oracle_gap, oracle_gap_lo, oracle_gap_hi (nan
    where there is no oracle)."""
    values: dict = {}
    for r in rows:
        if r.run_key in configs and r.grp == "" and r.count and np.isfinite(r.value):
            values.setdefault(r.run_key, {})[r.lo, r.hi, r.metric] = (r.value, r.count)
    names = {r.run_key: r.name for r in rows}
    tasks = {identity: entries for identity, entries in _coupling_entries(configs).items()
             if {kind for kind, _, _ in entries} == {PLAIN, COUPLED}}
    task_labels = _task_labels(tasks)
    table = []
    for identity, entries in tasks.items():
        labels = _scheme_labels(entries, names)
        plain = {labels[e]: runs for e, runs in entries.items() if e[0] == PLAIN}
        for entry, runs in entries.items():
            if entry[0] == COUPLED:
                gains = _gain_rows(runs, plain, values, metric, identity[2][1], resamples, seed)
                table += [(_scheme_order(entry[1]), dict(task=task_labels[identity], scheme=labels[entry], **r))
                          for r in gains]
    return [row for _, row in sorted(table, key=lambda t: (t[1]["task"], t[0], t[1]["scheme"], t[1]["lo"]))]


def _gain_rows(runs: dict[str, int], plain: dict[str, dict], values: dict, metric: str, train_hi: int,
               resamples: int, seed: int) -> list[dict]:
    """`coupling_gains`' numbers for one coupled scheme (runs: {run_key: seed}) against the plain
    schemes ({label: runs}), one dict per bin beyond training."""
    out = []
    bins = sorted({(lo, hi) for key in runs for lo, hi, m in values.get(key, {}) if m == metric and lo > train_hi})
    for lo, hi in bins:
        scheme = _seed_values(runs, values, (lo, hi, metric))
        refs = {label: v for label, rs in sorted(plain.items()) if (v := _seed_values(rs, values, (lo, hi, metric)))}
        if not refs:
            continue
        gain, best = gain_interval(scheme, refs, resamples=resamples, seed=seed)
        oracle = _seed_values(runs, values, (lo, hi, f"{metric}_oracle"))  # PPC runs store it
        # One reference: the paired seed bootstrap of PPC minus its oracle, over the same seeds.
        gap = (gain_interval(scheme, {"oracle": oracle}, resamples=resamples, seed=seed)[0]
               if oracle and sorted(oracle[0]) == sorted(scheme[0]) else NO_ESTIMATE)
        out.append(dict(lo=lo, hi=hi, multiple=hi / train_hi, seeds=len(scheme[0]), mean=float(np.mean(scheme[1])),
                        best_plain=best, best_plain_mean=float(np.mean(refs[best][1])), gain=gain.value,
                        gain_lo=gain.lo, gain_hi=gain.hi, holds=gain.above_zero, oracle_gap=gap.value,
                        oracle_gap_lo=gap.lo, oracle_gap_hi=gap.hi))
    return out


def _seed_values(runs: dict[str, int], values: dict, cell: tuple) -> tuple | None:
    """(seeds, values, counts) of the runs that have `cell` (lo, hi, metric), by seed (so that the
    bootstrap does not depend on the store's order); None when none has it."""
    have = sorted((key for key in runs if cell in values.get(key, {})), key=runs.get)
    if not have:
        return None
    return ([runs[k] for k in have], [values[k][cell][0] for k in have], [values[k][cell][1] for k in have])


def _scheme_order(scheme: str) -> tuple[bool, bool]:
    """Coupling before PPC, the APE-fed one ("coupling", "PPC") first in each (the presets' order)."""
    return scheme.startswith("PPC"), scheme not in ("coupling", "PPC")


def gain_table(table: list[dict]) -> tuple[list[str], list[list]]:
    """`coupling_gains` as report columns and rows (the claim holds where the gain interval is above 0)."""
    columns = ["task", "scheme", "bin", "x train", "seeds", "mean", "best plain (mean)", "gain [95% CI]",
               "gains", "PPC - oracle [95% CI]"]
    rows = [[r["task"], r["scheme"], f"[{r['lo']},{r['hi']}]", f"{r['multiple']:.3g}x", r["seeds"],
             f"{r['mean']:.3f}", f"{r['best_plain']} ({r['best_plain_mean']:.3f})",
             interval_text(r["gain"], r["gain_lo"], r["gain_hi"]), "yes" if r["holds"] else "no",
             interval_text(r["oracle_gap"], r["oracle_gap_lo"], r["oracle_gap_hi"])] for r in table]
    return columns, rows
