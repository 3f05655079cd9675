"""Coupled addition as Cho et al. (HanseulJo/position-coupling, src/data/addition.py): operand
lengths, values, padding, the reversed answer and the coupled IDs, checked from decoded tokens."""

from collections import Counter

import numpy as np
import pytest

from lengthgen.tasks import make_task


def decoded(task, ex):
    full = task.vocab.decode(list(ex.inputs) + [ex.targets[-1]])
    n = ex.length
    a, b = full[1:n + 1], full[n + 2:2 * n + 2]
    assert full[0] == "<bos>" and full[n + 1] == "+" and full[2 * n + 2] == "<sep>" and full[-1] == "<eos>"
    return a, b, full[2 * n + 3:-1]


def real_digits(padded):
    """Digits of an MSB-first zero-padded operand without its padding (0 keeps one digit)."""
    s = "".join(padded).lstrip("0")
    return max(1, len(s))


def total_variation(counts: Counter, expected: dict, draws: int) -> float:
    return 0.5 * sum(abs(counts[k] / draws - expected.get(k, 0)) for k in set(counts) | set(expected))


def test_window_draws_both_lengths_independently_and_uniformly():
    task, rng = make_task("coupled_addition"), np.random.default_rng(0)
    draws = 6400
    pairs = Counter(task.sample_window(rng, 1, 8).info["digits"] for _ in range(draws))
    expected = {(i, j): 1 / 64 for i in range(1, 9) for j in range(1, 9)}
    assert set(pairs) == set(expected)
    assert total_variation(pairs, expected, draws) < 0.6 * (64 / draws) ** 0.5  # E[TV] <= sqrt(k/N)/2


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_given_length_is_the_window_law_conditioned_on_the_longer_operand(n):
    task, rng = make_task("coupled_addition"), np.random.default_rng(n)
    draws = 400 * (2 * n - 1)
    pairs = Counter(task.sample(rng, n).info["digits"] for _ in range(draws))
    expected = {p: 1 / (2 * n - 1) for p in [(n, j) for j in range(1, n + 1)] + [(j, n) for j in range(1, n)]}
    assert set(pairs) == set(expected)
    assert total_variation(pairs, expected, draws) < 0.6 * ((2 * n - 1) / draws) ** 0.5 + 0.01


def test_values_padding_answer_and_ids():
    task, rng = make_task("coupled_addition"), np.random.default_rng(1)
    one_digit, leading = Counter(), Counter()
    for _ in range(3000):
        ex = task.sample_window(rng, 1, 6)
        n, (da, db) = ex.length, ex.info["digits"]
        a, b, s = decoded(task, ex)
        assert n == max(da, db) and len(a) == len(b) == n and len(s) == n + 1
        for padded, d in ((a, da), (b, db)):
            assert real_digits(padded) == d and padded[:n - d] == ["0"] * (n - d)  # no leading zeros, zero-padded
            (one_digit if d == 1 else leading)[padded[n - d]] += 1
        assert int("".join(a)) + int("".join(b)) == int("".join(s)[::-1])  # reversed, padded to n+1 digits
        ids = ex.position_ids
        assert ids[0] == 0 and ids[n + 1] == 1 and ids[2 * n + 2] == 1  # <bos> 0, + and <sep> the start
        np.testing.assert_array_equal(ids[1:n + 1], np.arange(n + 1, 1, -1))
        np.testing.assert_array_equal(ids[2 * n + 3:], np.arange(2, n + 3)[:len(ids) - 2 * n - 3])
        assert ex.offset_from == 1 and ids.max() == task.max_id(n)
    assert set(one_digit) == set("0123456789")  # a 1-digit operand may be 0
    assert set(leading) == set("123456789")  # a longer one has no leading zero


def test_equal_operands_keep_the_earlier_sampler():
    task, rng = make_task("coupled_addition", operands="equal"), np.random.default_rng(2)
    firsts = Counter()
    for n in (3, 7):
        for _ in range(300):
            ex = task.sample_window(rng, n, n)
            a, b, s = decoded(task, ex)
            assert ex.info["digits"] == (n, n) and len(a) == len(b) == n
            firsts[a[0]] += 1
    assert "0" in firsts  # uniform digits: leading zeros allowed
    with pytest.raises(ValueError, match="operands"):
        make_task("coupled_addition", operands="sometimes")


def test_index_hints_follow_the_operand_sampler():
    task, rng = make_task("index_hints_addition", hint_vocab=20), np.random.default_rng(3)
    pairs = Counter(task.sample_window(rng, 1, 4).info["digits"] for _ in range(1600))
    assert set(pairs) == {(i, j) for i in range(1, 5) for j in range(1, 5)}
    assert make_task("index_hints_addition", operands="equal").sample(rng, 4).info["digits"] == (4, 4)
