"""Star-free languages (a⁺b⁺c⁺d⁺e⁺, {a,b}*d{b,c}*, {0,1,2}*02*) and their official generators
(starfree_generator.py), re-stated."""

from __future__ import annotations

from ..base import register_task
from .base import DEAD, LABEL_PREFIX, FormalLanguage, _symbols, _uniform_composition, in_window, until


# --- star-free (starfree_generator.py) ---------------------------------------------------------

def abcde(rng, lo: int, hi: int, floor: int = 5) -> str:
    """AAStarBBStarLanguage.generate_string(floor, hi): letter i is repeated floor // 5 + c_i
    times, c_1 uniform in [1, T], T = hi − floor + 1, and each later c_i uniform in [1, what is
    left of T] (0 once T is spent). Their test bins kept the lower window 5 (`floor`), so a bin
    [lo, hi] is the generator for [5, hi] restricted to [lo, hi]."""
    def draw():
        out, left = [], hi - floor + 1
        for letter in "abcde":
            count = int(rng.integers(left)) + 1 if left > 0 else 0
            out.append(letter * (floor // 5 + count))
            left -= count
        return "".join(out)
    return until(draw, lambda s: "e" in s and lo <= len(s) <= hi, "abcde")


def prefix_mandatory_suffix(rng, lo: int, hi: int, before: str, mandatory: str, after: str,
                            top: int | None = None) -> str:
    """AB_D_BC / ZOT_Z_T.generate_string(top), top = hi unless given: a prefix of uniform length
    in [0, top − 2] over `before`, the mandatory symbol, a suffix of uniform length in
    [0, top − prefix − 2] over `after` (so every string is shorter than top); strings outside
    [lo, hi] are redrawn."""
    top = hi if top is None else top

    def draw():
        pre = int(rng.integers(0, top - 1))
        post = int(rng.integers(0, top - pre - 1))
        return ("".join(rng.choice(list(before), size=pre)) + mandatory
                + "".join(rng.choice(list(after), size=post)))
    return until(draw, in_window(lo, hi), mandatory + "-language")


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
        return abcde(rng, lo, hi)


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
        return prefix_mandatory_suffix(rng, n, n, "ab", "d", "bc", top=n + 1)

    def official_window(self, rng, lo, hi):
        return prefix_mandatory_suffix(rng, lo, hi, "ab", "d", "bc")


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
        return prefix_mandatory_suffix(rng, n, n, "012", "0", "2", top=n + 1)

    def official_window(self, rng, lo, hi):
        return prefix_mandatory_suffix(rng, lo, hi, "012", "0", "2")
