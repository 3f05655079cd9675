"""Run keys of an older store, recomputed once.

A run's key is the hash of its whole configuration (`RunConfig.key`). Stores written before
version 5 hashed a configuration without the fields that were added after its first runs, while
those fields sat at their defaults, so that old runs kept their keys. Opening such a store
recomputes every key from the configuration it stored (the missing fields take their defaults)
and renames what the key names: the run's rows in every table, the keys quoted in ensemble
records, protocol decisions and analyses, and the run's files (`models/`, `checkpoints/`,
`tensorboard/`). Nothing is dropped.

The files move first, then the database changes in one transaction: a migration cut short
leaves the store at its old version with some files already renamed, and the next opening
finishes it (moving a file is skipped once it has moved).
"""

from __future__ import annotations

import json
import os
import sqlite3
import warnings
from pathlib import Path
from typing import Callable

from .config import load_run_config
from .errors import InputError

WHOLE_CONFIG_KEYS_SINCE = 5  # the first store version whose keys hash the whole configuration
KEY_TABLES = (("runs", "key"), ("metrics", "run_key"), ("curves", "run_key"), ("evals", "run_key"),
              ("memberships", "run_key"))
JSON_COLUMNS = (("runs", "key", "extra"), ("decisions", "rowid", "decision"), ("analyses", "rowid", "settings"),
                ("analyses", "rowid", "result"))


def new_keys(conn: sqlite3.Connection) -> dict[str, str]:
    """{old key: recomputed key} of every run whose key changes. A run whose configuration no
    longer loads here (a plugin task not imported, a field since removed) keeps its key, and
    so does a run whose recomputed key another run already has; both are named in a warning."""
    rows = conn.execute("SELECT key, config FROM runs ORDER BY created_at, key").fetchall()
    keys, kept, taken = {}, [], {old for old, _ in rows}
    for old, config in rows:
        stored = json.loads(config)
        stored.pop("resolved", None)  # what training derived (table size, vocabulary), not configuration
        try:
            # The device is not part of the key, and a GPU run's device need not exist here.
            new = load_run_config({**stored, "device": "auto"}).key()
        except (InputError, ValueError, TypeError):
            kept.append(old)
            continue
        if new != old and new in taken:
            kept.append(old)
        elif new != old:
            keys[old] = new
            taken.add(new)
    if kept:
        warnings.warn(f"{len(kept)} run(s) keep their key: their configuration does not load here or its key is "
                      f"taken: {', '.join(kept[:10])}{' ...' if len(kept) > 10 else ''}", stacklevel=3)
    return keys


def move_files(keys: dict[str, str], run_files: Callable[[str], list[Path]]) -> None:
    """Each file the store keeps under an old key (`ResultsStore.run_files`) to the new key's name;
    one moved already is skipped."""
    for old, new in keys.items():
        for src, dst in zip(run_files(old), run_files(new)):
            if src.exists() and not dst.exists():
                os.replace(src, dst)


def rename_rows(conn: sqlite3.Connection, keys: dict[str, str]) -> None:
    """Inside the caller's transaction: every row of a run under its new key, and every JSON
    value that quotes an old key (ensemble members, chosen runs, analysed runs) with the new one."""
    for table, column in KEY_TABLES:
        conn.executemany(f"UPDATE {table} SET {column}=? WHERE {column}=?", [(n, o) for o, n in keys.items()])
    for table, row_id, column in JSON_COLUMNS:
        for rid, text in conn.execute(f"SELECT {row_id}, {column} FROM {table}").fetchall():
            value = json.loads(text) if text else None
            renamed = _renamed(value, keys)
            if renamed != value:
                conn.execute(f"UPDATE {table} SET {column}=? WHERE {row_id}=?", (json.dumps(renamed), rid))


def _renamed(value, keys: dict[str, str]):
    if isinstance(value, str):
        return keys.get(value, value)
    if isinstance(value, list):
        return [_renamed(v, keys) for v in value]
    if isinstance(value, dict):
        return {keys.get(k, k): _renamed(v, keys) for k, v in value.items()}
    return value
