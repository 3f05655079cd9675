"""The official formal-language generators of Huang et al. (2025), after Bhattamishra et al. (2020).

Each function re-states, in our own code, how lacoco-lab/length_generalization's
`formal_lang_suite/generators/*.py` draw one string for a window [lo, hi] (its `lower_window`,
`upper_window`), including the rejection of strings outside the window that their
`generate_list` applies. Their data sets were then de-duplicated (`unique`) and, for D-n, the
generator's mean length shrank after every 20,000 rejected draws; both are properties of a finite
set, not of one draw, and are left out here (docs/fidelity.md gives their effect).

A function returns one string; `formal.py` builds the labelled example. All take a numpy
`Generator`; `integers(a, b)` has an exclusive top like their `np.random.randint`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import InputError

MAX_TRIES = 100_000


def until(draw: Callable[[], str], accept: Callable[[str], bool], what: str) -> str:
    """Redraw until `accept` holds, as their generators' rejection loops do."""
    for _ in range(MAX_TRIES):
        s = draw()
        if accept(s):
            return s
    raise InputError(f"{what}: no accepted string in {MAX_TRIES} draws of the official generator")


def in_window(lo: int, hi: int) -> Callable[[str], bool]:
    return lambda s: lo <= len(s) <= hi


# --- Tomita (tomita_generator.py) -----------------------------------------------------------

def tomita2(rng, lo: int, hi: int) -> str:
    """Tomita2Language.generate_string: (10)^k with k = (m + 1) // 2, m uniform in [lo, hi − 1]."""
    def draw():
        m = int(rng.integers(lo, hi)) if hi > lo else lo
        return "10" * ((m + 1) // 2)
    return until(draw, in_window(lo, hi), "tomita2")


def tomita3(rng, n: int) -> str:
    """Tomita3Language.generate_string for length n: blocks of a fair-coin symbol whose size is
    uniform in [0, what remains]; a 0-block after an odd run of 1s has an even size (from
    0, 2, …). Their loop tracks the current 1-run's size in `last_one_count`."""
    out: list[str] = []
    last_toss, last_one_count = None, 0
    while len(out) != n:
        toss = "1" if rng.integers(2) else "0"
        remaining = n - len(out)
        if toss == "1":
            count = int(rng.integers(remaining + 1))
            last_one_count = count if (last_toss == "0" and count) else last_one_count + count
        elif last_toss is None or last_one_count % 2 == 0:
            count = int(rng.integers(remaining + 1))
        else:
            count = 2 * int(rng.integers(remaining // 2 + 1))
        out.extend(toss * count)
        if count:
            last_toss = toss
    return "".join(out)


def stopping_bits(rng, lo: int, hi: int, is_member: Callable[[str], bool]) -> str:
    """TomitaLanguage.generate_string (Tomita-5, -6): each step emits 0 or 1 with probability
    p each and stops with 1 − 2p, and stops at hi; p = L / (2(1 + L)), L = (lo + hi) // 2
    (TomitaCorpus). Strings shorter than lo or outside the language are redrawn."""
    mid = (lo + hi) // 2
    stop = 1 - mid / (1 + mid)  # 1 − 2p

    def draw():
        n = min(int(rng.geometric(stop)) - 1, hi)  # symbols emitted before the stop
        return "".join("1" if b else "0" for b in rng.integers(0, 2, n))
    return until(draw, lambda s: len(s) >= lo and is_member(s), "tomita5/6")


def tomita7(rng, lo: int, hi: int) -> str:
    """Tomita7Language.generate_string: 0^k1 1^k2 0^k3 1^k4 with k1 uniform in [0, hi] and each
    later k uniform in [0, what remains of hi]; strings shorter than lo are redrawn."""
    def draw():
        runs, left = [], hi
        for _ in range(4):
            runs.append(int(rng.integers(left + 1)))
            left -= runs[-1]
        return "".join(sym * k for sym, k in zip("0101", runs))
    return until(draw, in_window(lo, hi), "tomita7")


# --- bounded Dyck D-n (starfree_generator.D_nLanguage) -----------------------------------------

MEAN_RATIO, STD_RATIO = 0.75, 0.1


def _target(rng, length: int) -> int:
    """Their random sub-length int(length · 0.75 · (0.1 z + 1)), z standard normal."""
    return int(length * MEAN_RATIO * (STD_RATIO * rng.standard_normal() + 1))


def _d_n(rng, depth: int, length: int) -> str:
    """generate_d_n: blocks a W b, W drawn for depth − 1 and a random target of 0.75·length,
    appended until the word reaches `length` (it may overshoot)."""
    if depth == 0 or length <= 0:
        return ""
    blocks, size = [], 0
    while size < length:
        inner = _d_n(rng, depth - 1, _target(rng, length))
        blocks.append("a" + inner + "b")
        size += len(inner) + 2
    return "".join(blocks)


def bounded_dyck(rng, depth: int, lo: int, hi: int) -> str:
    """D_nLanguage.generate_string(hi): a word for a random target of 0.75·hi; words outside
    [lo, hi] are redrawn."""
    return until(lambda: _d_n(rng, depth, _target(rng, hi)), in_window(lo, hi), f"dyck{depth}")


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


# --- periodic (nonstarfree_generator.py) -------------------------------------------------------

def periodic(rng, lo: int, hi: int, block: str) -> str:
    """AAStarLanguage / ABABStarLanguage.generate_string: the block repeated
    (lo + uniform[0, hi − lo]) // len(block) times; strings outside [lo, hi] are redrawn."""
    return until(lambda: block * (int(rng.integers(lo, hi + 1)) // len(block)), in_window(lo, hi), block + "*")
