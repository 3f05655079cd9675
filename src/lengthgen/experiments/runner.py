"""`lengthgen run`: what an experiment file asks for, and running it.

An experiment runs in one of three modes: a protocol (a `protocol:` section: Huang et al.'s
search-then-seeds, each next run decided by the last ones), ensembles (`ensemble: N` or
`--ensemble N`: compatible points train N at a time as one batched model) or a sweep (every point
through an executor). `plan` reads the file and checks the settings; `execute` runs the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, RunConfig, read_yaml
from ..progress import Progress
from ..store import ResultsStore
from ..training import Tracker, train_ensemble
from ..training.ensemble import group_members
from .grid import ensemble_size, expand
from .protocol import CellOutcome, ProtocolConfig, parse_protocol, run_protocol, search_points
from .sweep import SweepResult, check_settings, run_sweep


@dataclass
class Plan:
    experiment: str
    mode: str  # "protocol" | "ensemble" | "sweep"
    configs: list[RunConfig]  # the points (protocol: its cells)
    executor: str = "sequential"
    workers: int | None = None
    threads: int | None = None
    address: str | None = None
    ensemble: int = 1  # runs trained together (mode "ensemble")
    protocol: ProtocolConfig | None = None
    study: dict | None = None  # the file's `study` section, run on the finished runs (analysis/study.py)

    def keys(self) -> list[str]:
        return [c.key() for c in self.configs]

    def reported_metric(self) -> str:
        return self.protocol.metric if self.protocol else self.configs[0].reported_metric()

    def describe(self, store: ResultsStore) -> str:
        if self.mode == "protocol":
            return (f"experiment {self.experiment}: protocol over {len(self.configs)} cells, up to "
                    f"{len(search_points(self.protocol.search))} search configurations and "
                    f"{self.protocol.seeds.max_attempts} seeds each")
        already = sum(store.is_finished(k) for k in self.keys())
        text = (f"experiment {self.experiment}: {len(self.configs)} runs, {already} already finished "
                f"(executor {self.executor})")
        return text + (f"; ensembles of up to {self.ensemble} runs" if self.mode == "ensemble" else "")


@dataclass
class Outcome:
    sweep: SweepResult = field(default_factory=SweepResult)
    cells: list[CellOutcome] = field(default_factory=list)  # protocol decisions


def _only(configs: list[RunConfig], only: str | None, what: str) -> list[RunConfig]:
    if not only:
        return configs
    chosen = [c for c in configs if only in (c.name or "")]
    if not chosen:
        raise ConfigError(f"--only {only!r} matches no {what}; {what}s: {', '.join(str(c.name) for c in configs)}")
    return chosen


def plan(path: str | Path, *, only: str | None = None, executor: str = "sequential", workers: int | None = None,
         threads: int | None = None, address: str | None = None, ensemble: int | None = None,
         overrides: dict | None = None) -> Plan:
    """Read an experiment file and decide its mode; bad settings fail here, before any training.
    overrides: dotted config fields set on every point (`--set`)."""
    check_settings(executor, workers, threads, address)
    spec = read_yaml(path)
    if "protocol" in spec:
        if overrides:
            raise ConfigError(f"{path} is a protocol experiment, whose search sets the configs itself; --set applies "
                              "to experiments with base/runs/grid only (edit a copy of the file instead)")
        if executor != "sequential":
            raise ConfigError(f"{path} is a protocol experiment: it runs with --executor sequential only "
                              f"(got {executor!r})")
        config, cells = parse_protocol(spec, str(path))
        return Plan(cells[0].experiment, "protocol", _only(cells, only, "cell"), protocol=config)
    configs = expand(spec, str(path), overrides)
    experiment = configs[0].experiment
    configs = _only(configs, only, "run")
    size = ensemble if ensemble is not None else ensemble_size(spec, str(path))
    if size is not None and size != 1:  # an ensemble of one is an ordinary run
        if executor != "sequential":
            raise ConfigError(f"ensembles train in this process: use --executor sequential with an ensemble size "
                              f"(got --executor {executor!r})")
        return Plan(experiment, "ensemble", configs, ensemble=size, study=spec.get("study"))
    return Plan(experiment, "sweep", configs, executor, workers, threads, address, study=spec.get("study"))


def execute(plan: Plan, store: ResultsStore, progress: Progress | None = None, tracker: Tracker | None = None
            ) -> Outcome:
    if plan.mode != "protocol":  # finished runs are skipped below, yet belong to this experiment too
        store.join_experiment(plan.experiment, plan.keys())
    if plan.mode == "protocol":
        return Outcome(cells=run_protocol(plan.protocol, plan.configs, store, progress=progress, tracker=tracker))
    if plan.mode == "ensemble":
        outcome = Outcome()
        for group in group_members(plan.configs, plan.ensemble):
            runs = train_ensemble(group, store, progress=progress, tracker=tracker)
            outcome.sweep.done += [r.key for r in runs]
        return outcome
    return Outcome(sweep=run_sweep(plan.configs, store, plan.executor, workers=plan.workers, threads=plan.threads,
                                   address=plan.address, progress=progress, tracker=tracker))
