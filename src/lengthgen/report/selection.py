"""Selection rules, for cells (task x scheme) with several runs: configurations x seeds.

Huang et al. plotted one number per formal language and scheme, from a grid of unseeded runs; the
only longer-length data in their code are the plotted bins, so the number is most likely the best
run chosen on the test bin. Which run one reports changes the verdict, so every rule is named:
- **best run**: the highest judged-bin accuracy on the test draw (their rule; selected on the test
  bin, so optimistic);
- **held-out**: the configuration with the best mean on the judged bin's validation draw (fresh
  strings, `eval.validation_examples`), then the mean over its seeds on the test draw;
- **success rate**: the share of runs at >= 0.9 on the judged bin, with Wilson's interval.
Per scheme, each rule's agreement with the prediction and a threshold-free statistic, the AUC of the
prediction against the observed judged-bin accuracy over cells, beside the same on Huang et al.'s
published numbers. Languages of their Figure 1 and the others (counter languages) are tallied apart.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import flat_fields, judged_bin
from ..groups import VALIDATION
from ..stats import (GENERALIZES, GENERALIZES_, NOT_LEARNED, Estimate, agreement, auc_interval, huang_verdict,
                     mean_interval, success_interval)
from ..records import Run
from ..store import ResultsStore, atomic_write
from .claims import LABELS_EXCLUDED, configuration_id
from .predictions import predicted_to_generalize, scheme_label
from .published import FIGURE_1, published

BEST, HELD_OUT, THEIRS = "best run (selected on the test bin)", "held-out selection", "Huang et al."


@dataclass(frozen=True)
class RunResult:
    """One run of a cell: its configuration, seed, and accuracy (value, examples) on the first bin,
    on the judged bin's test draw and (None without one) on its validation draw."""

    key: str
    configuration: str
    seed: int
    first: tuple[float, int]
    judged: tuple[float, int]
    validation: float | None


@dataclass
class SelectionCell:
    task: str
    scheme: str
    positional: str
    predicted: bool | None
    runs: list[RunResult]
    labels: dict[str, str]  # configuration id -> what sets it apart within the cell

    @property
    def figure_1(self) -> bool:
        return self.task in FIGURE_1

    @cached_property
    def best(self) -> RunResult:
        return max(self.runs, key=lambda r: (r.judged[0], r.first[0], -r.seed))

    @property
    def best_verdict(self) -> str:
        return huang_verdict([self.best.first[0]], [self.best.judged[0]])

    @cached_property
    def chosen(self) -> str | None:
        """The configuration the held-out rule picks: the best mean on the validation draw (the
        first listed on a tie); the only one where there is one; None without validation draws."""
        by_config = defaultdict(list)
        for r in self.runs:
            by_config[r.configuration].append(r.validation)
        if len(by_config) == 1:
            return next(iter(by_config))
        if any(v is None for values in by_config.values() for v in values):
            return None
        return max(sorted(by_config, key=self.labels.get), key=lambda c: np.mean(by_config[c]))

    @cached_property
    def held_out(self) -> list[RunResult]:
        return [r for r in self.runs if r.configuration == self.chosen]

    @cached_property
    def held_out_estimate(self) -> Estimate | None:
        runs = self.held_out
        return mean_interval([r.judged[0] for r in runs], [r.judged[1] for r in runs]) if runs else None

    @cached_property
    def held_out_verdict(self) -> str | None:
        runs = self.held_out
        return huang_verdict([r.first[0] for r in runs], [r.judged[0] for r in runs]) if runs else None

    @cached_property
    def success(self) -> Estimate:
        return success_interval(sum(r.judged[0] >= GENERALIZES for r in self.runs), len(self.runs))

    @property
    def published(self) -> tuple[float, float, float] | None:
        return published(self.task, self.scheme)

    @property
    def published_verdict(self) -> str | None:
        values = self.published
        return None if values is None else huang_verdict([values[0] / 100], [values[-1] / 100])


def _config_labels(configs: dict[str, dict]) -> dict[str, str]:
    """Each configuration named by the fields in which the cell's configurations differ."""
    flat = {cid: flat_fields({k: v for k, v in c.items() if k not in LABELS_EXCLUDED + ("resolved",)})
            for cid, c in configs.items()}
    fields = set().union(*flat.values())
    differing = sorted(f for f in fields if len({json.dumps(d.get(f)) for d in flat.values()}) > 1)
    return {cid: ",".join(f"{f.split('.')[-1]}={d.get(f)}" for f in differing) or "one configuration"
            for cid, d in flat.items()}


def selection_cells(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_tf"
                    ) -> list[SelectionCell]:
    """One cell per (task, scheme) that has a prediction, from the finished runs with results."""
    runs = {r.key: r for r in store.runs(experiment=experiment, status="finished")}
    values: dict[str, dict] = defaultdict(dict)
    for m in store.metrics(experiment=experiment):
        if m.run_key in runs and m.metric == metric and m.grp in ("", VALIDATION):
            values[m.run_key][m.grp, m.lo, m.hi] = (m.value, m.count)
    grouped: dict[tuple, list[Run]] = defaultdict(list)
    for key, run in runs.items():
        reg = run.config.get("train", {}).get("positional_reg", 0.0)
        grouped[run.task, scheme_label(run.positional, reg), run.positional].append(run)
    cells = []
    for (task, scheme, positional), members in sorted(grouped.items()):
        predicted = predicted_to_generalize(task, positional)
        results = [r for r in (_run_result(run, values[run.key]) for run in members) if r is not None]
        if predicted is None or not results:
            continue
        configs = {configuration_id(run.config): run.config for run in members}
        cells.append(SelectionCell(task, scheme, positional, predicted, results, _config_labels(configs)))
    return cells


def _run_result(run: Run, values: dict) -> RunResult | None:
    bins = sorted((lo, hi) for grp, lo, hi in values if grp == "")
    if not bins:
        return None
    task = run.config["task"]
    judged = judged_bin(bins, task.get("judged_bin"))
    validation = values.get((VALIDATION, *judged))
    return RunResult(run.key, configuration_id(run.config), run.seed, values["", *bins[0]],
                     values["", *judged], None if validation is None else validation[0])


def _verdict_text(verdict: str | None, predicted: bool | None) -> str:
    if verdict is None:
        return "-"
    if verdict == NOT_LEARNED or predicted is None:
        return verdict
    return verdict + ("" if (verdict == GENERALIZES_) == predicted else " (disagrees)")


def selection_table(cells: list[SelectionCell]) -> tuple[list[str], list[list]]:
    """One row per cell: the three rules side by side, the prediction and Huang et al.'s number."""
    columns = ["task", "scheme", "runs", "predicted", "best run: judged bin", "best run: verdict",
               "held-out: configuration", "held-out: judged bin [95%]", "held-out: verdict",
               "runs >= 0.9 [95%]", "Huang et al. (%)", "theirs: verdict"]
    rows = []
    for c in cells:
        est = c.held_out_estimate
        configs = len({r.configuration for r in c.runs})
        rows.append([c.task, c.scheme, f"{configs} x {len(c.runs) // configs}" if len(c.runs) % configs == 0
                     else str(len(c.runs)), "generalizes" if c.predicted else "fails",
                     f"{c.best.judged[0]:.3f} ({c.labels[c.best.configuration]}, seed {c.best.seed})",
                     _verdict_text(c.best_verdict, c.predicted),
                     "no validation draw" if c.chosen is None else c.labels[c.chosen],
                     "-" if est is None else f"{est.value:.3f} [{est.lo:.2f}, {est.hi:.2f}]",
                     _verdict_text(c.held_out_verdict, c.predicted),
                     f"{sum(r.judged[0] >= GENERALIZES for r in c.runs)}/{len(c.runs)} "
                     f"[{c.success.lo:.2f}, {c.success.hi:.2f}]",
                     "-" if c.published is None else "/".join(f"{v:g}" for v in c.published),
                     _verdict_text(c.published_verdict, c.predicted)])
    return columns, rows


def _observed(cells: list[SelectionCell], rule: str) -> list[tuple[bool, float]]:
    """(predicted, observed judged-bin accuracy) per cell under a rule, where the rule gives one."""
    if rule == BEST:
        return [(c.predicted, c.best.judged[0]) for c in cells]
    if rule == HELD_OUT:
        return [(c.predicted, c.held_out_estimate.value) for c in cells if c.held_out_estimate is not None]
    return [(c.predicted, c.published[-1] / 100) for c in cells if c.published is not None]


def _verdicts(cells: list[SelectionCell], rule: str) -> dict:
    of = {BEST: lambda c: c.best_verdict, HELD_OUT: lambda c: c.held_out_verdict,
          THEIRS: lambda c: c.published_verdict}[rule]
    return {c.task: of(c) for c in cells if of(c) is not None}


def _auc_text(pairs: list[tuple[bool, float]]) -> str:
    if not pairs:
        return "-"
    est = auc_interval([p for p, _ in pairs], [v for _, v in pairs])
    return "-" if not np.isfinite(est.value) else f"{est.value:.2f} [{est.lo:.2f}, {est.hi:.2f}] ({len(pairs)})"


def selection_summary(cells: list[SelectionCell]) -> tuple[list[str], list[list]]:
    """Per scheme and language group: agreement under each rule (judged cells that agree), the
    share of runs >= 0.9 among cells predicted to generalize and to fail, and the AUC of the
    prediction against the judged-bin accuracy over all cells (bootstrap over cells; cell count)."""
    columns = ["scheme", "languages", "cells", *(f"agree: {r}" for r in (BEST, HELD_OUT, THEIRS)),
               "runs >= 0.9: predicted generalize", "runs >= 0.9: predicted fail",
               *(f"AUC: {r}" for r in (BEST, HELD_OUT, THEIRS))]
    rows = []
    groups = defaultdict(list)
    for c in cells:
        groups[c.scheme, "Figure 1" if c.figure_1 else "others"].append(c)
    for (scheme, group), members in sorted(groups.items()):
        predictions = {c.task: GENERALIZES_ if c.predicted else "fails" for c in members}
        tallies = [agreement(_verdicts(members, rule), predictions) for rule in (BEST, HELD_OUT, THEIRS)]
        rows.append([scheme, group, len(members), *(f"{t.agree}/{t.judged}" for t in tallies),
                     *(_success_text([c for c in members if c.predicted == want]) for want in (True, False)),
                     *(_auc_text(_observed(members, rule)) for rule in (BEST, HELD_OUT, THEIRS))])
    return columns, rows


def _success_text(cells: list[SelectionCell]) -> str:
    runs = [r for c in cells for r in c.runs]
    if not runs:
        return "-"
    est = success_interval(sum(r.judged[0] >= GENERALIZES for r in runs), len(runs))
    return f"{est.value:.2f} [{est.lo:.2f}, {est.hi:.2f}] of {len(runs)}"


def write_selection(cells: list[SelectionCell], path: Path) -> Path:
    """Every cell's runs and the three rules' results, as JSON (written atomically)."""
    records = []
    for c in cells:
        est = c.held_out_estimate
        records.append({"task": c.task, "scheme": c.scheme, "predicted": GENERALIZES_ if c.predicted else "fails",
                        "figure_1": c.figure_1, "runs": [vars(r) | {"configuration_label": c.labels[r.configuration]}
                                                         for r in c.runs],
                        "best": {"key": c.best.key, "judged": c.best.judged[0], "verdict": c.best_verdict},
                        "held_out": None if est is None else {
                            "configuration": c.labels[c.chosen], "mean": est.value, "lo": est.lo, "hi": est.hi,
                            "verdict": c.held_out_verdict},
                        "success": vars(c.success), "published": c.published, "published_verdict": c.published_verdict})
    text = json.dumps(records, indent=1) + "\n"
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text))
