"""Huang et al.'s algorithmic details (lacoco-lab/length_generalization,
algorithmic/language_modeling_train.py): addition without <sep>, its 300-row offsets, the
interleave rounding, parity at n = 0 and the `answer_sep` reading of bin_majority_interleave_sep."""

from collections import Counter

import numpy as np
import pytest

from lengthgen.positions import max_offset
from lengthgen.tasks import make_task


def full(task, ex):
    return task.vocab.decode(list(ex.inputs) + [ex.targets[-1]])


@pytest.mark.parametrize("n", [4, 9, 50, 150])
def test_addition_has_no_sep_and_scores_from_the_equals(n):
    task, rng = make_task("addition"), np.random.default_rng(n)
    for _ in range(50):
        ex = task.sample(rng, n)
        seq = full(task, ex)
        assert "<sep>" not in seq and seq[n] == "=" and ex.answer_start == n
        a, b = "".join(seq[1:n]).rstrip("=").split("+")
        assert "".join(seq[n + 1:-1]) == bin(int(a, 2) + int(b, 2))[2:]
        np.testing.assert_array_equal(ex.loss_mask, np.arange(len(ex.inputs)) >= n)  # answer and <eos>
        assert len(ex.inputs) <= task.seq_len(n)
    assert "<sep>" in full(make_task("addition", separator=True), make_task("addition", separator=True).sample(rng, n))


def test_addition_offsets_fit_a_300_row_table():
    task = make_task("addition")
    rng = np.random.default_rng(0)
    for n in range(4, 151):
        # the official bound 300 - len(<bos> … <eos>) holds for every answer length the task can give
        whole_longest = n + 2 + (n - 2)
        assert max_offset(task, n, 150) == max(0, 300 - whole_longest)
        ex = task.sample(rng, n)
        assert max_offset(task, n, 150) + len(ex.inputs) <= 300
    assert max(task.seq_len(n) + max_offset(task, n, 150) for n in range(4, 151)) <= 300


@pytest.mark.parametrize("lo, hi", [(0, 50), (51, 100), (101, 150)])
def test_interleave_lengths_follow_the_official_rounding(lo, hi):
    lo3 = max(3, lo)
    expected = Counter()
    for total in range(lo3, hi + 1):  # their rule, restated: round, then back inside the window
        m = int(total / 3 + 0.5)
        m -= 3 * m > hi
        m += 3 * m < lo3
        expected[3 * m] += 1 / (hi - lo3 + 1)
    task, rng = make_task("bin_majority_interleave"), np.random.default_rng(lo)
    draws = 4000
    seen = Counter(task.sample_window(rng, lo, hi).length for _ in range(draws))
    assert set(seen) == set(expected)
    tv = 0.5 * sum(abs(seen[k] / draws - expected[k]) for k in expected)
    assert tv < 0.6 * (len(expected) / draws) ** 0.5


def test_parity_includes_the_empty_string():
    task = make_task("parity")
    assert task.default_train_lengths == (0, 50) and 0 in task.valid_lengths(0, 50)
    ex = task.sample(np.random.default_rng(0), 0)
    assert full(task, ex) == ["<bos>", "<sep>", "even", "<eos>"] and ex.loss_mask.sum() == 2


def test_interleave_answer_sep_variant():
    task, rng = make_task("bin_majority_interleave", answer_sep=True), np.random.default_rng(4)
    for n in (3, 12, 48):
        ex = task.sample(rng, n)
        seq = full(task, ex)
        xs, answer = seq[1:n + 1], seq[n + 2:-1]
        assert seq[n + 1] == "<sep>" and answer[1] == answer[3] == "<sep>"
        bits = [answer[0], answer[2], answer[4]]
        assert bits == ["1" if xs[i::3].count("1") > xs[i::3].count("0") else "0" for i in range(3)]
        assert len(ex.inputs) == task.seq_len(n) and ex.loss_mask.sum() == 6
    assert make_task("bin_majority_interleave").params() == {"answer_sep": False}
