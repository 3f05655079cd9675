"""Sweep executors: run many RunConfigs sequentially, in local worker processes, or on Ray.

Every executor leans on the same two guarantees of `train_run`: a finished run is skipped, and
an unfinished one resumes from its checkpoint. A sweep interrupted in any way (the driver killed,
a worker killed, a node lost) is therefore finished by running the same command again, and the
results store never holds a run twice: a run's row is keyed by its config key and its metrics and
curves are replaced in the same transaction that marks it finished.

- `sequential`: one run after another in this process (per-run progress bars).
- `local`: N worker processes on this machine, each with its share of the CPU threads. Workers
  write to the store directly (one machine, one filesystem; the store is multi-process safe).
  A worker that dies mid-run is replaced and its run re-queued (it resumes from its checkpoint).
  Workers exit by themselves when the driver dies, so a killed sweep leaves no orphans behind.
- `ray`: one Ray task per run, on an embedded local Ray instance or an existing cluster
  (`address`). Workers never touch the driver's store: each trains into a node-local scratch
  store of its own sweep and returns the finished run (record, metrics, curves, model weights) to
  the driver, which writes it. This works on any multi-node cluster, shared filesystem or not. Ray
  retries a task whose worker process or node died (`max_retries`); a retry on the same node
  resumes from the scratch checkpoint, elsewhere it starts over.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import tempfile
import traceback
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import ConfigError, RunConfig
from ..errors import InputError
from ..procs import THREAD_ENV_VARS, available_cores, exit_with_parent, thread_environment
from ..progress import PlainLines, Progress
from ..plugins import ENV as PLUGINS_ENV, load_plugins
from ..store import ResultsStore
from ..training import Tracker, is_done, train_run

EXECUTORS = ("sequential", "local", "ray")
MAX_RETRIES = 2  # re-runs of a run whose worker died (an exception in the run is not retried)
LOOPBACK = "127.0.0.1"  # an embedded Ray instance listens here only (docs/security.md)
# Ray binds its services to the node's IP, which on Linux is the routable address unless Ray is told
# this machine is no cluster node; read once, when ray is first imported, so it is set before that.
RAY_NO_CLUSTER = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
SCRATCH_PREFIX = "lengthgen-ray-"  # + a sweep's random token and a run key: that run's scratch store


@dataclass
class SweepResult:
    done: list[str] = field(default_factory=list)  # keys of runs that reached finished or diverged
    failed: dict[str, str] = field(default_factory=dict)  # run label -> error text
    retries: int = 0  # runs restarted because their worker died


def check_settings(executor: str, workers: int | None = None, threads: int | None = None,
                   address: str | None = None, max_retries: int = MAX_RETRIES) -> None:
    """Fail fast on executor settings that cannot work, naming the setting and the allowed values."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose one of: {', '.join(EXECUTORS)}")
    for flag, value in (("workers", workers), ("threads", threads)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
    if max_retries < 0:
        raise ConfigError(f"max_retries must be at least 0, got {max_retries}")
    if workers is not None and executor == "sequential":
        raise ConfigError(f"workers={workers} needs executor local or ray (sequential runs one at a time)")
    if address is not None and executor != "ray":
        raise ConfigError(f"address {address!r} only applies to the ray executor (got executor {executor!r})")
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("executor 'ray' needs the ray package: pip install 'lengthgen[ray]'")


def run_sweep(configs: list[RunConfig], store: ResultsStore, executor: str = "sequential", *,
              workers: int | None = None, threads: int | None = None, address: str | None = None,
              max_retries: int = MAX_RETRIES, progress: Progress | None = None,
              tracker: Tracker | None = None) -> SweepResult:
    """Run every config not yet finished in `store`; returns what happened to each.

    workers: runs at once (local: default one per core; ray: default as many as the cluster fits).
    threads: torch threads per run (local: default cores // workers; ray: default 1, and each
    run reserves that many Ray CPUs). address: an existing Ray cluster ("auto", "HOST:PORT",
    "ray://HOST:PORT"); without it `ray` starts a local instance sized to workers * threads.
    progress: where to report each run's progress (sequential) and each ended run. tracker: where
    each run's curves also go, from whichever process trains it.
    """
    check_settings(executor, workers, threads, address, max_retries)
    todo, result = [], SweepResult()
    for cfg in configs:
        if is_done(store, cfg.key()):
            result.done.append(cfg.key())
        else:
            todo.append(cfg)
    bar = progress.add_sweep(len(configs), len(result.done)) if progress is not None else None

    def finished(cfg: RunConfig, error: str | None = None):
        if error is None:
            result.done.append(cfg.key())
        else:
            result.failed[run_label(cfg)] = error
        if bar is not None:
            run = store.get_run(cfg.key())
            status = "failed" if error else run.status if run else "done"
            progress.run_ended(bar, run_label(cfg), status, headline(store, cfg))

    if not todo:  # nothing to train: no workers, no Ray cluster to reach
        return result
    if executor == "sequential":
        _sequential(todo, store, threads, progress, tracker, finished)
    elif executor == "local":
        workers = workers or available_cores()
        threads = threads or max(1, available_cores() // workers)
        log_interval_s = progress.worker_interval_s if progress is not None else None
        _local(todo, store, workers, threads, max_retries, finished, result, log_interval_s, tracker)
    else:
        _ray(todo, store, workers, threads or 1, address, max_retries, finished, tracker)
    return result


def _wire(cfg: RunConfig) -> dict:
    """A config as plain data for another process, validated there by that process's own code."""
    return cfg.model_dump(mode="json")


def run_label(cfg: RunConfig) -> str:
    return f"{cfg.name or cfg.task.name} [{cfg.key()}]"


def headline(store: ResultsStore, cfg: RunConfig) -> str:
    """A run's reported metric on its longest bin, over all groups, as one phrase."""
    metric = cfg.reported_metric()
    rows = [m for m in store.metrics(keys=[cfg.key()]) if m.metric == metric and not m.grp]
    if not rows:
        return f"no {metric}"
    longest = max(rows, key=lambda m: m.hi)
    return f"{metric} {longest.value:.3f} on lengths [{longest.lo},{longest.hi}]"


# -- sequential ---------------------------------------------------------------------------------

def _sequential(todo, store, threads, progress, tracker, finished):
    import torch

    if threads:
        torch.set_num_threads(threads)
    for cfg in todo:
        try:
            train_run(cfg, store, progress=progress, tracker=tracker)
        except Exception:
            finished(cfg, traceback.format_exc())
        else:
            finished(cfg)


# -- local worker processes ---------------------------------------------------------------------

def _local_worker(conn, root: str, threads: int, parent: int, log_interval_s: float | None,
                  tracker: Tracker | None):
    """Worker process: receive a RunConfig, train it into the shared store, report; None stops.
    Ctrl-C reaches the whole process group: a worker stops quietly (its run is marked failed by
    `train_run`), and the driver alone tells the user."""
    exit_with_parent(parent)
    try:
        _serve(conn, root, threads, log_interval_s, tracker)
    except KeyboardInterrupt:
        pass


def _serve(conn, root: str, threads: int, log_interval_s: float | None, tracker: Tracker | None):
    import torch

    torch.set_num_threads(threads)
    load_plugins()  # a fresh process: the driver's --import modules (LENGTHGEN_IMPORT) and entry points
    store = ResultsStore(root)
    # plain lines to the driver's output (a file): a terminal shows the driver's bar over runs alone
    progress = PlainLines(log_interval_s) if log_interval_s is not None else None
    while True:
        try:
            data = conn.recv()
        except EOFError:  # the driver closed its end
            return
        if data is None:
            return
        try:
            train_run(RunConfig.model_validate(data), store, progress=progress, tracker=tracker)
        except Exception:
            conn.send(traceback.format_exc())
        else:
            conn.send(None)


class _Worker:
    def __init__(self, ctx, root: str, threads: int, log_interval_s: float | None, tracker: Tracker | None):
        self.conn, child_conn = ctx.Pipe()
        # Not a daemon: a run may start its own batch workers (data_workers), and daemons cannot have
        # children. Workers still end with the driver (exit_with_parent) and are stopped in `_local`.
        self.proc = ctx.Process(target=_local_worker,
                                args=(child_conn, root, threads, os.getpid(), log_interval_s, tracker))
        with thread_environment(threads):
            self.proc.start()
        child_conn.close()
        self.cfg: RunConfig | None = None

    def stop(self):
        if self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:  # its end is already closed
                pass
            self.proc.join(timeout=10)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join()
        self.conn.close()


def _local(todo, store, workers, threads, max_retries, finished, result, log_interval_s, tracker):
    import multiprocessing as mp
    from multiprocessing.connection import wait

    # spawn, not fork: a forked child would inherit torch's thread pools and SQLite connections.
    ctx = mp.get_context("spawn")
    queue = deque(todo)
    deaths: dict[str, int] = {}
    pool: list[_Worker] = []
    try:
        while queue or any(w.cfg is not None for w in pool):
            while queue and len(pool) < workers:
                pool.append(_Worker(ctx, str(store.root), threads, log_interval_s, tracker))
            for w in pool:
                if w.cfg is None and queue:
                    w.cfg = queue.popleft()
                    try:
                        w.conn.send(_wire(w.cfg))
                    except OSError:  # it died while idle; its sentinel re-queues the run below
                        pass
            by_handle = {}
            for w in pool:
                by_handle[w.proc.sentinel] = w
                if w.cfg is not None:
                    by_handle[w.conn] = w
            ready = wait(list(by_handle))
            # Reports (connections) before deaths (int sentinels): a worker may report, then die.
            for handle in sorted(ready, key=lambda h: isinstance(h, int)):
                w = by_handle[handle]
                if w not in pool:  # its death was handled through its connection
                    continue
                if handle is w.conn:
                    try:
                        error = w.conn.recv()
                    except EOFError:  # died without reporting
                        w.proc.join()
                    else:
                        cfg, w.cfg = w.cfg, None
                        finished(cfg, error)
                        continue
                pool.remove(w)
                w.stop()
                if w.cfg is not None:
                    key = w.cfg.key()
                    deaths[key] = deaths.get(key, 0) + 1
                    if deaths[key] > max_retries:
                        finished(w.cfg, f"worker process died {deaths[key]} times (last exit code {w.proc.exitcode})")
                    else:
                        result.retries += 1
                        queue.appendleft(w.cfg)  # resumes from its checkpoint
    finally:
        for w in pool:
            w.stop()


# -- Ray ----------------------------------------------------------------------------------------

def _ray_train(data: dict, threads: int, sweep: str, imports: str = "", tracker: Tracker | None = None) -> dict:
    """Ray task: train into a scratch store of this sweep on its node and return the finished run
    to the driver: its `records.Run`, its metrics and curves as `finish_run` takes them, its model
    file. imports: the driver's --import modules (LENGTHGEN_IMPORT), imported here too.
    tracker: writes on this node (a local Ray instance: the driver's results root)."""
    import torch

    torch.set_num_threads(threads)
    os.environ[PLUGINS_ENV] = imports
    load_plugins()
    cfg = RunConfig.model_validate(data)
    key = cfg.key()
    # Keyed by sweep and run: a retry on the same node resumes from the scratch checkpoint, and
    # another sweep of the same runs never shares (or deletes) these files.
    scratch = sweep_scratch(sweep, key)
    store = ResultsStore(scratch)
    try:
        run = train_run(cfg, store, tracker=tracker)
        return {
            "run": run,
            "metrics": [asdict(m) for m in store.metrics(keys=[key])],
            "curves": [asdict(point) for point in store.curves(key)],
            "model": store.model_bytes(key),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def sweep_scratch(sweep: str, key: str) -> Path:
    """The scratch folder of run `key` in sweep `sweep` on this node, private to this user. One that
    exists already but is not this user's own private folder (a planted link or store) is refused."""
    folder = Path(tempfile.gettempdir()) / f"{SCRATCH_PREFIX}{sweep}-{key}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:  # this run's earlier attempt on this node (its worker died)
        info = folder.lstat()
        if folder.is_symlink() or not folder.is_dir() or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise InputError(f"scratch folder {folder} exists and is not this user's private folder; "
                             "refusing to train in it") from None
    return folder


def _store_returned_run(store: ResultsStore, payload: dict) -> None:
    """Write a run trained elsewhere (a `_ray_train` payload) into `store`.

    The model file is in place before the run is marked finished, and the run is marked finished
    in one transaction, so a driver killed at any point leaves the run either finished with all
    its results or not finished (and redone by the next sweep).
    """
    run = payload["run"]
    if payload["model"] is not None:
        store.save_model_bytes(run.key, payload["model"])
    store.start_run(run.key, run.config, name=run.name, experiment=run.experiment, host=run.host, env=run.environment)
    store.finish_run(run.key, status=run.status, metrics=payload["metrics"], curves=payload["curves"],
                     wall_time=run.wall_time, steps_done=run.steps_done, extra=run.extra)


def start_ray(address: str | None, workers: int | None, threads: int) -> None:
    """Join the Ray cluster at `address`, or start an embedded instance whose unauthenticated
    services listen on loopback only, so no other machine can reach them (and run code there).
    An embedded instance that would listen elsewhere is shut down at once: this fails closed.
    A cluster at a loopback address is this machine alone, joined as such (Ray would otherwise
    look for it at the routable address)."""
    if address is None or _is_loopback(address):
        os.environ[RAY_NO_CLUSTER[0]] = RAY_NO_CLUSTER[1]  # before ray is imported, which reads it
    import ray

    if address is not None:
        ray.init(address=address)
        return
    # "local": always a new instance, never a cluster some earlier `ray start` left its address of
    ray.init(address="local", num_cpus=workers * threads if workers else None, include_dashboard=False)
    listening = {node["NodeManagerAddress"] for node in ray.nodes()}
    if listening != {LOOPBACK}:
        ray.shutdown()
        raise InputError(f"the embedded Ray instance would listen on {', '.join(sorted(listening))}, not only on "
                         f"{LOOPBACK}; start Ray yourself (ray start --head) and pass --address")


def _is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _ray(todo, store, workers, threads, address, max_retries, finished, tracker):
    start_ray(address, workers, threads)
    import ray

    sweep = secrets.token_hex(8)
    try:
        remote = ray.remote(_ray_train).options(
            num_cpus=threads, max_retries=max_retries,
            runtime_env={"env_vars": {var: str(threads) for var in THREAD_ENV_VARS}})
        queue, pending = deque(todo), {}
        while queue or pending:
            while queue and (workers is None or len(pending) < workers):
                cfg = queue.popleft()
                pending[remote.remote(_wire(cfg), threads, sweep, os.environ.get(PLUGINS_ENV, ""), tracker)] = cfg
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            cfg = pending.pop(ref)
            try:
                payload = ray.get(ref)
            except ray.exceptions.RayError as err:  # the run raised, or its retries ran out
                finished(cfg, str(err))
                continue
            _store_returned_run(store, payload)
            finished(cfg)
    finally:
        ray.shutdown()
        for scratch in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}{sweep}-*"):  # left by dead workers
            shutil.rmtree(scratch, ignore_errors=True)
