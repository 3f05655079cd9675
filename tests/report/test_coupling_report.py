"""The coupling claim's table: gain over the best plain scheme, and PPC minus its oracle (report.claims)."""

import hashlib
import json

import numpy as np
import pytest
from rich.console import Console

from lengthgen import stats
from lengthgen.report import report
from lengthgen.report.claims import COUPLED, PLAIN, coupling_gains, coupling_scheme, gain_table
from lengthgen.store import ResultsStore

BINS = [(1, 8), (9, 16), (25, 32)]  # coupled_addition trained on 1-8 digits: in distribution, 2x, 4x
COUNT = 200


def config(task="coupled_addition", positional="ape", seed=0, positions=None, ppc=False, steps=100,
           train=(1, 8), experiment="coup", name=None):
    params = {} if positions is None else {"positions": positions}
    return {"name": name, "experiment": experiment, "seed": seed, "device": "cpu",
            "task": {"name": task, "params": params, "train_lengths": list(train), "eval_bins": [list(b) for b in BINS]},
            "model": {"positional": positional, "predict_positions": ppc, "n_layers": 2}, "train": {"steps": steps}}


def add_run(store, cfg, greedy, oracle=None):
    """A finished run with greedy exact match greedy[i] on BINS[i] (and the oracle's, for PPC)."""
    key = hashlib.sha256(json.dumps({**cfg, "name": None}, sort_keys=True).encode()).hexdigest()[:16]
    store.start_run(key, cfg)
    metrics = [dict(lo=lo, hi=hi, grp="", metric="exact_match_greedy", value=v, count=COUNT)
               for (lo, hi), v in zip(BINS, greedy)]
    metrics += [dict(lo=lo, hi=hi, grp="", metric="exact_match_greedy_oracle", value=v, count=COUNT)
                for (lo, hi), v in zip(BINS, oracle or [])]
    metrics.append(dict(lo=9, hi=16, grp="digits=9", metric="exact_match_greedy", value=0.0, count=COUNT))  # ignored
    store.finish_run(key, status="finished", metrics=metrics, curves=[], wall_time=1.0, steps_done=100)
    return key


COUPLING_2X = [0.90, 0.95, 1.00]
PPC_2X, ORACLE_2X = [0.80, 0.85, 0.90], [0.90, 0.95, 1.00]


@pytest.fixture
def store(tmp_path):
    """Addition: NoPE, APE (1 seed), RoPE (2 seeds) plain; coupling clearly better, coupling-RoPE level
    with the best plain scheme, PPC 0.1 below its oracle (3 seeds each). Names say nothing of schemes."""
    store = ResultsStore(tmp_path / "runs")
    add_run(store, config(positional="nope", positions="sequential", name="r1"), [1.0, 0.05, 0.0])
    add_run(store, config(positional="ape", positions="sequential", name="r2"), [1.0, 0.10, 0.0])
    for seed, v in enumerate([0.20, 0.30]):
        add_run(store, config(positional="rope", positions="sequential", seed=seed, name=f"r3 seed={seed}"),
                [1.0, v, 0.01])
    for seed in range(3):
        add_run(store, config(positional="ape", seed=seed, name=f"r4 seed={seed}"), [1.0, COUPLING_2X[seed], 0.5])
        add_run(store, config(positional="rope", positions="coupled", seed=seed, name=f"r5 seed={seed}"),
                [1.0, [0.2, 0.3, 0.25][seed], 0.0])
        add_run(store, config(positional="ape", ppc=True, seed=seed, name=f"r6 seed={seed}"),
                [1.0, PPC_2X[seed], 0.2], oracle=[1.0, ORACLE_2X[seed], 0.3])
    # plain-only tasks and other training lengths are not compared
    add_run(store, config(task="index_hints_addition", positional="rope", name="r7"), [0.9, 0.0, 0.0])
    add_run(store, config(positional="ape", train=(1, 4), name="r8"), [1.0, 1.0, 1.0])
    # a task without coupling, in another experiment
    add_run(store, config(task="sort", positional="ape", train=(1, 8), experiment="plain", name="s1"), [1.0, 0.5, 0.1])
    add_run(store, config(task="sort", positional="nope", train=(1, 8), experiment="plain", name="s2"), [1.0, 0.4, 0.1])
    return store


def gains_of(store, experiment="coup"):
    configs = {r.key: r.config for r in store.runs(experiment=experiment)}
    return coupling_gains(store.metrics(experiment=experiment), configs)


def test_classification_reads_the_config():
    assert coupling_scheme(config(positional="rope", positions="sequential")) == (PLAIN, "RoPE")
    assert coupling_scheme(config(positional="nope", positions="sequential")) == (PLAIN, "NoPE")
    assert coupling_scheme(config(positional="ape")) == (COUPLED, "coupling")  # the task's default: coupled IDs
    assert coupling_scheme(config(positional="rope", positions="coupled")) == (COUPLED, "coupling-RoPE")
    assert coupling_scheme(config(positional="t5")) == (COUPLED, "coupling-T5")
    ssmax = config(positional="t5")
    ssmax["model"]["attention_scale"] = "log_length"
    assert coupling_scheme(ssmax) == (COUPLED, "coupling-T5+SSMax")
    assert coupling_scheme(config(positional="ape", ppc=True)) == (COUPLED, "PPC")
    assert coupling_scheme(config(task="var_chain", positional="ape", ppc=True, train=(4, 12))) == (COUPLED, "PPC")
    assert coupling_scheme(config(task="index_hints_addition")) is None  # no positions switch
    assert coupling_scheme(config(task="sort")) is None
    assert coupling_scheme(config(task="no_such_task")) is None


def test_gain_table_numbers(store):
    table = gains_of(store)
    assert [(r["task"], r["scheme"], r["lo"], r["multiple"]) for r in table] == [
        ("coupled_addition", s, lo, m) for s in ("coupling", "coupling-RoPE", "PPC") for lo, m in ((9, 2.0), (25, 4.0))]
    by = {(r["scheme"], r["lo"]): r for r in table}

    coupling = by["coupling", 9]
    assert coupling["seeds"] == 3 and coupling["mean"] == pytest.approx(0.95)
    assert coupling["best_plain"] == "RoPE" and coupling["best_plain_mean"] == pytest.approx(0.25)
    assert coupling["gain"] == pytest.approx(0.70) and coupling["holds"] and coupling["gain_lo"] > 0.5
    # the table's interval is gain_interval's on the same seeds and counts
    expected, best = stats.gain_interval(([0, 1, 2], COUPLING_2X, [COUNT] * 3),
                                         {"APE": ([0], [0.10], [COUNT]), "NoPE": ([0], [0.05], [COUNT]),
                                          "RoPE": ([0, 1], [0.20, 0.30], [COUNT] * 2)})
    assert best == "RoPE" and (coupling["gain_lo"], coupling["gain_hi"]) == (expected.lo, expected.hi)
    assert np.isnan(coupling["oracle_gap"])  # only PPC runs store the oracle

    level = by["coupling-RoPE", 9]  # level with the best plain scheme: the interval straddles 0
    assert level["gain"] == pytest.approx(0.0) and level["gain_lo"] < 0 < level["gain_hi"] and not level["holds"]
    assert by["coupling", 25]["best_plain"] == "RoPE" and by["coupling", 25]["gain"] == pytest.approx(0.49)

    ppc = by["PPC", 9]
    assert ppc["gain"] == pytest.approx(0.85 - 0.25) and ppc["holds"]
    assert ppc["oracle_gap"] == pytest.approx(-0.10) and ppc["oracle_gap_hi"] < 0 < ppc["oracle_gap"] + 0.2
    paired, _ = stats.gain_interval(([0, 1, 2], PPC_2X, [COUNT] * 3), {"oracle": ([0, 1, 2], ORACLE_2X, [COUNT] * 3)})
    assert (ppc["oracle_gap_lo"], ppc["oracle_gap_hi"]) == (paired.lo, paired.hi)

    columns, rows = gain_table(table)
    row = dict(zip(columns, rows[0]))
    assert row["x train"] == "2x" and row["best plain (mean)"] == "RoPE (0.250)" and row["gains"] == "yes"
    assert row["gain [95% CI]"].startswith("+0.700 [") and row["PPC - oracle [95% CI]"] == "–"
    assert dict(zip(columns, rows[4]))["PPC - oracle [95% CI]"].startswith("-0.100 [")


def test_a_scheme_in_two_configurations_stays_apart(store):
    for seed in range(2):
        add_run(store, config(positional="ape", seed=seed, steps=400, name=f"long seed={seed}"), [1.0, 0.2, 0.0])
    schemes = sorted({r["scheme"] for r in gains_of(store) if r["scheme"].startswith("coupling [")})
    assert schemes == ["coupling [long]", "coupling [r4]"]


def test_report_prints_the_gain_table_only_for_coupling(store):
    console = Console(record=True, width=300)
    report(store, "coup", console=console)
    text = console.export_text()
    assert "the coupling claim" in text and "RoPE (0.250)" in text and "+0.700" in text

    console = Console(record=True, width=300)
    report(store, "plain", console=console)
    text = console.export_text()
    assert "sort" in text and "coupling claim" not in text
    assert gains_of(store, "plain") == []
