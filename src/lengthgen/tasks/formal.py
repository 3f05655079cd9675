"""Formal-language labelling tasks (Huang et al. 2025 after Bhattamishra et al. 2020; docs/design.md §4.3).

Conventions follow `shared/formal_languages.md`. Every sampled string s = s1..sn is *in* its
language; the label at position i describes the prefix p = s1..si:

- next-viable: one flag per alphabet symbol c (alphabet order): "p·c is a prefix of a word of L";
- next-member: one flag per c: "p·c ∈ L";
- member: one flag: "p ∈ L";
- successor (a⁺b⁺c⁺d⁺e⁺ only): the upper-cased successor of the last letter, e→T ("may end");
- ends-02+ ({0,1,2}*02* only): `e` iff p ∈ {0,1,2}*02⁺, else `c`.

Layout (n = string length):

    inputs    = <bos> s1 … sn
    targets   = <pad> L:f1 … L:fn      one label token per position
    loss_mask =   0     1  …  1

`answer_start` is None: labels are predicted, never fed back. A string counts as correct iff
the label at every masked position is right (teacher forcing and greedy decoding coincide).
Each task has one fixed label vocabulary, `L:` + flags (every combination of flags, e.g. L:yy,
L:yn, L:ny, L:nn), listed after the alphabet; `L:` cannot clash with an alphabet symbol.

Lengths. Some languages have no word of some lengths (D-n, (aa)*, aⁿbⁿ: odd n, ...). Valid
lengths are n ≥ `min_length` with n a multiple of `length_period`; `valid_lengths(lo, hi)` lists
them (what training and evaluation draw from) and `sample` raises ValueError for any other n.

Counter languages (no public generator; our definitions, labelled next-viable with 1/0 flags):
- dyck1: Dyck-1 over a (open), b (close), unbounded depth; flags [a: 1, b: depth > 0].
- shuffle2: the shuffle of Dyck-1 over (a, b) and Dyck-1 over (c, d): each pair's count never
  goes negative and both end at 0; flags [a: 1, b: #a > #b, c: 1, d: #c > #d].
- anbn, anbncn, anbncndn: {aᵏbᵏ}, {aᵏbᵏcᵏ}, {aᵏbᵏcᵏdᵏ}, k ≥ 1.
- boolean3, boolean5: Boolean expressions in Polish (prefix) notation over the constants 0, 1.
  boolean3 has the 3 operators ~ (not, arity 1), & and | (arity 2); boolean5 adds ^ (xor,
  arity 2) and ? (if-then-else, arity 3). A prefix is viable iff it still needs operands, so
  every flag is 1 while the expression is incomplete and all flags are 0 once it is complete.

Samplers. Task parameter `sampler`: `official` (the default; the paper's numbers were measured
under it) or `uniform` (our earlier samplers). `official` follows the official generators
(lacoco-lab/length_generalization, formal_lang_suite/generators/; re-stated in
formal_official.py): `sample_window(rng, lo, hi)` draws a string as their generator does for
the window [lo, hi] (their length distribution: e.g. Tomita-7 and D-n concentrate near hi), and
`sample(rng, n)` draws the same generator given the length n where it has such a form
(Tomita-3: their run structure; Tomita-7: their nested run lengths with top n, redrawn until
the length is n; {a,b}*d{b,c}* and {0,1,2}*02*: their prefix/suffix split, top n+1, redrawn
until the length is n; Tomita-1, -2, -4, -5, -6 and the periodic languages: the same as ours).
D-n and a⁺b⁺c⁺d⁺e⁺ draw their lengths as an outcome of a recursive (nested) process with no
given-length form (an exact-length redraw costs 13-75 ms a string), so their official strings
come only from `sample_window`; `sample(rng, n)` keeps ours there. The counter languages have
no official generator: both choices are ours. Default windows follow the official data
(generated_ds/): abcde trains on [5, 200] and tests to 300 and 400 (their bins kept the lower
window 5); ab_d_bc and zot_02 train on [2, 50] (their strings are shorter than the top) and
test to 100 and 150 (their bins kept the lower window 2); D-2 tests to 100 and 150.

APE offsets. Task parameter `offset_range`: `longest` (the default, the general rule of
positions.max_offset) or `official` (Huang et al.'s train_with_ce.py: every training example
shifted by k uniform over [0, L), L = the longest test sequence, so the table has ~2L rows).

The `uniform` samplers follow formal_languages.md with `length` fixed by the caller; the changes this forces:
Tomita-5/6 draw uniform bit strings of the given length and reject non-members (exactly the
reference generator conditioned on its length); a⁺b⁺c⁺d⁺e⁺ splits n into five positive counts
uniformly; D-n duplicates are not rejected here (a sampler draws one string; de-duplicating a
set is the caller's business). Dyck-1 is uniform over Dyck words of length n (cycle lemma);
Shuffle-2 splits n into two even parts, draws a Dyck-1 word for each and interleaves them
uniformly; Boolean-k fills operand slots left to right, giving each slot of size s > 1 an
operator of arity ≤ s−1 chosen uniformly and a uniform split of the remaining size.
"""

from __future__ import annotations

import itertools
from typing import ClassVar, Hashable

import numpy as np

import lengthgen.tasks.formal_official as official  # by its full name: `from . import` goes through tasks/__init__
from ..errors import InputError
from .base import BOS, PAD, TASKS, Example, Task, Vocab, register_task

LABEL_PREFIX = "L:"
SAMPLERS = ("official", "uniform")
# APE training offsets: "longest" (the general rule, positions.max_offset: an example's last ID
# reaches the longest test sequence's last ID) or "official" (train_with_ce.py offset_and_forward:
# every example shifted by k uniform in [0, L), L the longest test sequence, whatever its length;
# the table then has about 2L rows, as their n_positions = 2 * max_seq_length).
OFFSET_RANGES = ("longest", "official")
DEAD = None  # the state of a prefix that is not a prefix of any word


class FormalLanguage(Task):
    """A language given by a deterministic scanner over its alphabet, plus a sampler.

    `step(state, c)` returns the state after reading c, or DEAD; a non-DEAD state is always
    viable (a prefix of some word). `accepts(state)` says whether the prefix read is in L.
    """

    alphabet: ClassVar[tuple[str, ...]]
    label_kind: ClassVar[str]  # next-viable | next-member | member | successor | ends-02+
    flag_chars: ClassVar[tuple[str, str]] = ("1", "0")  # (true, false)
    min_length: ClassVar[int] = 1
    default_train_lengths = (1, 100)
    default_eval_bins = ((1, 100), (101, 150), (151, 200))

    def __init__(self, sampler: str = "official", offset_range: str = "longest"):
        if sampler not in SAMPLERS:
            raise InputError(f"task {self.name!r}: unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)} "
                             "(official = the paper's generators)")
        if offset_range not in OFFSET_RANGES:
            raise InputError(f"task {self.name!r}: unknown offset_range {offset_range!r}; allowed: "
                             f"{', '.join(OFFSET_RANGES)} (official = Huang et al.'s shift range)")
        self.sampler = sampler
        self.offset_range = offset_range
        self.vocab = Vocab(list(self.alphabet) + list(self.label_tokens()))

    # --- the language -------------------------------------------------------------------
    def initial(self) -> Hashable:
        raise NotImplementedError

    def step(self, state, c: str):
        raise NotImplementedError

    def accepts(self, state) -> bool:
        raise NotImplementedError

    def sample_string(self, rng: np.random.Generator, n: int) -> str:
        """Our (`uniform`) sampler: a word of length n."""
        raise NotImplementedError

    def official_string(self, rng: np.random.Generator, n: int) -> str:
        """The official generator given the length n (ours where it has no such form)."""
        return self.sample_string(rng, n)

    def official_window(self, rng: np.random.Generator, lo: int, hi: int) -> str:
        """The official generator for the window [lo, hi]; default: a uniform valid length (their
        `randint(lower_window, upper_window)`), then `official_string`."""
        valid = self.valid_lengths(lo, hi)
        return self.official_string(rng, int(valid[int(rng.integers(len(valid)))]))

    def is_member(self, s: str) -> bool:
        state = self.initial()
        for c in s:
            state = self.step(state, c)
            if state is DEAD:
                return False
        return self.accepts(state)

    # --- labels -------------------------------------------------------------------------
    def label_tokens(self) -> list[str]:
        """The fixed label vocabulary: every label token this task can emit."""
        if self.label_kind == "member":
            width = 1
        else:
            width = len(self.alphabet)
        yes, no = self.flag_chars
        return [LABEL_PREFIX + "".join(f) for f in itertools.product((yes, no), repeat=width)]

    def _flags(self, values) -> str:
        yes, no = self.flag_chars
        return LABEL_PREFIX + "".join(yes if v else no for v in values)

    def prefix_label(self, state) -> str:
        """Label of a prefix from its scanner state (DEAD for a non-viable prefix)."""
        if self.label_kind == "member":
            return self._flags([state is not DEAD and self.accepts(state)])
        after = [DEAD if state is DEAD else self.step(state, c) for c in self.alphabet]
        if self.label_kind == "next-viable":
            return self._flags([s is not DEAD for s in after])
        if self.label_kind == "next-member":
            return self._flags([s is not DEAD and self.accepts(s) for s in after])
        raise NotImplementedError(self.label_kind)

    def labels(self, s: str) -> list[str]:
        """The label token of every non-empty prefix of s (s need not be in L)."""
        out, state = [], self.initial()
        for c in s:
            state = DEAD if state is DEAD else self.step(state, c)
            out.append(self.prefix_label(state))
        return out

    # --- Task protocol ------------------------------------------------------------------
    def seq_len(self, length: int) -> int:
        return length + 1

    def max_offset(self, length, longest):
        return self.seq_len(longest) - 1 if self.offset_range == "official" else None

    def sample(self, rng, length):
        self.check_length(length)
        official = self.sampler == "official"
        return self.example(self.official_string(rng, length) if official else self.sample_string(rng, length))

    def sample_window(self, rng, lo, hi, **overrides):
        if self.sampler == "uniform":
            return super().sample_window(rng, lo, hi, **overrides)
        self.valid_lengths(lo, hi)  # raises for a window without a valid length
        return self.example(self.official_window(rng, lo, hi))

    def example(self, s: str) -> Example:
        inputs = np.concatenate([[BOS], self.vocab.encode(s)])
        targets = np.concatenate([[PAD], self.vocab.encode(self.labels(s))])
        mask = np.ones(len(inputs), dtype=bool)
        mask[0] = False
        return Example(inputs, targets, mask, length=len(s))

    def string_of(self, ex: Example) -> str:
        """The string s1..sn of a sampled example."""
        return "".join(self.vocab.decode(ex.inputs[1:]))


def _uniform_composition(rng, total: int, parts: int) -> list[int]:
    """`parts` positive integers summing to `total`, uniform over all such compositions."""
    cuts = np.sort(rng.choice(np.arange(1, total), size=parts - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [total]])).tolist()


def _symbols(rng, letters: str, n: int) -> str:
    return "".join(rng.choice(list(letters), size=n)) if n else ""


# --- Tomita grammars (alphabet 0, 1; flags y/n) ---------------------------------------------

class _Tomita(FormalLanguage):
    alphabet = ("0", "1")
    flag_chars = ("y", "n")


@register_task
class Tomita1(_Tomita):
    name = "tomita1"
    summary = "Tomita-1: 1*"
    format = "string over {0,1} in 1*; label per prefix: next-viable flags (0,1) as y/n, e.g. L:ny"
    label_kind = "next-viable"

    def initial(self):
        return 0

    def step(self, state, c):
        return state if c == "1" else DEAD

    def accepts(self, state):
        return True

    def sample_string(self, rng, n):
        return "1" * n


@register_task
class Tomita2(_Tomita):
    name = "tomita2"
    summary = "Tomita-2: (10)*"
    format = "string over {0,1} in (10)* (even n); label per prefix: next-viable flags (0,1) as y/n"
    label_kind = "next-viable"
    length_period = 2
    min_length = 2

    def initial(self):
        return "1"  # the symbol expected next

    def step(self, state, c):
        if c != state:
            return DEAD
        return "0" if c == "1" else "1"

    def accepts(self, state):
        return state == "1"

    def sample_string(self, rng, n):
        return "10" * (n // 2)

    def official_window(self, rng, lo, hi):
        return official.tomita2(rng, lo, hi)


@register_task
class Tomita3(_Tomita):
    name = "tomita3"
    summary = "Tomita-3: no maximal odd run of 1s immediately followed by a maximal odd run of 0s"
    format = ("string over {0,1} with no odd 1-run directly followed by an odd 0-run (a run ending the string "
              "is maximal); label per prefix: next-member flags (0,1) as y/n, i.e. whether p·0 / p·1 is in "
              "the language (after 0001 the label is L:ny)")
    label_kind = "next-member"

    def initial(self):
        # (last symbol, parity of its run, "the 1-run before the current 0-run was odd")
        return ("", 0, False)

    def step(self, state, c):
        last, parity, after_odd_ones = state
        if c == last:
            return (c, parity ^ 1, after_odd_ones)
        if c == "1":
            if last == "0" and after_odd_ones and parity == 1:
                return DEAD  # an odd 0-run after an odd 1-run just became maximal
            return ("1", 1, False)
        return ("0", 1, last == "1" and parity == 1)

    def accepts(self, state):
        last, parity, after_odd_ones = state
        return not (last == "0" and after_odd_ones and parity == 1)

    def sample_string(self, rng, n):
        # Blocks of a fair-coin symbol, uniform length up to what remains. A 0-run after an odd
        # 1-run must end even, so the 0-blocks that start or extend such a run have even length.
        out: list[str] = []
        last, run, zeros_after_odd_ones = "", 0, False
        while len(out) < n:
            remaining = n - len(out)
            symbol = "1" if rng.integers(2) else "0"
            even_only = symbol == "0" and ((last == "1" and run % 2 == 1) or (last == "0" and zeros_after_odd_ones))
            if even_only and remaining < 2:
                symbol, even_only = "1", False
            size = 2 * int(rng.integers(1, remaining // 2 + 1)) if even_only else int(rng.integers(1, remaining + 1))
            if symbol == last:
                run += size
            else:
                zeros_after_odd_ones = symbol == "0" and last == "1" and run % 2 == 1
                last, run = symbol, size
            out.extend(symbol * size)
        return "".join(out)

    def official_string(self, rng, n):
        return official.until(lambda: official.tomita3(rng, n), self.is_member, self.name)


@register_task
class Tomita4(_Tomita):
    name = "tomita4"
    summary = "Tomita-4: no substring 000"
    format = "string over {0,1} without 000; label per prefix: next-viable flags (0,1) as y/n"
    label_kind = "next-viable"

    def initial(self):
        return 0  # trailing zeros

    def step(self, state, c):
        if c == "1":
            return 0
        return DEAD if state == 2 else state + 1

    def accepts(self, state):
        return True

    def sample_string(self, rng, n):
        out = []
        for _ in range(n):
            bit = "1" if rng.integers(2) else "0"
            if bit == "0" and out[-2:] == ["0", "0"]:
                bit = "1"  # a redrawn 0 that would make 000 can only come out as 1
            out.append(bit)
        return "".join(out)


class _TomitaByCounts(_Tomita):
    label_kind = "member"

    def sample_string(self, rng, n):
        while True:  # uniform over members of length n; rejection rate below 3/4
            s = "".join(rng.choice(["0", "1"], size=n))
            if self.is_member(s):
                return s

    def official_window(self, rng, lo, hi):
        return official.stopping_bits(rng, lo, hi, self.is_member)


@register_task
class Tomita5(_TomitaByCounts):
    name = "tomita5"
    summary = "Tomita-5: even number of 0s and even number of 1s"
    format = "string over {0,1} with #0 and #1 even (even n); label per prefix: member flag y/n"
    length_period = 2
    min_length = 2

    def initial(self):
        return (0, 0)

    def step(self, state, c):
        zeros, ones = state
        return (zeros ^ 1, ones) if c == "0" else (zeros, ones ^ 1)

    def accepts(self, state):
        return state == (0, 0)


@register_task
class Tomita6(_TomitaByCounts):
    name = "tomita6"
    summary = "Tomita-6: (#0 − #1) ≡ 0 (mod 3)"
    format = "string over {0,1} with #0 − #1 ≡ 0 mod 3 (n >= 2); label per prefix: member flag y/n"
    min_length = 2  # no word of length 1

    def initial(self):
        return 0

    def step(self, state, c):
        return (state + (1 if c == "0" else -1)) % 3

    def accepts(self, state):
        return state == 0


@register_task
class Tomita7(_Tomita):
    name = "tomita7"
    summary = "Tomita-7: 0*1*0*1*"
    format = "string over {0,1} in 0*1*0*1*; label per prefix: next-viable flags (0,1) as y/n"
    label_kind = "next-viable"

    def initial(self):
        return (0, "")  # (number of "10" substrings, last symbol)

    def step(self, state, c):
        drops, last = state
        drops += last == "1" and c == "0"
        return DEAD if drops > 1 else (drops, c)

    def accepts(self, state):
        return True

    def sample_string(self, rng, n):
        runs = []
        left = n
        for _ in range(3):
            runs.append(int(rng.integers(0, left + 1)))
            left -= runs[-1]
        runs.append(left)
        return "".join(sym * k for sym, k in zip("0101", runs))

    def official_string(self, rng, n):
        return official.tomita7(rng, n, n)

    def official_window(self, rng, lo, hi):
        return official.tomita7(rng, lo, hi)


# --- bounded Dyck D-n (a opens, b closes) ----------------------------------------------------

def _dyck_bounded(rng, n: int, max_depth: int) -> str:
    """A Dyck word of length n and depth ≤ max_depth: a sequence of blocks a W b, each W a word
    of depth ≤ max_depth − 1; block sizes uniform (built with an explicit stack, no recursion)."""
    out: list[str] = []
    todo: list[tuple[int, int] | str] = [(n, max_depth)]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        size, depth = item
        if size == 0:
            continue
        half = int(rng.integers(1, size // 2 + 1)) if depth > 1 else 1
        todo += [(size - 2 * half, depth), "b", (2 * half - 2, depth - 1), "a"]
    return "".join(out)


class _BoundedDyck(FormalLanguage):
    alphabet = ("a", "b")
    label_kind = "next-viable"
    length_period = 2
    min_length = 2
    depth: ClassVar[int]
    default_eval_bins = ((1, 100), (101, 200), (201, 300))

    def initial(self):
        return 0

    def step(self, state, c):
        d = state + (1 if c == "a" else -1)
        return d if 0 <= d <= self.depth else DEAD

    def accepts(self, state):
        return state == 0

    def sample_string(self, rng, n):
        return _dyck_bounded(rng, n, self.depth)

    def official_window(self, rng, lo, hi):
        return official.bounded_dyck(rng, self.depth, lo, hi)


def _bounded_dyck(depth: int, train_hi: int, bins) -> type[_BoundedDyck]:
    cls = type(f"Dyck{depth}", (_BoundedDyck,), {
        "name": f"dyck{depth}", "depth": depth, "default_train_lengths": (1, train_hi), "default_eval_bins": bins,
        "summary": f"D-{depth}: balanced brackets (a opens, b closes) of depth ≤ {depth}",
        "format": (f"Dyck word over a (open), b (close) of depth ≤ {depth}, even n; label per prefix with depth d: "
                   f"next-viable flags (a, b) = ([d < {depth}], [d > 0]) as 1/0, e.g. L:10"),
        "__module__": __name__,
    })
    return register_task(cls)


Dyck2 = _bounded_dyck(2, 50, ((1, 50), (51, 100), (101, 150)))
Dyck3 = _bounded_dyck(3, 100, _BoundedDyck.default_eval_bins)
Dyck4 = _bounded_dyck(4, 100, _BoundedDyck.default_eval_bins)
Dyck12 = _bounded_dyck(12, 100, _BoundedDyck.default_eval_bins)


# --- periodic languages (member labels 1/0) -------------------------------------------------

class _Periodic(FormalLanguage):
    block: ClassVar[str]
    label_kind = "member"

    def initial(self):
        return 0  # position in the block

    def step(self, state, c):
        return (state + 1) % len(self.block) if c == self.block[state] else DEAD

    def accepts(self, state):
        return state == 0

    def sample_string(self, rng, n):
        return self.block * (n // len(self.block))

    def official_window(self, rng, lo, hi):
        return official.periodic(rng, lo, hi, self.block)


@register_task
class AaStar(_Periodic):
    name = "aa_star"
    summary = "(aa)*"
    format = "a^n, n even; label per prefix: member flag 1/0 (L:1 at even positions)"
    alphabet = ("a",)
    block = "aa"
    length_period = min_length = 2


@register_task
class AaaaStar(_Periodic):
    name = "aaaa_star"
    summary = "(aaaa)*"
    format = "a^n, n a multiple of 4; label per prefix: member flag 1/0"
    alphabet = ("a",)
    block = "aaaa"
    length_period = min_length = 4
    default_train_lengths = (1, 500)
    default_eval_bins = ((1, 500), (501, 600), (601, 700))


@register_task
class AbabStar(_Periodic):
    name = "abab_star"
    summary = "(abab)*"
    format = "(abab)^k, n = 4k; label per prefix: member flag 1/0"
    alphabet = ("a", "b")
    block = "abab"
    length_period = min_length = 4
    default_train_lengths = (1, 500)
    default_eval_bins = ((1, 500), (501, 600), (601, 700))


# --- star-free languages ----------------------------------------------------------------------

@register_task
class Abcde(FormalLanguage):
    name = "abcde"
    summary = "aa*bb*cc*dd*ee*"
    format = ("a⁺b⁺c⁺d⁺e⁺ (n >= 5); label per prefix: one token, the upper-cased successor of the last letter "
              "(a→L:B, b→L:C, c→L:D, d→L:E, e→L:T where T = may end)")
    alphabet = ("a", "b", "c", "d", "e")
    label_kind = "successor"
    min_length = 5
    default_train_lengths = (5, 200)
    default_eval_bins = ((5, 200), (201, 300), (301, 400))
    successor = {"a": "B", "b": "C", "c": "D", "d": "E", "e": "T"}

    def initial(self):
        return -1  # index of the last letter

    def step(self, state, c):
        k = self.alphabet.index(c)
        return k if k == state or k == state + 1 else DEAD

    def accepts(self, state):
        return state == 4

    def label_tokens(self):
        return [LABEL_PREFIX + t for t in self.successor.values()]

    def labels(self, s):
        return [LABEL_PREFIX + self.successor[c] for c in s]

    def sample_string(self, rng, n):
        return "".join(c * k for c, k in zip(self.alphabet, _uniform_composition(rng, n, 5)))

    def official_window(self, rng, lo, hi):
        return official.abcde(rng, lo, hi)


@register_task
class AbDBc(FormalLanguage):
    name = "ab_d_bc"
    summary = "{a,b}*d{b,c}*"
    format = "{a,b}*d{b,c}*; label per prefix: next-viable flags (a, b, c, d) as 1/0, e.g. L:1101 before the d"
    alphabet = ("a", "b", "c", "d")
    label_kind = "next-viable"

    def initial(self):
        return False  # d seen

    def step(self, state, c):
        if c == "d":
            return DEAD if state else True
        allowed = "bc" if state else "ab"
        return state if c in allowed else DEAD

    def accepts(self, state):
        return state

    default_train_lengths = (2, 50)
    default_eval_bins = ((2, 50), (51, 100), (101, 150))

    def sample_string(self, rng, n):
        before = int(rng.integers(0, n))
        return _symbols(rng, "ab", before) + "d" + _symbols(rng, "bc", n - 1 - before)

    def official_string(self, rng, n):
        return official.prefix_mandatory_suffix(rng, n, n, "ab", "d", "bc", top=n + 1)

    def official_window(self, rng, lo, hi):
        return official.prefix_mandatory_suffix(rng, lo, hi, "ab", "d", "bc")


@register_task
class Zot02(FormalLanguage):
    name = "zot_02"
    summary = "{0,1,2}*02*"
    format = ("{0,1,2}*02*; label per prefix: L:e iff the prefix is in {0,1,2}*02⁺ (ends in 2 and is in the "
              "language), else L:c — a prefix ending in the 0 itself is L:c")
    alphabet = ("0", "1", "2")
    label_kind = "ends-02+"

    def initial(self):
        return ("", False)  # (last non-2 symbol, ends in 2)

    def step(self, state, c):
        return (state[0], True) if c == "2" else (c, False)

    def accepts(self, state):
        return state[0] == "0"

    def label_tokens(self):
        return [LABEL_PREFIX + "e", LABEL_PREFIX + "c"]

    def prefix_label(self, state):
        return LABEL_PREFIX + ("e" if state[0] == "0" and state[1] else "c")

    default_train_lengths = (2, 50)
    default_eval_bins = ((2, 50), (51, 100), (101, 150))

    def sample_string(self, rng, n):
        before = int(rng.integers(0, n))
        return _symbols(rng, "012", before) + "0" + "2" * (n - 1 - before)

    def official_string(self, rng, n):
        return official.prefix_mandatory_suffix(rng, n, n, "012", "0", "2", top=n + 1)

    def official_window(self, rng, lo, hi):
        return official.prefix_mandatory_suffix(rng, lo, hi, "012", "0", "2")


# --- counter languages (next-viable, 1/0) ------------------------------------------------------

def _dyck_uniform(rng, n: int, open_: str = "a", close: str = "b") -> str:
    """A uniformly random Dyck word of length n: among the rotations of a random sequence with
    n/2 + 1 opens and n/2 closes exactly one keeps every prefix sum positive (cycle lemma);
    rotating to it and dropping its first open gives a uniform Dyck word."""
    steps = rng.permutation(np.array([1] * (n // 2 + 1) + [-1] * (n // 2)))
    before = np.concatenate([[0], np.cumsum(steps)[:-1]])  # height before each step
    start = len(steps) - 1 - int(np.argmin(before[::-1]))  # the last lowest point
    rotated = np.roll(steps, -start)
    return "".join(open_ if v > 0 else close for v in rotated[1:])


@register_task
class Dyck1(FormalLanguage):
    name = "dyck1"
    summary = "Dyck-1: balanced brackets a/b, unbounded depth"
    format = "Dyck word over a (open), b (close), even n; label per prefix with depth d: flags (a, b) = (1, [d > 0])"
    alphabet = ("a", "b")
    label_kind = "next-viable"
    length_period = min_length = 2

    def initial(self):
        return 0

    def step(self, state, c):
        d = state + (1 if c == "a" else -1)
        return d if d >= 0 else DEAD

    def accepts(self, state):
        return state == 0

    def sample_string(self, rng, n):
        return _dyck_uniform(rng, n)


@register_task
class Shuffle2(FormalLanguage):
    name = "shuffle2"
    summary = "Shuffle-2: interleaving of Dyck-1 over (a,b) and Dyck-1 over (c,d)"
    format = ("shuffle of two Dyck-1 languages, a/b and c/d, even n; label per prefix: flags (a, b, c, d) = "
              "(1, [#a > #b], 1, [#c > #d])")
    alphabet = ("a", "b", "c", "d")
    label_kind = "next-viable"
    length_period = min_length = 2

    def initial(self):
        return (0, 0)

    def step(self, state, c):
        k = self.alphabet.index(c)
        depths = list(state)
        depths[k // 2] += 1 if k % 2 == 0 else -1
        return tuple(depths) if min(depths) >= 0 else DEAD

    def accepts(self, state):
        return state == (0, 0)

    def sample_string(self, rng, n):
        first = 2 * int(rng.integers(0, n // 2 + 1))
        words = [iter(_dyck_uniform(rng, first)), iter(_dyck_uniform(rng, n - first, "c", "d"))]
        which = rng.permutation(np.array([0] * first + [1] * (n - first)))
        return "".join(next(words[w]) for w in which)


class _EqualBlocks(FormalLanguage):
    """a1ᵏ a2ᵏ … amᵏ, k ≥ 1."""

    label_kind = "next-viable"

    def initial(self):
        return (0, (0,) * len(self.alphabet))  # (current block, counts)

    def step(self, state, c):
        block, counts = state
        k = self.alphabet.index(c)
        if k == block + 1 and counts[block] == counts[0] and counts[0] > 0:
            block = k  # the previous block is complete
        if k != block or (k > 0 and counts[k] == counts[0]):
            return DEAD
        counts = counts[:k] + (counts[k] + 1,) + counts[k + 1:]
        return (block, counts)

    def accepts(self, state):
        return state[1][0] > 0 and len(set(state[1])) == 1

    def sample_string(self, rng, n):
        return "".join(c * (n // len(self.alphabet)) for c in self.alphabet)


def _equal_blocks(letters: str) -> type[_EqualBlocks]:
    m = len(letters)
    word = "".join(f"{c}ⁿ" for c in letters)
    cls = type(f"Equal{letters.upper()}", (_EqualBlocks,), {
        "name": "".join(f"{c}n" for c in letters), "alphabet": tuple(letters),
        "length_period": m, "min_length": m, "summary": word,
        "format": (f"{word}, n = {m}k; label per prefix: next-viable flags ({', '.join(letters)}) as 1/0, e.g. "
                   f"L:{'1' * 2 + '0' * (m - 2)} after aᵏ, L:{'0' * m} at the end"),
        "__module__": __name__,
    })
    return register_task(cls)


AnBn = _equal_blocks("ab")
AnBnCn = _equal_blocks("abc")
AnBnCnDn = _equal_blocks("abcd")


class _Boolean(FormalLanguage):
    arity: ClassVar[dict[str, int]]  # operators and constants (arity 0)
    label_kind = "next-viable"

    def initial(self):
        return 1  # operands still needed

    def step(self, state, c):
        return DEAD if state == 0 else state - 1 + self.arity[c]

    def accepts(self, state):
        return state == 0

    def sample_string(self, rng, n):
        operators = [c for c in self.alphabet if self.arity[c] > 0]
        out: list[str] = []
        slots = [n]  # sizes of the sub-expressions still to write, leftmost last
        while slots:
            size = slots.pop()
            if size == 1:
                out.append("01"[int(rng.integers(2))])
                continue
            fitting = [op for op in operators if self.arity[op] <= size - 1]
            op = fitting[int(rng.integers(len(fitting)))]
            out.append(op)
            slots += _uniform_composition(rng, size - 1, self.arity[op])[::-1]
        return "".join(out)


@register_task
class Boolean3(_Boolean):
    name = "boolean3"
    summary = "Boolean-3: Polish-notation Boolean expressions with ~, &, |"
    format = ("prefix-notation expression over 0, 1, ~ (unary), & and | (binary); label per prefix: next-viable "
              "flags (0, 1, ~, &, |) as 1/0 — all 1 while operands are missing, all 0 once complete")
    alphabet = ("0", "1", "~", "&", "|")
    arity = {"0": 0, "1": 0, "~": 1, "&": 2, "|": 2}


@register_task
class Boolean5(_Boolean):
    name = "boolean5"
    summary = "Boolean-5: Polish-notation Boolean expressions with ~, &, |, ^, ? (if-then-else)"
    format = ("prefix-notation expression over 0, 1, ~ (unary), &, |, ^ (binary), ? (ternary); label per prefix: "
              "next-viable flags (0, 1, ~, &, |, ^, ?) as 1/0 — all 1 while operands are missing, all 0 once "
              "complete")
    alphabet = ("0", "1", "~", "&", "|", "^", "?")
    arity = {"0": 0, "1": 0, "~": 1, "&": 2, "|": 2, "^": 2, "?": 3}


FORMAL_TASKS = tuple(sorted(name for name, cls in TASKS.items() if issubclass(cls, FormalLanguage)))

# `lengthgen tasks NAME` shows each format: say there which sampler is the paper's.
for _name in FORMAL_TASKS:
    TASKS[_name].format += ("; sampler (param `sampler`): official (default; the paper's generators, see the "
                            "formal.py docstring) or uniform (ours)")
