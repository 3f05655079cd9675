"""One run identity everywhere (the run key, a unique prefix of it, or the run's name), `lengthgen
runs`, and results as data: `lengthgen.results`, `lengthgen export`, `eval --out` and stored evals."""

import json
import math
import sqlite3

import pandas as pd
import pytest

import lengthgen
from lengthgen import store as store_module
from lengthgen.cli import main
from lengthgen.config import load_run_config
from lengthgen.report.claims import slope_table
from lengthgen.report.tables import results_table
from lengthgen.store import ResultsStore, short_key
from lengthgen.training import train_run

TINY = {"task": {"name": "sparse_parity", "params": {"k": 1}, "train_lengths": [4, 8], "eval_bins": [[4, 8], [9, 16]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 16},
        "train": {"steps": 5, "batch_size": 8, "eval_every": 5, "early_stop_acc": None},
        "eval": {"examples_per_bin": 10}}


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two seeds of one unnamed APE configuration, one unnamed RoPE run, one named run."""
    root = tmp_path_factory.mktemp("runs")
    store = ResultsStore(root)
    for cfg in (TINY, TINY | {"seed": 1}, TINY | {"model": {**TINY["model"], "positional": "rope"}},
                TINY | {"name": "wide", "model": {**TINY["model"], "d_model": 32}}):
        train_run(load_run_config(cfg), store)
    return root


def keys(root):
    return {(r.positional, r.seed, r.name): r.key for r in ResultsStore(root).runs()}


def test_report_labels_are_names_schemes_or_run_keys(root):
    _, rows = results_table(ResultsStore(root))
    labels = {row[2] for row in rows}
    rope_key = keys(root)["rope", 0, None]
    # pooled seeds: the scheme; one unnamed run: its key's prefix (which `eval` and `runs` accept)
    assert labels == {"ape", short_key(rope_key), "wide"}
    assert rope_key.startswith(short_key(rope_key)) and len(short_key(rope_key)) == 8


def test_eval_takes_a_key_prefix_or_a_name_and_stores_its_results(root, capsys, tmp_path):
    rope_key = keys(root)["rope", 0, None]
    code, out, _ = run_cli(capsys, "eval", rope_key[:5], "--root", str(root), "--examples", "4", "--bins", "4-8",
                           "--out", str(tmp_path / "eval.csv"))
    assert code == 0 and f"run {rope_key}" in out
    stored = ResultsStore(root).evals(rope_key)
    assert {(r.lo, r.hi, r.count) for r in stored} == {(4, 8, 4)}
    written = pd.read_csv(tmp_path / "eval.csv")
    assert set(written["key"]) == {rope_key} and len(written) == len(stored)
    code, out, _ = run_cli(capsys, "eval", "wide", "--root", str(root), "--examples", "4", "--no-greedy",
                           "--out", str(tmp_path / "eval.jsonl"))
    assert code == 0 and f"run {keys(root)['ape', 0, 'wide']}" in out
    lines = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert {r["metric"] for r in lines} == {"exact_match_tf", "token_acc"}


def test_an_ambiguous_or_unknown_run_exits_2_listing_candidates(root, capsys, tmp_path):
    store = ResultsStore(tmp_path)
    for key in ("abc1000000000000", "abc2000000000000"):
        store.start_run(key, {"task": {"name": "sparse_parity"}}, name="twin")
    for ref in ("abc", "twin"):
        code, _, err = run_cli(capsys, "eval", ref, "--root", str(tmp_path))
        assert code == 2 and "abc1000000000000" in err and "abc2000000000000" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "report", "--root", str(root), "--run", "nosuchrun")
    assert code == 2 and "no run with key, key prefix or name 'nosuchrun'" in err
    code, _, err = run_cli(capsys, "eval", "abc1", "--root", str(tmp_path))
    assert code == 2 and "has no model file: it is running" in err


def test_report_of_one_run_by_name(root, capsys, tmp_path):
    code, out, _ = run_cli(capsys, "report", "--root", str(root), "--run", "wide", "--out", str(tmp_path))
    assert code == 0 and "wide" in out and "rope" not in out


def test_runs_lists_and_filters(root, capsys):
    code, out, _ = run_cli(capsys, "runs", "--root", str(root))
    assert code == 0 and all(key in out for key in keys(root).values())
    assert "exact_match_greedy [9,16]" in out and "finished" in out
    code, out, _ = run_cli(capsys, "runs", "--root", str(root), "--status", "running")
    assert code == 0 and "0 runs" in out and not any(key in out for key in keys(root).values())
    code, out, _ = run_cli(capsys, "runs", "--root", str(root), "--task", "sparse_parity")
    assert all(key in out for key in keys(root).values())
    code, _, err = run_cli(capsys, "runs", "--root", str(root / "nothing"))
    assert code == 2 and "no results store" in err


def test_same_config_under_another_name_says_which_run_it_is(root, capsys, tmp_path):
    import yaml

    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(TINY | {"model": {**TINY["model"], "d_model": 32}}))
    code, out, _ = run_cli(capsys, "train", "--root", str(root), "--config", str(tmp_path / "wide.yaml"),
                           "--name", "renamed")
    key = keys(root)["ape", 0, "wide"]
    assert code == 0 and f"run {key} has this config already (finished), stored under the name wide" in out


def test_print_config_prints_yaml_and_trains_nothing(capsys, tmp_path):
    import yaml

    code, out, _ = run_cli(capsys, "train", "--root", str(tmp_path), "--task", "sparse_parity", "--set",
                           "model.d_model=32", "--print-config")
    printed = yaml.safe_load(out)
    assert code == 0 and printed["model"]["d_model"] == 32 and printed["train"]["steps"] == 2000
    assert not (tmp_path / "results.sqlite").exists()


def test_undefined_slopes_print_a_dash():
    nan = math.nan
    row = dict(point="K2", lo=9, hi=16, seeds=1, ks=[1], learned_seeds=[0], holds=False, slope=nan, slope_lo=nan,
               slope_hi=nan, spearman=0.5, spearman_lo=nan, spearman_hi=nan)
    _, rows = slope_table([row])
    assert rows[0][4] == "–" and rows[0][5] == "+0.50" and "nan" not in str(rows)


def test_results_is_a_tidy_frame(root):
    df = lengthgen.results(root)
    n_metrics = len(ResultsStore(root).metrics())
    assert len(df) == n_metrics and not df.duplicated(["key", "lo", "hi", "group", "metric"]).any()
    assert {"key", "name", "seed", "model.positional", "task.params.k", "bin", "group", "metric", "value",
            "count"} <= set(df.columns)
    assert set(df["model.positional"]) == {"ape", "rope"} and set(df["seed"]) == {0, 1}
    assert set(df.loc[df["name"] == "wide", "model.d_model"]) == {32}
    with pytest.raises(ValueError, match="no results store"):
        lengthgen.results(root / "nothing")


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_round_trips(root, capsys, tmp_path, fmt):
    out = tmp_path / f"results.{fmt}"
    code, _, _ = run_cli(capsys, "export", "--root", str(root), "--format", fmt, "--out", str(out))
    read = {"csv": pd.read_csv, "jsonl": lambda p: pd.read_json(p, lines=True), "parquet": pd.read_parquet}[fmt]
    df = read(out)
    assert code == 0 and len(df) == len(lengthgen.results(root))
    assert sorted(df["value"]) == pytest.approx(sorted(lengthgen.results(root)["value"]))


def test_export_to_stdout_and_bad_formats(root, capsys):
    code, out, _ = run_cli(capsys, "export", "--root", str(root))
    assert code == 0 and out.splitlines()[0].startswith("key,name,experiment,status")
    code, _, err = run_cli(capsys, "export", "--root", str(root), "--format", "xml")
    assert code == 2 and "choose one of csv, parquet, jsonl" in err
    code, _, err = run_cli(capsys, "export", "--root", str(root), "--format", "parquet")
    assert code == 2 and "--out" in err


def test_runs_record_their_environment(root):
    env = ResultsStore(root).runs()[0].environment
    import torch

    assert env["torch"] == torch.__version__ and env["device"] == "cpu" and env["python"].count(".") == 2
    assert env["git_dirty"] in (True, False, None)


def test_a_store_of_the_previous_version_gains_environment_and_evals(tmp_path):
    old = store_module.SCHEMA.replace("    environment TEXT,\n", "")
    old = old[:old.index("CREATE TABLE IF NOT EXISTS evals")] + old[old.index("CREATE TABLE IF NOT EXISTS decisions"):]
    with sqlite3.connect(tmp_path / "results.sqlite") as conn:
        conn.executescript(old)
        conn.execute("PRAGMA user_version = 2")
        conn.execute("INSERT INTO runs (key, task, status, config, created_at) VALUES ('old', 'sparse_parity', "
                     "'finished', '{}', 'then')")
    store = ResultsStore(tmp_path)
    with pytest.warns(UserWarning, match="keep their key.*old"):  # a config too old to load keeps its key
        assert store.get_run("old").environment is None
    store.put_evals("old", [{"lo": 1, "hi": 2, "metric": "token_acc", "value": 0.5, "count": 3}])
    assert store.evals("old")[0].value == 0.5
