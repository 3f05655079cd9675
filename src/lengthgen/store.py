"""Results store: one embedded SQLite database shared by every run of a project.

Sweep workers in several processes write at once, so the database runs in WAL mode (readers never
block writers), every write is a single `BEGIN IMMEDIATE` transaction (it takes the write lock up
front, where the busy timeout applies, instead of failing on a read-to-write upgrade), and a write
that still meets `database is locked` is retried as a whole. A connection is opened lazily per
process and thread: SQLite connections must not cross a fork.

SQLite stores NaN as NULL; metric and curve values read back as NaN in that case.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import socket
import sqlite3
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from . import __version__

DB_FILE = "results.sqlite"
STATUSES = ("running", "finished", "diverged", "failed")
DONE_STATUSES = ("finished", "diverged")
BUSY_TIMEOUT_S = 60.0
MAX_ATTEMPTS = 20

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    name TEXT,
    experiment TEXT,
    task TEXT,
    positional TEXT,
    seed INTEGER,
    status TEXT NOT NULL CHECK (status IN {STATUSES}),
    config TEXT NOT NULL,
    version TEXT,
    git_commit TEXT,
    host TEXT,
    wall_time REAL,
    steps_done INTEGER,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    extra TEXT
);
CREATE INDEX IF NOT EXISTS runs_experiment ON runs (experiment);
CREATE TABLE IF NOT EXISTS metrics (
    run_key TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    grp TEXT NOT NULL DEFAULT '',
    metric TEXT NOT NULL,
    value REAL,
    count INTEGER,
    UNIQUE (run_key, lo, hi, grp, metric)
);
CREATE TABLE IF NOT EXISTS curves (
    run_key TEXT NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL
);
CREATE INDEX IF NOT EXISTS curves_run ON curves (run_key, name, step);
CREATE TABLE IF NOT EXISTS decisions (
    experiment TEXT NOT NULL,
    cell TEXT NOT NULL,
    decision TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (experiment, cell)
);
"""


@functools.cache
def git_commit() -> str | None:
    """HEAD of the git checkout this package is imported from, or None (installed copy, no git).

    The package directory must be tracked by that checkout: an installed copy inside some other
    repository (a virtualenv in a project tree) must not report that repository's commit.
    """
    pkg_dir = Path(__file__).resolve().parent
    try:
        subprocess.run(["git", "ls-files", "--error-unmatch", "__init__.py"], cwd=pkg_dir, check=True,
                       capture_output=True, timeout=10)
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pkg_dir, check=True, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_busy(err: sqlite3.OperationalError) -> bool:
    msg = str(err).lower()
    return "locked" in msg or "busy" in msg


def _nan_if_null(v):
    return math.nan if v is None else v


class ResultsStore:
    def __init__(self, root: str | os.PathLike = "lengthgen-runs"):
        self.root = Path(root)
        self.path = self.root / DB_FILE
        self._local = threading.local()

    def __reduce__(self):  # a store travels to worker processes as its root; each worker connects anew
        return type(self), (self.root,)

    # -- writing ---------------------------------------------------------------------------------

    def start_run(self, key: str, config: dict, *, name: str | None = None, experiment: str | None = None,
                  host: str | None = None):
        """Record run `key` as running (replacing any earlier record; its results stay until finish).

        host: the machine that trains the run, when that is not this one (a remote sweep worker).
        """
        row = dict(key=key, name=name or config.get("name"), experiment=experiment or config.get("experiment"),
                   task=config["task"]["name"], positional=config.get("model", {}).get("positional"),
                   seed=config.get("seed"), status="running", config=json.dumps(config, sort_keys=True),
                   version=__version__, git_commit=git_commit(), host=host or socket.gethostname(),
                   created_at=_now())
        sql = f"INSERT OR REPLACE INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
        self._write(lambda c: c.execute(sql, tuple(row.values())))

    def finish_run(self, key: str, *, status: str, metrics: list[dict], curves: list[dict], wall_time: float,
                   steps_done: int, extra: dict | None = None):
        """Set the final status and replace the run's metrics and curves, all in one transaction."""
        if status not in STATUSES or status == "running":
            raise ValueError(f"finish status {status!r}: choose one of {', '.join(STATUSES[1:])}")

        def write(conn):
            cur = conn.execute("UPDATE runs SET status=?, wall_time=?, steps_done=?, finished_at=?, extra=? "
                               "WHERE key=?", (status, float(wall_time), int(steps_done), _now(),
                                               None if extra is None else json.dumps(extra), key))
            if cur.rowcount == 0:
                raise KeyError(f"run {key!r} is not in the store; call start_run first")
            conn.execute("DELETE FROM metrics WHERE run_key=?", (key,))
            conn.execute("DELETE FROM curves WHERE run_key=?", (key,))
            # Rows are coerced as they are inserted: numpy/torch scalars become storable, and a bad
            # row fails here, inside the transaction, undoing everything above.
            conn.executemany("INSERT INTO metrics (run_key, lo, hi, grp, metric, value, count) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)",
                             ((key, int(m["lo"]), int(m["hi"]), str(m.get("grp", "")), str(m["metric"]),
                               float(m["value"]), int(m["count"])) for m in metrics))
            conn.executemany("INSERT INTO curves (run_key, step, name, value) VALUES (?, ?, ?, ?)",
                             ((key, int(c["step"]), str(c["name"]), float(c["value"])) for c in curves))

        self._write(write)

    def put_decision(self, experiment: str, cell: str, decision: dict):
        """Record (replacing) what a protocol decided for one cell of an experiment (protocol.py).

        Decisions are derived from stored runs and re-derived on every protocol pass; they are kept
        so that reports can show them without re-running the protocol's logic."""
        self._write(lambda c: c.execute("INSERT OR REPLACE INTO decisions (experiment, cell, decision, updated_at) "
                                        "VALUES (?, ?, ?, ?)", (experiment, cell, json.dumps(decision), _now())))

    def delete_run(self, key: str):
        def write(conn):
            for table, column in (("metrics", "run_key"), ("curves", "run_key"), ("runs", "key")):
                conn.execute(f"DELETE FROM {table} WHERE {column}=?", (key,))

        self._write(write)

    # -- reading ---------------------------------------------------------------------------------

    def is_finished(self, key: str) -> bool:
        """True when the run reached a final outcome worth keeping (finished or diverged)."""
        run = self._read("SELECT status FROM runs WHERE key=?", (key,))
        return bool(run) and run[0]["status"] in DONE_STATUSES

    def get_run(self, key: str) -> dict | None:
        rows = self._read("SELECT * FROM runs WHERE key=?", (key,))
        return _parse_run(rows[0]) if rows else None

    def runs(self, experiment: str | None = None, status: str | None = None) -> list[dict]:
        where, params = _filters(("experiment", experiment), ("status", status))
        return [_parse_run(r) for r in self._read(f"SELECT * FROM runs {where} ORDER BY created_at, key", params)]

    def metrics(self, keys: list[str] | None = None, experiment: str | None = None) -> list[dict]:
        """Metric rows joined with their run's task, positional, seed, name, experiment and status."""
        where, params = _filters(("r.experiment", experiment))
        if keys is not None:
            # json_each takes any number of keys in one parameter (no host-variable limit).
            where += (" AND " if where else "WHERE ") + "m.run_key IN (SELECT value FROM json_each(?))"
            params += (json.dumps(list(keys)),)
        rows = self._read("SELECT m.*, r.task, r.positional, r.seed, r.name, r.experiment, r.status "
                          f"FROM metrics m JOIN runs r ON r.key = m.run_key {where} "
                          "ORDER BY m.run_key, m.metric, m.grp, m.lo, m.hi", params)
        return [{**r, "value": _nan_if_null(r["value"])} for r in rows]

    def decisions(self, experiment: str | None = None) -> list[dict]:
        """Protocol decisions as {experiment, cell, decision (dict), updated_at}, by experiment and cell."""
        where, params = _filters(("experiment", experiment))
        rows = self._read(f"SELECT * FROM decisions {where} ORDER BY experiment, cell", params)
        return [{**r, "decision": json.loads(r["decision"])} for r in rows]

    def curves(self, key: str) -> list[dict]:
        rows = self._read("SELECT step, name, value FROM curves WHERE run_key=? ORDER BY name, step", (key,))
        return [{**r, "value": _nan_if_null(r["value"])} for r in rows]

    # -- connection and transactions ------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            # After a fork the inherited connection belongs to the parent: abandon it, never use it.
            self.root.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.row_factory = sqlite3.Row
            _retrying(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            _transaction(conn, lambda c: [c.execute(s) for s in SCHEMA.split(";") if s.strip()])
            local.conn, local.pid = conn, os.getpid()
        return local.conn

    def _write(self, fn):
        return _transaction(self._conn(), fn)

    def _read(self, sql: str, params=()) -> list[dict]:
        conn = self._conn()
        return [dict(r) for r in _retrying(lambda: conn.execute(sql, params).fetchall())]


def _parse_run(row: dict) -> dict:
    return {**row, "config": json.loads(row["config"]), "extra": json.loads(row["extra"]) if row["extra"] else {}}


def _filters(*column_values) -> tuple[str, tuple]:
    """WHERE clause matching each (column, value) pair whose value is not None."""
    used = [(c, v) for c, v in column_values if v is not None]
    return ("WHERE " + " AND ".join(f"{c}=?" for c, _ in used) if used else ""), tuple(v for _, v in used)


def _retrying(fn):
    for attempt in range(MAX_ATTEMPTS):
        try:
            return fn()
        except sqlite3.OperationalError as err:
            if not _is_busy(err) or attempt == MAX_ATTEMPTS - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))


def _transaction(conn: sqlite3.Connection, fn):
    """Run fn(conn) in one write transaction: all of it or nothing; retried whole when locked."""

    def attempt():
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite rolls back by itself after some errors
                conn.execute("ROLLBACK")
            raise
        return result

    return _retrying(attempt)
