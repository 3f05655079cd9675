"""Faults of the machine and of files read back: a store that is locked, foreign, of another layout,
damaged, read-only or on a full disk; checkpoints and model files with crafted contents; runs left
running by a process that is gone; sizes and arguments out of bounds; Ctrl-C."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import yaml

from lengthgen import store as store_module
from lengthgen.cli import main
from lengthgen.config import load_run_config
from lengthgen.store import ResultsStore
from lengthgen.training import build_model, train_run
from lengthgen.training.build import make_optimizer, make_schedule
from lengthgen.training.lifecycle import RunState

SRC = str(Path(__file__).resolve().parents[1] / "src")
TINY = {"task": {"name": "sparse_parity", "params": {"k": [1, 2]}, "train_lengths": [4, 8],
                 "eval_bins": [[4, 8], [9, 12]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 8},
        "train": {"steps": 6, "batch_size": 8, "eval_every": 6, "eval_examples": 8, "checkpoint_every": 3},
        "eval": {"examples_per_bin": 8, "greedy": False}}


def cli(capsys, *argv) -> tuple[int, str]:
    """Exit status and stderr of the command line run in this process, as the shell would see them."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    return code, capsys.readouterr().err


def lengthgen(*argv, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lengthgen.cli", *map(str, argv)],
                            env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A store holding one finished run of TINY in experiment e."""
    store = ResultsStore(tmp_path_factory.mktemp("finished"))
    train_run(load_run_config({**TINY, "experiment": "e"}), store)
    return store


# -- the store --------------------------------------------------------------------------------------

def test_a_foreign_database_is_refused_unchanged(tmp_path, capsys):
    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER, name TEXT)")
    before = path.read_bytes()
    code, err = cli(capsys, "--root", tmp_path, "train", "--config", _tiny_file(tmp_path))
    assert code == 2 and "a SQLite database of another program (tables: photos)" in err
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite", "tiny.yaml"]


def _tiny_file(folder: Path, **changes) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


def test_a_store_of_another_layout_is_refused_before_training(tmp_path, capsys):
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        conn.executescript(store_module.SCHEMA.replace("    count INTEGER,\n", "", 1))
    code, err = cli(capsys, "--root", tmp_path, "train", "--config", _tiny_file(tmp_path))
    assert code == 2 and "of another layout (it lacks metrics.count)" in err
    assert not (tmp_path / "checkpoints").exists()  # nothing trained
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        conn.execute("PRAGMA user_version = 99")
    code, err = cli(capsys, "--root", tmp_path, "report")
    assert code == 2 and "written by a newer lengthgen" in err


def test_a_store_without_run_owners_gains_them_and_keeps_its_runs(tmp_path):
    old_schema = store_module.SCHEMA.replace("    pid INTEGER,\n    heartbeat TEXT,\n", "")
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        conn.executescript(old_schema)
        conn.execute("INSERT INTO runs (key, task, status, config, created_at) VALUES ('old', 'sparse_parity', "
                     "'finished', '{}', 'then')")
    store = ResultsStore(tmp_path)
    with pytest.warns(UserWarning, match="keep their key.*old"):  # a config too old to load keeps its key
        assert [(r.key, r.status, r.pid) for r in store.runs()] == [("old", "finished", None)]
    store.start_run("new", {"task": {"name": "sparse_parity"}})
    assert store.get_run("new").pid == os.getpid()


def test_a_locked_store_fails_fast_naming_the_lock(tmp_path, capsys, monkeypatch):
    ResultsStore(tmp_path).runs()  # create it
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], "
                               "isolation_level=None); c.execute('BEGIN IMMEDIATE'); print('held', flush=True); "
                               "time.sleep(60)", str(tmp_path / "results.sqlite")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setattr(store_module, "LOCK_WAIT_S", 1.0)  # the real bound is 20 s
        assert cli(capsys, "--root", tmp_path, "report")[0] == 0  # readers are not held up by a writer
        started = time.perf_counter()
        code, err = cli(capsys, "--root", tmp_path, "train", "--config", _tiny_file(tmp_path))
        assert code == 2 and "is locked by another process" in err and time.perf_counter() - started < 15
        assert not (tmp_path / "checkpoints").exists() or not list((tmp_path / "checkpoints").iterdir())
    finally:
        holder.kill()
        holder.wait()


def _store_file(folder: Path, runs: int = 1) -> Path:
    """A results store with `runs` running runs, all of it in its main file (no write-ahead log)."""
    store = ResultsStore(folder)
    for i in range(runs):
        store.start_run(f"run{i}", {"task": {"name": "sparse_parity"}, "padding": "x" * 200})
    with sqlite3.connect(store.path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store.path


def test_a_damaged_store_is_a_message_not_a_traceback(tmp_path, capsys):
    data = bytearray(_store_file(tmp_path / "good", runs=100).read_bytes())
    for page in range(1, len(data) // 4096):  # every page but the first (the layout) overwritten
        data[page * 4096:(page + 1) * 4096] = b"\xa5" * 4096
    (tmp_path / "results.sqlite").write_bytes(bytes(data))
    code, err = cli(capsys, "--root", tmp_path, "report")
    assert code == 2 and "is not a usable lengthgen results store" in err


@contextmanager
def small_disk(path: Path, size: str, *options: str):
    """A tmpfs of `size` at `path` (root only): a real full disk, or a read-only one."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join([f"size={size}", *options]),
                                            "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("needs root and mount to make a small or read-only file system")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_read_only_store_says_so_before_training(tmp_path, capsys):
    with small_disk(tmp_path / "ro", "1m") as root:
        (root / "results.sqlite").write_bytes(_store_file(tmp_path / "good").read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        code, err = cli(capsys, "--root", root, "train", "--config", _tiny_file(tmp_path, seed=5))
        assert code == 2 and "read-only" in err and "not a usable" not in err


def test_a_full_disk_under_the_store_is_named(tmp_path):
    with small_disk(tmp_path / "full", "128k") as root:
        store = ResultsStore(root)
        store.start_run("small", {"task": {"name": "sparse_parity"}})
        with pytest.raises(ValueError, match="no space left on the disk of results store"):
            store.start_run("big", {"task": {"name": "sparse_parity"}, "padding": "x" * 400_000})
        assert [r.key for r in store.runs()] == ["small"]


def test_a_full_disk_while_writing_the_model_loses_nothing(tmp_path, capsys):
    cfg_file, store = _tiny_file(tmp_path), ResultsStore(tmp_path / "runs")
    with small_disk(store.model_path("x").parent, "4k"):  # room for no model file
        code, err = cli(capsys, "--root", store.root, "train", "--config", cfg_file)
        assert code == 2 and "No space left on device" in err and "Traceback" not in err
        key = load_run_config(TINY).key()
        assert store.get_run(key).status == "failed" and store.checkpoint_path(key).exists()
        assert not list(store.model_path(key).parent.iterdir())  # no partial model file
    code, err = cli(capsys, "--root", store.root, "train", "--config", cfg_file)
    assert code == 0 and store.get_run(key).status == "finished" and store.model_path(key).exists()


def test_plots_on_a_full_disk_leave_no_empty_file(finished, tmp_path, capsys):
    with small_disk(tmp_path / "plots", "4k") as out:
        code, err = cli(capsys, "--root", finished.root, "report", "--experiment", "e", "--metric", "exact_match_tf",
                        "--out", out)
        assert code == 1 and "No space left on device" in err and "Traceback" not in err
        assert not list(out.iterdir())


# -- checkpoints and model files ------------------------------------------------------------------

def _checkpoint(cfg, step=3) -> dict:
    model = build_model(cfg, cfg.task.build())
    opt = make_optimizer(model, cfg)
    return {"model": model.state_dict(), "opt": opt.state_dict(), "sched": make_schedule(opt, cfg).state_dict(),
            "state": asdict(RunState(step=step))}


CRAFTED = {
    "an extra key": lambda ck: ck.update(extra=1),
    "a missing weight": lambda ck: ck["model"].pop(next(iter(ck["model"]))),
    "a wrong shape": lambda ck: ck["model"].update({k: torch.zeros(3) for k in list(ck["model"])[:1]}),
    "a wrong type": lambda ck: ck.update(state=[1, 2]),
    "a step beyond the run": lambda ck: ck["state"].update(step=10**9),
    "status finished": lambda ck: ck["state"].update(status="finished"),
    "a float step": lambda ck: ck["state"].update(step=3.0),
    "moments of the wrong shape": lambda ck: ck["opt"]["state"].update({0: {"step": torch.tensor(1.0),
                                                                           "exp_avg": torch.zeros(2)}}),
}


@pytest.mark.parametrize("fault", sorted(CRAFTED))
def test_a_checkpoint_with_crafted_values_is_moved_aside_and_the_run_restarts(tmp_path, fault):
    cfg = load_run_config(TINY)
    store = ResultsStore(tmp_path)
    checkpoint = _checkpoint(cfg)
    CRAFTED[fault](checkpoint)
    store.save_checkpoint(cfg.key(), checkpoint)
    with pytest.warns(UserWarning, match="restarting the run from step 0"):
        run = train_run(cfg, store)
    assert (run.status, run.steps_done) == ("finished", 6) and len(store.metrics(keys=[cfg.key()])) > 0
    assert store.checkpoint_path(cfg.key()).with_name(f"{cfg.key()}.pt.corrupt").exists()


def test_a_checkpoint_as_written_resumes(tmp_path):
    cfg = load_run_config(TINY)
    store = ResultsStore(tmp_path)
    store.save_checkpoint(cfg.key(), _checkpoint(cfg, step=6))  # at the last step: nothing left to train
    assert train_run(cfg, store).steps_done == 6 and not list(tmp_path.glob("checkpoints/*.corrupt"))


@pytest.mark.parametrize("fault,change", [
    ("a table of 3e7 positions", lambda ck: ck["config"]["resolved"].update(max_positions=30_000_000)),
    ("a config that does not match the weights", lambda ck: ck["config"]["model"].update(d_model=16)),
    ("weights of the wrong shape", lambda ck: ck["model"].update({k: torch.zeros(2) for k in list(ck["model"])[:1]})),
    ("an extra key", lambda ck: ck.update(code="x")),
])
def test_a_crafted_model_file_is_refused_fast(finished, tmp_path, capsys, fault, change):
    key = finished.runs()[0].key
    ck = torch.load(finished.model_path(key), weights_only=True)
    change(ck)
    torch.save(ck, tmp_path / "crafted.pt")
    started = time.perf_counter()
    code, err = cli(capsys, "--root", tmp_path, "eval", tmp_path / "crafted.pt")
    assert code == 2 and "is not a readable lengthgen model file" in err and time.perf_counter() - started < 10


# -- runs and their owners --------------------------------------------------------------------------

def _owned_by_subprocess(root: Path, cfg, stay: bool) -> subprocess.Popen:
    """A real process records the run as its own, then exits (or stays, sleeping)."""
    code = ("import sys, time; from lengthgen.store import ResultsStore; from lengthgen.config import "
            f"load_run_config; cfg = load_run_config({cfg.model_dump(mode='json')!r}); "
            "ResultsStore(sys.argv[1]).start_run(cfg.key(), cfg.model_dump(mode='json')); print('ok', flush=True); "
            f"time.sleep({60 if stay else 0})")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root)], env={**os.environ, "PYTHONPATH": SRC},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ok\n"
    return proc


def test_a_run_left_running_by_a_dead_process_is_reported_and_taken_over(tmp_path, capsys):
    cfg = load_run_config({**TINY, "experiment": "e"})
    _owned_by_subprocess(tmp_path, cfg, stay=False).wait()
    store = ResultsStore(tmp_path)
    assert [r.key for r in store.stale_runs()] == [cfg.key()]
    code = main(["--root", str(tmp_path), "report", "--experiment", "e"])
    assert code == 0 and "stale" in capsys.readouterr().out
    with pytest.warns(UserWarning, match="which is gone; taking it over"):
        assert train_run(cfg, store).status == "finished"


def test_a_run_a_live_process_trains_is_not_taken_over(tmp_path):
    cfg = load_run_config(TINY)
    owner = _owned_by_subprocess(tmp_path, cfg, stay=True)
    try:
        with pytest.raises(ValueError, match=f"is being trained by process {owner.pid}"):
            train_run(cfg, ResultsStore(tmp_path))
        assert not ResultsStore(tmp_path).stale_runs()
    finally:
        owner.kill()
        owner.wait()


def _kill_once_checkpointed(proc: subprocess.Popen, checkpoint: Path, sig: int) -> tuple[str, str]:
    deadline = time.time() + 120
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    return proc.communicate(timeout=60)


@pytest.mark.slow
def test_a_killed_forced_retrain_leaves_the_finished_run_visible(tmp_path):
    cfg_file = _tiny_file(tmp_path, experiment="e", train={**TINY["train"], "steps": 300, "checkpoint_every": 5})
    cfg = load_run_config(yaml.safe_load(cfg_file.read_text()))
    store = ResultsStore(tmp_path / "runs")
    train_run(cfg, store)
    before = store.metrics(keys=[cfg.key()])
    proc = lengthgen("--root", store.root, "train", "--config", cfg_file, "--force")
    _kill_once_checkpointed(proc, store.checkpoint_path(cfg.key()), signal.SIGKILL)
    assert store.get_run(cfg.key()).status == "finished" and store.metrics(keys=[cfg.key()]) == before
    assert [r.key for r in store.runs(experiment="e")] == [cfg.key()]


@pytest.mark.slow
def test_ctrl_c_ends_quietly_and_marks_the_run_failed(tmp_path):
    train = {**TINY["train"], "steps": 100_000, "checkpoint_every": 20}
    cfg, store = load_run_config({**TINY, "train": train}), ResultsStore(tmp_path)
    proc = lengthgen("--root", tmp_path, "train", "--config", _tiny_file(tmp_path, train=train))
    _, err = _kill_once_checkpointed(proc, store.checkpoint_path(cfg.key()), signal.SIGINT)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert store.get_run(cfg.key()).status == "failed" and store.checkpoint_path(cfg.key()).exists()


@pytest.mark.slow
def test_ctrl_c_ends_a_local_sweep_quietly(tmp_path):
    exp = tmp_path / "sweep.yaml"
    exp.write_text(yaml.safe_dump({"base": {**TINY, "train": {**TINY["train"], "steps": 100_000}},
                                   "grid": {"seed": [0, 1]}}))
    proc = lengthgen("--root", tmp_path / "runs", "run", exp, "--executor", "local", "--workers", 2, "--no-report",
                     start_new_session=True)  # Ctrl-C signals the whole process group, workers included
    deadline = time.time() + 120
    while not list(tmp_path.glob("runs/checkpoints/*.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "lengthgen: interrupted; run the same command again to resume"


# -- sizes and arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,message", [
    (["train", "--task", "sparse_parity", "--bins", "17-30000000"], "hi <= 65,536"),
    (["train", "--task", "sparse_parity", "--set", "train.batch_size=100000000"], "train.batch_size"),
    (["train", "--task", "sparse_parity", "--set", "eval.examples_per_bin=100000000"], "eval.examples_per_bin"),
    (["train", "--task", "sparse_parity", "--set", "train.eval_examples=100000000"], "train.eval_examples"),
    (["train", "--task", "sparse_parity", "--set", "data_workers=100000"], "data_workers"),
    (["train", "--task", "sparse_parity", "--set", f"seed={2**63}"], "seed"),
    (["train", "--task", "sparse_parity", "--seed", str(2**63)], "--seed"),
    (["eval", "x", "--examples", "100000000"], "--examples"),
    (["probe", "x", "--threads", "0"], "--threads"),
    (["probe", "x", "--examples", "0"], "--examples"),
    (["probe", "x", "--examples", "-5"], "--examples"),
    (["probe", "x", "--ks=-1,0"], "--ks expects"),
    (["run", "demo", "--workers", "0"], "--workers"),
])
def test_out_of_bounds_input_exits_2_naming_the_field(tmp_path, capsys, argv, message):
    code, err = cli(capsys, "--root", tmp_path / "runs", *argv)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_grid_of_a_million_points_is_refused_at_once(tmp_path, capsys):
    exp = tmp_path / "big.yaml"
    exp.write_text(yaml.safe_dump({"base": TINY, "grid": {"seed": list(range(1000)), "train.lr": [0.001] * 1000}}))
    started = time.perf_counter()
    code, err = cli(capsys, "--root", tmp_path / "runs", "run", exp)
    assert code == 2 and "1,000,000 points" in err and time.perf_counter() - started < 5


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    code, err = cli(capsys, "--root", tmp_path, "train", "--config", _tiny_file(tmp_path, device="cuda"))
    assert code == 2 and "device 'cuda'" in err and "0 CUDA device(s)" in err
    (tmp_path / "m.pt").write_bytes(b"x")
    code, err = cli(capsys, "--root", tmp_path, "eval", tmp_path / "m.pt", "--device", "cuda")
    assert code == 2 and "0 CUDA device(s)" in err and "not a readable" not in err


def test_bad_report_and_eval_arguments_exit_2(finished, tmp_path, capsys):
    code, err = cli(capsys, "--root", finished.root, "report", "--metric", "nosuch")
    assert code == 2 and "metrics stored: " in err and "exact_match_tf" in err
    (tmp_path / "afile").write_text("x")
    code, err = cli(capsys, "--root", finished.root, "report", "--out", tmp_path / "afile")
    assert code == 2 and "is a file; give a folder" in err
    key = finished.runs()[0].key
    code, err = cli(capsys, "--root", finished.root, "eval", key, "--bins", "4-8,4-8")
    assert code == 2 and "given twice" in err


def test_bad_roots_exit_2(tmp_path, capsys):
    code, err = cli(capsys, "--root", "", "report")
    assert code == 2 and "--root" in err and "empty" in err
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    code, err = cli(capsys, "--root", tmp_path / "link", "train", "--config", _tiny_file(tmp_path))
    assert code == 2 and "which does not exist" in err and not (tmp_path / "gone").exists()
