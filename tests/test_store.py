import math
import multiprocessing as mp
import os
import subprocess
import sys
import time
from dataclasses import FrozenInstanceError, asdict, fields

import numpy as np
import pytest

from lengthgen import __version__
from lengthgen.records import Analysis, CurvePoint, Decision, EvalRow, MetricRow, Run
from lengthgen.store import ResultsStore, expected_layout


def config(task="sparse_parity", positional="ape", seed=0, **extra):
    return {"task": {"name": task, "params": {"k": [1, 4]}}, "model": {"positional": positional}, "seed": seed,
            **extra}


def metric_rows(scale=1.0, bins=((10, 40), (41, 80)), groups=("", "k=1", "k=2")):
    return [dict(lo=lo, hi=hi, grp=g, metric=m, value=scale * (lo + i) / 100, count=500)
            for lo, hi in bins for i, g in enumerate(groups) for m in ("exact_match_greedy", "token_acc")]


def curve_rows(n=5):
    return [dict(step=s, name=name, value=float(s)) for s in range(n) for name in ("loss", "lr")]


def finish(store, key, metrics=None, curves=None, status="finished", **kw):
    store.finish_run(key, status=status, metrics=metric_rows() if metrics is None else metrics,
                     curves=curve_rows() if curves is None else curves, wall_time=1.5, steps_done=100, **kw)


def test_round_trip(tmp_path):
    store = ResultsStore(tmp_path)
    store.start_run("k1", config(seed=3), name="parity-ape", experiment="exp")
    run = store.get_run("k1")
    assert (run.status, run.task, run.positional, run.seed, run.version) == \
           ("running", "sparse_parity", "ape", 3, __version__)
    assert run.config == config(seed=3) and run.created_at and run.finished_at is None
    assert not store.is_finished("k1") and store.get_run("nope") is None

    metrics = metric_rows()
    metrics[0]["value"] = np.float32(0.25)  # numpy scalars are stored as plain floats
    metrics[1]["value"] = math.nan  # SQLite keeps NaN as NULL; it reads back as NaN
    finish(store, "k1", metrics=metrics, extra={"early_stop_step": 80})
    run = store.get_run("k1")
    assert (run.status, run.wall_time, run.steps_done, run.extra) == \
           ("finished", 1.5, 100, {"early_stop_step": 80})
    assert store.is_finished("k1") and run.finished_at

    got = store.metrics(keys=["k1"])
    assert len(got) == len(metrics)
    by_id = {(m.lo, m.hi, m.grp, m.metric): m for m in got}
    for m in metrics:
        row = by_id[(m["lo"], m["hi"], m["grp"], m["metric"])]
        assert row.count == 500 and (row.value == pytest.approx(float(m["value"]))
                                        or math.isnan(m["value"]) and math.isnan(row.value))
        assert (row.task, row.positional, row.seed, row.name, row.experiment) == \
               ("sparse_parity", "ape", 3, "parity-ape", "exp")
    assert [asdict(c) for c in store.curves("k1")] == sorted(curve_rows(), key=lambda c: (c["name"], c["step"]))

    store.start_run("k2", config(seed=4), experiment="other")
    finish(store, "k2", status="diverged")
    assert store.is_finished("k2")
    assert [r.key for r in store.runs(experiment="exp")] == ["k1"]
    assert [r.key for r in store.runs(status="diverged")] == ["k2"]
    assert {m.run_key for m in store.metrics(experiment="other")} == {"k2"}
    assert len(store.metrics()) == 2 * len(metrics)

    store.delete_run("k1")
    assert store.get_run("k1") is None and store.metrics(keys=["k1"]) == [] and store.curves("k1") == []


def test_bad_calls_fail_fast(tmp_path):
    store = ResultsStore(tmp_path)
    with pytest.raises(KeyError, match="start_run"):
        finish(store, "never-started")
    store.start_run("k", config())
    with pytest.raises(ValueError, match="finished, diverged, failed"):
        finish(store, "k", status="done")
    assert store.get_run("k").status == "running"


def test_refinish_replaces(tmp_path):
    store = ResultsStore(tmp_path)
    store.start_run("k", config())
    finish(store, "k", metrics=metric_rows(1.0), curves=curve_rows(5))
    finish(store, "k", metrics=metric_rows(0.5), curves=curve_rows(3), status="diverged")
    assert sorted(m.value for m in store.metrics()) == sorted(m["value"] for m in metric_rows(0.5))
    assert len(store.curves("k")) == len(curve_rows(3))
    assert store.get_run("k").status == "diverged"


def test_finish_is_atomic(tmp_path):
    store = ResultsStore(tmp_path)
    store.start_run("k", config())
    finish(store, "k", extra={"attempt": 1})
    before = (store.get_run("k"), store.metrics(), store.curves("k"))
    bad = metric_rows(0.5)
    bad[4]["value"] = "not a number"  # rows 0-3 are inserted (after the deletes) before this one fails
    with pytest.raises(ValueError):
        finish(store, "k", metrics=bad, status="diverged", extra={"attempt": 2})
    assert (store.get_run("k"), store.metrics(), store.curves("k")) == before


class _CrashOnRead(dict):
    def __getitem__(self, item):
        os._exit(3)


def _crash_mid_finish(root):
    metrics = metric_rows(0.5)
    metrics[4] = _CrashOnRead(metrics[4])
    finish(ResultsStore(root), "k", metrics=metrics, status="diverged")


def test_process_killed_mid_finish_leaves_old_state(tmp_path):
    store = ResultsStore(tmp_path)
    store.start_run("k", config())
    finish(store, "k")
    before = (store.get_run("k"), store.metrics(), store.curves("k"))
    child = mp.get_context("spawn").Process(target=_crash_mid_finish, args=(tmp_path,))
    child.start()
    child.join(60)
    assert child.exitcode == 3
    assert (store.get_run("k"), store.metrics(), store.curves("k")) == before
    finish(store, "k", status="diverged")  # and the database is not left locked
    assert store.get_run("k").status == "diverged"


def test_store_survives_fork(tmp_path):
    store = ResultsStore(tmp_path)
    store.start_run("parent", config())  # the parent's connection is open when it forks
    child = mp.get_context("fork").Process(target=finish, args=(store, "parent"))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    store.start_run("after", config(seed=1))
    assert store.is_finished("parent") and len(store.metrics(keys=["parent"])) == len(metric_rows())


RUNS_PER_WORKER = 15
SHARED_RUNS = 5


def _sweep_worker(store, worker):
    for j in range(RUNS_PER_WORKER):
        # Each worker also finishes the shared runs, as racing sweep workers would.
        for key in (f"w{worker}-{j}", f"shared-{j % SHARED_RUNS}"):
            store.start_run(key, config(seed=j), experiment="sweep")
            finish(store, key, metrics=metric_rows(worker + 1), curves=curve_rows(20))


def test_concurrent_writers_lose_and_duplicate_nothing(tmp_path):
    store = ResultsStore(tmp_path)
    workers = [mp.get_context("spawn").Process(target=_sweep_worker, args=(store, w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert [w.exitcode for w in workers] == [0] * 4

    runs = store.runs(experiment="sweep")
    assert sorted(r.key for r in runs) == sorted(
        [f"w{w}-{j}" for w in range(4) for j in range(RUNS_PER_WORKER)] + [f"shared-{j}" for j in range(SHARED_RUNS)])
    assert all(r.status == "finished" for r in runs)
    metrics, n_metrics = store.metrics(experiment="sweep"), len(metric_rows())
    assert len(metrics) == len(runs) * n_metrics
    one_worker_values = [sorted(m["value"] for m in metric_rows(w + 1)) for w in range(4)]
    for r in runs:
        # A run's metrics all come from one finish call, never a mix of two workers' writes.
        assert sorted(m.value for m in metrics if m.run_key == r.key) in one_worker_values
        assert len(store.curves(r.key)) == len(curve_rows(20))


def test_decisions_round_trip_and_replace(tmp_path):
    store = ResultsStore(tmp_path)
    assert store.decisions() == []
    store.put_decision("exp", "parity ape", {"chosen": "a", "successes": 1})
    store.put_decision("exp", "majority ape", {"chosen": "b", "successes": 0})
    store.put_decision("other", "parity ape", {"chosen": "c"})
    store.put_decision("exp", "parity ape", {"chosen": "a", "successes": 2})  # a later pass replaces
    got = store.decisions("exp")
    assert [(d.cell, d.decision) for d in got] == [("majority ape", {"chosen": "b", "successes": 0}),
                                                         ("parity ape", {"chosen": "a", "successes": 2})]
    assert len(store.decisions()) == 3
    assert ResultsStore(tmp_path).decisions("other")[0].decision == {"chosen": "c"}  # persisted


def test_an_unreaped_exited_process_owns_no_run():
    """A killed driver's workers can linger as zombies where nothing reaps them; a zombie trains nothing,
    so its run must be taken over, not refused."""
    from lengthgen.store import _pid_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while _state(child.pid) != "Z" and time.time() < deadline:  # exited, not yet waited for
        time.sleep(0.01)
    assert _state(child.pid) == "Z"
    assert not _pid_alive(child.pid)
    child.wait()
    assert not _pid_alive(child.pid)
    assert _pid_alive(os.getpid())


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_records_have_the_columns_of_their_tables():
    tables = expected_layout()
    assert {f.name for f in fields(Run)} == tables["runs"]
    assert {f.name for f in fields(MetricRow)} == tables["metrics"] | {"task", "positional", "seed", "name",
                                                                        "experiment", "status"}
    assert {f.name for f in fields(EvalRow)} == tables["evals"]
    assert {f.name for f in fields(CurvePoint)} == tables["curves"] - {"run_key"}
    assert {f.name for f in fields(Decision)} == tables["decisions"]
    assert {f.name for f in fields(Analysis)} == tables["analyses"]


def test_reads_return_frozen_records(tmp_path):
    store = ResultsStore(tmp_path)
    store.start_run("k", config(), name="n", experiment="exp")
    finish(store, "k")
    run = store.get_run("k")
    assert isinstance(run, Run) and store.runs() == [run] and asdict(run)["config"] == config()
    with pytest.raises(FrozenInstanceError):
        run.status = "failed"
    row = store.metrics(keys=["k"])[0]
    assert isinstance(row, MetricRow) and row.bin == (row.lo, row.hi) and row.status == "finished"
    assert all(isinstance(p, CurvePoint) for p in store.curves("k"))
    store.put_evals("k", metric_rows()[:1])
    [evaluated] = store.evals("k")
    assert isinstance(evaluated, EvalRow) and evaluated.evaluated_at and evaluated.bin == (10, 40)
    store.put_analysis("exp", "probe", {"window": 8}, {"gain": [0.5]})
    analysis = store.analysis("exp", "probe")
    assert isinstance(analysis, Analysis) and (analysis.settings, analysis.result) == ({"window": 8}, {"gain": [0.5]})


def test_decision_reads_what_the_protocol_stores(tmp_path):
    store = ResultsStore(tmp_path)
    seeds = {"attempted": ["a", "b", "c"], "successful": ["b"]}
    decision = {"task": "parity", "positional": "ape", "positional_reg": 0.0, "seeds": seeds,
                "chosen": {"overrides": {"train.lr": 0.001}, "rule": "fallback", "explanation": "..."}}
    store.put_decision("exp", "parity ape", decision)
    store.put_decision("exp", "parity nope", {**decision, "seeds": {**seeds, "counted": ["a", "b"]}})
    old, new = store.decisions("exp")
    assert old.decision == decision  # the stored JSON, whole
    assert (old.task, old.positional, old.positional_reg, old.rule, old.overrides) == \
           ("parity", "ape", 0.0, "fallback", {"train.lr": 0.001})
    assert (old.attempted, old.successful, old.counted) == (["a", "b", "c"], ["b"], ["b"])  # before `counted`
    assert new.counted == ["a", "b"]
