"""The command line: bad input fails fast with the allowed values; experiments skip finished runs."""

import pytest
import yaml

from lengthgen.cli import main
from lengthgen.config import ConfigError, load_run_config
from lengthgen.experiments.grid import expand
from lengthgen.store import ResultsStore


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_task_lists_choices(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "train", "--task", "sparse_pairty")
    assert code == 2 and "unknown task 'sparse_pairty'" in err and "sparse_parity" in err


def test_unknown_scheme_and_field_named(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "train", "--task", "sparse_parity", "--positional", "xpe")
    assert code == 2 and "model.positional" in err and "unknown positional scheme 'xpe'" in err
    assert all(name in err for name in ("ape", "nope", "rope", "alibi", "sinusoidal"))
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "train", "--task", "sparse_parity", "--set", "train.stepz=3")
    assert code == 2 and "train.stepz: unknown field" in err


def test_k_larger_than_length_refused(capsys, tmp_path):
    code, _, err = run_cli(capsys, "--root", str(tmp_path), "train", "--task", "sparse_parity",
                           "--set", "task.params.k=[1,6]", "--set", "task.train_lengths=[2,5]")
    assert code == 2 and "task 'sparse_parity' has no valid length in [2, 5]: lengths >= 6" in err


def test_bad_values_name_the_field():
    with pytest.raises(ConfigError, match="train.schedule"):
        load_run_config({"task": {"name": "sparse_parity"}, "train": {"schedule": "step"}})
    with pytest.raises(ConfigError, match="d_model=30 must be divisible by n_heads=4"):
        load_run_config({"task": {"name": "sparse_parity"}, "model": {"d_model": 30, "n_heads": 4}})
    with pytest.raises(ConfigError, match="eval_bins range \\[40, 20\\] must satisfy"):
        load_run_config({"task": {"name": "sparse_parity", "eval_bins": [[40, 20]]}})


def test_tasks_command_shows_format_and_example(capsys):
    code, out, _ = run_cli(capsys, "tasks", "sparse_parity")
    assert code == 0 and "format:" in out and "<sep>" in out and "example (n=" in out


def test_experiment_expansion_and_errors():
    spec = {"experiment": "e", "base": {"task": {"name": "sparse_parity"}},
            "runs": [{"name": "A", "task.params.k": [1, 2]}, {"name": "B", "task.params.k": 3}],
            "grid": {"seed": [0, 1]}}
    configs = expand(spec)
    assert [c.name for c in configs] == ["A seed=0", "A seed=1", "B seed=0", "B seed=1"]
    assert len({c.key() for c in configs}) == 4 and all(c.experiment == "e" for c in configs)
    with pytest.raises(ConfigError, match="unknown field"):
        expand({**spec, "gird": {}})
    with pytest.raises(ConfigError, match="run 'B seed=0'"):
        expand({**spec, "runs": [{"name": "B", "task.params.k": 0}]})


def test_run_skips_finished_runs(capsys, tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({
        "experiment": "tiny",
        "base": {"task": {"name": "sparse_parity", "params": {"k": 1}, "train_lengths": [4, 8], "eval_bins": [[4, 8]]},
                 "model": {"n_layers": 1, "n_heads": 1, "d_model": 8},
                 "train": {"steps": 5, "batch_size": 8}, "eval": {"examples_per_bin": 10}},
        "grid": {"seed": [0, 1]}}))
    root = str(tmp_path / "runs")
    assert main(["--root", root, "run", str(exp), "--no-report"]) == 0
    assert "2 runs, 0 already finished" in capsys.readouterr().out
    first = {r.key: r.finished_at for r in ResultsStore(root).runs()}
    assert main(["--root", root, "run", str(exp), "--no-report"]) == 0
    assert "2 runs, 2 already finished" in capsys.readouterr().out
    assert {r.key: r.finished_at for r in ResultsStore(root).runs()} == first
