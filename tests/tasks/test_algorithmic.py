"""Properties of the Huang et al. algorithmic suite (docs/design.md §4.2).

Every rule is re-derived from the decoded tokens with plain Python (Counter, int(·, 2), sorted),
never with the task module's own helpers.
"""

import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lengthgen.positions import max_offset
from lengthgen.tasks import available_tasks, make_task

NAMES = ("bin_majority", "majority", "bin_majority_interleave", "unique_copy", "repeat_copy", "sort",
         "parity", "addition")
SHORT_ANSWER = ("bin_majority", "majority", "bin_majority_interleave", "parity")
WHOLE_SEQUENCE_ANSWER = ("unique_copy", "repeat_copy", "sort")
TOKENS_150 = {str(i) for i in range(150)}
LETTERS = set("abcdefghijklmnopqrstuvwxyz")


def decode(task, ex):
    """Split the full decoded sequence into (input symbols, answer symbols), checking the frame."""
    full = task.vocab.decode(list(ex.inputs) + [ex.targets[-1]])
    n = ex.length
    assert full[0] == "<bos>" and full[n + 1] == "<sep>" and full[-1] == "<eos>"
    xs, answer = full[1:n + 1], full[n + 2:-1]
    assert not {"<bos>", "<sep>", "<eos>", "<pad>"} & set(xs + answer)
    return xs, answer


def majority_of_bits(bits):
    counts = Counter(bits)
    assert counts["0"] != counts["1"], f"tie in {bits}"
    return "0" if counts["0"] > counts["1"] else "1"


def check_bin_majority(xs, answer):
    assert set(xs) <= {"0", "1"}
    assert answer == [majority_of_bits(xs)]


def check_majority(xs, answer):
    assert set(xs) <= LETTERS
    ranked = Counter(xs).most_common()
    assert len(ranked) == 1 or ranked[0][1] > ranked[1][1], f"mode not unique in {xs}"
    assert answer == [ranked[0][0]]


def check_bin_majority_interleave(xs, answer):
    assert set(xs) <= {"0", "1"} and len(xs) % 3 == 0
    assert answer == [majority_of_bits(xs[i::3]) for i in range(3)]


def check_unique_copy(xs, answer):
    assert set(xs) <= TOKENS_150 and len(set(xs)) == len(xs)
    assert answer == xs


def check_repeat_copy(xs, answer):
    assert set(xs) <= {"a", "b"}
    assert answer == xs


def check_sort(xs, answer):
    assert set(xs) <= TOKENS_150 and len(set(xs)) == len(xs)
    assert answer == sorted(xs, key=int)


def check_parity(xs, answer):
    assert set(xs) <= {"0", "1"}
    assert answer == ["even" if xs.count("1") % 2 == 0 else "odd"]


def check_addition(xs, answer):
    match = re.fullmatch(r"(0|1[01]*)\+(0|1[01]*)=", "".join(xs))
    assert match, f"malformed or leading zeros: {xs}"
    a, b = match.groups()
    assert answer == list(bin(int(a, 2) + int(b, 2))[2:])


RULES = {
    "bin_majority": check_bin_majority,
    "majority": check_majority,
    "bin_majority_interleave": check_bin_majority_interleave,
    "unique_copy": check_unique_copy,
    "repeat_copy": check_repeat_copy,
    "sort": check_sort,
    "parity": check_parity,
    "addition": check_addition,
}
# addition with separator=True keeps the common `<sep>` frame checked here; the paper's layout
# (no <sep> after `=`) is tested in test_fidelity_algorithmic.py.
TASKS = {name: make_task(name, **({"separator": True} if name == "addition" else {})) for name in NAMES}


def check_example(name, n, ex):
    """The frame, the loss mask, the shift and the rule of one example of input length n."""
    task = TASKS[name]
    T = len(ex.inputs)
    assert ex.length == n and ex.answer_start == n + 1 and ex.position_ids is None
    np.testing.assert_array_equal(ex.targets[:-1], ex.inputs[1:])
    # Scored targets: the answer tokens and <eos>, i.e. every prediction from <sep> on.
    np.testing.assert_array_equal(ex.loss_mask, np.arange(T) >= n + 1)
    assert T <= task.seq_len(n)
    if name != "addition":  # only addition's answer length varies with the operands
        assert T == task.seq_len(n)
    RULES[name](*decode(task, ex))


def test_all_eight_are_registered():
    assert set(NAMES) <= set(available_tasks())
    for name in NAMES:
        task = TASKS[name]
        assert task.name == name and task.summary and "<sep>" in task.format


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_samples_obey_rule(name, data):
    task = TASKS[name]
    n = data.draw(st.sampled_from(task.valid_lengths(1, 150)), label="n")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    check_example(name, n, task.sample(np.random.default_rng(seed), n))


@pytest.mark.parametrize("name", NAMES)
def test_every_valid_length_in_default_bins(name):
    task = TASKS[name]
    rng = np.random.default_rng(7)
    for lo, hi in (task.default_train_lengths, *task.default_eval_bins):
        lengths = task.valid_lengths(lo, hi)
        assert lo in lengths and hi in lengths, "bin endpoints must be valid lengths"
        for n in lengths:
            check_example(name, n, task.sample(rng, n))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_examples(name):
    task = TASKS[name]
    lengths = list(task.valid_lengths(1, 150))[::7]

    def batch(seed):
        rng = np.random.default_rng(seed)
        return [task.sample(rng, n) for n in lengths]

    first, again, other = batch(3), batch(3), batch(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.inputs, b.inputs)
        np.testing.assert_array_equal(a.targets, b.targets)
    assert any(not np.array_equal(a.inputs, b.inputs) for a, b in zip(first, other))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("max_length", (150, 200))
def test_max_offset_ranges(name, max_length):
    task = TASKS[name]
    for n in task.valid_lengths(1, max_length):
        if name in SHORT_ANSWER:
            expected = max_length - n
        elif name in WHOLE_SEQUENCE_ANSWER:
            expected = 2 * (max_length - n)
        else:  # 2·max_length − the whole sequence with its longest answer: <bos>, n, <sep>, n−2, <eos>
            expected = max(0, 2 * max_length - (n + 3 + n - 2))
        assert max_offset(task, n, max_length) == expected


@pytest.mark.parametrize("name, length", [
    *[(name, 0) for name in NAMES if name != "parity"],  # parity allows n = 0, as the paper
    ("bin_majority_interleave", 4), ("bin_majority_interleave", 50),
    ("unique_copy", 151), ("sort", 151), ("addition", 3),
])
def test_invalid_lengths_fail_fast(name, length):
    task = TASKS[name]
    assert length not in task.valid_lengths(0, 200)
    with pytest.raises(ValueError, match=name):
        task.sample(np.random.default_rng(0), length)


def test_valid_lengths_rules():
    assert list(TASKS["bin_majority_interleave"].valid_lengths(1, 10)) == [3, 6, 9]
    assert list(TASKS["sort"].valid_lengths(140, 200)) == list(range(140, 151))
    assert list(TASKS["addition"].valid_lengths(1, 6)) == [4, 5, 6]
    assert list(TASKS["parity"].valid_lengths(0, 3)) == [0, 1, 2, 3]


def decoded_inputs(name, n, count, seed=11):
    task, rng = TASKS[name], np.random.default_rng(seed)
    return [decode(task, task.sample(rng, n)) for _ in range(count)]


def test_bin_majority_zero_count_is_uniform_without_tie():
    zero_counts = Counter(xs.count("0") for xs, _ in decoded_inputs("bin_majority", 6, 1200))
    assert set(zero_counts) == {0, 1, 2, 4, 5, 6}
    assert min(zero_counts.values()) > 150  # 200 expected for each of the six counts


def test_parity_one_count_is_uniform():
    samples = decoded_inputs("parity", 5, 1200)
    one_counts = Counter(xs.count("1") for xs, _ in samples)
    assert set(one_counts) == set(range(6)) and min(one_counts.values()) > 150
    assert {answer[0] for _, answer in samples} == {"even", "odd"}


def test_interleaved_strings_each_cover_their_zero_counts():
    samples = decoded_inputs("bin_majority_interleave", 12, 600)
    for i in range(3):
        assert {xs[i::3].count("0") for xs, _ in samples} == {0, 1, 3, 4}


def test_addition_operand_lengths_cover_the_range():
    n = 10
    operands = [re.fullmatch(r"([01]+)\+([01]+)=", "".join(xs)).groups()
                for xs, _ in decoded_inputs("addition", n, 600)]
    assert {len(a) for a, _ in operands} == set(range(1, n - 2))
    assert all(len(a) + len(b) == n - 2 for a, b in operands)
    assert "0" in {a for a, _ in operands}  # a one-digit operand may be zero


def test_vocabularies_are_covered():
    assert {t for xs, _ in decoded_inputs("majority", 20, 200) for t in xs} == LETTERS
    assert {t for xs, _ in decoded_inputs("unique_copy", 30, 100) for t in xs} == TOKENS_150
    assert {t for xs, _ in decoded_inputs("repeat_copy", 5, 20) for t in xs} == {"a", "b"}
    full_permutation, _ = decoded_inputs("sort", 150, 1)[0]
    assert set(full_permutation) == TOKENS_150
