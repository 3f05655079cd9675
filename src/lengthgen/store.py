"""Results store: one embedded SQLite database shared by every run of a project, and the owner
of every file under the root (`checkpoints/<key>.pt`, `models/<key>.pt`, `plots/`), each written
atomically (`atomic_write`: a temporary file in the same folder, then a rename).

Sweep workers in several processes write at once, so the database runs in WAL mode (readers never
block writers), every write is a single `BEGIN IMMEDIATE` transaction (it takes the write lock up
front, where the busy timeout applies, instead of failing on a read-to-write upgrade), and a write
that still meets `database is locked` is retried as a whole, for at most LOCK_WAIT_S: a lock held
longer belongs to another process that is not letting go, and is reported as such. A connection is
opened lazily per process and thread: SQLite connections must not cross a fork.

Opening a store checks its layout before anything is written: a database of another program is
refused untouched, one written by a newer lengthgen too, and one of an older layout gains its new
columns; before version 5 its run keys are recomputed from the stored configurations (migrate.py).
Every SQLite failure becomes a ValueError that names its cause (locked, read-only, full disk,
damaged). Each running run records its owner (host, process, heartbeat) so that a run left
`running` by a dead process can be told from a live one (`stale_runs`).

Reads return the frozen dataclasses of records.py (`Run`, `MetricRow`, `EvalRow`, `CurvePoint`,
`Decision`, `Analysis`), their JSON columns parsed; writes take plain dicts. SQLite stores NaN as
NULL; metric and curve values read back as NaN in that case.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import os
import random
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import InputError
from .migrate import WHOLE_CONFIG_KEYS_SINCE, move_files, new_keys, rename_rows
from .records import Analysis, CurvePoint, Decision, EvalRow, MetricRow, Run
from .version import __version__

DB_FILE = "results.sqlite"
CORRUPT_SUFFIX = ".corrupt"  # a checkpoint that cannot be read is moved aside under this suffix
STATUSES = ("running", "finished", "diverged", "failed")
DONE_STATUSES = ("finished", "diverged")
BUSY_TIMEOUT_S = 2.0  # one attempt's wait for a lock; sweep writers hold it for milliseconds
LOCK_WAIT_S = 20.0  # all attempts together, then "locked by another process"
SCHEMA_VERSION = 5  # PRAGMA user_version; 0 is the layout before it was set (no run owners)
# Columns a store of an older version gains when opened: run owners (after version 0), the
# machine and software a run trained on (after version 2).
ADDED_COLUMNS = {"pid": "INTEGER", "heartbeat": "TEXT", "environment": "TEXT"}
# Older layouts gain ADDED_COLUMNS and new tables; before version 5 their keys are recomputed (migrate.py).
READABLE_VERSIONS = (0, 2, 3, 4, SCHEMA_VERSION)
KEY_PREFIX = 8  # characters of a run key shown in tables and legends (any unique prefix selects the run)
STALE_AFTER_S = 6 * 3600  # a running run on another host whose heartbeat is older is stale

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
    environment TEXT,
    host TEXT,
    pid INTEGER,
    heartbeat TEXT,
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
CREATE TABLE IF NOT EXISTS memberships (
    experiment TEXT NOT NULL,
    run_key TEXT NOT NULL,
    PRIMARY KEY (experiment, run_key)
);
CREATE TABLE IF NOT EXISTS evals (
    run_key TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    grp TEXT NOT NULL DEFAULT '',
    metric TEXT NOT NULL,
    value REAL,
    count INTEGER,
    evaluated_at TEXT NOT NULL,
    UNIQUE (run_key, lo, hi, grp, metric)
);
CREATE TABLE IF NOT EXISTS analyses (
    experiment TEXT NOT NULL,
    name TEXT NOT NULL,
    settings TEXT NOT NULL,
    result TEXT NOT NULL,
    version TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (experiment, name)
);
CREATE TABLE IF NOT EXISTS decisions (
    experiment TEXT NOT NULL,
    cell TEXT NOT NULL,
    decision TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (experiment, cell)
);
"""


@functools.cache
def _git_checkout() -> Path | None:
    """The git checkout this package is imported from, or None (installed copy, no git).

    The package directory must be tracked by that checkout: an installed copy inside some other
    repository (a virtualenv in a project tree) must not report that repository's state.
    """
    pkg_dir = Path(__file__).resolve().parent
    try:
        subprocess.run(["git", "ls-files", "--error-unmatch", "__init__.py"], cwd=pkg_dir, check=True,
                       capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return pkg_dir


def _git(*args: str) -> str | None:
    checkout = _git_checkout()
    if checkout is None:
        return None
    try:
        out = subprocess.run(["git", *args], cwd=checkout, check=True, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


@functools.cache
def git_commit() -> str | None:
    """HEAD of the git checkout this package is imported from, or None."""
    return (_git("rev-parse", "HEAD") or "").strip() or None


def git_dirty() -> bool | None:
    """Whether that checkout has uncommitted changes to tracked files; None outside a checkout."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status.strip())


def environment(device: str | None = None) -> dict:
    """What a run trained with: Python, torch, the platform, the device (and the GPU's name), and
    the git commit and whether the tree had uncommitted changes (None outside a checkout)."""
    import platform

    import torch

    gpu = None
    if device is not None and device.startswith("cuda") and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(torch.device(device))
    return {"python": platform.python_version(), "torch": torch.__version__, "lengthgen": __version__,
            "platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count(),
            "device": device, "gpu": gpu, "cuda": torch.version.cuda, "git_commit": git_commit(),
            "git_dirty": git_dirty()}


def short_key(key: str) -> str:
    """The run key as tables, legends and `lengthgen runs` show it: a prefix that selects the run."""
    return key[:KEY_PREFIX]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_busy(err: sqlite3.OperationalError) -> bool:
    msg = str(err).lower()
    return "locked" in msg or "busy" in msg


def _nan_if_null(v):
    return math.nan if v is None else v


def atomic_write(path: Path, write) -> Path:
    """Write a file all or nothing: `write(tmp_path)` fills a temporary file beside `path`, which
    then replaces `path` in one rename. A failed write leaves no temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: Path, text: str) -> Path:
    """A text file (a Markdown report, probe records), atomically."""
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


RECORD_FORMATS = (".csv", ".jsonl", ".json")


def write_records(path: Path, rows: list[dict]) -> Path:
    """Rows of plain values as CSV, JSON lines or a JSON list, chosen by the file's suffix, atomically."""
    import csv

    path = Path(path)
    if path.suffix == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    elif path.suffix == ".jsonl":
        text = "".join(json.dumps(r) + "\n" for r in rows)
    elif path.suffix == ".json":
        text = json.dumps(rows, indent=1) + "\n"
    else:
        raise InputError(f"{path}: write results to a file ending in one of {', '.join(RECORD_FORMATS)}")
    return write_text(path, text)


def save_torch(obj, path: Path) -> Path:
    """`torch.save` of plain data and tensors, atomically. Serialized in memory first: torch's own
    file writer reports a full disk as a RuntimeError, Python's as the OSError it is."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def load_torch(path: Path, device="cpu"):
    """A file written by `save_torch`; tensors and plain data only (`weights_only`): never code."""
    import torch

    return torch.load(path, map_location=device, weights_only=True)


class ResultsStore:
    def __init__(self, root: str | os.PathLike = "lengthgen-runs", only: frozenset[str] | None = None):
        self.root = Path(root)
        self.path = self.root / DB_FILE
        self._only = only  # run keys a read view (`restricted_to`) shows; None = every run
        self._local = threading.local()

    def __reduce__(self):  # a store travels to worker processes as its root; each worker connects anew
        return type(self), (self.root, self._only)

    def restricted_to(self, keys) -> ResultsStore:
        """A read view of this store that shows only the runs with these keys (and their metrics):
        what an experiment file expands to now, without the configurations it superseded."""
        return type(self)(self.root, frozenset(keys))

    # -- files -----------------------------------------------------------------------------------

    def checkpoint_path(self, key: str) -> Path:
        return self.root / "checkpoints" / f"{key}.pt"

    def aside_path(self, key: str) -> Path:
        """Where a checkpoint that cannot be read is moved aside."""
        path = self.checkpoint_path(key)
        return path.with_name(path.name + CORRUPT_SUFFIX)

    def model_path(self, key: str) -> Path:
        return self.root / "models" / f"{key}.pt"

    def tensorboard_dir(self) -> Path:
        """TensorBoard event files, a folder per run key (`--tracker tensorboard`)."""
        return self.root / "tensorboard"

    def run_files(self, key: str) -> list[Path]:
        """Every file or folder kept under a run's key (renamed together when keys are recomputed)."""
        return [self.model_path(key), self.checkpoint_path(key), self.aside_path(key), self.tensorboard_dir() / key]

    def plots_dir(self) -> Path:
        return self.root / "plots"

    def cache_dir(self) -> Path:
        """What tasks derive from their parameters and reuse across runs (the LM task's tokenizer)."""
        return self.root / "cache"

    def save_checkpoint(self, key: str, checkpoint: dict) -> None:
        save_torch(checkpoint, self.checkpoint_path(key))

    def load_checkpoint(self, key: str, check, device="cpu"):
        """`check(checkpoint)` of the run's latest checkpoint, or None when it has none. A checkpoint
        that cannot be read or that `check` refuses (a ValueError: truncated, corrupt, not ours,
        values out of bounds) is moved aside to `<key>.pt.corrupt` with a warning, and the run
        starts from scratch: one bad file must not block its run for good."""
        path = self.checkpoint_path(key)
        if not path.exists():
            return None
        try:
            checkpoint = load_torch(path, device)
            return check(checkpoint)
        except Exception as err:  # torch raises many types for a bad file; none of them may block the run
            aside = self.aside_path(key)
            os.replace(path, aside)
            warnings.warn(f"checkpoint of run {key} could not be read ({type(err).__name__}: {err}); moved it to "
                          f"{aside} and restarting the run from step 0", stacklevel=2)
            return None

    def drop_checkpoint(self, key: str) -> None:
        self.checkpoint_path(key).unlink(missing_ok=True)

    def save_model(self, key: str, payload: dict) -> None:
        save_torch(payload, self.model_path(key))

    def save_model_bytes(self, key: str, data: bytes) -> None:
        """A model file made elsewhere (a remote sweep worker's `models/<key>.pt`), atomically."""
        atomic_write(self.model_path(key), lambda tmp: tmp.write_bytes(data))

    def model_bytes(self, key: str) -> bytes | None:
        path = self.model_path(key)
        return path.read_bytes() if path.exists() else None

    # -- writing ---------------------------------------------------------------------------------

    def start_run(self, key: str, config: dict, *, name: str | None = None, experiment: str | None = None,
                  host: str | None = None, device: str | None = None, env: dict | None = None):
        """Record run `key` as running, owned by this process (replacing an earlier unfinished record).
        A finished or diverged record stays as it is until `finish_run` replaces it, so a retrain
        (`--force`) that is killed leaves the earlier results in place.

        host: the machine that trains the run, when that is not this one (a remote sweep worker);
        env: that machine's `environment`. device: the device this process trains on.
        """
        env = env if host else environment(device)
        row = dict(key=key, name=name or config.get("name"), experiment=experiment or config.get("experiment"),
                   task=config["task"]["name"], positional=config.get("model", {}).get("positional"),
                   seed=config.get("seed"), status="running", config=json.dumps(config, sort_keys=True),
                   version=__version__, git_commit=(env or {}).get("git_commit"),
                   environment=None if env is None else json.dumps(env), host=host or socket.gethostname(),
                   pid=None if host else os.getpid(), heartbeat=_now(), created_at=_now())
        sql = f"INSERT OR REPLACE INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"

        def write(conn):
            old = conn.execute("SELECT status FROM runs WHERE key=?", (key,)).fetchone()
            if old is not None and old["status"] in DONE_STATUSES:
                conn.execute("UPDATE runs SET host=?, pid=?, heartbeat=? WHERE key=?",
                             (row["host"], row["pid"], row["heartbeat"], key))
            else:
                conn.execute(sql, tuple(row.values()))
            if row["experiment"]:
                conn.execute(_JOIN, (row["experiment"], key))

        self._check_writable()
        self._write(write)

    def heartbeat(self, key: str) -> None:
        """Note that this process still trains run `key` (at each checkpoint)."""
        self._write(lambda c: c.execute("UPDATE runs SET heartbeat=?, host=?, pid=? WHERE key=? AND status='running'",
                                        (_now(), socket.gethostname(), os.getpid(), key)))

    def mark_failed(self, key: str, error: str) -> None:
        """Record that this process stopped training run `key` without finishing it (an error, an
        interrupt); its checkpoint stays, so the next attempt resumes from it."""
        self._write(lambda c: c.execute(
            "UPDATE runs SET status='failed', finished_at=?, extra=? WHERE key=? AND status='running' AND pid=?",
            (_now(), json.dumps({"error": error}), key, os.getpid())))

    def join_experiment(self, experiment: str, keys: list[str]):
        """Make runs members of `experiment` (a run can belong to several: a finished run that a
        second experiment contains is skipped there, not retrained, and still reported with it)."""
        self._write(lambda c: c.executemany(_JOIN, [(experiment, k) for k in keys]))

    def finish_run(self, key: str, *, status: str, metrics: list[dict], curves: list[dict], wall_time: float,
                   steps_done: int, extra: dict | None = None):
        """Set the final status and replace the run's metrics and curves, all in one transaction."""
        if status not in STATUSES or status == "running":
            raise InputError(f"finish status {status!r}: choose one of {', '.join(STATUSES[1:])}")

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

    def put_analysis(self, experiment: str, name: str, settings: dict, result: dict):
        """Record (replacing) an analysis of an experiment's finished runs, e.g. the language probe,
        with the settings it ran under and this package's version."""
        self._write(lambda c: c.execute(
            "INSERT OR REPLACE INTO analyses (experiment, name, settings, result, version, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)", (experiment, name, json.dumps(settings, sort_keys=True), json.dumps(result),
                                          __version__, _now())))

    def analysis(self, experiment: str, name: str) -> Analysis | None:
        """A stored analysis, or None."""
        found = [a for a in self.analyses(experiment) if a.name == name]
        return found[0] if found else None

    def analyses(self, experiment: str | None = None) -> list[Analysis]:
        """Stored analyses, by experiment and name."""
        where, params = _filters(("experiment", experiment))
        rows = self._read(f"SELECT * FROM analyses {where} ORDER BY experiment, name", params)
        return [_record(Analysis, r, settings=json.loads(r["settings"]), result=json.loads(r["result"])) for r in rows]

    def put_evals(self, key: str, rows: list[dict]) -> None:
        """Record `lengthgen eval` results of run `key`, replacing earlier ones of the same bins."""
        now = _now()
        self._write(lambda c: c.executemany(
            "INSERT OR REPLACE INTO evals (run_key, lo, hi, grp, metric, value, count, evaluated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ((key, int(r["lo"]), int(r["hi"]), str(r.get("grp", "")), str(r["metric"]), float(r["value"]),
              int(r["count"]), now) for r in rows)))

    def evals(self, key: str) -> list[EvalRow]:
        """The stored `lengthgen eval` results of run `key`, by metric, group and bin."""
        rows = self._read("SELECT * FROM evals WHERE run_key=? ORDER BY metric, grp, lo, hi", (key,))
        return [_record(EvalRow, r, value=_nan_if_null(r["value"])) for r in rows]

    def delete_run(self, key: str):
        def write(conn):
            for table, column in (("metrics", "run_key"), ("curves", "run_key"), ("evals", "run_key"), ("runs", "key")):
                conn.execute(f"DELETE FROM {table} WHERE {column}=?", (key,))

        self._write(write)

    # -- reading ---------------------------------------------------------------------------------

    def is_finished(self, key: str) -> bool:
        """True when the run reached a final outcome worth keeping (finished or diverged)."""
        run = self._read("SELECT status FROM runs WHERE key=?", (key,))
        return bool(run) and run[0]["status"] in DONE_STATUSES

    def get_run(self, key: str) -> Run | None:
        rows = self._read("SELECT * FROM runs WHERE key=?", (key,))
        return _parse_run(rows[0]) if rows else None

    def resolve(self, ref: str) -> str:
        """The key of the one run that `ref` names: a full key, a unique key prefix or a run name.
        No match, or several (an ambiguous prefix, a name shared by runs), fails listing them."""
        ref = ref.strip()
        rows = self._read("SELECT key, name, status FROM runs WHERE key=?", (ref,))
        if ref and not rows:
            rows = self._read("SELECT key, name, status FROM runs WHERE substr(key, 1, ?)=? OR name=? ORDER BY key",
                              (len(ref), ref, ref))
        if len(rows) == 1:
            return rows[0]["key"]
        if not rows:
            raise InputError(f"no run with key, key prefix or name {ref!r} in {self.root} (`lengthgen runs` lists them)")
        listed = "; ".join(f"{r['key']} {r['name'] or '(unnamed)'} ({r['status']})" for r in rows[:20])
        raise InputError(f"{ref!r} names {len(rows)} runs: {listed}{' ...' if len(rows) > 20 else ''}; give more "
                         "of the key")

    def find_model(self, ref: str) -> Path:
        """The model file `ref` names: a path to one, or a run of this store (key, key prefix, name)."""
        path = Path(ref)
        if path.is_file():
            return path
        if not self.exists():
            raise InputError(f"no model file {ref!r}, and no results store in {self.root} to look a run up in; pass "
                             "the --root your runs wrote to")
        key = self.resolve(ref)
        path = self.model_path(key)
        if not path.exists():
            run = self.get_run(key)
            raise InputError(f"run {key} ({run.name or 'unnamed'}) has no model file: it is {run.status}")
        return path

    def runs(self, experiment: str | None = None, status: str | None = None) -> list[Run]:
        where, params = _filters(("status", status))
        if experiment is not None:
            where += (" AND " if where else "WHERE ") + _MEMBER.format(key="key", experiment="experiment")
            params += (experiment, experiment)
        rows = self._read(f"SELECT * FROM runs {where} ORDER BY created_at, name, seed, key", params)
        return [_parse_run(r) for r in rows if self._only is None or r["key"] in self._only]

    def metrics(self, keys: list[str] | None = None, experiment: str | None = None) -> list[MetricRow]:
        """Metric rows joined with their run's task, positional, seed, name, experiment and status."""
        where, params = "", ()
        if experiment is not None:
            where, params = "WHERE " + _MEMBER.format(key="r.key", experiment="r.experiment"), (experiment, experiment)
        if self._only is not None:
            keys = self._only if keys is None else self._only.intersection(keys)
        if keys is not None:
            # json_each takes any number of keys in one parameter (no host-variable limit).
            where += (" AND " if where else "WHERE ") + "m.run_key IN (SELECT value FROM json_each(?))"
            params += (json.dumps(list(keys)),)
        rows = self._read("SELECT m.*, r.task, r.positional, r.seed, r.name, r.experiment, r.status "
                          f"FROM metrics m JOIN runs r ON r.key = m.run_key {where} "
                          "ORDER BY r.seed, r.name, m.run_key, m.metric, m.grp, m.lo, m.hi", params)
        return [_record(MetricRow, r, value=_nan_if_null(r["value"])) for r in rows]

    def bin_values(self, keys: list[str], metric: str) -> dict[tuple[int, int], list[tuple[float, int]]]:
        """`metric` per whole length bin (the pooled group) over the given runs: one (value, example
        count) per run (runs without results contribute nothing), bins in order."""
        values: dict[tuple[int, int], list[tuple[float, int]]] = {}
        for m in self.metrics(keys=keys):
            if m.metric == metric and m.grp == "":
                values.setdefault(m.bin, []).append((m.value, m.count))
        return dict(sorted(values.items()))

    def decisions(self, experiment: str | None = None) -> list[Decision]:
        """Protocol decisions, by experiment and cell."""
        where, params = _filters(("experiment", experiment))
        rows = self._read(f"SELECT * FROM decisions {where} ORDER BY experiment, cell", params)
        return [_record(Decision, r, decision=json.loads(r["decision"])) for r in rows]

    def metric_names(self, experiment: str | None = None) -> list[str]:
        return sorted({m.metric for m in self.metrics(experiment=experiment)})

    def stale_runs(self, experiment: str | None = None) -> list[Run]:
        """Runs left `running` by a process that is gone: on this host a process that no longer
        exists, elsewhere a heartbeat older than STALE_AFTER_S."""
        return [r for r in self.runs(experiment=experiment, status="running") if not owner_alive(r)]

    def live_owner(self, key: str) -> Run | None:
        """The run's record when another live process is training it now, else None."""
        run = self.get_run(key)
        mine = run is not None and run.pid == os.getpid() and run.host == socket.gethostname()
        if run is None or run.status != "running" or mine:
            return None
        return run if owner_alive(run) else None

    def curves(self, key: str) -> list[CurvePoint]:
        rows = self._read("SELECT step, name, value FROM curves WHERE run_key=? ORDER BY name, step", (key,))
        return [_record(CurvePoint, r, value=_nan_if_null(r["value"])) for r in rows]

    # -- connection and transactions ------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            # After a fork the inherited connection belongs to the parent: abandon it, never use it.
            local.conn, local.pid = self._connect(), os.getpid()
        return local.conn

    def _connect(self) -> sqlite3.Connection:
        """A connection to the store, created with its tables when new (`_prepare`); a root that is
        a file or a dangling link, and any SQLite failure, fail with a message naming the cause."""
        root = self.root
        if root.is_symlink() and not root.exists():
            raise InputError(f"results root {root} is a link to {os.readlink(root)}, which does not exist; create "
                             "that folder or pass another --root")
        if root.exists() and not root.is_dir():
            raise InputError(f"results root {root} is a file, not a folder; pass another --root")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"results root {root} cannot be written ({err.strerror}); pass another --root") from None
        with self._sqlite_errors():
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.row_factory = sqlite3.Row
            _retrying(lambda: _prepare(conn, self.path, self.run_files))
        return conn

    @contextmanager
    def _sqlite_errors(self):
        try:
            yield
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError):  # lengthgen's own mistakes: keep the trace
            raise
        except sqlite3.Error as err:
            raise InputError(describe_sqlite_error(err, self.path)) from None

    def exists(self) -> bool:
        """Whether the root holds a results store (reading commands must not create an empty one)."""
        return self.path.is_file()

    def _check_writable(self) -> None:
        """Fail before training, not after it, when the run's files could not be written."""
        for folder in (self.checkpoint_path("x").parent, self.model_path("x").parent):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tempfile.TemporaryFile(dir=folder).close()
            except OSError as err:
                raise InputError(f"cannot write run files to {folder} ({err.strerror or err}); fix its permissions "
                                 "or pass another --root") from None

    def _write(self, fn):
        if self._only is not None:
            raise RuntimeError("a store restricted to some runs is a read view; write through the full store")
        conn = self._conn()
        with self._sqlite_errors():
            return _transaction(conn, fn)

    def _read(self, sql: str, params=()) -> list[dict]:
        conn = self._conn()
        with self._sqlite_errors():
            return [dict(r) for r in _retrying(lambda: conn.execute(sql, params).fetchall())]


_JOIN = "INSERT OR IGNORE INTO memberships (experiment, run_key) VALUES (?, ?)"
# a run is in an experiment when it was started there or joined it later
_MEMBER = "({key} IN (SELECT run_key FROM memberships WHERE experiment=?) OR {experiment}=?)"


def _parse_run(row: dict) -> Run:
    return _record(Run, row, config=json.loads(row["config"]), extra=json.loads(row["extra"]) if row["extra"] else {},
                   environment=json.loads(row["environment"]) if row["environment"] else None)


def _record(kind, row: dict, **parsed):
    """A record of dataclass `kind` from a database row (its columns by name), with the `parsed`
    values in place of the stored text of those columns."""
    return kind(**{f.name: row[f.name] for f in dataclasses.fields(kind)} | parsed)


def _filters(*column_values) -> tuple[str, tuple]:
    """WHERE clause matching each (column, value) pair whose value is not None."""
    used = [(c, v) for c, v in column_values if v is not None]
    return ("WHERE " + " AND ".join(f"{c}=?" for c, _ in used) if used else ""), tuple(v for _, v in used)


def _retrying(fn):
    """fn(), attempted again while the database is locked, for LOCK_WAIT_S at most."""
    deadline, attempt = time.monotonic() + LOCK_WAIT_S, 0
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as err:
            if not _is_busy(err) or time.monotonic() > deadline:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
            attempt += 1


def _transaction(conn: sqlite3.Connection, fn):
    """Run fn(conn) in one write transaction: all of it or nothing; retried whole when locked."""
    return _retrying(lambda: _attempt(conn, fn))


def _attempt(conn: sqlite3.Connection, fn):
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself after some errors
            conn.execute("ROLLBACK")
        raise
    return result


# -- layout -------------------------------------------------------------------------------------

def _layout(conn: sqlite3.Connection) -> dict[str, set[str]]:
    """Each table of the database (SQLite's own left out) with its column names."""
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE "
                                         "'sqlite_%'")]
    return {t: {r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", (t,))} for t in tables}


@functools.cache
def expected_layout() -> dict[str, set[str]]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    return _layout(conn)


def layout_problem(version: int, tables: dict[str, set[str]], path: Path) -> str | None:
    """Why a database cannot serve as a results store of this version, or None when it can (perhaps
    after gaining the columns and tables of later versions)."""
    expected = expected_layout()
    unchanged = "it was left unchanged; pass another --root"
    if version > SCHEMA_VERSION:
        return (f"{path} was written by a newer lengthgen (store version {version}, this one reads "
                f"{SCHEMA_VERSION}); {unchanged}")
    foreign = sorted(set(tables) - set(expected))
    if foreign or (tables and "runs" not in tables) or version not in READABLE_VERSIONS:
        return (f"{path} is a SQLite database of another program (tables: {', '.join(sorted(tables))}), not a "
                f"lengthgen results store; {unchanged}")
    missing = sorted(f"{t}.{c}" for t, cols in tables.items() for c in expected[t] - cols)
    addable = {f"runs.{c}" for c in ADDED_COLUMNS} if version < SCHEMA_VERSION else set()
    if set(missing) - addable:
        return (f"{path} is a results store of another layout (it lacks {', '.join(missing)}) that this lengthgen "
                f"cannot use; {unchanged}")
    return None


def _prepare(conn: sqlite3.Connection, path: Path, run_files) -> None:
    """Check the database's layout before writing anything to it; create or upgrade it if needed
    (`run_files(key)`: the files a recomputed key renames)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = _layout(conn)
    problem = layout_problem(version, tables, path)
    if problem:
        raise InputError(problem)
    if version == SCHEMA_VERSION and tables.keys() == expected_layout().keys():
        return
    conn.execute("PRAGMA journal_mode = WAL")
    keys = new_keys(conn) if version < WHOLE_CONFIG_KEYS_SINCE and "runs" in tables else {}
    move_files(keys, run_files)

    def upgrade(c):
        for statement in SCHEMA.split(";"):
            if statement.strip():
                c.execute(statement)
        have = _layout(c)["runs"]
        for column, kind in ADDED_COLUMNS.items():
            if column not in have:
                c.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
        if c.execute("PRAGMA user_version").fetchone()[0] < WHOLE_CONFIG_KEYS_SINCE:  # not done meanwhile
            rename_rows(c, keys)
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    _attempt(conn, upgrade)


def describe_sqlite_error(err: sqlite3.Error, path: Path) -> str:
    """What a SQLite failure means for the user: the cause, and what to do."""
    text = str(err).lower()
    if _is_busy(err):
        return (f"results store {path} is locked by another process (waited {LOCK_WAIT_S:.0f} s); let it finish or "
                "stop it, then rerun")
    if "full" in text:
        return f"no space left on the disk of results store {path}; free some space and rerun (finished runs are kept)"
    if "readonly" in text or "unable to open" in text or not os.access(path.parent, os.W_OK):
        return f"results store {path} cannot be written ({_why_unwritable(path.parent)}); pass another --root"
    return (f"{path} is not a usable lengthgen results store (SQLite: {err}): damaged or not a database; move it "
            "aside or pass another --root")


def _why_unwritable(folder: Path) -> str:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "its file system is read-only"
    except OSError as err:
        return err.strerror or str(err)
    return "permission denied" if not os.access(folder, os.W_OK) else "SQLite could not open or write it"


# -- owners -------------------------------------------------------------------------------------

def owner_alive(run: Run) -> bool:
    """Whether the process that trains a `running` run is still there (as far as this host can tell)."""
    if run.host == socket.gethostname() and run.pid:
        return _pid_alive(run.pid)
    if not run.heartbeat:
        return False
    age = datetime.now(timezone.utc) - datetime.fromisoformat(run.heartbeat)
    return age.total_seconds() < STALE_AFTER_S


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether `pid` has exited but not been reaped: a killed driver's orphaned workers stay zombies
    where the container's first process reaps nobody, and a zombie trains nothing."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):  # no /proc (not Linux), or it exited while we looked
        return False
