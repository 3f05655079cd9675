"""Training, evaluation, resume and divergence on tiny real runs."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from lengthgen.config import ConfigError, load_run_config
from lengthgen.data import TrainBatches, collate, eval_examples, train_batch
from lengthgen.evaluate import greedy_predictions, score
from lengthgen.store import ResultsStore
from lengthgen.training import train_run
from lengthgen.training.build import build_model, lr_factor

TINY = {
    "task": {"name": "sparse_parity", "params": {"k": [1, 2]}, "train_lengths": [4, 10],
             "eval_bins": [[4, 10], [11, 20]]},
    "model": {"n_layers": 1, "n_heads": 2, "d_model": 16},
    "train": {"steps": 60, "batch_size": 16, "eval_every": 30, "checkpoint_every": 20, "early_stop_acc": None},
    "eval": {"examples_per_bin": 40},
}


def cfg_with(**sections):
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY.items()}
    for k, v in sections.items():
        if isinstance(v, dict):
            data[k] = {**data.get(k, {}), **v}
        else:
            data[k] = v
    return load_run_config(data)


def test_training_learns_and_stores_everything(tmp_path):
    cfg = cfg_with(task={"name": "sparse_parity", "params": {"k": 1}, "train_lengths": [4, 8], "eval_bins": [[4, 8]]},
                   train={"steps": 300, "lr": 3e-3, "eval_every": 100, "early_stop_acc": None})
    store = ResultsStore(tmp_path)
    run = train_run(cfg, store)
    assert run.status == "finished" and run.steps_done == 300
    assert run.config["seed"] == 0 and run.config["task"]["name"] == "sparse_parity"
    assert run.version and run.config["resolved"]["max_positions"] >= 11
    loss = [c.value for c in store.curves(run.key) if c.name == "loss"]
    assert np.mean(loss[-10:]) < 0.5 * np.mean(loss[:10])
    acc = {(m.grp, m.metric): m.value for m in store.metrics(keys=[run.key])}
    assert acc[("k=1", "exact_match_tf")] > 0.9  # XOR of one planted bit: copy the bit
    assert (tmp_path / "models" / f"{run.key}.pt").exists()
    assert not (tmp_path / "checkpoints" / f"{run.key}.pt").exists()


def test_early_stop_at_target_accuracy(tmp_path):
    cfg = cfg_with(task={"name": "sparse_parity", "params": {"k": 1}, "train_lengths": [4, 6], "eval_bins": [[4, 6]]},
                   train={"steps": 2000, "lr": 3e-3, "eval_every": 50, "early_stop_acc": 0.95})
    run = train_run(cfg, ResultsStore(tmp_path))
    assert run.status == "finished" and run.steps_done < 2000
    assert run.extra["stopped_early_at"] == run.steps_done


def test_divergence_is_recorded_not_raised(tmp_path):
    cfg = cfg_with(train={"lr": 1e30, "grad_clip": None, "warmup_steps": 0, "schedule": "constant"})
    run = train_run(cfg, ResultsStore(tmp_path))
    assert run.status == "diverged" and run.steps_done < 60


def test_schedule_warmup_then_decay():
    cfg = cfg_with(train={"steps": 100, "warmup_steps": 10, "schedule": "linear"})
    assert lr_factor(0, cfg) == pytest.approx(0.1) and lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(55, cfg) == pytest.approx(0.5) and lr_factor(100, cfg) == 0.0
    cos = cfg_with(train={"steps": 100, "warmup_steps": 0, "schedule": "cosine"})
    assert lr_factor(50, cos) == pytest.approx(0.5) and lr_factor(100, cos) == pytest.approx(0.0)


def test_ape_table_covers_offsets_and_eval_lengths():
    cfg = cfg_with()
    task = cfg.task.build()
    model = build_model(cfg, task)
    assert model.max_positions == task.seq_len(20)  # offsets fill up to the longest eval length


@pytest.mark.parametrize("scheme", ["ape", "rope", "fire", "abacus"])
@pytest.mark.parametrize("task", [{"name": "kgram_lookup", "params": {"k": [1, 3], "distractors": 1}},
                                  {"name": "sort", "train_lengths": [1, 50]}])  # one-token / long answers
def test_greedy_decoding_matches_naive_loop_and_teacher_forcing(scheme, task):
    """Batched greedy decoding (key/value cache, answers starting at different positions) agrees
    with a one-example-at-a-time loop of full forward passes; and without predicted position IDs,
    greedy exact match equals teacher-forced exact match."""
    torch.manual_seed(0)
    cfg = load_run_config({"task": task, "model": {"n_layers": 1, "d_model": 16, "positional": scheme}})
    task = cfg.task.build()
    model = build_model(cfg, task).eval()
    examples = eval_examples(task, 12, 30, 24)
    batch = collate(examples)
    preds = greedy_predictions(model, batch)
    for b, ex in enumerate(examples):
        seq = torch.tensor(ex.inputs[: ex.answer_start + 1])
        for t in range(ex.answer_start, int(np.nonzero(ex.loss_mask)[0].max()) + 1):
            nxt = model(seq[None]).logits[0, -1].argmax()
            assert int(preds[b, t]) == int(nxt)
            seq = torch.cat([seq, nxt[None]])
    s = score(model, examples, 8, torch.device("cpu"))
    assert (s["tf"] == s["greedy"]).all()


def test_eval_sets_fixed_and_disjoint_from_training_stream():
    task = cfg_with().task.build()
    a = eval_examples(task, 11, 20, 10)
    b = eval_examples(task, 11, 20, 10)
    assert all((x.inputs == y.inputs).all() for x, y in zip(a, b))
    c = eval_examples(task, 11, 20, 10, tag=1)
    assert any(len(x.inputs) != len(y.inputs) or (x.inputs != y.inputs).any() for x, y in zip(a, c))
    assert all(11 <= e.length <= 20 for e in a)


def _train_cmd(root):
    return [sys.executable, "-m", "lengthgen.cli", "--root", str(root), "train", "--task", "sparse_parity",
            "--set", "task.params.k=[1,2]", "--set", "task.train_lengths=[4,10]", "--set", "task.eval_bins=[[4,10],[11,20]]",
            "--set", "model.n_layers=1", "--set", "model.d_model=16", "--steps", "400", "--set", "train.batch_size=16",
            "--set", "train.checkpoint_every=25", "--set", "train.early_stop_acc=null", "--set", "eval.examples_per_bin=40"]


@pytest.mark.slow
def test_killed_run_resumes_to_identical_results(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(_train_cmd(whole), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_train_cmd(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = killed / "checkpoints"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpts.exists() and any(ckpts.glob("*.pt"))):
        time.sleep(0.05)
    time.sleep(0.05)  # into the steps after the first checkpoint; short, as a fast machine trains 400 in ~1 s
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ck = next(ckpts.glob("*.pt"))
    step = torch.load(ck, weights_only=False)["state"]["step"]
    assert 0 < step < 400
    assert ResultsStore(killed).get_run(ck.stem).status == "running"
    subprocess.run(_train_cmd(killed), check=True, env=env, capture_output=True)
    a, b = ResultsStore(whole), ResultsStore(killed)
    (ra,), (rb,) = a.runs(), b.runs()
    assert ra.key == rb.key and rb.status == "finished" and rb.steps_done == 400
    ma = sorted((m.lo, m.grp, m.metric, m.value) for m in a.metrics())
    mb = sorted((m.lo, m.grp, m.metric, m.value) for m in b.metrics())
    assert ma == mb
    ca = [(c.step, c.name, c.value) for c in a.curves(ra.key)]
    cb = [(c.step, c.name, c.value) for c in b.curves(rb.key)]
    assert ca == cb


def test_length_buckets_cut_padding_and_keep_the_gradient():
    """Sorted sub-batches each padded to their own longest example give the same step gradient as
    the whole padded batch, while computing fewer token positions."""
    from lengthgen.data import length_buckets, train_batch
    from lengthgen.training.build import loss_on

    cfg = load_run_config({"task": {"name": "unique_copy", "train_lengths": [1, 30]},
                           "model": {"n_layers": 1, "n_heads": 2, "d_model": 16}})
    task = cfg.task.build()
    batch = train_batch(task, 0, 0, 32, (1, 30), None)
    grads = []
    for parts in (1, 4):
        torch.manual_seed(0)
        model = build_model(cfg, task)
        pieces = length_buckets(batch, parts)
        for part, share in pieces:
            (share * loss_on(model, part, False, torch.device("cpu"))).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        if parts == 4:
            assert len(pieces) == 4 and sum(float(s) for _, s in pieces) == pytest.approx(1.0)
            assert sum(p.inputs.numel() for p, _ in pieces) < batch.inputs.numel()
            assert sorted(len(e.inputs) for p, _ in pieces for e in p.examples) == sorted(
                len(e.inputs) for e in batch.examples)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_auto_length_buckets_follow_the_spread_of_lengths():
    from lengthgen.data import PART_COST_TOKENS, auto_parts, length_buckets, train_batch

    assert auto_parts(np.full(64, 30)) == 1  # equal lengths: nothing to gain
    assert auto_parts(np.array([10] * 32 + [11] * 32)) == 1  # one token of spread is not worth a sub-batch
    spread = np.arange(1, 65)
    parts = auto_parts(spread)
    assert 2 <= parts <= 8
    one = 64 * 64
    chosen = sum(len(r) * int(r[-1]) for r in np.array_split(spread, parts)) + (parts - 1) * PART_COST_TOKENS
    assert chosen < one
    cfg = load_run_config({"task": {"name": "unique_copy", "train_lengths": [1, 30]}})
    assert cfg.train.length_buckets == "auto"
    batch = train_batch(cfg.task.build(), 0, 0, 64, (1, 30), None)
    pieces = length_buckets(batch, "auto")
    assert len(pieces) == auto_parts(np.array([len(e.inputs) for e in batch.examples])) > 1
    assert sum(float(s) for _, s in pieces) == pytest.approx(1.0)


def test_auto_buckets_are_the_same_run_as_one_batch_and_a_fixed_count_is_not():
    base = {"task": {"name": "unique_copy", "train_lengths": [1, 30]}}
    auto, one = load_run_config(base), load_run_config({**base, "train": {"length_buckets": 1}})
    assert auto.train.length_buckets == "auto" and auto.key() == one.key()
    assert load_run_config({**base, "train": {"length_buckets": 2}}).key() != one.key()
    with pytest.raises(ConfigError, match="length_buckets"):
        load_run_config({**base, "train": {"length_buckets": "some"}})


def test_length_buckets_run_trains(tmp_path):
    run = train_run(cfg_with(train={"steps": 20, "length_buckets": 3}), ResultsStore(tmp_path))
    assert run.status == "finished" and run.config["train"]["length_buckets"] == 3


def _stored(store: ResultsStore, key: str):
    metrics = sorted((m.lo, m.hi, m.grp, m.metric, m.value) for m in store.metrics(keys=[key]))
    return metrics, [(c.step, c.name, c.value) for c in store.curves(key)]


def test_batch_workers_draw_the_same_batches():
    """Worker processes draw exactly `train_batch`'s batches, APE offsets and randomized positions
    included, in any order of requests (ensemble members at different steps, repeated requests)."""
    cfg = cfg_with(model={"positional": "randomized"})
    task, lengths = cfg.task.build(), cfg.task.train_lengths
    sampler = build_model(cfg, task).pos.train_position_sampler()
    requests = [(0, 0), (1, 0), (0, 1), (0, 1), (1, 3), (0, 2), (1, 4)]
    with TrainBatches(task, 8, lengths, 40, sampler, workers=2, stop=5) as draw:
        for seed, step in requests:
            got, want = draw(seed, step), train_batch(task, seed, step, 8, lengths, 40, sampler)
            for name in ("inputs", "targets", "position_ids"):
                assert torch.equal(getattr(got, name), getattr(want, name)), (seed, step, name)
            assert [e.length for e in got.examples] == [e.length for e in want.examples]


def test_run_with_batch_workers_matches_run_without(tmp_path):
    cfg = cfg_with(train={"steps": 30, "eval_every": 15})
    plain = train_run(cfg, ResultsStore(tmp_path / "plain"))
    workers = train_run(cfg.model_copy(update={"data_workers": 2}), ResultsStore(tmp_path / "workers"))
    assert workers.key == plain.key  # an execution setting, not part of the run's identity
    assert workers.config["data_workers"] == 2
    assert _stored(ResultsStore(tmp_path / "workers"), workers.key) == _stored(ResultsStore(tmp_path / "plain"),
                                                                                  plain.key)
