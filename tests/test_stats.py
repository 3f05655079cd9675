"""The claim statistics (lengthgen.stats) and the sparsity table built from metric rows."""

from dataclasses import replace

import numpy as np
import pytest

from lengthgen import stats
from lengthgen.records import MetricRow
from lengthgen.report.claims import experiment_point, format_sparsity_slopes, seed_means, sparsity_slopes

KS = np.arange(1, 7)


def test_constant_data_gives_zero_width_intervals():
    est = stats.mean_interval([1.0, 1.0, 1.0], [200, 200, 200])
    assert (est.value, est.lo, est.hi) == (1.0, 1.0, 1.0)
    zero = stats.mean_interval([0.0, 0.0], [50, 80])
    assert (zero.value, zero.lo, zero.hi) == (0.0, 0.0, 0.0)
    # flat accuracy 1.0 at every k: slope exactly 0 with a zero-width interval, rho undefined
    res = stats.slope_interval(KS, np.ones((3, 6)), np.full((3, 6), 100), np.ones((3, 6)))
    assert (res.slope.value, res.slope.lo, res.slope.hi) == (0.0, 0.0, 0.0)
    assert not res.holds and np.isnan(res.spearman.value)


def test_mean_interval_is_deterministic_and_contains_the_mean():
    a = stats.mean_interval([0.6, 0.7, 0.9], [150, 150, 150], seed=3)
    assert a == stats.mean_interval([0.6, 0.7, 0.9], [150, 150, 150], seed=3)
    assert a.value == pytest.approx(0.7333333) and a.lo < a.value < a.hi
    # one seed: only the examples vary; the interval is the binomial one, about +-1.96 sqrt(pq/n)
    one = stats.mean_interval([0.5], [400])
    assert one.hi - one.lo == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 400), rel=0.15)


def test_linear_falling_accuracy_gives_the_true_slope_and_an_interval_below_zero():
    acc = np.tile(1.0 - 0.05 * KS, (3, 1))  # 0.95 ... 0.70, the same for every seed
    res = stats.slope_interval(KS, acc, np.full((3, 6), 300), np.ones((3, 6)))
    assert res.slope.value == pytest.approx(-0.05)
    assert res.slope.hi < 0 and res.holds
    assert res.drop_slope.value == pytest.approx(0.05) and res.drop_slope.above_zero
    assert res.spearman.value == pytest.approx(-1.0)
    assert res.mean_acc == pytest.approx(tuple(1.0 - 0.05 * KS))


def test_per_seed_intercepts_keep_seed_offsets_out_of_the_slope():
    # seed 1 is 0.3 worse everywhere and learned only k <= 3: a pooled fit would tilt downwards
    acc = np.array([1.0 - 0.02 * KS, 0.7 - 0.02 * KS])
    train = np.array([np.ones(6), [1, 1, 1, 0.5, 0.5, 0.5]])
    res = stats.slope_interval(KS, acc, np.full((2, 6), 500), train)
    assert res.slope.value == pytest.approx(-0.02)
    assert res.learned_seeds == (2, 2, 2, 1, 1, 1)


def test_k_not_learned_in_distribution_cannot_make_the_trend():
    # learned k = 1..4 are flat at 0.8; k = 5, 6 were never learned (0.6 in distribution) and sit at 0.5
    acc = np.tile([0.8, 0.8, 0.8, 0.8, 0.5, 0.5], (3, 1))
    train = np.tile([1.0, 1.0, 0.995, 0.99, 0.6, 0.6], (3, 1))
    res = stats.slope_interval(KS, acc, np.full((3, 6), 200), train)
    assert res.slope.value == pytest.approx(0.0, abs=1e-12)
    assert not res.holds
    assert res.learned_seeds == (3, 3, 3, 3, 0, 0)
    unfiltered = stats.slope_interval(KS, acc, np.full((3, 6), 200), train, learned=0.0)
    assert unfiltered.holds  # without the filter the unlearned k would make a falling trend


def _coverage(estimate, truth, trials, rng):
    hits = 0
    for t in range(trials):
        lo, hi = estimate(rng, t)
        hits += lo <= truth <= hi
    return hits / trials


def test_interval_coverage_close_to_95_percent_on_simulated_seeds():
    """Seeds are draws of a per-seed accuracy (sd 0.05) measured on 150 examples (sd ~0.035).

    Resampling seeds and then examples counts the example noise twice, so the interval is exact
    only where the seed variance is about (seeds - 1) times the example variance: with 8 seeds
    and these sds the expected coverage is about 95%. 300 trials give a binomial sd of 1.3 points
    on the coverage, so [0.91, 0.99] is a 3-sd band around 0.95 (a wrong scheme, e.g. examples
    only, covers about 75% here). With 3 seeds of sd 0.1 the same interval covers only about 80%:
    few seeds make it optimistic, which the report should say."""
    rng = np.random.default_rng(0)
    seeds, n, p, sd = 8, 150, 0.75, 0.05

    def mean_ci(rng, t):
        acc = rng.binomial(n, np.clip(rng.normal(p, sd, seeds), 0, 1)) / n
        est = stats.mean_interval(acc, np.full(seeds, n), resamples=400, seed=t)
        return est.lo, est.hi

    assert 0.91 <= _coverage(mean_ci, p, 300, rng) <= 0.99

    slope = -0.04

    def slope_ci(rng, t):
        true = np.clip(0.95 + slope * (KS - 1) + rng.normal(0, sd, (seeds, 1)) + rng.normal(0, 0.02, (seeds, 6)), 0, 1)
        acc = rng.binomial(n, true) / n
        res = stats.slope_interval(KS, acc, np.full((seeds, 6), n), np.ones((seeds, 6)), resamples=400, seed=t)
        return res.slope.lo, res.slope.hi

    assert 0.91 <= _coverage(slope_ci, slope, 300, rng) <= 0.99


def test_huang_verdicts_and_agreement():
    assert stats.huang_verdict([1.0, 0.995, 0.5], [0.95, 0.91, 0.1]) == "generalizes"  # mean over learned seeds
    assert stats.huang_verdict([1.0, 1.0, 1.0], [0.95, 0.5, 0.9]) == "fails"
    assert stats.huang_verdict([1.0, 0.9, 0.5], [1.0, 1.0, 1.0]) == "not learned"  # 1 of 3 is no majority
    assert stats.huang_verdict([1.0, 1.0, 1.0, 0.2, 0.2], [1, 1, 1, 0, 0]) == "generalizes"  # 3 of 5
    verdicts = {"sort/ape": "generalizes", "parity/ape": "fails", "addition/ape": "not learned",
                "repeat_copy/ape": "generalizes"}
    predicted = {"sort/ape": "generalizes", "parity/ape": "fails", "addition/ape": "fails",
                 "repeat_copy/ape": "fails"}
    a = stats.agreement(verdicts, predicted)
    assert (a.agree, a.judged, a.disagreeing) == (2, 3, ("repeat_copy/ape",))
    assert a.fraction == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="must be"):
        stats.agreement(verdicts, {"sort/ape": "yes"})


def test_gain_over_the_best_plain_scheme_paired_and_independent():
    coupled = ([0, 1, 2], [0.95, 0.97, 0.99], [200, 200, 200])
    plain = {"ape": ([0, 1, 2], [0.30, 0.35, 0.32], [200] * 3), "rope": ([2, 0, 1], [0.52, 0.50, 0.51], [200] * 3)}
    gain, best = stats.gain_interval(coupled, plain)
    assert best == "rope" and gain.value == pytest.approx(0.97 - 0.51)
    assert gain.lo > 0.35 and gain.above_zero
    # the same scheme against itself, paired by seed: the seed draws cancel, only examples vary
    same, _ = stats.gain_interval(coupled, {"self": coupled})
    indep, _ = stats.gain_interval(coupled, {"self": ([7, 8, 9], *coupled[1:])})
    assert same.value == 0.0 and same.lo < 0 < same.hi
    assert same.hi - same.lo < indep.hi - indep.lo  # pairing removes the seed spread
    with pytest.raises(ValueError, match="at least one"):
        stats.gain_interval(coupled, {})


def test_bad_input_fails_fast():
    with pytest.raises(ValueError, match="count"):
        stats.mean_interval([0.5], [0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.mean_interval([1.5], [10])
    with pytest.raises(ValueError, match="seeds"):
        stats.slope_interval(KS, np.ones((2, 5)), np.ones((2, 5)), np.ones((2, 5)))


def _rows(name, seed, table, count=100):
    """Metric rows of one run: table {(lo, hi): [acc per k]}."""
    return [MetricRow(run_key=f"{name}-{seed}", lo=lo, hi=hi, grp=f"k={k}", metric="exact_match_greedy", value=a,
                      count=count, name=f"{name} seed={seed}", seed=seed, task="sparse_parity", positional="ape",
                      experiment=None, status="finished")
            for (lo, hi), accs in table.items() for k, a in enumerate(accs, 1)]


def test_sparsity_slopes_from_metric_rows():
    rows = []
    for seed in range(3):
        rows += _rows("K4", seed, {(8, 24): [1, 1, 1, 1], (25, 48): [1, 0.9, 0.8, 0.7], (49, 72): [0.9, 0.7, 0.5, 0.3]})
        rows += _rows("K2", seed, {(8, 24): [1, 1], (25, 48): [1, 1], (49, 72): [1, 1]})
    rows.append(replace(rows[0], grp="", value=0.5))  # pooled rows and other metrics are ignored
    rows.append(replace(rows[0], metric="token_acc", value=0.0))
    table = sparsity_slopes(rows)
    assert [(r["point"], r["lo"]) for r in table] == [("K2", 25), ("K2", 49), ("K4", 25), ("K4", 49)]
    k4 = table[3]
    assert k4["k_train"] == 4 and k4["seeds"] == 3 and k4["holds"]
    assert k4["slope"] == pytest.approx(-0.2) and k4["learned_seeds"] == [3, 3, 3, 3]
    assert not table[0]["holds"] and table[0]["slope"] == 0.0
    text = format_sparsity_slopes(table)
    assert "| K4 | [49,72] | 3 |" in text and "-0.200" in text
    assert experiment_point("K6 seed=12") == "K6" and experiment_point("K6 positional=rope seed=1") == "K6 positional=rope"


def test_seed_means_group_runs_by_point():
    rows = _rows("K2", 0, {(8, 24): [1.0, 0.8]}) + _rows("K2", 1, {(8, 24): [1.0, 0.6]})
    means = {(m["point"], m["grp"]): m for m in seed_means(rows)}
    assert means[("K2", "k=1")]["mean"] == 1.0 and means[("K2", "k=1")]["ci_lo"] == 1.0
    k2 = means[("K2", "k=2")]
    assert k2["seeds"] == 2 and k2["mean"] == pytest.approx(0.7) and k2["ci_lo"] < 0.7 < k2["ci_hi"]
