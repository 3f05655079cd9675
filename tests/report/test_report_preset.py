"""`report --preset`: only the runs an experiment file expands to now. A file whose configuration
changed keeps its old runs in the store (and under its experiment name); they must not reappear
as extra rows beside the current ones."""

import pytest
import yaml

from lengthgen.cli import main
from lengthgen.store import ResultsStore

BASE = {"task": {"name": "sparse_parity", "params": {"k": 1}, "train_lengths": [4, 8], "eval_bins": [[4, 8]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 8},
        "train": {"steps": 4, "batch_size": 8, "eval_every": 4, "eval_examples": 8, "early_stop_acc": None},
        "eval": {"examples_per_bin": 8, "greedy": False}}


def _write(path, steps):
    spec = {"experiment": "e", "base": {**BASE, "train": {**BASE["train"], "steps": steps}},
            "runs": [{"name": "only point"}], "grid": {"seed": [0, 1]}}
    path.write_text(yaml.safe_dump(spec))


def _rows(out: str) -> list[str]:
    """Table rows of the point of the per-bin table (progress lines and the per-k table name it too)."""
    return [line for line in out.splitlines() if line.startswith("│ sparse_parity")]


def test_report_preset_leaves_out_superseded_configurations(tmp_path, capsys):
    root, file = tmp_path / "runs", tmp_path / "e.yaml"
    _write(file, steps=4)
    assert main(["--root", str(root), "run", str(file), "--no-report"]) == 0
    _write(file, steps=6)  # the file now names a different configuration under the same names
    assert main(["--root", str(root), "run", str(file)]) == 0
    after_run = capsys.readouterr().out
    assert len(_rows(after_run)) == 1 and "#" not in _rows(after_run)[0]  # run reports what it ran
    assert len(ResultsStore(root).runs(experiment="e")) == 4

    assert main(["--root", str(root), "report", "--experiment", "e", "--metric", "exact_match_tf"]) == 0
    pooled = _rows(capsys.readouterr().out)
    assert len(pooled) == 2 and all("#" in row for row in pooled)  # both configurations, told apart

    assert main(["--root", str(root), "report", "--preset", str(file)]) == 0  # metric from the file
    current = _rows(capsys.readouterr().out)
    assert len(current) == 1 and "#" not in current[0]


def test_a_restricted_store_is_a_read_view(tmp_path):
    store = ResultsStore(tmp_path)
    view = store.restricted_to(["nothing"])
    assert view.runs() == [] and view.metrics() == []
    with pytest.raises(RuntimeError, match="read view"):
        view.join_experiment("e", ["k"])
