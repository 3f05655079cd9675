"""Data-parallel training: two gloo processes under torchrun train the run one process trains.
Both sides run on the CPU (device: cpu), also on a machine with a GPU."""

import os
import subprocess
import sys

import pytest
import torch

from lengthgen.config import load_run_config
from lengthgen.store import ResultsStore
from lengthgen.training import train_run

SETTINGS = {"device": "cpu", "task.params.k": "[1,2]", "task.train_lengths": "[4,10]", "task.eval_bins": "[[4,10]]",
            "model.n_layers": "1", "model.d_model": "16", "train.steps": "30", "train.batch_size": "9",
            "train.eval_every": "15", "train.checkpoint_every": "10", "train.early_stop_acc": "null",
            "train.positional_reg": "0.01", "eval.examples_per_bin": "24"}


@pytest.mark.slow
def test_two_processes_follow_the_single_process_loss_curve(tmp_path):
    one, two = ResultsStore(tmp_path / "one"), ResultsStore(tmp_path / "two")
    cfg = load_run_config({"task": {"name": "sparse_parity", "params": {"k": [1, 2]}, "train_lengths": [4, 10],
                                    "eval_bins": [[4, 10]]},
                           "model": {"n_layers": 1, "d_model": 16},
                           "train": {"steps": 30, "batch_size": 9, "eval_every": 15, "checkpoint_every": 10,
                                     "early_stop_acc": None, "positional_reg": 0.01},
                           "eval": {"examples_per_bin": 24}, "device": "cpu"})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = train_run(cfg, one)
    finally:
        torch.set_num_threads(threads)
    # An odd batch (9 rows: 5 + 4) checks that unequal shards still weigh every scored token equally.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lengthgen.cli", "--root", str(two.root), "train", "--task", "sparse_parity"]
    for key, value in SETTINGS.items():
        cmd += ["--set", f"{key}={value}"]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("exact_match_greedy") == 1  # one results table: only rank 0 reports
    (b,) = two.runs()
    assert b.key == a.key and b.status == "finished" and b.steps_done == 30

    def curve(store, name):
        return [(c.step, c.value) for c in store.curves(a.key) if c.name == name]

    la, lb = curve(one, "loss"), curve(two, "loss")
    assert [s for s, _ in la] == [s for s, _ in lb] == list(range(1, 31))
    torch.testing.assert_close(torch.tensor([v for _, v in lb]), torch.tensor([v for _, v in la]), rtol=1e-4, atol=0)
    assert [s for s, _ in curve(two, "id_exact_match")] == [15, 30]
    assert not any((two.root / "checkpoints").glob("*.pt"))


def test_shards_split_the_batch_and_their_scaled_losses_average_to_the_whole_batch_loss(monkeypatch):
    import torch.nn.functional as F

    from lengthgen.data import IGNORE, train_batch
    from lengthgen.training.distributed import DataParallel

    task = load_run_config({"task": {"name": "sparse_parity", "params": {"k": [1, 2]}}}).task.build()
    batch = train_batch(task, 0, 0, 7, (4, 10), None)
    logits = torch.randn(*batch.inputs.shape, len(task.vocab))

    def mean_loss(rows, b):
        return F.cross_entropy(logits[rows].flatten(0, 1), b.targets.flatten(), ignore_index=IGNORE)

    scaled, seen = [], []
    for rank in range(3):
        monkeypatch.setenv("WORLD_SIZE", "3")
        monkeypatch.setenv("RANK", str(rank))
        part, share = DataParallel().shard(batch)
        rows = list(range(rank, 7, 3))
        assert torch.equal(part.inputs, batch.inputs[rows]) and len(part.examples) == len(rows)
        seen += rows
        scaled.append(share * mean_loss(rows, part))
    assert sorted(seen) == list(range(7))
    torch.testing.assert_close(sum(scaled) / 3, mean_loss(slice(None), batch))
