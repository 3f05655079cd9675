"""C-RASP programs for lengthgen's tasks, and the predictions they give (docs/design.md §4.2, §4.3, §6).

A program reads the tokens the model reads after `<bos>`, so program position i is model
position i (`<bos>` sits at 0):

- formal languages: the string s1..sn; the value at i is the label token of the prefix s1..si,
  i.e. `targets[i]`.
- algorithmic tasks (`<bos> x1 … xn <sep> y1 … ym <eos>`): the tokens x1 … xn <sep> y1 … ym;
  the value at every answer-predicting position (`<sep>` and y1..ym) is the next token, i.e.
  `targets[i]` (y1 at `<sep>`, …, `<eos>` at ym). Values at input positions are not part of
  the task and are not checked.

Tasks without a program are listed with the reason none is known (or believed to exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import InputError
from ..tasks import make_task
from ..tasks.formal import LABEL_PREFIX
from .fragment import Fragment, fragment
from .lang import And, BoolConst, Local, Or, Periodic, PositionMod, Token, count, define
from .program import Program

LABELS = LABEL_PREFIX  # the label-token prefix of formal tasks
SEP, EOS = "<sep>", "<eos>"

PROGRAMS: dict[str, Callable[[], Program]] = {}  # built on demand: some programs are large
NO_PROGRAM: dict[str, str] = {}

# What Huang et al. (2025) state (docs/design.md §4.2, §4.3), to show next to our derived predictions.
PAPER_PREDICTIONS: dict[str, tuple[bool, bool]] = {  # task -> (APE generalizes, NoPE generalizes)
    **{t: (True, True) for t in ("tomita1", "tomita2", "tomita7", "dyck2", "dyck3", "dyck4", "dyck12", "abcde",
                                 "ab_d_bc", "bin_majority", "majority", "sort")},
    **{t: (True, False) for t in ("tomita4", "aa_star", "aaaa_star", "abab_star", "bin_majority_interleave",
                                  "unique_copy")},
    **{t: (False, False) for t in ("tomita3", "tomita5", "tomita6", "zot_02", "repeat_copy", "parity",
                                   "addition")},
}


def program(task_name: str):
    def register(build: Callable[[], Program]):
        if task_name in PROGRAMS or task_name in NO_PROGRAM:
            raise InputError(f"task {task_name!r} already has an entry")
        PROGRAMS[task_name] = build
        return build
    return register


def no_program(task_name: str, reason: str) -> None:
    if task_name in PROGRAMS or task_name in NO_PROGRAM:
        raise InputError(f"task {task_name!r} already has an entry")
    NO_PROGRAM[task_name] = reason


def _flags(name, alphabet, flags, on="1", off="0", note=""):
    """A formal-language program whose label is `L:` + one flag per alphabet symbol."""
    return Program(name, alphabet, list(zip(alphabet, flags)), "flags", prefix=LABELS, on=on, off=off, note=note)


def _formal_alphabet(name):
    return make_task(name).alphabet


def n_(symbol):
    """#[j ≤ i] Q_symbol(j), named n_symbol where the symbol fits in a name."""
    occurrences = count(Token(symbol))
    return define(f"n_{symbol}", occurrences) if f"n_{symbol}".isidentifier() else occurrences


# --- formal languages -------------------------------------------------------------------------

@program("tomita1")
def tomita1():
    return _flags("tomita1", ("0", "1"), [BoolConst(False), n_("0").eq(0)], "y", "n")


@program("tomita2")
def tomita2():
    # In (10)* the next symbol is fixed by the current one.
    return _flags("tomita2", ("0", "1"), [Token("1"), Token("0")], "y", "n",
                  note="exact on prefixes of (10)*, the task's strings")


@program("tomita4")
def tomita4():
    after_0 = define("after_0", count(Token("0"), local=Local.offset(1)) > 0)
    return _flags("tomita4", ("0", "1"), [~(Token("0") & after_0), BoolConst(True)], "y", "n",
                  note="exact on strings without 000")


@program("tomita7")
def tomita7():
    # A 1 somewhere before a 0 means "10" occurred; 0*1*0*1* allows one such drop.
    seen_1 = define("seen_1", n_("1") > 0)
    dropped = define("dropped", count(Token("0") & seen_1) > 0)
    return _flags("tomita7", ("0", "1"), [~(dropped & Token("1")), BoolConst(True)], "y", "n",
                  note="exact on prefixes of 0*1*0*1*")


def _bounded_dyck(depth):
    def build():
        name = f"dyck{depth}"
        return _flags(name, ("a", "b"), [n_("a") < n_("b") + depth, n_("a") > n_("b")],
                      note="exact on Dyck prefixes of bounded depth")
    return build


for _depth in (2, 3, 4, 12):
    program(f"dyck{_depth}")(_bounded_dyck(_depth))


def _member_at_multiples(name, period):
    def build():
        return Program(name, _formal_alphabet(name), [("member", PositionMod(0, period))], "flags", prefix=LABELS,
                       note=f"strings of the language are periodic, so membership is i ≡ 0 (mod {period})")
    return build


program("aa_star")(_member_at_multiples("aa_star", 2))
program("aaaa_star")(_member_at_multiples("aaaa_star", 4))
program("abab_star")(_member_at_multiples("abab_star", 4))


@program("abcde")
def abcde():
    cases = [(LABELS + nxt, Token(c)) for c, nxt in zip("abcde", "BCDET")]
    return Program("abcde", "abcde", cases, "first")


@program("ab_d_bc")
def ab_d_bc():
    seen_d = define("seen_d", n_("d") > 0)
    return _flags("ab_d_bc", "abcd", [~seen_d, BoolConst(True), seen_d, ~seen_d],
                  note="exact on prefixes of {a,b}*d{b,c}*")


@program("dyck1")
def dyck1():
    return _flags("dyck1", "ab", [BoolConst(True), n_("a") > n_("b")], note="exact on Dyck-1 prefixes")


@program("shuffle2")
def shuffle2():
    return _flags("shuffle2", "abcd", [BoolConst(True), n_("a") > n_("b"), BoolConst(True), n_("c") > n_("d")],
                  note="exact on Shuffle-2 prefixes")


def _equal_blocks(letters):
    def build():
        counts = [n_(c) for c in letters]
        flags = [counts[1].eq(0)]
        for k in range(1, len(letters)):
            unfinished = counts[k] < counts[0]
            flags.append(unfinished if k == 1 else And(unfinished, counts[k - 1].eq(counts[0])))
        return _flags("".join(f"{c}n" for c in letters), letters, flags, note="exact on prefixes of the language")
    return build


for _letters in ("ab", "abc", "abcd"):
    program("".join(f"{c}n" for c in _letters))(_equal_blocks(_letters))


def _boolean(name):
    def build():
        task = make_task(name)
        # operands still missing = 1 + Σ (arity − 1)·#operator − #constants
        owed = 1
        for symbol in task.alphabet:
            for _ in range(task.arity[symbol] - 1):
                owed = n_(symbol) + owed
        incomplete = define("incomplete", count(Token("0", "1")) < owed)
        return _flags(name, task.alphabet, [incomplete] * len(task.alphabet),
                      note="exact on prefixes of well-formed expressions")
    return build


program("boolean3")(_boolean("boolean3"))
program("boolean5")(_boolean("boolean5"))

_MODULAR = ("C-RASP counts can be added, subtracted and compared but never reduced modulo m, and periodic "
            "predicates see positions, not counts; Huang et al. (2025) therefore list it among the languages "
            "with no C-RASP[periodic, local] program (the PARITY argument) and predict failure.")
no_program("tomita3", "Membership of p·c depends on the parity of unbounded run lengths (is the last 1-run odd, "
                      "is the 0-run after it odd). " + _MODULAR)
no_program("tomita5", "Membership is the parity of #0 and of #1, modular counting. " + _MODULAR)
no_program("tomita6", "Membership is (#0 − #1) mod 3, modular counting. " + _MODULAR)
no_program("zot_02", "The label depends on which of 0/1 occurred last before a run of 2s of unbounded length (a "
                     "'since' dependency): counts cannot tell which symbol came last and local relations reach "
                     "only a fixed distance. Huang et al. (2025) state no C-RASP[periodic, local] program exists "
                     "and predict failure although the language is star-free.")


# --- algorithmic tasks (tasks/algorithmic.py) -------------------------------------------------

def _answer_positions():
    """Booleans and counts shared by the algorithmic programs."""
    after_sep = define("after_sep", count(Token(SEP)) > 0)  # i is <sep> or an answer token
    answered = define("answered", count(after_sep & ~Token(SEP)))  # answer tokens up to i
    return after_sep, answered


@program("bin_majority")
def bin_majority():
    _, answered = _answer_positions()
    return Program("bin_majority", ("0", "1", SEP),
                   [(EOS, answered > 0), ("1", n_("1") > n_("0")), ("0", BoolConst(True))], "first")


@program("majority")
def majority():
    letters = make_task("majority").symbols
    _, answered = _answer_positions()
    counts = {c: n_(c) for c in letters}
    modes = [(c, And(*[counts[c] > counts[d] for d in letters if d != c])) for c in letters]
    return Program("majority", letters + (SEP,), [(EOS, answered > 0)] + modes, "first")


@program("bin_majority_interleave")
def bin_majority_interleave():
    after_sep, answered = _answer_positions()
    # x1 sits at position 1, so string k (k = 1, 2, 3) occupies positions ≡ k (mod 3).
    majorities = []
    for k in (1, 2, 3):
        ones = count(Token("1") & ~after_sep, periodic=Periodic(k % 3, 3))
        zeros = count(Token("0") & ~after_sep, periodic=Periodic(k % 3, 3))
        majorities.append(define(f"majority_{k}", ones > zeros))
    says_one = Or(*[answered.eq(k) & majorities[k] for k in range(3)])
    return Program("bin_majority_interleave", ("0", "1", SEP),
                   [(EOS, answered >= 3), ("1", says_one), ("0", BoolConst(True))], "first")


@program("sort")
def sort():
    tokens = make_task("sort").symbols  # in ascending order
    # Next token: the smallest token present that is larger than the current one (<sep>: the
    # smallest of all); the answer only repeats input tokens, so "present" may count both.
    cases = [(t, (count(Token(t)) > 0) & Token(SEP, *tokens[:k])) for k, t in enumerate(tokens)]
    return Program("sort", tokens + (SEP,), cases + [(EOS, BoolConst(True))], "first")


@program("unique_copy")
def unique_copy():
    tokens = make_task("unique_copy").symbols
    after_sep, answered = _answer_positions()
    # After t answer tokens the next one is x_{t+1}: the input token with exactly t input
    # positions before it. Tokens are distinct, so that position count is per token.
    cases = []
    for t in tokens:
        before_t = count(~after_sep & (count(Token(t)).eq(0)))
        cases.append((t, (count(Token(t)) > 0) & before_t.eq(answered)))
    return Program("unique_copy", tokens + (SEP,), cases + [(EOS, BoolConst(True))], "first",
                   note="no positional predicate: this suggests NoPE could generalize too, unlike the paper's "
                        "NoPE prediction for unique_copy (see describe)")


no_program("repeat_copy", "The next answer token is the input token at the same index as the answer position, "
                          "i.e. at distance n from it (not local, not periodic); with repeated symbols neither "
                          "counts nor a bounded-distance match identify it. Huang et al. (2025) predict failure.")
no_program("parity", "PARITY: the answer is #1 mod 2. " + _MODULAR)
no_program("addition", "Each output bit depends on the operand bits of equal significance, whose positions differ "
                       "by an input-dependent, unbounded distance, plus an unbounded carry chain; Huang et al. "
                       "(2025) argue addition has no C-RASP[periodic, local] program and predict failure.")


# --- predictions --------------------------------------------------------------------------------

@dataclass
class Prediction:
    task: str
    program: Program | None
    reason: str | None  # why there is no program
    fragment: Fragment | None
    ape: bool  # predicted to length-generalize with learned absolute positions
    nope: bool  # ... with no positional encoding
    paper: tuple[bool, bool] | None  # Huang et al.'s stated (APE, NoPE), where given


def known_tasks() -> list[str]:
    return sorted(set(PROGRAMS) | set(NO_PROGRAM))


def get_program(task_name: str) -> Program:
    if task_name not in PROGRAMS:
        raise KeyError(f"no C-RASP program for {task_name!r}; programs exist for: {', '.join(sorted(PROGRAMS))}")
    return PROGRAMS[task_name]()


def predict(task_name: str) -> Prediction:
    """The C-RASP-based prediction for a task (docs/design.md §1, §6)."""
    paper = PAPER_PREDICTIONS.get(task_name)
    if task_name in NO_PROGRAM:
        return Prediction(task_name, None, NO_PROGRAM[task_name], None, False, False, paper)
    if task_name not in PROGRAMS:
        raise InputError(f"no C-RASP entry for task {task_name!r}; known: {', '.join(known_tasks())}")
    prog = get_program(task_name)
    frag = fragment(prog)
    return Prediction(task_name, prog, None, frag, frag.generalizes_with("ape"), frag.generalizes_with("nope"), paper)


def _verdict(ok: bool) -> str:
    return "generalizes" if ok else "fails"


def describe(task_name: str, max_lines: int = 40) -> str:
    """Human-readable prediction for `lengthgen predict TASK`."""
    p = predict(task_name)
    lines = [f"task {task_name}"]
    if p.program is None:
        lines.append("  no C-RASP[periodic, local] program known: " + (p.reason or ""))
    else:
        lines.append(f"  fragment: {p.fragment}")
    lines.append(f"  predicted (APE):  {_verdict(p.ape)}")
    lines.append(f"  predicted (NoPE): {_verdict(p.nope)}")
    if p.paper is not None and p.paper != (p.ape, p.nope):
        lines.append(f"  note: Huang et al. (2025) state APE {_verdict(p.paper[0])}, NoPE {_verdict(p.paper[1])}")
    if p.program is not None:
        text = str(p.program).splitlines()
        shown = text[:max_lines]
        if len(text) > max_lines:
            shown.append(f"  … {len(text) - max_lines} more lines")
        lines += ["", *shown]
    return "\n".join(lines)
