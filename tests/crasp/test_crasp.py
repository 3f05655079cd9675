"""C-RASP: interpreter, printing, well-formedness, fragments, and every library program against
its task's labels / answers on many random strings, far beyond the training lengths."""

import numpy as np
import pytest

from lengthgen.crasp import (And, BoolConst, Compare, IfThenElse, Local, Not, Periodic, PositionMod, Program, Token,
                             count, define, describe, evaluate, fragment, get_program, known_tasks, predict)
from lengthgen.crasp.library import NO_PROGRAM, PAPER_PREDICTIONS, PROGRAMS
from lengthgen.tasks import make_task
from lengthgen.tasks.formal import FORMAL_TASKS


def run1(expr, s, alphabet="ab"):
    """Values of one expression at every position of one string."""
    ids = {c: k for k, c in enumerate(alphabet)}
    return evaluate([expr], np.array([[ids[c] for c in s]]), ids)[0][0].tolist()


# --- interpreter ---------------------------------------------------------------------------------

def test_counts_local_and_periodic():
    s = "abbab"
    assert run1(count(Token("a")), s) == [1, 1, 1, 2, 2]
    assert run1(count(Token("a"), local=Local.offset(1)), s) == [0, 1, 0, 0, 1]  # a at i−1
    assert run1(count(Token("b"), local=Local.offset(0)), s) == [0, 1, 1, 0, 1]
    assert run1(count(Token("b"), local=Local.within(1)), s) == [0, 1, 2, 1, 1]  # b in {i−1, i}
    assert run1(count(BoolConst(True), periodic=Periodic(0, 2)), s) == [0, 1, 1, 2, 2]  # even j ≤ i
    assert run1(PositionMod(1, 3), s) == [True, False, False, True, False]


def test_booleans_arithmetic_conditional_and_nesting():
    s = "abbab"
    na, nb = count(Token("a")), count(Token("b"))
    assert run1(na - nb + 1, s) == [2, 1, 0, 1, 0]
    assert run1(na.eq(nb), s) == [False, True, False, True, False]
    assert run1(na.ne(nb) & ~Token("a"), s) == [False, False, True, False, True]
    assert run1(Token("a") | (nb >= 2), s) == [True, False, True, True, True]
    assert run1(IfThenElse(Token("a"), na, 0 - nb), s) == [1, -1, -2, 2, -3]
    # positions j ≤ i where more b's than a's have been seen
    assert run1(count(nb > na), s) == [0, 0, 1, 1, 2]
    assert run1(Token("a", "b"), s) == [True] * 5


def test_padding_never_changes_values_and_batches_agree():
    prog = get_program("dyck4")
    rng = np.random.default_rng(0)
    strings = ["".join(rng.choice(list("ab"), size=n)) for n in (1, 7, 30)]
    together = prog.run(strings)
    assert together == [prog.run([s])[0] for s in strings]
    assert [len(r) for r in together] == [1, 7, 30]


def test_interpreter_scales_to_thousands_of_long_strings():
    # The brief asks for thousands of length-500 strings per simple program; correctness here,
    # speed is reported by benchmarks, not asserted.
    prog = get_program("dyck12")
    tokens = np.random.default_rng(0).integers(0, 2, (2000, 500))
    out = prog.label_indices(tokens)
    depth = np.cumsum(np.where(tokens == 0, 1, -1), axis=1)
    index = {label: k for k, label in enumerate(prog.labels)}
    expected = np.select([(depth < 12) & (depth > 0), depth <= 0, depth >= 12],
                         [index["L:11"], index["L:10"], index["L:01"]])
    assert (out == expected).all()


# --- printing ------------------------------------------------------------------------------------

def test_programs_print_in_the_papers_notation():
    assert str(count(Token("a"), local=Local.offset(1), periodic=Periodic(0, 2)) > 0) == \
        "#[j ≤ i, j = i−1, j ≡ 0 (mod 2)] Q_a(j) > 0"
    assert str(count(Token("b") & (count(Token("a"), local=Local.within(3)) <= 1))) == \
        "#[j ≤ i] (Q_b(j) ∧ #[k ≤ j, j−k ≤ 3] Q_a(k) ≤ 1)"
    assert str(Not(Token("a") | BoolConst(False))) == "¬(Q_a(i) ∨ ⊥)"
    text = str(get_program("tomita4"))
    assert "after_0(i) := #[j ≤ i, j = i−1] Q_0(j) > 0" in text
    assert "out 0 := ¬(Q_0(i) ∧ after_0(i))" in text


# --- ill-formed programs ---------------------------------------------------------------------------

def test_ill_formed_programs_are_refused():
    na = count(Token("a"))
    with pytest.raises(TypeError, match="needs a count"):
        Compare(na, "<", Token("a"))
    with pytest.raises(TypeError, match="needs a Boolean"):
        And(Token("a"), na)
    with pytest.raises(TypeError, match="needs a Boolean"):
        count(na)
    with pytest.raises(TypeError, match="needs a Boolean"):
        Program("p", "ab", [("x", na)])
    with pytest.raises(TypeError, match="needs a count"):
        na + Token("b")
    with pytest.raises(TypeError, match="needs a count"):
        IfThenElse(Token("a"), na, True)
    with pytest.raises(ValueError, match="unknown comparison"):
        Compare(na, "=~", na)
    with pytest.raises(ValueError, match="outside its alphabet"):
        Program("p", "ab", [("x", Token("c"))])
    with pytest.raises(ValueError, match="outside its alphabet"):
        Program("sort", make_task("sort").symbols, [("x", Token("150"))])
    with pytest.raises(TypeError, match="not a local relation"):
        count(Token("a"), local=lambda j, i: j <= i // 2)
    with pytest.raises(ValueError, match="not local"):
        Local.within(-1)
    with pytest.raises(ValueError, match="not local"):
        Local.offset(2.5)
    with pytest.raises(ValueError, match="0 <= r < m"):
        Periodic(3, 2)
    with pytest.raises(TypeError, match="not a periodic predicate"):
        count(Token("a"), periodic=(0, 2))
    with pytest.raises(ValueError, match="identifier"):
        define("two words", na)
    with pytest.raises(ValueError, match="twice with different bodies"):
        Program("p", "ab", [("x", define("n", na) > define("n", count(Token("b"))))])
    with pytest.raises(ValueError, match="not in its alphabet"):
        get_program("dyck2").run(["abc"])


# --- fragments and predictions ------------------------------------------------------------------------

def test_fragments():
    assert str(fragment(get_program("tomita4"))) == "C-RASP[local]"
    assert str(fragment(get_program("aa_star"))) == "C-RASP[periodic]"
    assert str(fragment(get_program("dyck3"))) == "C-RASP[]"
    both = Program("p", "a", [("x", count(Token("a"), local=Local.offset(1), periodic=Periodic(0, 2)) > 0)])
    assert str(fragment(both)) == "C-RASP[periodic, local]"
    assert fragment(both).generalizes_with("ape") and not fragment(both).generalizes_with("nope")


def test_every_formal_and_algorithmic_task_has_an_entry():
    expected = set(FORMAL_TASKS) | {"bin_majority", "majority", "bin_majority_interleave", "unique_copy",
                                    "repeat_copy", "sort", "parity", "addition"}
    assert set(known_tasks()) == expected
    assert not set(PROGRAMS) & set(NO_PROGRAM)


def test_predictions_agree_with_the_paper_except_unique_copy_under_nope():
    disagreements = {t for t, stated in PAPER_PREDICTIONS.items() if (predict(t).ape, predict(t).nope) != stated}
    # Our C-RASP[] unique_copy program (token positions by counting) predicts NoPE success where
    # Huang et al. state failure; the difference is kept visible rather than hidden.
    assert disagreements == {"unique_copy"}
    assert "NoPE fails" in describe("unique_copy")
    for t in NO_PROGRAM:
        p = predict(t)
        assert p.program is None and p.reason and not p.ape and not p.nope
        assert "no C-RASP" in describe(t)
    assert "fragment: C-RASP[local]" in describe("tomita4")


# --- programs compute their tasks -------------------------------------------------------------------

def _formal_check(name, rng, lengths, count_per_length):
    task, prog = make_task(name), get_program(name)
    to_vocab = np.array([task.vocab[label] for label in prog.labels])
    strings, targets = [], []
    for n in lengths:
        for _ in range(count_per_length):
            ex = task.sample(rng, int(n))
            strings.append(task.string_of(ex))
            targets.append(ex.targets[1:])
    out = to_vocab[prog.label_indices(prog.encode(strings))]
    for s, row, want in zip(strings, out, targets):
        assert (row[:len(s)] == want).all(), (name, s)
    return len(strings)


@pytest.mark.parametrize("name", sorted(set(PROGRAMS) & set(FORMAL_TASKS)))
def test_formal_program_equals_task_labels(name):
    task = make_task(name)
    rng = np.random.default_rng(7)
    train_hi = task.default_train_lengths[1]
    short = task.valid_lengths(*task.default_train_lengths)
    checked = _formal_check(name, rng, rng.choice(short, 40), 50)
    long = task.valid_lengths(4 * train_hi, 4 * train_hi + 20)
    checked += _formal_check(name, rng, long[:4], 25)
    assert checked >= 2000


ANSWER_TASKS = sorted(set(PROGRAMS) - set(FORMAL_TASKS))


@pytest.mark.parametrize("name", ANSWER_TASKS)
def test_algorithmic_program_predicts_every_answer_token(name):
    task, prog = make_task(name), get_program(name)
    rng = np.random.default_rng(11)
    top = task.valid_lengths(1, 4 * task.default_train_lengths[1])[-1]  # 4x, or the task's cap
    lengths = list(rng.choice(task.valid_lengths(*task.default_train_lengths), 600)) + \
        list(rng.choice(task.valid_lengths(top - 20, top), 400 if top < 150 else 100))
    examples = [task.sample(rng, int(n)) for n in lengths]
    strings = [task.vocab.decode(ex.inputs[1:]) for ex in examples]
    out = prog.run(strings)
    for ex, row in zip(examples, out):
        scored = np.flatnonzero(ex.loss_mask)
        assert [row[t - 1] for t in scored] == task.vocab.decode(ex.targets[scored]), task.render(ex)
    assert max(len(s) for s in strings) > 2 * task.default_train_lengths[1]
