"""The Python interface for notebooks and scripts: stored results as a table, trained models as
objects that answer task strings.

    import lengthgen
    df = lengthgen.results("lengthgen-runs", experiment="demo")   # tidy pandas DataFrame
"""

from __future__ import annotations

import os

from .config import ConfigError
from .report.frame import results_frame
from .store import ResultsStore


def _store(root: str | os.PathLike) -> ResultsStore:
    store = ResultsStore(root)
    if not store.exists():
        raise ConfigError(f"no results store in {str(root)!r}; pass the root your runs wrote to")
    return store


def results(root: str | os.PathLike = "lengthgen-runs", experiment: str | None = None):
    """Every stored metric as a tidy pandas DataFrame: one row per run x length bin x group x
    metric, with the run's key, name, status and its config flattened into dotted columns (`seed`,
    `model.positional`, `task.params.k`, ...). Only `experiment`'s runs when given."""
    return results_frame(_store(root), experiment)
