"""The padding measurement script and the fused optimizer the throughput benchmark relies on."""

import importlib.util
from pathlib import Path

import pytest
import torch

from lengthgen.config import load_run_config
from lengthgen.data import train_batch
from lengthgen.tasks import PAD, make_task
from lengthgen.training.build import build_model, make_optimizer

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


padding = load_script("padding")


def test_unsplit_fraction_counts_the_padding_of_real_batches():
    task, lengths = make_task("unique_copy"), (1, 30)
    real, scored = padding.fractions(task, lengths, splits=1, batch_size=16, steps=5)
    batches = [train_batch(task, 0, step, 16, lengths, None) for step in range(5)]
    computed = sum(b.inputs.numel() for b in batches)
    assert real == pytest.approx(sum(int((b.inputs != PAD).sum()) for b in batches) / computed)
    assert scored == pytest.approx(sum(int((b.targets >= 0).sum()) for b in batches) / computed)
    assert 0 < scored < real < 1


def test_sorted_sub_batches_waste_less_and_singletons_waste_nothing():
    task = make_task("sparse_parity")
    reals = [padding.fractions(task, (6, 32), splits, 16, steps=5)[0] for splits in (1, 2, 4, 16)]
    assert reals == sorted(reals) and reals[0] < reals[1]
    assert reals[-1] == pytest.approx(1.0)


def test_padding_cli_rejects_bad_splits(capsys):
    with pytest.raises(SystemExit):
        padding.main(["--splits", "0"])
    assert "--splits must lie in 1..64" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        padding.main(["--size", "1/3/64"])
    assert "width divisible by heads, got '1/3/64'" in capsys.readouterr().err


def test_steps_per_second_times_the_model_size_asked_for():
    rates = padding.steps_per_second("sort", (1, 8), [1, 2], batch_size=8, size=(1, 2, 32), rounds=1, steps=2)
    assert set(rates) == {1, 2} and all(r > 0 for r in rates.values())


def test_optimizer_is_fused_on_cpu_and_keeps_decay_groups():
    cfg = load_run_config({"task": {"name": "sparse_parity", "train_lengths": [4, 8], "eval_bins": [[4, 8]]},
                           "model": {"n_layers": 1, "n_heads": 1, "d_model": 8}, "train": {"weight_decay": 0.1}})
    model = build_model(cfg, cfg.task.build())
    opt = make_optimizer(model, cfg)
    assert all(g["fused"] for g in opt.param_groups)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
