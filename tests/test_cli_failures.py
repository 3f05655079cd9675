"""The command line end to end, as a user runs it: bad input exits 2 with one message and no
traceback; a bug exits 1 with its traceback and a request for a bug report; output piped into a
reader that stops early (`| head`) ends quietly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lengthgen import cli

SRC = str(Path(__file__).resolve().parents[1] / "src")


def lengthgen(*argv, cwd, **kwargs):
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "lengthgen.cli", "--root", str(cwd / "runs"), *argv], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.parametrize("content,message", [
    ("task: {name: sparse_parity\n", "not valid YAML"),
    ("task: !!python/object/apply:os.system [echo pwned]\n", "YAML tag !!python/object/apply:os.system refused"),
    ("task: {name: sparse_parity}\ntrain: {steps: true}\n", "train.steps: expected a number, got the boolean"),
    ("task: {name: sparse_parity}\ndevice: gpu\n", "unknown device 'gpu'"),
    (None, "is a folder"),
])
def test_bad_config_exits_2_with_a_message(tmp_path, content, message):
    config = tmp_path / "bad.yaml"
    if content is None:
        config.mkdir()
    else:
        config.write_text(content)
    proc = lengthgen("train", "--config", str(config), cwd=tmp_path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.startswith("lengthgen: error:") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before the store is opened


def test_closed_pipe_ends_quietly(tmp_path):
    # The reader is gone before the first line is written, as when `head` has read enough.
    proc = lengthgen("tasks", cwd=tmp_path)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == ""
    assert proc.returncode == 141  # 128 + SIGPIPE, what a unix tool killed by the closed pipe reports


@pytest.mark.parametrize("bug", [ValueError("a plain ValueError from inside"), KeyError("missing_field")])
def test_a_bug_exits_1_with_its_traceback_and_asks_for_a_report(monkeypatch, capsys, bug):
    def broken(args):
        raise bug

    monkeypatch.setattr(cli, "cmd_tasks", broken)
    assert cli.main(["tasks"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and f"{type(bug).__name__}: {bug}" in err
    assert err.rstrip().endswith(cli.BUG_REPORT) and "bug in lengthgen" in cli.BUG_REPORT
    assert "://" not in cli.BUG_REPORT and "lengthgen: error:" not in err


def test_bad_input_found_deep_inside_exits_2_without_a_traceback(capsys):
    assert cli.main(["predict", "no_such_task"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lengthgen: error:") and "no C-RASP entry for task 'no_such_task'" in err
    assert "Traceback" not in err and cli.BUG_REPORT not in err
