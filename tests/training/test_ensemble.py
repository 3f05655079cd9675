"""Ensembles: every member trains exactly as it would alone, stops alone, and is stored as a plain run."""

import pytest
import torch

from lengthgen.config import ConfigError, load_run_config
from lengthgen.model.stacked import stack_models
from lengthgen.training.ensemble import check_members, group_members, train_ensemble
from lengthgen.config import ModelConfig
from lengthgen.model import Transformer
from lengthgen.progress import PlainLines
from lengthgen.store import ResultsStore
from lengthgen.training import train_run

BASE = {
    "task": {"name": "sparse_parity", "params": {"k": [1, 2]}, "train_lengths": [4, 10], "eval_bins": [[4, 10]]},
    "model": {"n_layers": 1, "n_heads": 2, "d_model": 16},
    "train": {"steps": 30, "batch_size": 8, "eval_every": 15, "eval_examples": 32, "checkpoint_every": 10,
              "early_stop_acc": None, "warmup_steps": 5, "positional_reg": 0.01},
    "eval": {"examples_per_bin": 24},
}
MEMBERS = [(0, 1e-3), (1, 3e-3), (2, 1e-2)]  # (seed, lr): different data, init and learning rate


def member(seed, lr, base=BASE, **train):
    data = {k: dict(v) for k, v in base.items()}
    data["train"] = {**data["train"], "lr": lr, **train}
    return load_run_config({**data, "seed": seed, "name": f"s{seed} lr{lr}"})


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: extra threads only contend with each other on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def weights(store, key):
    return torch.load(store.root / "models" / f"{key}.pt", weights_only=False)["model"]


def assert_same_weights(alone: dict, ensembled: dict, d_model: int):
    for name, a in alone.items():
        b = ensembled[name]
        if name.endswith("attn.qkv.bias"):
            # The key bias has zero gradient in exact arithmetic (softmax ignores a shift shared by
            # all keys), so Adam turns rounding noise into its updates: both runs keep it near 0.
            key = slice(d_model, 2 * d_model)
            torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-4)
            a, b = torch.cat([a[:d_model], a[2 * d_model:]]), torch.cat([b[:d_model], b[2 * d_model:]])
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")


def losses(store, key):
    return [(c.step, c.value) for c in store.curves(key) if c.name == "loss"]


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """The members trained one by one with `train_run` (the reference)."""
    store = ResultsStore(tmp_path_factory.mktemp("alone"))
    for seed, lr in MEMBERS:
        train_run(member(seed, lr), store)
    return store


def test_members_follow_their_solo_trajectories_and_are_stored_as_plain_runs(alone, tmp_path):
    configs = [member(seed, lr) for seed, lr in MEMBERS]
    store = ResultsStore(tmp_path)
    runs = train_ensemble(configs, store)
    assert [r.key for r in runs] == [c.key() for c in configs]
    assert len(store.runs()) == len(configs)
    for i, (cfg, run) in enumerate(zip(configs, runs)):
        solo = alone.get_run(cfg.key())
        assert run.status == "finished" and run.steps_done == 30
        assert run.config == solo.config and run.seed == cfg.seed
        assert run.extra["ensemble"] == {"size": 3, "members": [c.key() for c in configs], "index": i}
        assert run.extra["stopped_early_at"] is None
        (s1, l1), (s2, l2) = zip(*losses(alone, cfg.key())), zip(*losses(store, cfg.key()))
        assert s1 == s2
        torch.testing.assert_close(torch.tensor(l2), torch.tensor(l1), rtol=1e-4, atol=0)
        lr_alone = [c.value for c in alone.curves(cfg.key()) if c.name == "lr"]
        assert lr_alone == [c.value for c in store.curves(cfg.key()) if c.name == "lr"]
        assert_same_weights(weights(alone, cfg.key()), weights(store, cfg.key()), 16)
        metrics = {(m.metric, m.grp): m.value for m in store.metrics(keys=[cfg.key()])}
        assert metrics == {(m.metric, m.grp): m.value for m in alone.metrics(keys=[cfg.key()])}
    assert train_ensemble(configs, store) == runs  # finished members are not trained again


class Interrupt(Exception):
    pass


class StopAtStep(PlainLines):
    """A progress report that interrupts training once a member reaches `step` (like a kill)."""

    def __init__(self, step):
        super().__init__(interval_s=0.0)
        self.step = step

    def show(self, run, snapshot):
        if snapshot.step == self.step:
            raise Interrupt


def test_interrupted_ensemble_resumes_alone_or_batched_from_its_checkpoints(alone, tmp_path):
    configs = [member(seed, lr) for seed, lr in MEMBERS]
    store = ResultsStore(tmp_path)
    with pytest.raises(Interrupt):
        train_ensemble(configs, store, progress=StopAtStep(25))
    for cfg in configs:
        assert store.get_run(cfg.key()).status == "failed"  # stopped by this process, not finished
        ck = torch.load(tmp_path / "checkpoints" / f"{cfg.key()}.pt", weights_only=False)
        assert ck["state"]["step"] == 20
    # Member 0 resumes with the ordinary training loop, the others as a two-member ensemble.
    train_run(configs[0], store)
    train_ensemble(configs[1:], store)
    for cfg in configs:
        run = store.get_run(cfg.key())
        assert run.status == "finished" and run.steps_done == 30
        assert [s for s, _ in losses(store, cfg.key())] == [s for s, _ in losses(alone, cfg.key())]
        torch.testing.assert_close(torch.tensor([v for _, v in losses(store, cfg.key())]),
                                   torch.tensor([v for _, v in losses(alone, cfg.key())]), rtol=1e-4, atol=0)
        assert_same_weights(weights(alone, cfg.key()), weights(store, cfg.key()), 16)
    assert not any((tmp_path / "checkpoints").glob("*.pt"))


def test_early_stop_freezes_only_the_member_that_stopped(tmp_path):
    base = {"task": {"name": "sparse_parity", "params": {"k": 1}, "train_lengths": [4, 6], "eval_bins": [[4, 6]]},
            "model": {"n_layers": 1, "n_heads": 2, "d_model": 16},
            "train": {"steps": 60, "batch_size": 16, "eval_every": 10, "eval_examples": 64, "early_stop_acc": 0.9},
            "eval": {"examples_per_bin": 20, "greedy": False}}
    fast, slow = member(1, 3e-3, base), member(1, 1e-5, base)  # seed 1 at 3e-3 reaches 0.9 by step 40
    solo = ResultsStore(tmp_path / "alone")
    train_run(fast, solo)
    store = ResultsStore(tmp_path / "ensemble")
    a, b = train_ensemble([fast, slow], store)
    stopped = solo.get_run(fast.key()).steps_done
    assert stopped < 60 and a.steps_done == stopped and a.extra["stopped_early_at"] == stopped
    assert b.steps_done == 60 and b.extra["stopped_early_at"] is None and b.status == "finished"
    assert_same_weights(weights(solo, fast.key()), weights(store, fast.key()), 16)
    checks = [c.step for c in store.curves(slow.key()) if c.name == "id_exact_match"]
    assert checks == [10, 20, 30, 40, 50, 60]


def test_members_must_differ_only_in_seed_and_lr():
    check_members([member(0, 1e-3), member(1, 3e-3)])
    with pytest.raises(ConfigError, match=r"differ only in seed and train.lr.*train.batch_size \(8 vs 16\)"):
        check_members([member(0, 1e-3), member(1, 1e-3, batch_size=16)])
    with pytest.raises(ConfigError, match="same run as member 0"):
        check_members([member(0, 1e-3), member(0, 1e-3)])
    configs = [member(s, 1e-3) for s in range(5)] + [member(0, 1e-3, batch_size=16)]
    groups = group_members(configs, 2)
    assert [[c.seed for c in g] for g in groups] == [[0, 1], [2, 3], [4], [0]]
    with pytest.raises(ConfigError, match="at least 1"):
        group_members(configs, 0)


def test_stacked_model_equals_its_members_and_refuses_loose_parameters():
    arch = ModelConfig(n_layers=2, n_heads=2, d_model=16, positional="t5")
    models = [Transformer(arch, 11, 24) for _ in range(3)]
    batched = stack_models(models, batch_size=4)
    idx = torch.randint(0, 11, (12, 9))
    out = batched(idx, torch.arange(9).expand(12, 9)).logits
    for m, model in enumerate(models):
        torch.testing.assert_close(out[4 * m:4 * m + 4], model(idx[4 * m:4 * m + 4]).logits, rtol=1e-5, atol=1e-6)
    assert batched.head.weight is batched.tok.weight  # ties survive stacking
    with pytest.raises(ValueError, match="leading size 8, not members x batch = 3 x 4"):
        batched(idx[:8])
    fire = [Transformer(ModelConfig(d_model=16, positional="fire"), 11, 24)
            for _ in range(2)]
    with pytest.raises(ValueError, match="'fire' has parameters outside Linear, LayerNorm and Embedding"):
        stack_models(fire, batch_size=4)


def test_run_command_trains_an_experiment_in_ensembles(tmp_path):
    import yaml

    from lengthgen.cli import main

    spec = {"experiment": "ens", "ensemble": 3, "base": {k: v for k, v in BASE.items()},
            "grid": {"seed": [0, 1], "train.lr": [1e-3, 3e-3]}}
    spec["base"]["train"] = {**BASE["train"], "steps": 10, "positional_reg": 0.0}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["--root", str(tmp_path / "runs"), "run", str(path), "--no-report"]) == 0
    runs = ResultsStore(tmp_path / "runs").runs(experiment="ens")
    sizes = sorted((r.extra["ensemble"]["size"], r.status) for r in runs)
    assert sizes == [(1, "finished")] + [(3, "finished")] * 3  # 4 runs in ensembles of up to 3
    path.write_text(yaml.safe_dump({**spec, "ensemble": "eight"}))
    assert main(["--root", str(tmp_path / "runs"), "run", str(path)]) == 2


@pytest.mark.parametrize("task, model", [
    ({"name": "coupled_copy", "params": {"alphabet_size": 6}, "train_lengths": [1, 6], "eval_bins": [[1, 6]]},
     {"predict_positions": True}),  # PPC: a second output head and its position-ID loss
    (BASE["task"], {"positional": "t5"}),  # a learned bias table indexed by [B, T, T] buckets
])
def test_other_model_kinds_follow_their_solo_trajectories(task, model, tmp_path):
    base = {**BASE, "task": task, "model": {**BASE["model"], **model},
            "train": {**BASE["train"], "steps": 20, "positional_reg": 0.0}}
    configs = [member(0, 1e-3, base), member(1, 1e-2, base)]
    alone, together = ResultsStore(tmp_path / "alone"), ResultsStore(tmp_path / "ensemble")
    for cfg in configs:
        train_run(cfg, alone)
    train_ensemble(configs, together)
    for cfg in configs:
        torch.testing.assert_close(torch.tensor([v for _, v in losses(together, cfg.key())]),
                                   torch.tensor([v for _, v in losses(alone, cfg.key())]), rtol=1e-4, atol=0)
        assert ({(m.metric, m.grp): m.value for m in together.metrics(keys=[cfg.key()])}
                == {(m.metric, m.grp): m.value for m in alone.metrics(keys=[cfg.key()])})


def test_a_diverging_member_is_recorded_and_the_others_train_on(tmp_path):
    settings = {"grad_clip": None, "warmup_steps": 0, "schedule": "constant", "positional_reg": 0.0}
    sane, wild = member(0, 1e-3, **settings), member(1, 1e30, **settings)
    alone = ResultsStore(tmp_path / "alone")
    solo_wild = train_run(wild, alone)
    train_run(sane, alone)
    store = ResultsStore(tmp_path / "ensemble")
    a, b = train_ensemble([sane, wild], store)
    assert solo_wild.status == b.status == "diverged" and b.steps_done == solo_wild.steps_done < 30
    assert a.status == "finished" and a.steps_done == 30
    assert_same_weights(weights(alone, sane.key()), weights(store, sane.key()), 16)
