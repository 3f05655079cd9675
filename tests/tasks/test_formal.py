"""Formal-language tasks: labels against brute force from each definition, samplers, layout."""

import itertools
import re

import numpy as np
import pytest

from lengthgen.tasks import BOS, PAD, make_task
from lengthgen.tasks.formal import FORMAL_TASKS


# --- independent definitions of every language ----------------------------------------------

def _regex(pattern):
    compiled = re.compile(pattern)
    return lambda s: compiled.fullmatch(s) is not None


def _dyck_regex(depth):
    inner = ""
    for _ in range(depth):
        inner = f"(?:a{inner}b)*"
    return inner


def _tomita3(s):
    runs = [(sym, len(list(group))) for sym, group in itertools.groupby(s)]
    return not any(a == ("1", a[1]) and a[1] % 2 and b[0] == "0" and b[1] % 2 for a, b in zip(runs, runs[1:]))


def _balanced(s, open_="a", close="b"):
    s = "".join(c for c in s if c in (open_, close))
    while open_ + close in s:
        s = s.replace(open_ + close, "")
    return s == ""


def _equal_blocks(letters):
    def member(s):
        k = len(s) // len(letters)
        return k > 0 and s == "".join(c * k for c in letters)
    return member


def _boolean(arity):
    def member(s):
        def parse(at):  # end of the expression starting at `at`, or None
            if at >= len(s):
                return None
            for _ in range(arity[s[at]]):
                at = parse(at + 1) if at is not None else None
                if at is None:
                    return None
                at -= 1
            return at + 1
        return len(s) > 0 and parse(0) == len(s)
    return member


BOOLEAN3 = {"0": 0, "1": 0, "~": 1, "&": 2, "|": 2}
BOOLEAN5 = {**BOOLEAN3, "^": 2, "?": 3}

MEMBER = {
    "tomita1": _regex("1*"), "tomita2": _regex("(?:10)*"), "tomita3": _tomita3,
    "tomita4": lambda s: "000" not in s and set(s) <= {"0", "1"},
    "tomita5": lambda s: s.count("0") % 2 == 0 and s.count("1") % 2 == 0,
    "tomita6": lambda s: (s.count("0") - s.count("1")) % 3 == 0,
    "tomita7": _regex("0*1*0*1*"),
    **{f"dyck{d}": _regex(_dyck_regex(d)) for d in (2, 3, 4, 12)},
    "aa_star": _regex("(?:aa)*"), "aaaa_star": _regex("(?:aaaa)*"), "abab_star": _regex("(?:abab)*"),
    "abcde": _regex("a+b+c+d+e+"), "ab_d_bc": _regex("[ab]*d[bc]*"), "zot_02": _regex("[012]*02*"),
    "dyck1": _balanced,
    "shuffle2": lambda s: _balanced(s, "a", "b") and _balanced(s, "c", "d"),
    "anbn": _equal_blocks("ab"), "anbncn": _equal_blocks("abc"), "anbncndn": _equal_blocks("abcd"),
    "boolean3": _boolean(BOOLEAN3), "boolean5": _boolean(BOOLEAN5),
}


def test_every_language_is_covered():
    assert set(MEMBER) == set(FORMAL_TASKS)
    assert len(FORMAL_TASKS) == 24


def _strings(alphabet, max_len):
    for n in range(1, max_len + 1):
        for t in itertools.product(alphabet, repeat=n):
            yield "".join(t)


def _prefixes_of_members(name, alphabet, max_len):
    """Every prefix of every word of the language up to `max_len` (words from the definition)."""
    member = MEMBER[name]
    if name in ("anbn", "anbncn", "anbncndn"):
        words = [w for w in ("".join(c * k for c in alphabet) for k in range(1, max_len + 1)) if len(w) <= max_len]
    else:
        words = [w for w in _strings(alphabet, max_len) if member(w)]
    return {w[:k] for w in words for k in range(len(w) + 1)}


# (max length of checked strings, max length of words whose prefixes define viability): every
# viable string up to the first length + 1 extends to a word within the second.
BRUTE_SIZES = {"tomita1": (9, 12), "tomita2": (9, 12), "tomita4": (9, 12), "tomita7": (9, 12),
               "dyck2": (7, 16), "dyck3": (7, 16), "dyck4": (7, 16), "dyck12": (7, 16), "dyck1": (7, 16),
               "ab_d_bc": (6, 8), "shuffle2": (3, 8), "anbn": (8, 18), "anbncn": (6, 21), "anbncndn": (5, 24)}


def _brute_labels(task, s):
    name, member, alphabet = task.name, MEMBER[task.name], task.alphabet
    yes, no = task.flag_chars
    flag = lambda v: yes if v else no  # noqa: E731
    out = []
    for i in range(1, len(s) + 1):
        p = s[:i]
        if task.label_kind == "member":
            out.append("L:" + flag(member(p)))
        elif task.label_kind == "next-member":
            out.append("L:" + "".join(flag(member(p + c)) for c in alphabet))
        elif name == "abcde":
            out.append("L:" + {"a": "B", "b": "C", "c": "D", "d": "E", "e": "T"}[p[-1]])
        elif name == "zot_02":
            out.append("L:" + ("e" if re.fullmatch("[012]*02+", p) else "c"))
        elif name.startswith("boolean"):
            # An unfinished expression can always be finished with constants alone.
            out.append("L:" + "".join(flag(any(member(p + c + "0" * k) for k in range(2 * len(p) + 4)))
                                       for c in alphabet))
        else:
            out.append("L:" + "".join(flag(p + c in task._viable) for c in alphabet))
    return out


@pytest.mark.parametrize("name", FORMAL_TASKS)
def test_labels_match_brute_force_on_all_short_strings(name):
    task = make_task(name)
    if name in BRUTE_SIZES:
        max_len, word_len = BRUTE_SIZES[name]
        task._viable = _prefixes_of_members(name, task.alphabet, word_len)
    else:
        max_len = {"boolean3": 4, "boolean5": 3, "abcde": 4, "zot_02": 7}.get(name, 9)
    checked = 0
    for s in _strings(task.alphabet, max_len):
        assert task.labels(s) == _brute_labels(task, s), s
        checked += 1
    assert checked >= len(task.alphabet) ** max_len


def test_tomita3_uses_next_member_labels():
    assert make_task("tomita3").labels("0001")[-1] == "L:ny"


@pytest.mark.parametrize("name", FORMAL_TASKS)
def test_samplers_produce_members_of_the_requested_length(name):
    task = make_task(name)
    rng = np.random.default_rng(1)
    lengths = [n for lo, hi in task.default_eval_bins for n in (task.valid_lengths(lo, hi)[0],
                                                                 task.valid_lengths(lo, hi)[-1])]
    lengths += list(task.valid_lengths(1, 12))
    for n in lengths:
        for _ in range(3):
            ex = task.sample(rng, n)
            s = task.string_of(ex)
            assert len(s) == n == ex.length
            assert MEMBER[name](s), (n, s)


@pytest.mark.parametrize("name", FORMAL_TASKS)
def test_example_layout_and_fixed_label_vocabulary(name):
    task = make_task(name)
    rng = np.random.default_rng(2)
    n = task.valid_lengths(1, 30)[-1]
    ex = task.sample(rng, n)
    assert ex.inputs[0] == BOS and ex.targets[0] == PAD and ex.answer_start is None
    assert ex.loss_mask.tolist() == [False] + [True] * n
    assert len(ex.inputs) == task.seq_len(n) == n + 1
    labels = task.vocab.decode(ex.targets[1:])
    assert labels == task.labels(task.string_of(ex))
    assert set(labels) <= set(task.label_tokens())
    assert all(t.startswith("L:") for t in task.label_tokens())
    assert not set(task.alphabet) & set(task.label_tokens())
    assert make_task(name).vocab.itos == task.vocab.itos  # one global vocabulary


@pytest.mark.parametrize("name", FORMAL_TASKS)
def test_lengths_without_words_are_refused_and_bins_have_valid_lengths(name):
    task = make_task(name)
    rng = np.random.default_rng(3)
    for lo, hi in (task.default_train_lengths, *task.default_eval_bins):
        valid = task.valid_lengths(lo, hi)
        assert len(valid) > 0 and lo <= valid[0] and valid[-1] <= hi
    assert task.default_eval_bins[-1][1] > task.default_train_lengths[1]
    for n in range(1, 13):
        has_word = any(MEMBER[name]("".join(t)) for t in itertools.product(task.alphabet, repeat=n)) \
            if len(task.alphabet) ** n <= 20000 else True
        if n in task.valid_lengths(1, 12):
            assert has_word
        else:
            with pytest.raises(ValueError, match="no string of length"):
                task.sample(rng, n)


def test_windows_follow_the_spec():
    assert make_task("dyck2").default_train_lengths == (1, 50)
    assert make_task("aaaa_star").default_train_lengths == (1, 500)
    assert make_task("abab_star").default_train_lengths == (1, 500)
    assert make_task("tomita3").default_train_lengths == (1, 100)
    assert (101, 150) in make_task("tomita5").default_eval_bins
