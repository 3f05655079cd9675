"""Sweeps on the local and Ray executors: parallel runs, dead workers, a killed driver."""

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
import yaml

from lengthgen.config import ConfigError
from lengthgen.experiments.sweep import run_sweep
from lengthgen.experiments.grid import expand
from lengthgen.store import ResultsStore

STEPS = 50
SPEC = {
    "experiment": "sweep_test",
    "base": {
        "task": {"name": "sparse_parity", "params": {"k": [1, 2]}, "train_lengths": [4, 8],
                 "eval_bins": [[4, 8], [9, 12]]},
        "model": {"n_layers": 1, "n_heads": 2, "d_model": 16},
        "train": {"steps": STEPS, "batch_size": 16, "eval_every": 25, "eval_examples": 32, "checkpoint_every": 5,
                  "early_stop_acc": None},
        "eval": {"examples_per_bin": 32},
    },
    "grid": {"seed": [0, 1], "model.positional": ["ape", "nope"]},
}
# bins x groups (all, k=1, k=2) x metrics (exact_match_tf, exact_match_greedy, token_acc)
METRIC_ROWS_PER_RUN = 2 * 3 * 3


def sweep_configs():
    return expand(SPEC, "sweep_test")


def results(store: ResultsStore, keys=None) -> dict:
    """Everything a run leaves in the store except timings: status, steps, metrics and curves."""
    out = {}
    for run in store.runs():
        if keys is None or run.key in keys:
            metrics = sorted((m.lo, m.hi, m.grp, m.metric, m.value, m.count)
                             for m in store.metrics(keys=[run.key]))
            curves = [(c.step, c.name, c.value) for c in store.curves(run.key)]
            out[run.key] = (run.status, run.steps_done, metrics, curves)
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """An uninterrupted 4-run sweep on two local workers: the reference every other test matches."""
    store = ResultsStore(tmp_path_factory.mktemp("clean"))
    result = run_sweep(sweep_configs(), store, "local", workers=2, threads=1)
    return store, result


@pytest.mark.slow
def test_local_sweep_runs_everything_once(clean):
    store, result = clean
    configs = sweep_configs()
    keys = {c.key() for c in configs}
    assert sorted(result.done) == sorted(keys) and not result.failed and result.retries == 0
    runs = store.runs()
    assert {r.key for r in runs} == keys and len(runs) == 4
    assert all(r.status == "finished" and r.steps_done == STEPS for r in runs)
    assert {r.name for r in runs} == {f"seed={s} positional={p}" for s in (0, 1) for p in ("ape", "nope")}
    for key in keys:
        assert len(store.metrics(keys=[key])) == METRIC_ROWS_PER_RUN
        assert (store.root / "models" / f"{key}.pt").exists()
        assert not (store.root / "checkpoints" / f"{key}.pt").exists()
    # Different seeds and schemes train different models.
    assert len({tuple(curves) for *_, curves in results(store).values()}) == 4
    # A rerun finds nothing to do and leaves the store as it was.
    before = {r.key: r.finished_at for r in runs}
    again = run_sweep(configs, store, "local", workers=2, threads=1)
    assert sorted(again.done) == sorted(keys) and {r.key: r.finished_at for r in store.runs()} == before


@pytest.mark.slow
def test_dead_worker_run_is_requeued_and_failures_are_reported(clean, tmp_path):
    """One worker: it is SIGKILLed mid-run, a replacement resumes the run to the reference numbers;
    a run that raises is reported as failed without stopping the sweep."""
    good = sweep_configs()[0]
    broken = good.model_copy(update={"device": "no-such-device", "seed": 7})
    store = ResultsStore(tmp_path)
    out = {}
    driver = threading.Thread(target=lambda: out.update(result=run_sweep([good, broken], store, "local", workers=1,
                                                                          threads=1)))
    driver.start()
    checkpoint = tmp_path / "checkpoints" / f"{good.key()}.pt"
    deadline = time.time() + 60
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert checkpoint.exists(), "the worker never wrote a checkpoint"
    (worker,) = multiprocessing.active_children()
    os.kill(worker.pid, signal.SIGKILL)
    driver.join(timeout=120)
    result = out["result"]
    assert result.retries == 1 and result.done == [good.key()]
    ((label, error),) = result.failed.items()
    assert broken.key() in label and "no-such-device" in error
    assert results(store) == results(clean[0], keys={good.key()})
    assert not multiprocessing.active_children()


@pytest.mark.slow
def test_local_worker_runs_can_use_batch_workers(clean, tmp_path):
    """A run in a local worker process may start its own batch workers (data_workers) and gets the
    numbers of the same run without them."""
    cfg = sweep_configs()[0]
    store = ResultsStore(tmp_path)
    result = run_sweep([cfg.model_copy(update={"data_workers": 1})], store, "local", workers=1, threads=1)
    assert result.done == [cfg.key()] and not result.failed
    assert results(store) == results(clean[0], keys={cfg.key()})


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # exited while we looked
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


def _checkpointed_since(root, t: float) -> bool:
    try:
        return any(p.stat().st_mtime > t for p in (root / "checkpoints").glob("*.pt"))
    except OSError:  # a checkpoint replaced or removed while we looked
        return False


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_killed_driver_sweep_completes_exactly_once(clean, tmp_path):
    """kill -9 of the driver at random moments, then the same command: every run once, finished,
    with exactly the numbers of the uninterrupted sweep (no lost, duplicated or half-written rows)."""
    exp = tmp_path / "sweep.yaml"
    exp.write_text(yaml.safe_dump(SPEC))
    root = tmp_path / "runs"
    cmd = [sys.executable, "-m", "lengthgen.cli", "--root", str(root), "run", str(exp), "--executor", "local",
           "--workers", "2", "--threads", "1", "--no-report"]
    rng = random.Random(1234)
    seen_running = False
    for _ in range(3):
        started = time.time()
        driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill at a random moment after this driver's workers are training (a fresh checkpoint),
        # so that kills land in training steps, checkpoint writes and store writes alike.
        while not _checkpointed_since(root, started) and driver.poll() is None and time.time() < started + 120:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.2))  # short: on an idle machine a whole run takes about a second
        workers = _children(driver.pid)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        # Orphaned workers notice the driver is gone and exit instead of training on.
        deadline = time.time() + 5
        while any(map(_alive, workers)) and time.time() < deadline:
            time.sleep(0.05)
        assert not any(map(_alive, workers)), "workers outlived the killed driver"
        if (root / "results.sqlite").exists():
            seen_running |= any(r.status == "running" for r in ResultsStore(root).runs())
    assert seen_running, "no kill landed while a run was in progress"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    store = ResultsStore(root)
    assert len(store.runs()) == 4
    assert results(store) == results(clean[0])
    assert not list((root / "checkpoints").glob("*.pt"))


@pytest.mark.slow
def test_ray_sweep_returns_results_to_the_driver(clean, tmp_path):
    """An embedded Ray instance (2 CPUs): workers train in node-local scratch stores and the driver
    writes what they return; the numbers match the local executor's."""
    configs = sweep_configs()[:2]
    store = ResultsStore(tmp_path)
    result = run_sweep(configs, store, "ray", workers=2, threads=1)
    keys = {c.key() for c in configs}
    assert set(result.done) == keys and not result.failed
    assert results(store) == results(clean[0], keys=keys)
    for key in keys:
        ray_model = torch.load(tmp_path / "models" / f"{key}.pt", weights_only=False)["model"]
        local_model = torch.load(clean[0].root / "models" / f"{key}.pt", weights_only=False)["model"]
        assert ray_model.keys() == local_model.keys()
        assert all(torch.equal(ray_model[k], local_model[k]) for k in ray_model)
    assert store.runs()[0].host  # the worker's host, carried back with the run


def test_bad_executor_settings_fail_fast(tmp_path):
    store, configs = ResultsStore(tmp_path), sweep_configs()
    with pytest.raises(ConfigError, match="unknown executor 'dask'; choose one of: sequential, local, ray"):
        run_sweep(configs, store, "dask")
    with pytest.raises(ConfigError, match="workers must be at least 1, got 0"):
        run_sweep(configs, store, "local", workers=0)
    with pytest.raises(ConfigError, match="workers=2 needs executor local or ray"):
        run_sweep(configs, store, "sequential", workers=2)
    with pytest.raises(ConfigError, match="only applies to the ray executor"):
        run_sweep(configs, store, "local", address="auto")
    assert not store.runs()
