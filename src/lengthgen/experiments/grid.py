"""Experiment files: a base run config expanded over explicit runs and a grid.

    experiment: golowich_sparsity_cpu
    base:                      # a RunConfig (task, model, train, eval, seed)
      task: {name: sparse_parity, params: {k: [1, 4]}}
    runs:                      # optional: named points, dotted keys override `base`
      - {name: K4, task.params.k: [1, 4]}
      - {name: K6, task.params.k: [1, 6]}
    grid:                      # optional: cartesian product, combined with every run
      seed: [0, 1]
    ensemble: 8                # optional: train points that differ only in seed / train.lr
                               # 8 at a time as one batched model (ensemble.py)

Every point becomes a RunConfig whose key identifies it in the results store, so rerunning an
experiment skips what is already finished. With a `protocol` section, each point is instead a cell
of Huang et al.'s search-then-seeds protocol (protocol.py); runner.py decides which mode runs.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from ..config import ConfigError, RunConfig, load_run_config, merged, read_yaml

EXPERIMENT_FIELDS = {"experiment", "description", "base", "runs", "grid", "protocol", "ensemble", "study"}
MAX_POINTS = 10_000  # runs of one experiment file; the largest preset has a few hundred


def value_label(value) -> str:
    """A grid value as it appears in a point's name (lists joined by dashes)."""
    if isinstance(value, (list, tuple)):
        return "-".join(str(v) for v in value)
    return str(value)


def expand(spec: dict, source: str = "experiment", overrides: dict | None = None) -> list[RunConfig]:
    """The file's run configs: base, then each run's fields, then each grid point, then `overrides`
    (dotted keys, as `lengthgen run --set` gives them) on every point."""
    unknown = sorted(set(spec) - EXPERIMENT_FIELDS)
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown}; allowed: {sorted(EXPERIMENT_FIELDS)}")
    if "protocol" in spec:
        raise ConfigError(f"{source}: has a 'protocol' section: its runs are decided as it goes (lengthgen.protocol; "
                          "`lengthgen run` handles it), they cannot be expanded up front")
    if "base" not in spec:
        raise ConfigError(f"{source}: missing 'base' (the run config every point starts from)")
    name = spec.get("experiment") or Path(source).stem
    runs = spec.get("runs") or [{}]
    grid = spec.get("grid") or {}
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        raise ConfigError(f"{source}: 'runs' must be a list of mappings")
    if not isinstance(grid, dict) or not all(isinstance(k, str) and isinstance(v, list) and v
                                             for k, v in grid.items()):
        raise ConfigError(f"{source}: 'grid' must map dotted config keys (text) to non-empty lists")
    points = len(runs) * math.prod(len(v) for v in grid.values())
    if points > MAX_POINTS:
        raise ConfigError(f"{source}: runs x grid expand to {points:,} points; at most {MAX_POINTS:,} are allowed")
    names = [r["name"] for r in runs if r.get("name") is not None]
    if not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{source}: runs: a run's 'name' must be text, got {[n for n in names if not isinstance(n, str)]}")
    configs, seen = [], set()
    for run in runs:
        run = dict(run)
        run_name = run.pop("name", None) or " ".join(value_label(v) for v in run.values())
        for values in itertools.product(*grid.values()):
            point = dict(zip(grid, values))
            parts = [run_name] if run_name else []
            parts += [f"{k.split('.')[-1]}={value_label(v)}" for k, v in point.items() if len(grid[k]) > 1]
            data = merged(merged(merged(spec["base"], run), point), overrides or {})
            data["experiment"] = name
            data["name"] = " ".join(parts) or name
            try:
                cfg = load_run_config(data)
            except ConfigError as err:
                raise ConfigError(f"{source}, run {data['name']!r}: {err}") from None
            if cfg.key() in seen:
                raise ConfigError(f"{source}: run {data['name']!r} duplicates another point")
            seen.add(cfg.key())
            configs.append(cfg)
    return configs


def ensemble_size(spec: dict, source: str = "experiment") -> int | None:
    """The file's `ensemble: N` (runs trained together as one batched model), None when absent."""
    size = spec.get("ensemble")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ConfigError(f"{source}: 'ensemble' must be a whole number >= 1 (how many runs train together), "
                          f"got {size!r}")
    return size


def load_experiment(path: str | Path) -> list[RunConfig]:
    return expand(read_yaml(path), str(path))
