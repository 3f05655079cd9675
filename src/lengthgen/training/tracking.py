"""Trackers: a run's curves also written where an experiment dashboard reads them, as training
records them. The lifecycle (lifecycle.py) calls a tracker at three points, the same for a run
trained alone and an ensemble member: `start` when the run is recorded as running, `log` with the
curve points it has just recorded (loss and learning rate about 200 times a run, in-distribution
accuracy and the curves per bin at each check), and `end` with its final metrics. The store stays
the record; a tracker is a view of it while it is being written.

`TensorBoard` writes one folder of event files per run under ROOT/tensorboard/<run key>/, so
`tensorboard --logdir ROOT/tensorboard` shows every run of a results root."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

from ..config import ConfigError
from ..store import ResultsStore

TRACKERS = ("tensorboard",)
FLUSH_S = 10  # event files are flushed this often: a dashboard shows a live run this late at most


class Tracker(ABC):
    @abstractmethod
    def start(self, key: str, name: str | None, config: dict) -> None: ...

    @abstractmethod
    def log(self, key: str, points: list[dict]) -> None:
        """Curve points ({"step", "name", "value"}) the run `key` has just recorded."""

    @abstractmethod
    def end(self, key: str, status: str, steps: int, metrics: list[dict]) -> None:
        """The run ended (finished, diverged, failed) after `steps`, with its final metric rows. A run
        that failed after it ended (its progress display raised) is ended again: nothing happens."""


def make_tracker(name: str, root: str | Path) -> Tracker:
    if name == "tensorboard":
        return TensorBoard(ResultsStore(root).tensorboard_dir().resolve())  # absolute: workers may start elsewhere
    raise ConfigError(f"--tracker {name!r}: expected one of {', '.join(TRACKERS)}")


def scalar_tag(name: str) -> str:
    """A curve's TensorBoard tag: `train/loss`; a curve per bin, `exact_match_greedy@9-16`, as
    `bins/exact_match_greedy [9,16]`, so that the bins of one metric sit together."""
    if "@" in name:
        metric, span = name.split("@")
        return f"bins/{metric} [{span.replace('-', ',')}]"
    return f"train/{name}"


class TensorBoard(Tracker):
    """Event files per run; picklable until a run starts (sweep workers get their own copy)."""

    def __init__(self, log_dir: Path):
        try:
            import torch.utils.tensorboard  # noqa: F401  (fail before training, not at the first run's start)
        except ImportError:
            raise ConfigError("--tracker tensorboard needs the tensorboard package: pip install 'lengthgen[tracking]'"
                              ) from None
        self.log_dir = Path(log_dir)
        self.writers: dict = {}

    def start(self, key: str, name: str | None, config: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(self.log_dir / key), flush_secs=FLUSH_S)
        writer.add_text("run", f"{name or key}\n\n    " + json.dumps(config, sort_keys=True, indent=1)
                        .replace("\n", "\n    "))
        self.writers[key] = writer

    def log(self, key: str, points: list[dict]) -> None:
        writer = self.writers[key]
        for p in points:
            writer.add_scalar(scalar_tag(p["name"]), p["value"], p["step"])

    def end(self, key: str, status: str, steps: int, metrics: list[dict]) -> None:
        writer = self.writers.pop(key, None)
        if writer is None:
            return
        for m in metrics:
            group = f" {m['grp']}" if m["grp"] else ""
            writer.add_scalar(f"final/{m['metric']} [{m['lo']},{m['hi']}]{group}", m["value"], steps)
        writer.add_text("status", status, steps)
        writer.close()
