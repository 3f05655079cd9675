"""C-RASP written the way the paper writes it either means what it says or fails loudly: Python's
`==`, `and`, `not`, chained comparisons and truth tests must never turn a program into ⊥ silently."""

import signal
from contextlib import contextmanager

import numpy as np
import pytest

from lengthgen.crasp import (BoolConst, Compare, Local, Or, Periodic, PositionMod, Program, Token, count, define,
                             evaluate, fragment)


def run1(expr, s, alphabet="ab"):
    ids = {c: k for k, c in enumerate(alphabet)}
    return evaluate([expr], np.array([[ids[c] for c in s]]), ids)[0][0].tolist()


@contextmanager
def deadline(seconds):
    """Fail instead of hanging: the code under test once looped forever."""
    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_equality_on_counts_builds_comparisons():
    na, nb = count(Token("a")), count(Token("b"))
    assert isinstance(na == 0, Compare) and isinstance(0 == na, Compare) and isinstance(na != nb, Compare)
    assert run1(na == 0, "bbab") == [True, True, False, False]
    assert run1(0 == na, "bbab") == [True, True, False, False]
    assert run1(na != nb, "abba") == [True, False, True, False]
    assert str(na == nb) == "#[j ≤ i] Q_a(j) = #[j ≤ i] Q_b(j)"


def test_nodes_stay_hashable_by_identity():
    na = count(Token("a"))
    assert len({na, na, count(Token("a"))}) == 2 and {na: 1}[na] == 1


@pytest.mark.parametrize("misuse", [
    lambda P, Q, C: P and Q,
    lambda P, Q, C: P or Q,
    lambda P, Q, C: not P,
    lambda P, Q, C: 0 < C < 5,
    lambda P, Q, C: bool(C),
    lambda P, Q, C: [x for x in [P] if x],
])
def test_python_truth_tests_raise_with_the_way_to_write_it(misuse):
    P, Q, C = Token("a"), Token("b"), count(Token("a"))
    with pytest.raises(TypeError, match=r"no Python truth value.*&.*\|.*~"):
        misuse(P, Q, C)


def test_chained_comparison_hint_shows_the_c_rasp_form():
    with pytest.raises(TypeError, match=r"\(0 < C\) & \(C < 5\)"):
        0 < count(Token("a")) < 5


def test_boolean_equality_is_refused():
    with pytest.raises(TypeError, match="Boolean"):
        Token("a") == BoolConst(True)
    with pytest.raises(TypeError, match="Boolean"):
        Token("a") != Token("b")


def test_cycle_made_by_mutation_is_an_error_not_a_hang():
    loop = Or(Token("a"), Token("b"))
    outer = ~loop
    loop.args = (outer, Token("b"))  # the node now contains itself
    with deadline(10):
        with pytest.raises(ValueError, match="cycle"):
            Program("p", "ab", [("out", outer)])
        with pytest.raises(ValueError, match="cycle"):
            run1(outer, "ab")


def test_shared_subexpressions_are_not_cycles():
    na = define("na", count(Token("a")))
    both = (na > 0) & (na < 3) & (count(na > 1) > 0)
    assert run1(both, "aaab") == [False, True, False, False]
    assert Program("p", "ab", [("out", both)]).run(["aaab"]) == [["0", "1", "0", "0"]]


def test_error_hint_names_the_real_constructor():
    with pytest.raises(TypeError, match=r"with count\(P\)") as info:
        count(Token("a")) + Token("b")
    assert "Count(...)" not in str(info.value)


def test_numpy_integers_are_integers():
    assert Local.within(np.int64(2)) == Local.within(2) and type(Local.within(np.int64(2)).distance) is int
    assert Periodic(np.int64(1), np.int32(3)) == Periodic(1, 3)
    assert run1(PositionMod(np.int64(1), np.int64(2)), "abab") == [True, False, True, False]
    with pytest.raises(ValueError):
        Local.within(np.float64(2.0))


def test_degenerate_positional_predicates_do_not_change_the_fragment():
    # j = i (offset 0 or within 0) is the current position only: #[j ≤ i, j = i] P(j) is
    # `if P(i) then 1 else 0`, a C-RASP[] count; i ≡ 0 (mod 1) and j ≡ 0 (mod 1) are ⊤.
    for expr in (count(Token("a"), local=Local.offset(0)) > 0, count(Token("a"), local=Local.within(0)) > 0,
                 PositionMod(0, 1), count(Token("a"), periodic=Periodic(0, 1)) > 0):
        frag = fragment(Program("p", "ab", [("out", expr)]))
        assert str(frag) == "C-RASP[]" and frag.generalizes_with("nope"), expr
    assert str(fragment(Program("p", "ab", [("out", count(Token("a"), local=Local.offset(1)) > 0)]))) == \
        "C-RASP[local]"
    assert str(fragment(Program("p", "ab", [("out", PositionMod(0, 2))]))) == "C-RASP[periodic]"


def test_degenerate_predicates_keep_their_meaning():
    assert run1(count(Token("a"), local=Local.offset(0)), "abba") == [1, 0, 0, 1]
    assert run1(count(Token("a"), local=Local.within(0)), "abba") == [1, 0, 0, 1]
    assert run1(PositionMod(0, 1), "ab") == [True, True]


def test_comparison_inside_a_count_or_negation_prints_with_parentheses():
    na = count(Token("a"))
    assert str(count(na > 0)) == "#[j ≤ i] (#[k ≤ j] Q_a(k) > 0)"
    assert str(~(na > 0)) == "¬(#[j ≤ i] Q_a(j) > 0)"
    assert str(na > 0) == "#[j ≤ i] Q_a(j) > 0"  # no parentheses where nothing is ambiguous
