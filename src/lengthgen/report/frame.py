"""Results as data: one tidy table (a pandas DataFrame) of every stored metric, for notebooks and
`lengthgen export`.

One row per run x length bin x group x metric. The run's columns (key, name, experiment, status,
steps, wall time) come first, then the metric's (lo, hi, bin, group, metric, value, count), then its
config flattened into dotted columns as the config names them (`seed`, `model.positional`,
`task.params.k`, `resolved.num_params`). List and mapping values are JSON text, so that every
column is a plain type that CSV and Parquet can hold.
"""

from __future__ import annotations

import json

from ..config import ConfigError, flat_fields
from ..records import Run
from ..store import ResultsStore
from .tables import bin_label

RUN_COLUMNS = ["key", "name", "experiment", "status", "steps_done", "wall_time"]
METRIC_COLUMNS = ["lo", "hi", "bin", "group", "metric", "value", "count"]
FORMATS = ("csv", "parquet", "jsonl")


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ConfigError("results as a table need pandas: pip install 'lengthgen[data]'") from None
    return pandas


def _plain(value):
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _config_columns(config: dict) -> dict:
    labels = {k: v for k, v in config.items() if k not in ("name", "experiment")}  # run columns already
    return {field: _plain(value) for field, value in flat_fields(labels).items()}


def results_frame(store: ResultsStore, experiment: str | None = None):
    """The tidy DataFrame of the store's metrics (only `experiment`'s runs when given)."""
    pandas = _pandas()
    runs = store.runs(experiment=experiment)
    run_columns = {r.key: _run_columns(r, experiment) for r in runs}
    config_columns = {r.key: _config_columns(r.config) for r in runs}
    rows = []
    for m in store.metrics(experiment=experiment):
        rows.append({**run_columns[m.run_key], "lo": m.lo, "hi": m.hi, "bin": bin_label(m.bin), "group": m.grp,
                     "metric": m.metric, "value": m.value, "count": m.count, **config_columns[m.run_key]})
    fields = sorted({f for columns in config_columns.values() for f in columns})
    return pandas.DataFrame(rows, columns=RUN_COLUMNS + METRIC_COLUMNS + fields)


def _run_columns(run: Run, experiment: str | None) -> dict:
    """The run's columns in each of its rows; its experiment is the one asked for, when one is."""
    return {**{c: getattr(run, c) for c in RUN_COLUMNS}, "experiment": experiment or run.experiment}


def frame_text(frame, fmt: str) -> str:
    """The frame as CSV or JSON lines (one object per row)."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "jsonl":
        return frame.to_json(orient="records", lines=True)
    raise ConfigError(f"format {fmt!r} is not text; choose one of: csv, jsonl")


def check_format(fmt: str) -> None:
    """Parquet needs pyarrow (or fastparquet); fail before any work when neither is installed."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    _pandas()
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            try:
                import fastparquet  # noqa: F401
            except ImportError:
                raise ConfigError("--format parquet needs pyarrow: pip install pyarrow (or use --format csv or "
                                  "jsonl)") from None
