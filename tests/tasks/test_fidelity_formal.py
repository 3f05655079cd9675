"""The official formal-language samplers against their generators' definitions.

Each expected distribution is computed exactly from the official generator's definition (the
nested uniform draws, the stopping probability, the rejection outside the window), never from a
sample, and a fixed-seed sample must match it: every sampled length in the exact support, and the
sample mean within 4 standard errors of the exact mean (or, for small cases, the exact
distribution of whole strings within a total-variation distance the sample size allows).
"""

from collections import Counter
from itertools import product
from math import comb

import numpy as np
import pytest

from lengthgen.tasks import make_task
from lengthgen.tasks.formal import FORMAL_TASKS

N = 2000


def draw_lengths(name, lo, hi, n=N, seed=0, **params):
    task, rng = make_task(name, **params), np.random.default_rng(seed)
    examples = [task.sample_window(rng, lo, hi) for _ in range(n)]
    strings = [task.string_of(e) for e in examples]
    assert all(task.is_member(s) and lo <= len(s) <= hi and e.length == len(s) for s, e in zip(strings, examples))
    return strings


def check_against(pmf: dict[int, float], lengths):
    """Support and mean of a sample of lengths against an exact (unnormalised) pmf."""
    total = sum(pmf.values())
    pmf = {k: v / total for k, v in pmf.items() if v > 0}
    assert set(lengths) <= set(pmf), f"lengths outside the support: {sorted(set(lengths) - set(pmf))[:5]}"
    mean = sum(k * p for k, p in pmf.items())
    sd = sum((k - mean) ** 2 * p for k, p in pmf.items()) ** 0.5
    assert abs(np.mean(lengths) - mean) <= 4 * sd / len(lengths) ** 0.5 + 1e-9, (np.mean(lengths), mean)
    return mean


def nested_uniform_leftover(top: int, draws: int, low: int = 0) -> np.ndarray:
    """Distribution of what is left of `top` after `draws` nested draws c ~ U[low, left] (a draw
    is 0 once nothing is left): entry r = P(left = r)."""
    left = np.zeros(top + 1)
    left[top] = 1.0
    for _ in range(draws):
        nxt = np.zeros(top + 1)
        nxt[0] += left[0]
        for r in range(1, top + 1):
            counts = range(low, r + 1)
            for c in counts:
                nxt[r - c] += left[r] / len(counts)
        left = nxt
    return left


def test_tomita2_length_pmf():
    # m uniform in [1, 99], k = (m + 1) // 2, length 2k.
    pmf = Counter(2 * ((m + 1) // 2) for m in range(1, 100))
    check_against(pmf, [len(s) for s in draw_lengths("tomita2", 1, 100)])


@pytest.mark.parametrize("name, lo, hi", [("tomita5", 1, 100), ("tomita6", 1, 100), ("tomita5", 101, 150)])
def test_tomita5_6_stopping_length_pmf(name, lo, hi):
    mid = (lo + hi) // 2
    r = mid / (1 + mid)  # probability of emitting a symbol (2p)

    def members(n):  # strings of length n in the language, counted by their number of zeros
        ok = (lambda z: z % 2 == 0 and (n - z) % 2 == 0) if name == "tomita5" else (lambda z: (2 * z - n) % 3 == 0)
        return sum(comb(n, z) for z in range(n + 1) if ok(z))

    pmf = {n: (r ** n * (1 - r) if n < hi else r ** hi) * members(n) / 2 ** n for n in range(lo, hi + 1)}
    lengths = [len(s) for s in draw_lengths(name, lo, hi, n=1000)]
    check_against(pmf, lengths)
    if lo > 1:  # the truncation at hi carries a large mass: their test bins pile up at 150
        assert abs(np.mean([n == hi for n in lengths]) - pmf[hi] / sum(pmf.values())) < 0.05


def test_tomita7_length_pmf_and_runs():
    lo, hi = 1, 100
    left = nested_uniform_leftover(hi, 4)  # k1..k4 nested uniform in [0, left]
    pmf = {hi - r: p for r, p in enumerate(left) if hi - r >= lo}
    strings = draw_lengths("tomita7", lo, hi)
    mean = check_against(pmf, [len(s) for s in strings])
    assert mean > 90  # their Tomita-7 strings are long: near the top of the window
    # k1 (the leading zeros) is uniform in [0, hi] before the rejection of short strings.
    lead = [len(s) - len(s.lstrip("0")) for s in strings]
    assert abs(np.mean(lead) - hi / 2) < 4 * (hi / 12 ** 0.5) / N ** 0.5 + 1.0


def exact_tomita7_given_length(n):
    """P(string) of the official Tomita-7 process with top n, conditioned on the length n."""
    probs = Counter()
    for k1, k2, k3 in product(range(n + 1), repeat=3):
        if k1 + k2 + k3 <= n:
            left = [n, n - k1, n - k1 - k2, n - k1 - k2 - k3]
            p = np.prod([1 / (x + 1) for x in left])
            probs["0" * k1 + "1" * k2 + "0" * k3 + "1" * (n - k1 - k2 - k3)] += p  # k4 = all that is left
    total = sum(probs.values())
    return {s: p / total for s, p in probs.items()}


def exact_tomita3(n):
    """P(string) of the official Tomita-3 process for length n (zero-size blocks are self-loops,
    so each step's outcomes are renormalised without them)."""
    out = Counter()

    def walk(s, last_toss, ones, p):
        if len(s) == n:
            out[s] += p
            return
        rem = n - len(s)
        moves = [("1", c) for c in range(1, rem + 1)]
        zeros = range(1, rem + 1) if (last_toss is None or ones % 2 == 0) else range(2, rem + 1, 2)
        moves += [("0", c) for c in zeros]
        # toss is fair, then the size: uniform over [0, rem] for 1s and unrestricted 0s, over the
        # even sizes in [0, rem] for restricted 0s; size 0 repeats the step.
        weights = [0.5 / (rem + 1) if t == "1" or len(zeros) == rem else 0.5 / (rem // 2 + 1) for t, _ in moves]
        norm = sum(weights)
        for (t, c), w in zip(moves, weights):
            new_ones = (c if last_toss == "0" else ones + c) if t == "1" else ones
            walk(s + t * c, t, new_ones, p * w / norm)

    walk("", None, 0, 1.0)
    return out


@pytest.mark.parametrize("name, n, exact", [("tomita3", 5, exact_tomita3), ("tomita7", 6, exact_tomita7_given_length)])
def test_given_length_matches_exact_string_distribution(name, n, exact):
    task, rng = make_task(name), np.random.default_rng(1)
    expected = exact(n)
    assert abs(sum(expected.values()) - 1) < 1e-9
    seen = Counter(task.string_of(task.sample(rng, n)) for _ in range(4000))
    assert set(seen) <= set(expected)
    tv = 0.5 * sum(abs(seen[s] / 4000 - expected.get(s, 0)) for s in set(expected) | set(seen))
    # Expected total variation of 4000 draws over k outcomes is at most sqrt(k / 4000) / 2.
    assert tv < 0.6 * (len(expected) / 4000) ** 0.5 + 0.02, tv


def test_abcde_length_pmf_and_run_counts():
    lo, hi, floor = 5, 200, 5
    total = hi - floor + 1
    left = nested_uniform_leftover(total, 5, low=1)  # each letter: floor // 5 + c, c ~ U[1, left]
    pmf = {5 + total - r: p for r, p in enumerate(left) if 5 + total - r <= hi}
    strings = draw_lengths("abcde", lo, hi)
    mean = check_against(pmf, [len(s) for s in strings])
    assert mean > 185  # concentrated at the window's top
    # The a-run is 1 + c1, c1 uniform in [1, total], conditioned on the acceptance: the other four
    # counts must leave something of total - c1 (else the length is hi + 1, rejected).
    spent = np.zeros((total + 1, 5))  # spent[r, k]: P(k nested draws use up all of r)
    spent[0, :] = 1.0
    for k in range(1, 5):
        for r in range(1, total + 1):
            spent[r, k] = spent[:r, k - 1].sum() / r
    accept = {c1: 1 - spent[total - c1, 4] for c1 in range(1, total + 1)}
    a_runs = [s.count("a") for s in strings]
    check_against({1 + c1: p for c1, p in accept.items()}, a_runs)


def test_abcde_test_bin_keeps_lower_window_5():
    # Their test bin [201, 300] is the generator for [5, 300] restricted to lengths >= 201.
    total = 300 - 5 + 1
    left = nested_uniform_leftover(total, 5, low=1)
    pmf = {5 + total - r: p for r, p in enumerate(left) if 201 <= 5 + total - r <= 300}
    check_against(pmf, [len(s) for s in draw_lengths("abcde", 201, 300, n=1000)])


@pytest.mark.parametrize("name, before, after", [("ab_d_bc", "ab", "bc"), ("zot_02", "012", "2")])
def test_prefix_suffix_split(name, before, after):
    lo, hi = 2, 50
    pmf, pre_mass = Counter(), Counter()
    for pre in range(hi - 1):  # pre uniform in [0, hi-2], post uniform in [0, hi-pre-2]
        for post in range(hi - pre - 1):
            p = 1 / (hi - 1) / (hi - pre - 1)
            if pre + 1 + post >= lo:
                pmf[pre + 1 + post] += p
                pre_mass[pre] += p
    strings = draw_lengths(name, lo, hi)
    check_against(pmf, [len(s) for s in strings])
    assert max(len(s) for s in strings) <= hi - 1  # their strings are shorter than the top
    mandatory = "d" if name == "ab_d_bc" else "0"
    prefixes = [s.rindex(mandatory) if name == "ab_d_bc" else len(s.rstrip("2")) - 1 for s in strings]
    check_against(pre_mass, prefixes)


@pytest.mark.parametrize("name, lo, hi", [("aa_star", 2, 100), ("aaaa_star", 4, 500), ("abab_star", 4, 500)])
def test_periodic_length_pmf(name, lo, hi):
    block = {"aa_star": 2, "aaaa_star": 4, "abab_star": 4}[name]
    pmf = Counter(block * (m // block) for m in range(lo, hi + 1) if lo <= block * (m // block) <= hi)
    check_against(pmf, [len(s) for s in draw_lengths(name, lo, hi, n=1000)])


def depth(s):
    d = best = 0
    for c in s:
        d += 1 if c == "a" else -1
        best = max(best, d)
    return best


@pytest.mark.parametrize("name, max_depth, lo, hi", [("dyck2", 2, 2, 50), ("dyck3", 3, 2, 100), ("dyck4", 4, 2, 100)])
def test_bounded_dyck_reaches_full_depth_and_the_top(name, max_depth, lo, hi):
    strings = draw_lengths(name, lo, hi, n=500)
    # By definition every block nests a word drawn for a target 0.75x its parent's (>= 2 here:
    # 0.75^(depth-1) * 0.75 * hi * 0.65 >= 2 unless a normal draw falls below -3.5 sd), so every
    # word reaches its full depth, and its length is at least the top-level target
    # int(0.75 * hi * (1 + 0.1 z)) >= int(0.75 * hi * 0.65).
    assert all(depth(s) == max_depth for s in strings)
    assert min(len(s) for s in strings) >= int(0.75 * hi * 0.65)
    assert np.mean([len(s) for s in strings]) > 0.7 * hi
    # Our uniform sampler, for contrast, is shallower (the issue: 82% at depth 4 for D-4).
    uniform = draw_lengths(name, lo, hi, n=300, sampler="uniform")
    assert np.mean([depth(s) == max_depth for s in uniform]) < np.mean([depth(s) == max_depth for s in strings])


@pytest.mark.parametrize("name", FORMAL_TASKS)
def test_sampler_param_is_validated_and_both_samplers_give_members(name):
    with pytest.raises(ValueError, match="sampler"):
        make_task(name, sampler="fancy")
    for sampler in ("official", "uniform"):
        task = make_task(name, sampler=sampler)
        rng = np.random.default_rng(3)
        lo, hi = task.default_train_lengths
        for n in list(task.valid_lengths(lo, hi))[:: max(1, len(task.valid_lengths(lo, hi)) // 5)]:
            ex = task.sample(rng, n)
            assert ex.length == n and task.is_member(task.string_of(ex))
        ex = task.sample_window(rng, *task.default_eval_bins[1])
        assert task.is_member(task.string_of(ex))
    assert "official (default; the paper's" in make_task(name).format


def test_official_offset_range_shifts_every_example_over_the_longest_sequence():
    """train_with_ce.py: k uniform in [0, n_positions / 2) = [0, L), L the longest test sequence,
    whatever the example's length; the general rule shifts an example only as far as its last ID
    reaching the longest sequence's."""
    from lengthgen.positions import draw_offsets, max_offset, table_size

    ours, official = make_task("dyck2"), make_task("dyck2", offset_range="official")
    longest = 150
    assert [max_offset(ours, n, longest) for n in (10, 50)] == [140, 100]
    assert [max_offset(official, n, longest) for n in (10, 50)] == [150, 150]
    assert table_size(ours, (2, 50), longest, True) == 151 and table_size(official, (2, 50), longest, True) == 201
    drawn = draw_offsets(np.random.default_rng(0), official, [10] * 4000, longest)
    assert min(drawn) == 0 and max(drawn) == 150 and abs(np.mean(drawn) - 75) < 2
    with pytest.raises(ValueError, match="offset_range 'far'.*longest, official"):
        make_task("dyck2", offset_range="far")
