"""Huang et al.'s search-then-seeds protocol: the choice rule, end-to-end runs, resume, CLI."""

import math

import pytest
import yaml

from lengthgen.cli import main
from lengthgen.config import ConfigError
from lengthgen.experiments.protocol import ProtocolConfig, Trial, choose, parse_protocol, run_protocol, search_points
from lengthgen.store import ResultsStore

NAN = math.nan


def trials(*outcomes):
    return [Trial({"i": i}, f"k{i}", "finished", id_acc, sel) for i, (id_acc, sel) in enumerate(outcomes)]


def test_search_order_first_key_slowest():
    points = search_points({"model.n_layers": [1, 2], "model.d_model": [16, 64], "train.lr": [1e-3, 1e-4]})
    assert points[:3] == [{"model.n_layers": 1, "model.d_model": 16, "train.lr": 1e-3},
                          {"model.n_layers": 1, "model.d_model": 16, "train.lr": 1e-4},
                          {"model.n_layers": 1, "model.d_model": 64, "train.lr": 1e-3}]
    assert len(points) == 8 and points[-1] == {"model.n_layers": 2, "model.d_model": 64, "train.lr": 1e-4}
    assert len(search_points(ProtocolConfig().search)) == 3 * 3 * 3 * 2


@pytest.mark.parametrize("outcomes, fallback, rule, index", [
    # the first configuration perfect on both bins wins, even if a later one would too
    ([(0.9, 0.2), (1.0, 1.0), (1.0, 1.0)], True, "stopped", 1),
    # none perfect on both: the best on the selection bin among the perfect in distribution,
    # not the best overall (index 0 has 0.9 on selection but is not perfect in distribution)
    ([(0.99, 0.9), (1.0, 0.3), (1.0, 0.6), (1.0, 0.6)], True, "best_in_distribution_perfect", 2),
    # nothing perfect in distribution (a diverged run counts as nothing): the fallback
    ([(0.99, 0.9), (NAN, NAN)], True, "fallback", None),
    # ... or, with no fallback set, the best on the selection bin over all of them
    ([(0.5, 0.1), (NAN, NAN), (0.99, 0.4)], False, "best_without_fallback", 2),
])
def test_choice_rule(outcomes, fallback, rule, index):
    choice = choose(trials(*outcomes), success=1.0, has_fallback=fallback)
    assert (choice.rule, choice.index) == (rule, index)


def test_success_threshold_is_the_bar():
    assert choose(trials((0.95, 0.95)), success=0.9, has_fallback=True).rule == "stopped"
    assert choose(trials((0.95, 0.95)), success=1.0, has_fallback=True).rule == "fallback"


TINY_BASE = {
    "task": {"name": "bin_majority", "train_lengths": [1, 6], "eval_bins": [[1, 6], [7, 10]]},
    "model": {"positional": "ape", "n_layers": 1, "n_heads": 1, "d_model": 8},
    "train": {"steps": 4, "batch_size": 8, "eval_every": 30, "eval_examples": 16, "early_stop_acc": None},
    "eval": {"examples_per_bin": 16, "greedy": False},
}


def tiny_spec(name, protocol, runs=None):
    return {"experiment": name, "base": TINY_BASE, "runs": runs or [{"name": "bin_majority ape"}],
            "protocol": protocol}


def test_stopping_cell_and_resume(tmp_path):
    # Judged on token accuracy with a bar of 40%, any run that has learned to put <eos> after the
    # one answer token passes (30 steps at lr 1e-2 teach that), so the search must stop at its
    # first configuration and every seed succeeds: seeds 0 and 1 are all that is trained.
    spec = tiny_spec("stop", {"search": {"train.lr": [1e-2, 1e-4], "model.d_model": [8, 16]}, "fallback": None,
                              "seeds": {"target": 2, "max_attempts": 4}, "metric": "token_acc", "success": 0.4},
                     runs=[{"name": "bin_majority ape", "train.steps": 30}])
    config, cells = parse_protocol(spec, "stop.yaml")
    store = ResultsStore(tmp_path)
    [out] = run_protocol(config, cells, store)
    d = out.decision
    assert len(d["search"]) == 1 and d["search_size"] == 4
    assert d["chosen"]["rule"] == "stopped" and d["chosen"]["overrides"] == {"train.lr": 1e-2, "model.d_model": 8}
    assert len(d["seeds"]["attempted"]) == 2 and d["seeds"]["successful"] == d["seeds"]["attempted"]
    assert d["seeds"]["attempted"][0] == d["search"][0]["key"]  # seed 0 is the search run, reused
    assert len(out.trained) == 2 and d["seeds"]["reached_target"]
    assert d["summary"]["[1,6]"]["n"] == 2 and d["summary_over"] == "successful"
    seeds = sorted(store.get_run(k).seed for k in d["seeds"]["attempted"])
    assert seeds == [0, 1]
    assert store.decisions("stop")[0].decision == d

    # A second pass trains nothing and derives the same decision from the stored runs.
    [again] = run_protocol(config, cells, store)
    assert again.trained == [] and again.decision == d
    # An interrupted pass (the last seed never finished) resumes by training exactly that run.
    store.delete_run(d["seeds"]["attempted"][-1])
    [resumed] = run_protocol(config, cells, store)
    assert resumed.trained == [d["seeds"]["attempted"][-1]] and resumed.decision["seeds"] == d["seeds"]


def test_fallback_cell_caps_attempts(tmp_path):
    # Four steps on a 26-letter majority never reach 100% in distribution: the whole search runs,
    # the fallback is chosen, and the seeds stop at the attempt cap with no success.
    runs = [{"name": "majority ape", "task.name": "majority"}]
    spec = tiny_spec("fb", {"search": {"train.lr": [1e-3, 1e-4]},
                            "fallback": {"model.d_model": 16, "train.steps": 3}, "fallback_seeds": "successful",
                            "seeds": {"target": 2, "max_attempts": 3}}, runs)
    config, cells = parse_protocol(spec, "fb.yaml")
    store = ResultsStore(tmp_path)
    [out] = run_protocol(config, cells, store)
    d = out.decision
    assert len(d["search"]) == 2 and all(t["in_distribution"] < 1 for t in d["search"])
    assert d["chosen"]["rule"] == "fallback" and d["chosen"]["overrides"] == {"model.d_model": 16, "train.steps": 3}
    assert len(d["seeds"]["attempted"]) == 3 and d["seeds"]["successful"] == [] and not d["seeds"]["reached_target"]
    assert d["summary_over"].startswith("all attempts") and d["summary"]["[7,10]"]["n"] == 3
    fallback_runs = [store.get_run(k) for k in d["seeds"]["attempted"]]
    assert {r.config["model"]["d_model"] for r in fallback_runs} == {16}
    assert {r.steps_done for r in fallback_runs} == {3}
    assert len(out.trained) == 2 + 3


def test_bad_protocol_sections_fail_fast(tmp_path):
    with pytest.raises(ConfigError, match="max_attempts=2 must be at least target=3"):
        parse_protocol(tiny_spec("x", {"seeds": {"target": 3, "max_attempts": 2}}), "x.yaml")
    with pytest.raises(ConfigError, match="'seed' cannot be searched"):
        parse_protocol(tiny_spec("x", {"search": {"seed": [0, 1]}}), "x.yaml")
    with pytest.raises(ConfigError, match="protocol experiment chooses seeds"):
        parse_protocol({**tiny_spec("x", {}), "grid": {"seed": [0, 1]}}, "x.yaml")
    with pytest.raises(ConfigError, match="metric"):
        parse_protocol(tiny_spec("x", {"metric": "accuracy"}), "x.yaml")
    config, cells = parse_protocol(tiny_spec("x", {"selection_bin": [11, 20]}), "x.yaml")
    with pytest.raises(ConfigError, match=r"protocol bin \[11, 20\] is not one of its evaluation bins"):
        run_protocol(config, cells, ResultsStore(tmp_path))


def test_cli_runs_a_protocol_file(tmp_path, capsys):
    spec = tiny_spec("cli_protocol", {"search": {"train.lr": [1e-3]}, "fallback": None,
                                      "seeds": {"target": 1, "max_attempts": 1}})
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec))
    root = tmp_path / "runs"
    assert main(["--root", str(root), "run", str(path), "--no-report"]) == 0
    assert main(["--root", str(root), "run", str(path), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "trained 1 runs in this pass" in out and "trained 0 runs in this pass" in out
    assert "bin_majority ape: best_without_fallback" in out
    assert main(["--root", str(root), "run", str(path), "--executor", "local"]) == 2


def test_invalid_search_point_fails_before_training(tmp_path):
    config, cells = parse_protocol(tiny_spec("x", {"search": {"model.n_heads": [1, 3]}}), "x.yaml")
    with pytest.raises(ConfigError, match="(?s)configuration n_heads=3.*d_model=8 must be divisible by n_heads=3"):
        run_protocol(config, cells, ResultsStore(tmp_path))
    assert ResultsStore(tmp_path).runs() == []
