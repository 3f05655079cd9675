"""Output to a file reads as a log: flushed progress lines while training, a line per ended run of a
sweep, "resumed from step N", tables at full width; and the command line's own polish (--version,
options after the command, help on every flag)."""

import argparse
import re
import subprocess
import sys
import time

import pytest
import yaml

import lengthgen
from lengthgen.cli import build_parser, main
from lengthgen.config import load_run_config
from lengthgen.model.positional import SCHEMES
from lengthgen.progress import PlainLines
from lengthgen.store import ResultsStore
from lengthgen.training import train_run

TINY = {"task": {"name": "sparse_parity", "params": {"k": 1}, "train_lengths": [4, 8], "eval_bins": [[4, 8], [9, 16]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 16},
        "train": {"steps": 1500, "eval_every": 50, "early_stop_acc": None, "checkpoint_every": 10},
        "eval": {"examples_per_bin": 20}}
STEP_LINE = re.compile(r"step (\d+)/1500, loss [\d.]+, lr [\d.e+-]+, id_acc [\d.]+, [\d,]+ tok/s, eta \d+:\d\d:\d\d")


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_redirected_train_logs_lines_while_it_runs(tmp_path):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(TINY))
    log = tmp_path / "train.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lengthgen.cli", "train", "--root", str(tmp_path / "runs"),
                                 "--config", str(tmp_path / "run.yaml"), "--log-every", "0.2"],
                                stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not STEP_LINE.search(log.read_text()) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            seen_while_running = proc.poll() is None and STEP_LINE.search(log.read_text())
            assert proc.wait(timeout=300) == 0, log.read_text()
        finally:
            proc.kill()
    text = log.read_text()
    assert seen_while_running, text
    steps = [int(s) for s in STEP_LINE.findall(text)]
    assert len(steps) >= 3 and steps == sorted(set(steps)), text
    assert "finished at step 1500/1500" in text


def test_resumed_run_says_so(capsys, tmp_path):
    class StopAt(PlainLines):
        def show(self, run, snapshot):
            if snapshot.step == 20:
                raise KeyboardInterrupt

    (tmp_path / "run.yaml").write_text(yaml.safe_dump({**TINY, "train": {**TINY["train"], "steps": 30}}))
    with pytest.raises(KeyboardInterrupt):
        train_run(load_run_config(TINY | {"train": {**TINY["train"], "steps": 30}}), ResultsStore(tmp_path),
                  progress=StopAt(interval_s=0.0))
    code, out, _ = run_cli(capsys, "train", "--config", str(tmp_path / "run.yaml"), "--root", str(tmp_path))
    assert code == 0 and "resumed from step 20" in out and "finished at step 30/30" in out


def test_redirected_tables_are_not_cut_and_root_follows_the_command(capsys, tmp_path):
    name = "a run named at length to make its table wider than any eighty-column terminal " * 2
    cfg = TINY | {"name": name.strip(), "train": {**TINY["train"], "steps": 5}}
    train_run(load_run_config(cfg), ResultsStore(tmp_path))
    code, out, _ = run_cli(capsys, "report", "--root", str(tmp_path), "--out", str(tmp_path / "plots"))
    assert code == 0 and "…" not in out and name.strip() in out
    assert re.search(r"\b[01]\.\d{3}\b", out)  # whole numbers, not `0.…`


def test_sweep_prints_a_line_per_run_and_markdown(capsys, tmp_path):
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump({
        "experiment": "tiny", "base": {**TINY, "train": {"steps": 5, "batch_size": 8}}, "grid": {"seed": [0, 1]}}))
    code, out, _ = run_cli(capsys, "--root", str(tmp_path), "run", str(tmp_path / "exp.yaml"), "--markdown")
    ended = re.findall(r"run seed=(\d) \[[0-9a-f]+\] finished: exact_match_greedy [\d.]+ on lengths "
                       r"\[9,16\]", out)
    assert code == 0 and sorted(ended) == ["0", "1"], out
    assert "### exact_match_greedy per length bin" in out and re.search(r"^\| .* \|$", out, re.M)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"lengthgen {lengthgen.__version__}\n"


def test_bad_log_interval_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--task", "sparse_parity", "--log-every", "-1"])
    assert exit_.value.code == 2 and "--log-every: expected a number of seconds > 0" in capsys.readouterr().err


def test_every_flag_has_help_and_schemes_are_listed():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in [("lengthgen", parser), *commands.choices.items()]:
        for action in sub._actions:
            if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    positional = next(a for a in commands.choices["train"]._actions if "--positional" in a.option_strings)
    assert f"one of: {', '.join(sorted(SCHEMES))} " in positional.help
