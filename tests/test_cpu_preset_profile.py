"""The CPU-preset profile script: its timers see the real loop, and its padding keeps the loss."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_preset_profile.py"
spec = importlib.util.spec_from_file_location("cpu_preset_profile", SCRIPT)
profile_script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(profile_script)


def test_padded_steps_train_the_same_run_and_every_piece_is_timed():
    eager = profile_script.profile("eager", steps=4, n_buckets=4)
    padded = profile_script.profile("padded", steps=4, n_buckets=4)
    assert eager["steps"] == padded["steps"] == eager["steps_done"] == 4
    # right padding is never scored nor attended to by real positions: same losses, same model
    assert padded["final_loss"] == pytest.approx(eager["final_loss"], rel=1e-5)
    assert padded["metrics"] == pytest.approx(eager["metrics"], abs=1e-9) and len(eager["metrics"]) == 3
    assert padded["buckets"] == [9, 17, 26, 34] and sum(padded["shapes"].values()) == 4
    pieces = eager["seconds"]
    assert {"setup", "data", "train step", "id checks", "final"} <= set(pieces)
    assert 0 < sum(pieces.values()) <= eager["total"]
