"""Every shipped preset expands into valid run configs whose tasks accept their lengths."""

import pytest

from lengthgen.config import read_yaml
from lengthgen.experiments.grid import expand, load_experiment
from lengthgen.experiments.presets import shipped_dir
from lengthgen.report.claims import experiment_point
from lengthgen.tasks import make_task

PRESETS = sorted(shipped_dir().glob("*.yaml"))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_expands_to_valid_runs(path):
    spec = read_yaml(path)
    spec.pop("protocol", None)  # a protocol decides its later runs as it goes; its cells are these
    runs = expand(spec, str(path))
    assert runs and len({r.name for r in runs}) == len(runs)  # every point named once
    assert len({r.key() for r in runs}) == len(runs)  # no two points train the same run
    for run in runs:
        task = make_task(run.task.name, **run.task.params)
        task.valid_lengths(*run.task.train_lengths)  # raises on a window without a valid length
        for lo, hi in run.task.eval_bins:
            task.valid_lengths(lo, hi)


def test_cpu_presets_train_several_seeds():
    """The CPU presets that judge a claim run at least 3 seeds per point."""
    for name in ("coupling_cpu", "huang_algorithmic_cpu", "golowich_sparsity_cpu", "demo"):
        runs = load_experiment(PRESETS[0].parent / f"{name}.yaml")
        seeds: dict = {}
        for r in runs:
            seeds.setdefault(experiment_point(r.name), set()).add(r.seed)
        assert min(len(s) for s in seeds.values()) >= 3, name


def test_formal_preset_has_several_runs_per_cell():
    """The formal preset is judged under selection rules: per language and scheme, 2 seeds of each
    configuration, and 2 configurations except where one run costs minutes (the long budgets)."""
    cells: dict = {}
    for r in load_experiment(PRESETS[0].parent / "huang_formal_cpu.yaml"):
        cells.setdefault((r.task.name, r.model.positional), {}).setdefault(r.model.n_layers, set()).add(r.seed)
    assert len(cells) == 48
    assert all(len(seeds) >= 2 for configs in cells.values() for seeds in configs.values())
    single = {cell for cell, configs in cells.items() if len(configs) == 1}
    assert single == {("dyck12", "ape"), ("dyck12", "nope"), ("aa_star", "nope"), ("aaaa_star", "nope"),
                      ("abab_star", "nope")}
