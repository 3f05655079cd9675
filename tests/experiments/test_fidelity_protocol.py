"""Huang et al.'s protocol rules as their code runs them (docs/fidelity.md): the fallback's first
seeds count whatever their accuracy, per-cell fallback learning rates, early stop measured on the
reported set, and a learning-rate horizon that early stopping does not shorten."""

import pytest

from lengthgen.config import ConfigError, load_run_config
from lengthgen.experiments.protocol import parse_protocol, run_protocol
from lengthgen.store import ResultsStore
from lengthgen.training import train_run

BASE = {"task": {"name": "majority", "train_lengths": [1, 6], "eval_bins": [[1, 6], [7, 10]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 8},
        "train": {"steps": 4, "batch_size": 8, "eval_every": 2, "eval_examples": 8},
        "eval": {"examples_per_bin": 16, "greedy": False}}


def fallback_spec(**protocol):
    return {"experiment": "fb", "base": BASE, "runs": [{"name": "majority ape"}, {"name": "majority nope",
                                                                                  "model.positional": "nope"}],
            "protocol": {"search": {"train.lr": [1e-3]}, "fallback": {"model.d_model": 16, "train.steps": 3},
                         "seeds": {"target": 2, "max_attempts": 4}, **protocol}}


def test_the_fallback_counts_its_first_seeds_whatever_their_accuracy(tmp_path):
    config, cells = parse_protocol(fallback_spec(fallback_by_cell={"majority nope": {"train.lr": 3e-5}}), "fb.yaml")
    store = ResultsStore(tmp_path)
    ape, nope = run_protocol(config, cells, store)
    for out in (ape, nope):  # 3 steps on 26 letters: nothing is perfect, yet two seeds are all it takes
        seeds = out.decision["seeds"]
        assert out.decision["chosen"]["rule"] == "fallback" and seeds["successful"] == []
        assert len(seeds["attempted"]) == 2 and seeds["counted"] == seeds["attempted"] and seeds["reached_target"]
        assert out.decision["summary_over"] == "first seeds of the fallback"
        assert out.decision["summary"]["[7,10]"]["n"] == 2
    lrs = {store.get_run(k).config["train"]["lr"] for k in nope.decision["seeds"]["attempted"]}
    assert lrs == {3e-5} and {store.get_run(k).config["train"]["lr"] for k in ape.decision["seeds"]["attempted"]} \
        == {BASE.get("train", {}).get("lr", 1e-3)}


def test_fallback_by_cell_must_name_a_cell():
    with pytest.raises(ConfigError, match="fallback_by_cell names no cell: \\['parity nope'\\]"):
        parse_protocol(fallback_spec(fallback_by_cell={"parity nope": {"train.lr": 3e-5}}), "fb.yaml")


def sure_stop(early_stop_on):
    """bin_majority on lengths 1-3 is learned in a few dozen steps (40 when tried), so the run stops early."""
    return load_run_config({**BASE, "task": {"name": "bin_majority", "train_lengths": [1, 3],
                                             "eval_bins": [[1, 3], [4, 6]]},
                            "model": {"n_layers": 1, "n_heads": 2, "d_model": 16},
                            "train": {"steps": 400, "batch_size": 32, "lr": 3e-3, "eval_every": 20, "eval_examples": 8,
                                      "early_stop_on": early_stop_on},
                            "eval": {"examples_per_bin": 50, "greedy": False}})


def test_early_stop_on_the_reported_set_stops_where_the_reported_number_is_perfect(tmp_path):
    cfg = sure_stop("eval_bins")
    store = ResultsStore(tmp_path)
    run = train_run(cfg, store)
    stop = run.extra["stopped_early_at"]
    assert stop is not None and stop < cfg.train.steps
    checks = [c for c in store.curves(run.key) if c.name == "id_exact_match"]
    reported = [m.value for m in store.metrics(keys=[run.key]) if m.metric == "exact_match_tf"
                and (m.lo, m.hi) == (1, 3)]
    assert checks[-1].step == stop and checks[-1].value == reported[0] == 1.0


def test_the_learning_rate_horizon_ignores_early_stopping(tmp_path):
    cfg = sure_stop("held_out")
    store = ResultsStore(tmp_path)
    run = train_run(cfg, store)
    stop = run.extra["stopped_early_at"]
    lrs = {c.step: c.value for c in store.curves(run.key) if c.name == "lr"}
    last = max(lrs)
    assert stop is not None and last <= stop < cfg.train.steps
    assert lrs[last] == pytest.approx(cfg.train.lr * (1 - last / cfg.train.steps))  # linear to 0 at `steps`, not at the stop
