"""Fixed training sets (`train.dataset_size`) and the longest bin's validation draw."""

import numpy as np
import pytest
import torch

from lengthgen.config import load_run_config
from lengthgen.data import TrainBatches, TrainingSet, eval_examples, train_batch
from lengthgen.evaluate import VALIDATION_TAG
from lengthgen.groups import VALIDATION
from lengthgen.store import ResultsStore
from lengthgen.training import train_run

TINY = {"task": {"name": "tomita3", "train_lengths": [1, 12], "eval_bins": [[1, 12], [13, 20]]},
        "model": {"n_layers": 1, "n_heads": 2, "d_model": 16},
        "train": {"steps": 40, "batch_size": 8, "eval_every": 20, "checkpoint_every": 10, "early_stop_acc": None},
        "eval": {"examples_per_bin": 30}}


def _cfg(train=None, eval_=None, seed=0):
    return load_run_config({**TINY, "seed": seed, "train": {**TINY["train"], **(train or {})},
                            "eval": {**TINY["eval"], **(eval_ or {})}})


def _strings(examples):
    return [tuple(e.inputs.tolist()) for e in examples]


def test_training_set_is_fixed_distinct_and_covered_by_epochs():
    task = _cfg().task.build()
    ts = TrainingSet(task, seed=3, size=20, lengths=(1, 12))
    assert len(ts) == 20 and len(set(_strings(ts.examples))) == 20
    # 5 steps of 8 = two whole epochs: every example twice, each epoch in its own order
    seen = [s for step in range(5) for s in _strings(ts.batch(step, 8))]
    assert sorted(seen) == sorted(_strings(ts.examples) * 2)
    assert seen[:20] != seen[20:40] and sorted(seen[:20]) == sorted(seen[20:40])
    again = TrainingSet(task, seed=3, size=20, lengths=(1, 12))
    assert _strings(again.examples) == _strings(ts.examples) and _strings(again.batch(4, 8)) == _strings(ts.batch(4, 8))
    assert _strings(TrainingSet(task, seed=4, size=20, lengths=(1, 12)).examples) != _strings(ts.examples)


def test_training_set_stops_at_the_distinct_strings_a_window_holds():
    task = load_run_config({"task": {"name": "aa_star", "train_lengths": [2, 20]}}).task.build()
    ts = TrainingSet(task, seed=0, size=40, lengths=(2, 20))
    assert len(ts) == 10  # (aa)^k for k = 1..10: all of them, once each


def test_batches_come_from_the_set_and_workers_draw_the_same():
    cfg = _cfg(train={"dataset_size": 16})
    task = cfg.task.build()
    fixed = set(_strings(TrainingSet(task, 0, 16, (1, 12)).examples))
    with TrainBatches(task, 8, (1, 12), None, dataset_size=16) as here, \
            TrainBatches(task, 8, (1, 12), None, workers=1, stop=6, dataset_size=16) as there:
        for step in range(6):
            a, b = here(0, step), there(0, step)
            assert set(_strings(a.examples)) <= fixed
            assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    fresh = train_batch(task, 0, 0, 8, (1, 12), None)
    assert not set(_strings(fresh.examples)) <= fixed


def test_dataset_size_is_part_of_the_key_and_recorded(tmp_path):
    plain, fixed = _cfg(), _cfg(train={"dataset_size": 16})
    assert plain.key() != fixed.key()
    assert plain.key() == load_run_config({**TINY, "train": {**TINY["train"], "dataset_size": None}}).key()
    run = train_run(fixed, ResultsStore(tmp_path))
    assert run.config["train"]["dataset_size"] == 16
    assert run.config["resolved"]["training_set_size"] == 16


def test_a_resumed_run_draws_the_batches_of_an_uninterrupted_one():
    """A process that starts at step k (a resumed run) rebuilds the set and serves step k onward
    exactly as the uninterrupted process did: batches are pure functions of (seed, step)."""
    task = _cfg().task.build()
    with TrainBatches(task, 8, (1, 12), None, dataset_size=12) as whole:
        want = [whole(5, step) for step in range(7)]
    with TrainBatches(task, 8, (1, 12), None, dataset_size=12) as resumed:
        for step in range(4, 7):
            assert torch.equal(resumed(5, step).inputs, want[step].inputs)


def test_validation_draw_is_fresh_and_stored_under_its_group(tmp_path):
    task = _cfg().task.build()
    test_draw = _strings(eval_examples(task, 13, 20, 30))
    validation = _strings(eval_examples(task, 13, 20, 30, tag=VALIDATION_TAG))
    assert validation != test_draw
    run = train_run(_cfg(eval_={"validation_examples": 25}), ResultsStore(tmp_path))
    rows = [m for m in ResultsStore(tmp_path).metrics(keys=[run.key]) if m.grp == VALIDATION]
    assert {(m.lo, m.hi) for m in rows} == {(13, 20)} and all(m.count == 25 for m in rows)
    assert {m.metric for m in rows} >= {"exact_match_tf"}
