"""What the results store returns: one frozen dataclass per kind of stored row (store.py reads them,
report, CLI and users read their attributes). JSON columns arrive parsed (`Run.config`,
`Decision.decision`); `dataclasses.asdict` turns a record back into the plain dict that a table,
a DataFrame or an export needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Run:
    """One row of `runs`: a run's identity, configuration, owner, outcome and the machine it trained on."""

    key: str
    name: str | None
    experiment: str | None
    task: str
    positional: str | None
    seed: int | None
    status: str
    config: dict[str, Any]
    version: str | None
    git_commit: str | None
    environment: dict[str, Any] | None  # None: written before runs recorded their machine
    host: str | None
    pid: int | None  # None: trained by a remote sweep worker
    heartbeat: str | None
    wall_time: float | None
    steps_done: int | None
    created_at: str
    finished_at: str | None
    extra: dict[str, Any]  # {} when nothing was recorded; {"error": ...} for a failed run


@dataclass(frozen=True)
class BinValue:
    """One metric of one run on one length bin and group ('' pools every group); NaN: no value."""

    run_key: str
    lo: int
    hi: int
    grp: str
    metric: str
    value: float
    count: int

    @property
    def bin(self) -> tuple[int, int]:
        return self.lo, self.hi


@dataclass(frozen=True)
class MetricRow(BinValue):
    """A row of `metrics` joined with its run's task, positional, seed, name, experiment and status."""

    task: str
    positional: str | None
    seed: int | None
    name: str | None
    experiment: str | None
    status: str


@dataclass(frozen=True)
class EvalRow(BinValue):
    """A row of `evals`: what `lengthgen eval` measured for a stored run, and when."""

    evaluated_at: str


@dataclass(frozen=True)
class CurvePoint:
    """One point of a run's training curve `name` (loss, learning rate, an eval metric) at `step`."""

    step: int
    name: str
    value: float


@dataclass(frozen=True)
class Decision:
    """What a protocol decided for one cell of an experiment (experiments/protocol.py builds `decision`).

    The properties read the fields the report and CLI use; `decision` keeps the stored JSON whole."""

    experiment: str
    cell: str
    decision: dict[str, Any]
    updated_at: str

    @property
    def task(self) -> str:
        return self.decision["task"]

    @property
    def positional(self) -> str:
        return self.decision["positional"]

    @property
    def positional_reg(self) -> float:
        return self.decision["positional_reg"]

    @property
    def rule(self) -> str:
        """The rule that chose the configuration (protocol.Choice.rule)."""
        return self.decision["chosen"]["rule"]

    @property
    def overrides(self) -> dict[str, Any]:
        """The chosen configuration: dotted config keys and their values."""
        return self.decision["chosen"]["overrides"]

    @property
    def attempted(self) -> list[str]:
        """Keys of the seeds trained with the chosen configuration, in order."""
        return self.decision["seeds"]["attempted"]

    @property
    def successful(self) -> list[str]:
        """Keys of the attempted seeds that are perfect in distribution."""
        return self.decision["seeds"]["successful"]

    @property
    def counted(self) -> list[str]:
        """Keys of the seeds the summary counts; decisions stored before it was recorded counted
        the successful ones."""
        return self.decision["seeds"].get("counted", self.successful)


@dataclass(frozen=True)
class Analysis:
    """A stored analysis of an experiment's finished runs (e.g. the language probe), with its settings."""

    experiment: str
    name: str
    settings: dict[str, Any]
    result: Any
    version: str
    created_at: str
