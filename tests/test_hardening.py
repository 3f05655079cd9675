"""Faults and hostile input in the run layer: files that would run code, corrupt checkpoints and
stores, unwritable folders, runs shared by experiments, a report pointed at the wrong root."""

import os
from pathlib import Path

import pytest
import torch

from lengthgen.cli import main
from lengthgen.config import load_run_config
from lengthgen.experiments.runner import execute, plan
from lengthgen.store import ResultsStore
from lengthgen.training import train_run

TINY = {"task": {"name": "sparse_parity", "params": {"k": [1, 2]}, "train_lengths": [4, 8],
                 "eval_bins": [[4, 8], [9, 12]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 8},
        "train": {"steps": 6, "batch_size": 8, "eval_every": 6, "eval_examples": 8, "checkpoint_every": 3},
        "eval": {"examples_per_bin": 8, "greedy": False}}


class RunsCode:
    """Unpickling this creates a folder: the harmless stand-in for any code a crafted file runs."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_a_crafted_model_file_is_refused_without_running_its_code(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    torch.save({"config": RunsCode(marker), "model": {}}, tmp_path / "evil.pt")
    assert main(["--root", str(tmp_path), "eval", str(tmp_path / "evil.pt")]) == 2
    assert "is not a readable lengthgen model file" in capsys.readouterr().err
    assert not marker.exists()


def test_a_crafted_checkpoint_is_moved_aside_and_the_run_restarts(tmp_path):
    cfg = load_run_config(TINY)
    store = ResultsStore(tmp_path)
    marker = tmp_path / "code-ran"
    store.checkpoint_path(cfg.key()).parent.mkdir(parents=True)
    torch.save({"state": RunsCode(marker)}, store.checkpoint_path(cfg.key()))
    with pytest.warns(UserWarning, match="could not be read"):
        run = train_run(cfg, store)
    assert not marker.exists() and run.status == "finished" and run.steps_done == 6
    assert store.checkpoint_path(cfg.key()).with_name(f"{cfg.key()}.pt.corrupt").exists()


def test_a_truncated_checkpoint_does_not_block_its_run(tmp_path):
    cfg = load_run_config(TINY)
    clean = train_run(cfg, ResultsStore(tmp_path / "clean"))
    store = ResultsStore(tmp_path / "broken")
    path = store.checkpoint_path(cfg.key())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(UserWarning, match="restarting the run from step 0"):
        run = train_run(cfg, store)
    assert run.status == "finished"
    assert store.metrics(keys=[cfg.key()]) == ResultsStore(tmp_path / "clean").metrics(keys=[clean.key])


def test_a_finished_run_joins_every_experiment_that_contains_it(tmp_path):
    store = ResultsStore(tmp_path)
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    import yaml

    for path, name in ((first, "first"), (second, "second")):
        path.write_text(yaml.safe_dump({"experiment": name, "base": TINY}))
    execute(plan(first), store)
    execute(plan(second), store)  # the same run: skipped, not retrained
    assert len(store.runs()) == 1
    assert [r.key for r in store.runs(experiment="second")] == [r.key for r in store.runs(experiment="first")]
    assert store.metrics(experiment="second") and store.metrics(experiment="second") == store.metrics(experiment="first")


def test_an_unwritable_models_folder_fails_before_training(tmp_path):
    if os.geteuid() == 0:  # root writes anywhere: make the folder a file instead
        (tmp_path / "models").write_text("not a folder")
    else:
        (tmp_path / "models").mkdir(mode=0o500)
    cfg = load_run_config(TINY)
    with pytest.raises(ValueError, match="cannot write run files to"):
        train_run(cfg, ResultsStore(tmp_path))
    assert not ResultsStore(tmp_path).runs()  # nothing started, nothing left "running"


def test_bad_roots_and_stores_are_clear_errors(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["--root", str(a_file), "train", "--config", str(tmp_path / "none.yaml")]) == 2
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "results.sqlite").write_bytes(b"this is not a database" * 100)
    assert main(["--root", str(corrupt), "report"]) == 2
    assert "is not a usable lengthgen results store" in capsys.readouterr().err
    with pytest.raises(ValueError, match="is a file, not a folder"):
        ResultsStore(a_file).runs()


def test_report_refuses_a_root_without_a_store_and_writes_under_root(tmp_path, capsys):
    assert main(["--root", str(tmp_path / "typo"), "report"]) == 2
    assert "no results store" in capsys.readouterr().err and not (tmp_path / "typo").exists()
    store = ResultsStore(tmp_path / "runs")
    train_run(load_run_config({**TINY, "experiment": "e"}), store)
    assert main(["--root", str(store.root), "report", "--experiment", "e", "--metric", "exact_match_tf"]) == 0
    assert list((store.root / "plots").glob("*.png"))


def test_report_lists_diverged_runs(tmp_path, capsys):
    store = ResultsStore(tmp_path)
    cfg = load_run_config({**TINY, "experiment": "e", "train": {**TINY["train"], "lr": 1e30}})
    run = train_run(cfg, store)
    assert run.status == "diverged"
    assert main(["--root", str(tmp_path), "report", "--experiment", "e"]) == 0
    assert "diverged" in capsys.readouterr().out


def test_eval_examples_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--root", str(tmp_path), "eval", "x", "--examples", "-1"])
    assert exit_.value.code == 2 and "expected a whole number >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_embedded_ray_listens_on_loopback_only():
    from lengthgen.experiments.sweep import start_ray

    start_ray(None, 1, 1)  # imports ray (CI installs the ray extra)
    import ray

    try:
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    finally:
        ray.shutdown()


def test_a_failed_write_leaves_no_temporary_file_and_keeps_the_old_one(tmp_path):
    """A full disk (any error while writing) must not leave `*.tmp<pid>` files nor damage the file."""
    from lengthgen.store import atomic_write

    path = tmp_path / "models" / "run.pt"
    atomic_write(path, lambda tmp: tmp.write_bytes(b"old"))

    def disk_full(tmp):
        tmp.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, disk_full)
    assert path.read_bytes() == b"old" and [p.name for p in path.parent.iterdir()] == ["run.pt"]
