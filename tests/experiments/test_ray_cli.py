"""Ray as users run it: `lengthgen run FILE --executor ray` in a fresh interpreter (an embedded
instance that listens on loopback only), a cluster started with `ray start --head` and joined with
`--address`, and the private scratch folder each sweep trains in."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from lengthgen.config import load_run_config
from lengthgen.experiments.sweep import SCRATCH_PREFIX, _ray_train, sweep_scratch
from lengthgen.store import ResultsStore

SRC = str(Path(__file__).resolve().parents[2] / "src")
TINY = {"task": {"name": "sparse_parity", "params": {"k": [1, 2]}, "train_lengths": [4, 8], "eval_bins": [[4, 8]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 8},
        "train": {"steps": 4, "batch_size": 4, "eval_every": 4, "eval_examples": 4},
        "eval": {"examples_per_bin": 4, "greedy": False}}
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def lengthgen_run(tmp_path, *flags, env=None):
    exp = tmp_path / "tiny.yaml"
    exp.write_text(yaml.safe_dump({"experiment": "tiny", "base": TINY}))
    env = {**(env or os.environ), "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "lengthgen.cli", "--root", str(tmp_path / "runs"), "run", str(exp),
                             "--executor", "ray", "--no-report", *flags], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def listening_addresses(pid: int) -> set[str]:
    import psutil

    found = set()
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return found
    for proc in procs:
        try:
            found |= {c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:  # it ended meanwhile
            pass
    return found


def assert_one_finished_run(tmp_path, proc):
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()  # if it is still there, the test failed: leave nothing running
    assert proc.returncode == 0, err
    runs = ResultsStore(tmp_path / "runs").runs()
    assert [(r.status, r.steps_done) for r in runs] == [("finished", 4)]


@pytest.mark.slow
def test_lengthgen_run_with_ray_listens_on_loopback_only(tmp_path):
    pytest.importorskip("psutil")
    proc = lengthgen_run(tmp_path)
    seen = set()
    while proc.poll() is None:
        seen |= listening_addresses(proc.pid)
        time.sleep(0.2)
    assert seen and seen <= LOOPBACK, f"Ray listened on {seen}"
    assert_one_finished_run(tmp_path, proc)
    assert not list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*"))  # every sweep's scratch removed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_lengthgen_run_joins_a_cluster_started_with_ray_start(tmp_path):
    port = free_port()
    # A head node that serves loopback only, with token authentication like the driver that joins it.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen(["ray", "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
                             "--num-cpus=1", "--include-dashboard=false"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert_one_finished_run(tmp_path, lengthgen_run(tmp_path, "--address", f"127.0.0.1:{port}", env=env))
        # Every run finished: the command does not try to reach the cluster at all.
        started = time.perf_counter()
        assert_one_finished_run(tmp_path, lengthgen_run(tmp_path, "--address", "192.0.2.1:6379"))
        assert time.perf_counter() - started < 20
    finally:
        head.terminate()  # `ray start --block` stops the processes it started
        head.wait(timeout=60)
        # ... but leaves its address as "the current cluster", where a later ray.init() would look
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.exists() and current.read_text().strip() == f"127.0.0.1:{port}":
            current.unlink()


def test_ray_task_trains_afresh_in_its_sweeps_private_scratch(tmp_path):
    """A store planted where tasks used to train (one fixed folder per run) is never believed, and
    a task leaves no scratch behind."""
    cfg = load_run_config(TINY)
    planted = ResultsStore(Path(tempfile.gettempdir()) / "lengthgen-ray" / cfg.key())
    planted.start_run(cfg.key(), cfg.model_dump(mode="json"))
    planted.finish_run(cfg.key(), status="finished", metrics=[], curves=[], wall_time=0, steps_done=10**9)
    try:
        payload = _ray_train(cfg.model_dump(mode="json"), 1, "t1")
    finally:
        shutil.rmtree(planted.root.parent, ignore_errors=True)
    assert payload["run"].steps_done == 4 and payload["metrics"] and payload["model"]
    assert not list(Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}t1-*"))


def test_a_scratch_folder_that_is_not_private_is_refused(tmp_path):
    folder = Path(tempfile.gettempdir()) / f"{SCRATCH_PREFIX}shared-k"
    folder.mkdir(mode=0o777, exist_ok=True)
    folder.chmod(0o777)
    try:
        with pytest.raises(ValueError, match="is not this user's private folder"):
            sweep_scratch("shared", "k")
    finally:
        folder.rmdir()
