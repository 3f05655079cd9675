"""Figures readers can read: metrics named in words, legends by scheme and run name (never a key),
Okabe-Ito colours, training curves from the store, PNG/PDF/SVG; plot functions return Figures."""

import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from rich.console import Console

from lengthgen.cli import main
from lengthgen.config import load_run_config
from lengthgen.report import report
from lengthgen.report.curves import plot_training
from lengthgen.report.plots import OKABE_ITO, metric_label, plot_bins
from lengthgen.store import ResultsStore, short_key
from lengthgen.training import train_run

TINY = {"task": {"name": "parity", "train_lengths": [2, 6], "eval_bins": [[2, 6], [7, 12]]},
        "model": {"n_layers": 1, "n_heads": 1, "d_model": 16},
        "train": {"steps": 10, "batch_size": 8, "eval_every": 5, "early_stop_acc": None},
        "eval": {"examples_per_bin": 8}}


def _config(seed=0, name=None, **model):
    return load_run_config(TINY | {"seed": seed, "name": name, "model": {**TINY["model"], **model}})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = ResultsStore(tmp_path_factory.mktemp("runs"))
    for positional in ("ape", "nope"):
        for seed in (0, 1):
            train_run(_config(seed, positional=positional), store)
    train_run(_config(name="wide", d_model=32), store)
    train_run(_config(positional="rope", n_heads=2), store)  # unnamed, one seed: named by scheme all the same
    return store


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_bins_figure_names_metrics_in_words_and_runs_by_scheme(store):
    fig = plot_bins(store, None, "exact_match_greedy")
    assert isinstance(fig, Figure)
    (ax,) = fig.axes  # one task: every scheme on the same axes
    assert ax.get_ylabel() == "exact match (greedy)" and ax.get_xlabel() == "length bin"
    assert sorted(_legend(ax)) == ["ape", "ape: wide", "nope", "rope", "train lengths"]
    keys = [short_key(r.key) for r in store.runs()]
    assert not any(k in text for k in keys for text in _legend(ax))
    assert {to_hex(line.get_color()).upper() for line in ax.get_lines()} <= set(OKABE_ITO)


def test_training_curves_come_from_the_store(store):
    fig = plot_training(store, None)
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["loss (nats)", "in-distribution exact match",
                                                                       "learning rate"]
    loss = fig.axes[0]
    assert len(loss.get_lines()) == len(store.runs()) and loss.get_yscale() == "linear"  # 10 steps: no decades
    steps = [c.step for c in store.curves(store.runs()[0].key) if c.name == "loss"]
    assert list(loss.get_lines()[0].get_xdata()) == steps
    # seeds of one configuration share one colour and one legend entry; never a key
    assert {"ape", "wide", "rope"} <= set(_legend(loss)) and len(_legend(loss)) == len(set(_legend(loss)))
    ape = [line for line in loss.get_lines() if line.get_color() == loss.get_lines()[0].get_color()]
    assert len({line.get_color() for line in loss.get_lines()}) == len(_legend(loss)) and len(ape) >= 1
    assert plot_training(store, "no such experiment") is None


def test_report_writes_the_formats_asked_for(store, tmp_path):
    paths = report(store, out_dir=tmp_path, console=Console(record=True), formats=("png", "svg"))
    figures = [p for p in paths if p.suffix != ".json"]
    assert {p.name for p in figures} >= {f"all_exact_match_greedy_{figure}.{fmt}" for figure in ("bins", "training")
                                         for fmt in ("png", "svg")}
    assert {p.suffix for p in figures} == {".png", ".svg"} and all(p.stat().st_size > 1000 for p in figures)
    assert "exact match (greedy)" in paths[1].read_text()  # SVG keeps text as text


def test_the_formats_option(store, tmp_path, capsys):
    out = tmp_path / "plots"
    assert main(["report", "--root", str(store.root), "--out", str(out), "--formats", "pdf"]) == 0
    written = {p.name for p in out.iterdir() if p.suffix != ".json"}
    assert {"all_exact_match_greedy_bins.pdf", "all_exact_match_greedy_training.pdf"} <= written
    assert all(name.endswith(".pdf") for name in written)
    with pytest.raises(SystemExit):
        main(["report", "--root", str(store.root), "--formats", "png,gif"])
    assert "expected some of png, pdf, svg" in capsys.readouterr().err


def test_metric_labels():
    assert metric_label("exact_match_tf") == "exact match (teacher-forced)"
    assert metric_label("some_new_metric") == "some new metric"
