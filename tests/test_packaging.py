"""What a wheel install needs: the presets inside the package (run by name from any folder), `run
--set` on every point of a preset, and the run's environment recorded."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lengthgen.cli import main
from lengthgen.experiments.presets import find_preset, shipped_dir
from lengthgen.experiments.runner import plan

REPO = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_preset(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and egg-info beside the sources
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("lengthgen-*.whl")
    shipped = {p.name for p in shipped_dir().glob("*.yaml")}
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {Path(n).name for n in archive.namelist() if n.startswith("lengthgen/presets/")}
    assert "demo.yaml" in shipped and in_wheel == shipped


def test_presets_are_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_preset("demo") == shipped_dir() / "demo.yaml"
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "demo.yaml").write_text("experiment: mine\n")  # the user's own comes first
    assert find_preset("demo") == tmp_path / "presets" / "demo.yaml"


def test_run_set_overrides_every_point_and_unknown_fields_exit_2(tmp_path, capsys):
    todo = plan(find_preset("demo"), overrides={"train.steps": 7, "model.d_model": 8})
    assert {(c.train.steps, c.model.d_model) for c in todo.configs} == {(7, 8)}
    assert set(todo.keys()).isdisjoint(plan(find_preset("demo")).keys())
    code = main(["run", "demo", "--root", str(tmp_path), "--set", "train.stepz=7", "--no-report"])
    assert code == 2 and "train.stepz" in capsys.readouterr().err
    code = main(["run", "huang_algorithmic", "--root", str(tmp_path), "--set", "train.steps=7"])
    assert code == 2 and "--set applies to experiments with base/runs/grid only" in capsys.readouterr().err


def test_a_preset_name_that_does_not_exist_lists_the_presets(capsys, tmp_path):
    code = main(["run", "no_such_preset", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "demo" in err and "huang_formal_cpu" in err


@pytest.mark.parametrize("name", sorted(p.stem for p in shipped_dir().glob("*.yaml")))
def test_every_preset_plans_by_name(name):
    assert plan(find_preset(name)).configs
