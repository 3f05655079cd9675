"""`--tracker tensorboard`: each run's curves (loss, learning rate, in-distribution accuracy, the
curves per bin) and final metrics as TensorBoard event files under ROOT/tensorboard/<run key>/,
from a run trained alone, an ensemble and a sweep's worker processes alike."""

import pytest

pytest.importorskip("tensorboard", reason="--tracker tensorboard needs the tracking extra (pip install tensorboard)")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from lengthgen.cli import TRACKERS, main  # noqa: E402
from lengthgen.config import load_run_config  # noqa: E402
from lengthgen.store import ResultsStore  # noqa: E402
from lengthgen.training import TRACKERS as KNOWN, make_tracker, train_ensemble, train_run  # noqa: E402

from fakes import StopAt  # noqa: E402

TINY = {"task": {"name": "parity", "train_lengths": [2, 6], "eval_bins": [[2, 6], [7, 12]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 16},
        "train": {"steps": 20, "batch_size": 8, "eval_every": 10, "early_stop_acc": None, "curve_bins": "eval",
                  "curve_examples": 8},
        "eval": {"examples_per_bin": 8}}


def scalars(root, key) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(root / "tensorboard" / key)).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def stored(store, key, name) -> list[tuple[int, float]]:
    return [(c.step, pytest.approx(c.value, rel=1e-6)) for c in store.curves(key) if c.name == name]


def test_a_run_writes_what_the_store_records(tmp_path):
    store = ResultsStore(tmp_path)
    run = train_run(load_run_config(TINY), store, tracker=make_tracker("tensorboard", tmp_path))
    seen = scalars(tmp_path, run.key)
    for name, tag in [("loss", "train/loss"), ("lr", "train/lr"), ("id_exact_match", "train/id_exact_match"),
                      ("exact_match_greedy@7-12", "bins/exact_match_greedy [7,12]")]:
        assert seen[tag] == stored(store, run.key, name)
    assert [step for step, _ in seen["train/id_exact_match"]] == [10, 20]
    final = next(m for m in store.metrics(keys=[run.key]) if m.metric == "exact_match_greedy" and m.lo == 7)
    assert seen["final/exact_match_greedy [7,12]"] == [(20, pytest.approx(final.value))]




def test_an_interrupted_run_keeps_what_it_sent(tmp_path):
    store, cfg = ResultsStore(tmp_path), load_run_config(TINY)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, store, progress=StopAt(12), tracker=make_tracker("tensorboard", tmp_path))
    events = EventAccumulator(str(tmp_path / "tensorboard" / cfg.key())).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 13))
    assert b"failed" in events.Tensors("status/text_summary")[0].tensor_proto.string_val[0]


def test_ensemble_members_are_tracked_one_folder_each(tmp_path):
    store = ResultsStore(tmp_path)
    runs = train_ensemble([load_run_config(TINY | {"seed": s}) for s in (0, 1)], store,
                          tracker=make_tracker("tensorboard", tmp_path))
    for run in runs:
        assert scalars(tmp_path, run.key)["train/loss"] == stored(store, run.key, "loss")


@pytest.mark.slow
def test_the_option_reaches_sweep_workers(tmp_path):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("experiment: tracked\nbase:\n  task: {name: parity, train_lengths: [2, 6], eval_bins: "
                          "[[2, 6]]}\n  model: {n_layers: 1, n_heads: 1, d_model: 16}\n  train: {steps: 10, "
                          "batch_size: 8, eval_every: 5, early_stop_acc: null}\n  eval: {examples_per_bin: 8}\n"
                          "grid:\n  seed: [0, 1]\n")
    assert main(["--root", str(tmp_path), "run", str(experiment), "--executor", "local", "--workers", "2",
                 "--no-report", "--tracker", "tensorboard"]) == 0
    keys = [r.key for r in ResultsStore(tmp_path).runs()]
    assert len(keys) == 2 and all(len(scalars(tmp_path, key)["train/loss"]) == 10 for key in keys)


def test_the_cli_knows_every_tracker():
    assert TRACKERS == KNOWN
