"""Where training and sweeps report progress: a rich bar on a terminal, plain lines otherwise.

Both kinds answer the same calls. The training loop asks `due(run)` after each step, which is a
clock check and nothing more, and builds a `Snapshot` (a device sync, a look through the curves)
only when it answers yes, so reporting costs the hot loop no more than that check.
"""

from __future__ import annotations

import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import timedelta
from typing import TextIO

DEFAULT_INTERVAL_S = 10.0
BAR_REFRESH_S = 0.1  # rich redraws at 10 Hz: updates in between would never be seen


@dataclass
class Snapshot:
    """A run's progress at one step."""

    step: int
    total: int
    loss: float
    lr: float
    id_accuracy: float | None  # the latest in-distribution check, if one has run
    tokens_per_s: float | None
    eta_s: float | None

    def line(self) -> str:
        parts = [f"step {self.step}/{self.total}", f"loss {self.loss:.4f}", f"lr {self.lr:.2e}"]
        if self.id_accuracy is not None:
            parts.append(f"id_acc {self.id_accuracy:.3f}")
        if self.tokens_per_s is not None:
            parts.append(f"{self.tokens_per_s:,.0f} tok/s")
        if self.eta_s is not None:
            parts.append(f"eta {timedelta(seconds=round(self.eta_s))}")
        return ", ".join(parts)


def eta_s(step: int, total: int, first_step: int, elapsed_s: float) -> float | None:
    """Seconds left at this session's pace; None before a step of this session has finished."""
    done = step - first_step
    return None if done <= 0 else (total - step) * elapsed_s / done


class Progress(ABC):
    """Progress of runs (a handle per run from `add_run`) and of a sweep over runs."""

    #: Worker processes of a sweep print plain lines at this interval; None keeps them quiet.
    worker_interval_s: float | None = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def start_run(self, label: str, total: int, done: int) -> int:
        """A handle for a run at step `done` of `total`; a run resumed from a checkpoint says so."""
        if done:
            self.note(f"{label}: resumed from step {done}")
        return self.add_run(label, total, done)

    @abstractmethod
    def add_run(self, label: str, total: int, done: int) -> int: ...

    @abstractmethod
    def due(self, run: int) -> bool:
        """Whether `show` would be seen now; called after every training step, so only a clock check."""

    @abstractmethod
    def show(self, run: int, snapshot: Snapshot) -> None: ...

    @abstractmethod
    def end_run(self, run: int, status: str, step: int, total: int) -> None: ...

    @abstractmethod
    def add_sweep(self, total: int, done: int) -> int: ...

    @abstractmethod
    def run_ended(self, sweep: int, label: str, status: str, headline: str) -> None:
        """One run of a sweep ended; `label` names it and its key, `headline` is its reported metric."""

    @abstractmethod
    def note(self, text: str) -> None: ...


class BarProgress(Progress):
    """A rich progress bar per run and one over a sweep's runs, for a terminal."""

    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self.bars = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn())
        self.labels: dict[int, str] = {}
        self.next_at: dict[int, float] = {}

    def __enter__(self) -> BarProgress:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def add_run(self, label: str, total: int, done: int) -> int:
        run = self.bars.add_task(label, total=total, completed=done)
        self.labels[run], self.next_at[run] = label, 0.0
        return run

    def due(self, run: int) -> bool:
        return time.monotonic() >= self.next_at[run]

    def show(self, run: int, snapshot: Snapshot) -> None:
        self.next_at[run] = time.monotonic() + BAR_REFRESH_S
        rate = "" if snapshot.tokens_per_s is None else f", {snapshot.tokens_per_s:,.0f} tok/s"
        accuracy = "" if snapshot.id_accuracy is None else f", id_acc {snapshot.id_accuracy:.3f}"
        self.bars.update(run, completed=snapshot.step,
                         description=f"{self.labels[run]} loss {snapshot.loss:.3f}{accuracy}{rate}")

    def end_run(self, run: int, status: str, step: int, total: int) -> None:
        self.bars.update(run, completed=total, description=f"{self.labels[run]} {status}")

    def add_sweep(self, total: int, done: int) -> int:
        return self.bars.add_task("runs", total=total, completed=done)

    def run_ended(self, sweep: int, label: str, status: str, headline: str) -> None:
        self.bars.update(sweep, advance=1, description=f"runs (last {status}: {label})")

    def note(self, text: str) -> None:
        self.bars.console.print(text)


class PlainLines(Progress):
    """Flushed plain-text lines, for output to a file or a pipe: a run's progress every
    `interval_s` seconds of wall time and when it ends, and a line per ended run of a sweep."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, out: TextIO | None = None):
        self.interval_s = self.worker_interval_s = interval_s
        self.out = out
        self.labels: list[str] = []
        self.next_at: list[float] = []

    def add_run(self, label: str, total: int, done: int) -> int:
        self.labels.append(label)
        self.next_at.append(time.monotonic() + self.interval_s)
        return len(self.labels) - 1

    def due(self, run: int) -> bool:
        return time.monotonic() >= self.next_at[run]

    def show(self, run: int, snapshot: Snapshot) -> None:
        self.next_at[run] = time.monotonic() + self.interval_s
        self.note(f"{self.labels[run]}: {snapshot.line()}")

    def end_run(self, run: int, status: str, step: int, total: int) -> None:
        self.note(f"{self.labels[run]}: {status} at step {step}/{total}")

    def add_sweep(self, total: int, done: int) -> int:
        return 0  # the command has already said how many runs there are

    def run_ended(self, sweep: int, label: str, status: str, headline: str) -> None:
        self.note(f"run {label} {status}: {headline}")

    def note(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)  # sys.stdout now: tests and callers swap it
