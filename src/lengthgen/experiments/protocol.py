"""Huang et al.'s model-selection protocol (docs/design.md §4.2) as an experiment mode.

An experiment file with a `protocol` section treats every point of `base`/`runs`/`grid` as a
*cell* (typically one task × positional scheme) and runs, per cell:

1. **Search.** The configurations of `protocol.search` (dotted keys, each with a list of values;
   the first key varies slowest, so the default tries layers 1, 2, 4 × heads 1, 2, 4 × width 16,
   64, 256 × lr 1e-3, 1e-4 from the smallest model up) are trained with seed 0 in that order.
   The search stops at the first configuration that is *perfect* (metric ≥ `success`, 1.0 =
   100%) on both the in-distribution bin and the selection bin.
2. **Choice** (`choose`, a pure function of the search outcomes):
   - the configuration the search stopped at, else
   - among configurations perfect in distribution, the best on the selection bin (ties: the
     earliest), else
   - **fallback trigger**: no search configuration is perfect in distribution (diverged runs
     count as 0) — the `fallback` overrides (default: 12 layers, 12 heads, width 768, 60k steps,
     3k warm-up, lr 1e-4) applied to the cell's base config; with `fallback: null`, the best
     configuration on the selection bin.
3. **Seeds.** The chosen configuration is trained with seeds 0, 1, 2, … until `seeds.target`
   runs are perfect in distribution or `seeds.max_attempts` seeds were tried. Mean and sample
   standard deviation per bin are taken over the successful runs (over all attempts, and marked
   so, when none succeeded).

Every training run is an ordinary run with its own config key in the results store, so an
interrupted protocol resumes where it stopped: finished runs are reused, not retrained, and the
decisions are re-derived from their stored metrics. The decisions of each cell are written to
the store (`ResultsStore.put_decision`) for the report.

    protocol:
      search: {model.n_layers: [1, 2, 4], model.n_heads: [1, 2, 4], model.d_model: [16, 64, 256],
               train.lr: [1.0e-3, 1.0e-4]}
      fallback: {model.n_layers: 12, model.n_heads: 12, model.d_model: 768, train.steps: 60000,
                 train.warmup_steps: 3000, train.lr: 1.0e-4}
      seeds: {target: 5, max_attempts: 10}
      metric: exact_match_tf           # Huang et al.'s metric
      in_distribution_bin: null        # null = the cell's first evaluation bin ([1, 50])
      selection_bin: null              # null = the cell's second evaluation bin ([51, 100])
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from ..config import Bin, ConfigError, RunConfig, Strict, format_validation_error, load_run_config, merged
from ..errors import InputError
from ..progress import Progress
from ..records import Run
from ..store import ResultsStore
from ..training import Tracker, train_run
from .grid import expand

DEFAULT_SEARCH = {"model.n_layers": [1, 2, 4], "model.n_heads": [1, 2, 4], "model.d_model": [16, 64, 256],
                  "train.lr": [1e-3, 1e-4]}
DEFAULT_FALLBACK = {"model.n_layers": 12, "model.n_heads": 12, "model.d_model": 768, "train.steps": 60000,
                    "train.warmup_steps": 3000, "train.lr": 1e-4}


class SeedsConfig(Strict):
    target: int = Field(5, ge=1)  # successful (perfect in distribution) runs wanted
    max_attempts: int = Field(10, ge=1)  # seeds tried at most, successful or not

    @model_validator(mode="after")
    def _attempts_cover_target(self):
        if self.max_attempts < self.target:
            raise InputError(f"max_attempts={self.max_attempts} must be at least target={self.target}")
        return self


class ProtocolConfig(Strict):
    search: dict[str, list[Any]] = Field(default_factory=lambda: dict(DEFAULT_SEARCH))
    fallback: dict[str, Any] | None = Field(default_factory=lambda: dict(DEFAULT_FALLBACK))
    seeds: SeedsConfig = Field(default_factory=SeedsConfig)
    metric: Literal["exact_match_tf", "exact_match_greedy", "token_acc"] = "exact_match_tf"
    success: float = Field(1.0, gt=0, le=1)  # "100%": a run is perfect on a bin when metric >= success
    in_distribution_bin: Bin | None = None  # None = the cell's first evaluation bin
    selection_bin: Bin | None = None  # None = the cell's second evaluation bin
    # Which seeds of the fallback count: "first", its first seeds.target whatever their
    # in-distribution accuracy (Huang et al.'s run_multiple_seeds.py, threshold 0 for the large
    # model); "successful", only those perfect in distribution, as for a search configuration.
    fallback_seeds: Literal["first", "successful"] = "first"
    # Per cell (by name), overrides added to the fallback (e.g. parity/nope: train.lr 3.0e-5).
    fallback_by_cell: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("search")
    @classmethod
    def _search_lists(cls, v):
        if not v:
            raise InputError("search needs at least one dotted key with a list of values")
        empty = [k for k, values in v.items() if not values]
        if empty:
            raise InputError(f"search keys {empty} have no values")
        if "seed" in v:
            raise InputError("'seed' cannot be searched: the protocol chooses seeds itself (see 'seeds')")
        return v


@dataclass
class Trial:
    """One trained configuration and its outcome on the protocol's two bins (NaN: no result)."""

    overrides: dict[str, Any]
    key: str
    status: str
    in_distribution: float
    selection: float


@dataclass
class Choice:
    rule: Literal["stopped", "best_in_distribution_perfect", "fallback", "best_without_fallback"]
    index: int | None  # the chosen search trial; None for the fallback
    explanation: str


def perfect(value: float, success: float) -> bool:
    return not math.isnan(value) and value >= success


def stops_search(trial: Trial, success: float) -> bool:
    return perfect(trial.in_distribution, success) and perfect(trial.selection, success)


def _best_on_selection(trials: list[Trial], indices: list[int]) -> int:
    # max() keeps the first of equal values: ties go to the earlier configuration in search order.
    return max(indices, key=lambda i: -math.inf if math.isnan(trials[i].selection) else trials[i].selection)


def choose(trials: list[Trial], success: float, has_fallback: bool) -> Choice:
    """The protocol's choice from the search outcomes, in search order (see the module docstring)."""
    if not trials:
        raise ValueError("choose needs at least one search trial")
    for i, t in enumerate(trials):
        if stops_search(t, success):
            return Choice("stopped", i, f"search configuration {i + 1} is perfect on both bins")
    id_perfect = [i for i, t in enumerate(trials) if perfect(t.in_distribution, success)]
    if id_perfect:
        i = _best_on_selection(trials, id_perfect)
        return Choice("best_in_distribution_perfect", i,
                      f"no configuration perfect on both bins; configuration {i + 1} is the best on the "
                      f"selection bin among the {len(id_perfect)} perfect in distribution")
    if has_fallback:
        return Choice("fallback", None, f"none of the {len(trials)} search configurations is perfect in "
                                        "distribution: the fallback configuration")
    i = _best_on_selection(trials, list(range(len(trials))))
    return Choice("best_without_fallback", i, f"none of the {len(trials)} search configurations is perfect in "
                                              f"distribution and no fallback is set: configuration {i + 1}, "
                                              "the best on the selection bin")


def search_points(search: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The search configurations in order: a cartesian product whose first key varies slowest."""
    return [dict(zip(search, values)) for values in itertools.product(*search.values())]


def overrides_label(overrides: dict[str, Any]) -> str:
    """A search configuration as it appears in run names and reports, e.g. "n_layers=2 lr=0.001"."""
    return " ".join(f"{k.split('.')[-1]}={v}" for k, v in overrides.items())


def _bin_label(b: Bin) -> str:
    return f"[{b[0]},{b[1]}]"


@dataclass
class CellOutcome:
    cell: str
    decision: dict
    trained: list[str] = field(default_factory=list)  # keys trained in this pass (not reused)


class Protocol:
    def __init__(self, config: ProtocolConfig, store: ResultsStore, progress: Progress | None = None,
                 tracker: Tracker | None = None):
        self.config, self.store, self.progress, self.tracker = config, store, progress, tracker

    def bins(self, cell: RunConfig) -> tuple[Bin, Bin]:
        bins = [tuple(b) for b in cell.task.eval_bins]
        if len(bins) < 2 and (self.config.in_distribution_bin is None or self.config.selection_bin is None):
            raise ConfigError(f"cell {cell.name!r}: the protocol needs two evaluation bins (in distribution, "
                              f"selection); the cell has {[list(b) for b in bins]}")
        chosen = (tuple(self.config.in_distribution_bin or bins[0]), tuple(self.config.selection_bin or bins[1]))
        for b in chosen:
            if b not in bins:
                raise ConfigError(f"cell {cell.name!r}: protocol bin {list(b)} is not one of its evaluation bins "
                                  f"{[list(x) for x in bins]}")
        return chosen

    def fallback(self, cell: RunConfig) -> dict[str, Any]:
        return {**self.config.fallback, **self.config.fallback_by_cell.get(cell.name, {})}

    def derive(self, cell: RunConfig, overrides: dict[str, Any], seed: int) -> RunConfig:
        data = merged(cell.model_dump(mode="json"), overrides)
        data["seed"] = seed
        data["name"] = " ".join(p for p in (cell.name, "|", overrides_label(overrides), f"seed={seed}") if p)
        try:
            return load_run_config(data)
        except ConfigError as err:
            raise ConfigError(f"cell {cell.name!r}, configuration {overrides_label(overrides) or '(base)'}: {err}") from None

    def _run(self, cfg: RunConfig, trained: list[str]) -> Run:
        if self.store.is_finished(cfg.key()):
            self.store.join_experiment(cfg.experiment or "", [cfg.key()])  # reused from another experiment
        else:
            trained.append(cfg.key())
        return train_run(cfg, self.store, progress=self.progress, tracker=self.tracker)

    def _value(self, key: str, b: Bin) -> float:
        for m in self.store.metrics(keys=[key]):
            if m.metric == self.config.metric and m.grp == "" and m.bin == b:
                return m.value
        return math.nan  # diverged runs have no metrics

    def _trial(self, cfg: RunConfig, overrides, bins, trained) -> Trial:
        run = self._run(cfg, trained)
        return Trial(overrides, cfg.key(), run.status, self._value(cfg.key(), bins[0]),
                     self._value(cfg.key(), bins[1]))

    def run_cell(self, cell: RunConfig) -> CellOutcome:
        pc = self.config
        bins = self.bins(cell)
        trained: list[str] = []
        trials = []
        for overrides in search_points(pc.search):
            trials.append(self._trial(self.derive(cell, overrides, 0), overrides, bins, trained))
            if stops_search(trials[-1], pc.success):
                break
        choice = choose(trials, pc.success, pc.fallback is not None)
        chosen = self.fallback(cell) if choice.index is None else trials[choice.index].overrides

        def counts(t: Trial) -> bool:
            return (choice.index is None and pc.fallback_seeds == "first") or perfect(t.in_distribution, pc.success)

        attempts: list[Trial] = []
        for seed in range(pc.seeds.max_attempts):
            attempts.append(self._trial(self.derive(cell, chosen, seed), chosen, bins, trained))
            if sum(map(counts, attempts)) == pc.seeds.target:
                break
        successful = [t.key for t in attempts if perfect(t.in_distribution, pc.success)]
        counted = [t.key for t in attempts if counts(t)]
        summary_keys = counted or [t.key for t in attempts]
        decision = {
            "cell": cell.name, "task": cell.task.name, "positional": cell.model.positional,
            "positional_reg": cell.train.positional_reg, "metric": pc.metric, "success": pc.success,
            "bins": {"in_distribution": list(bins[0]), "selection": list(bins[1])},
            "search": [{"overrides": t.overrides, "key": t.key, "status": t.status,
                        "in_distribution": t.in_distribution, "selection": t.selection} for t in trials],
            "search_size": len(search_points(pc.search)),
            "chosen": {"overrides": chosen, "rule": choice.rule, "explanation": choice.explanation},
            "seeds": {"target": pc.seeds.target, "max_attempts": pc.seeds.max_attempts,
                      "attempted": [t.key for t in attempts], "successful": successful, "counted": counted,
                      "reached_target": len(counted) >= pc.seeds.target},
            "summary_over": ("first seeds of the fallback" if counted and counted != successful else
                             "successful" if counted else "all attempts (none successful)"),
            "summary": summarize(self.store, summary_keys, pc.metric),
        }
        self.store.put_decision(cell.experiment or "", cell.name, decision)
        return CellOutcome(cell.name, decision, trained)


def summarize(store: ResultsStore, keys: list[str], metric: str) -> dict[str, dict]:
    """Mean, sample standard deviation (None for one run) and run count per bin."""
    summary = {}
    for b, pairs in store.bin_values(keys, metric).items():
        v = [value for value, _ in pairs]
        summary[_bin_label(b)] = {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                                  "n": len(v)}
    return summary


def parse_protocol(spec: dict, source: str) -> tuple[ProtocolConfig, list[RunConfig]]:
    """The protocol settings and the cells of an experiment file that has a `protocol` section."""
    try:
        config = ProtocolConfig.model_validate(spec.get("protocol") or {})
    except ValidationError as err:
        raise ConfigError(f"{source}: protocol: " + format_validation_error(err)) from None
    seeded = [k for k in (spec.get("grid") or {}) if k == "seed"]
    seeded += [r.get("name", "?") for r in spec.get("runs") or [] if isinstance(r, dict) and "seed" in r]
    if seeded:
        raise ConfigError(f"{source}: a protocol experiment chooses seeds itself; remove 'seed' from "
                          f"grid/runs ({seeded})")
    cells = expand({k: v for k, v in spec.items() if k != "protocol"}, source)
    unknown = sorted(set(config.fallback_by_cell) - {c.name for c in cells})
    if unknown:
        raise ConfigError(f"{source}: protocol.fallback_by_cell names no cell: {unknown}; cells: "
                          f"{', '.join(str(c.name) for c in cells)}")
    return config, cells


def run_protocol(config: ProtocolConfig, cells: list[RunConfig], store: ResultsStore, progress: Progress | None = None,
                 tracker: Tracker | None = None) -> list[CellOutcome]:
    protocol = Protocol(config, store, progress=progress, tracker=tracker)
    for cell in cells:  # fail fast, before any training, on bad bins and invalid configurations
        protocol.bins(cell)
        for overrides in search_points(config.search) + ([protocol.fallback(cell)] if config.fallback else []):
            protocol.derive(cell, overrides, 0)
    return [protocol.run_cell(cell) for cell in cells]
