import hashlib
import json

import numpy as np
import re

import pytest
from matplotlib import image
from rich.console import Console

from lengthgen.report import Pooled, markdown_table, print_table, report, results_table, sparsity_table
from lengthgen.store import ResultsStore

BINS = [(10, 40), (41, 80), (81, 120)]


def add_run(store, experiment, name, task, positional, seed, values, *, status="finished", k=None, n_layers=2,
            per_k=None):
    """A run with `values[i]` as the whole-bin metric of BINS[i], and per_k[k][i] for the group k=<k>."""
    config = {"name": name, "experiment": experiment, "seed": seed, "device": "cpu",
              "task": {"name": task, "params": {} if k is None else {"k": k}, "train_lengths": [10, 40],
                       "eval_bins": [list(b) for b in BINS]},
              "model": {"positional": positional, "n_layers": n_layers}, "train": {"steps": 100}}
    key = hashlib.sha256(json.dumps({**config, "name": None}, sort_keys=True).encode()).hexdigest()[:16]
    store.start_run(key, config)
    groups = {"": values, **{f"k={kk}": v for kk, v in (per_k or {}).items()}}
    metrics = [dict(lo=lo, hi=hi, grp=g, metric=metric, value=v[i] * scale, count=500)
               for g, v in groups.items() for i, (lo, hi) in enumerate(BINS)
               for metric, scale in (("exact_match_greedy", 1.0), ("token_acc", 0.5))]
    if status != "running":
        store.finish_run(key, status=status, metrics=metrics, wall_time=3.0, steps_done=100,
                         curves=[dict(step=s, name="loss", value=1 / (s + 1)) for s in range(10)])
    return key


APE_SEEDS = [[1.0, 0.6, 0.2], [1.0, 0.8, 0.4], [0.9, 0.7, 0.3]]


@pytest.fixture
def store(tmp_path):
    store = ResultsStore(tmp_path / "runs")
    for seed, values in enumerate(APE_SEEDS):
        add_run(store, "pos", "parity-ape", "parity", "ape", seed, values)
    add_run(store, "pos", "parity-nope", "parity", "nope", 0, [1.0, 0.9, 0.8])
    add_run(store, "pos", "parity-ape", "parity", "ape", 0, [0.5, 0.5, 0.5], n_layers=4)  # same name, other config
    add_run(store, "pos", "copy-rope", "unique_copy", "rope", 0, [0.9, 0.5, 0.1], status="diverged")
    add_run(store, "pos", "parity-ape", "parity", "ape", 7, [0.0, 0.0, 0.0], status="failed")  # not reported
    add_run(store, "pos", "parity-ape", "parity", "ape", 8, [0.0, 0.0, 0.0], status="running")  # not reported

    for seed, scale in enumerate([1.0, 0.8]):
        add_run(store, "sparse", "K4", "sparse_parity", "ape", seed, [0.9, 0.6, 0.4], k=[1, 4],
                per_k={kk: [scale, scale / kk, scale / kk**2] for kk in range(1, 5)})
    add_run(store, "sparse", "K6", "sparse_parity", "ape", 0, [0.9, 0.7, 0.5], k=[1, 6],
            per_k={kk: [1.0, 1 - kk / 10, 1 - kk / 7] for kk in range(1, 7)})
    return store


def as_dicts(columns, rows):
    return [dict(zip(columns, row)) for row in rows]


def test_results_table_pools_seeds(store):
    columns, rows = results_table(store, "pos")
    assert columns == ["task", "positional", "run", "[10,40]", "[41,80]", "[81,120]"]
    table = {(r["task"], r["positional"], r["run"]): r for r in as_dicts(columns, rows)}
    # Two configurations named parity-ape: kept apart, labelled with their config hashes.
    assert [(t, p, name.split(" #")[0]) for t, p, name in table] == [
        ("parity", "ape", "parity-ape"), ("parity", "ape", "parity-ape"), ("parity", "nope", "parity-nope"),
        ("unique_copy", "rope", "copy-rope")]

    three_seeds = next(r for (t, p, name), r in table.items() if p == "ape" and r["[10,40]"].n == 3)
    for i, b in enumerate(["[10,40]", "[41,80]", "[81,120]"]):
        column = [seed[i] for seed in APE_SEEDS]
        assert three_seeds[b].mean == pytest.approx(np.mean(column))
        assert three_seeds[b].std == pytest.approx(np.std(column, ddof=1))
    middle = three_seeds["[41,80]"]  # mean and its 95% interval over seeds and examples
    assert middle.lo < 0.7 < middle.hi and str(middle) == f"0.700 [{middle.lo:.2f}, {middle.hi:.2f}] (n=3)"
    nope = table["parity", "nope", "parity-nope"]
    one = nope["[81,120]"]  # one seed: the interval is over its examples only
    assert (one.mean, one.n) == (0.8, 1) and str(one) == f"0.800 [{one.lo:.2f}, {one.hi:.2f}]" and one.lo < 0.8 < one.hi

    columns, rows = results_table(store, "pos", metric="token_acc", group_by=("model.n_layers",))
    by_layers = {r["model.n_layers"]: r for r in as_dicts(columns, rows) if "ape" in r["run"]}
    assert by_layers["2"]["[10,40]"].mean == pytest.approx(0.5 * np.mean([s[0] for s in APE_SEEDS]))
    cell = by_layers["4"]["[10,40]"]
    assert (cell.mean, cell.n) == (0.25, 1) and cell.std != cell.std  # one seed: no std (NaN)


def test_sparsity_table(store):
    columns, rows = sparsity_table(store, "sparse")
    assert columns == ["run", "K_train", "k", "[10,40]", "[41,80]", "[81,120]"]
    assert [(r[0], r[1], r[2]) for r in rows] == [("K4", 4, k) for k in range(1, 5)] + [("K6", 6, k) for k in range(1, 7)]
    k2 = as_dicts(columns, rows)[1]
    assert (k2["[41,80]"].mean, k2["[41,80]"].n) == (pytest.approx((1.0 / 2 + 0.8 / 2) / 2), 2)
    assert k2["[81,120]"].std == pytest.approx(np.std([1.0 / 4, 0.8 / 4], ddof=1))
    assert sparsity_table(store, "pos")[1] == []


def test_rendering(store):
    columns, rows = results_table(store, "pos")
    md = markdown_table(columns, rows)
    lines = md.splitlines()
    assert lines[0] == "| task | positional | run | [10,40] | [41,80] | [81,120] |" and len(lines) == 2 + len(rows)
    nope = next(r for r in rows if r[2] == "parity-nope")
    assert [c.mean for c in nope[3:]] == [1.0, 0.9, 0.8]
    assert f"| parity | nope | parity-nope | {' | '.join(map(str, nope[3:]))} |" in lines
    assert re.search(r"\| 0\.300 \[0\.\d\d, 0\.\d\d\] \(n=3\) \|", md)

    console = Console(record=True, width=200)
    print_table(columns, rows, "title", console)
    text = console.export_text()
    assert "parity-nope" in text and re.search(r"0\.967 \[0\.\d\d, \d\.\d\d\] \(n=3\)", text)


def assert_png(path, min_size=(200, 300)):
    pixels = image.imread(path)
    assert pixels.shape[0] >= min_size[0] and pixels.shape[1] >= min_size[1]
    assert pixels[..., :3].std() > 0.05  # something was drawn


def test_report_picks_the_view_and_writes_plots(store, tmp_path):
    out = tmp_path / "plots"
    console = Console(record=True, width=250)
    paths = report(store, "sparse", out_dir=out, console=console, formats=("png", "pdf", "svg"))
    # each figure in each format; the runs stored training curves, so those are plotted too
    assert [p.name for p in paths] == [f"sparse_exact_match_greedy_{figure}.{fmt}" for figure in ("by_k", "training")
                                       for fmt in ("png", "pdf", "svg")]
    assert paths[1].read_bytes().startswith(b"%PDF") and b"<svg" in paths[2].read_bytes()[:1000]
    assert_png(paths[0], min_size=(300, 600))  # two panels side by side
    text = console.export_text()
    assert "per k and length bin" in text and "K_train" in text

    paths = report(store, "pos", metric="token_acc", out_dir=out, markdown=True, console=Console(record=True))
    # parity has C-RASP predictions for APE and NoPE: the predicted-vs-observed view comes too, and
    # with several seeds per cell the selection rules.
    assert [p.name for p in paths] == ["pos_token_acc_bins.png", "pos_token_acc_predictions.png",
                                       "pos_token_acc_training.png", "pos_token_acc_selection.json",
                                       "pos_token_acc.md"]
    assert_png(paths[0])
    md = paths[-1].read_text()
    assert re.search(r"\| parity \| nope \| parity-nope \| 0\.500 \[[^]]+\] \| 0\.450 \[[^]]+\] \| 0\.400 \[[^]]+\] \|", md)
    assert "![pos_token_acc_bins]" in md

    # A mixed selection gets both views.
    paths = report(store, out_dir=out, console=Console(record=True))
    assert [p.name for p in paths] == ["all_exact_match_greedy_by_k.png", "all_exact_match_greedy_bins.png",
                                       "all_exact_match_greedy_predictions.png", "all_exact_match_greedy_training.png",
                                       "all_exact_match_greedy_selection.json"]
    assert report(store, "no-such-experiment", out_dir=out, console=Console(record=True)) == []
    console = Console(record=True, width=200)
    assert report(store, "pos", metric="exact_match_tf", out_dir=out, console=console) == []
    assert "metrics stored: exact_match_greedy, token_acc" in console.export_text()
