"""The Tomita grammars (alphabet 0, 1; next-viable flags y/n) and the official Tomita generators
(tomita_generator.py), re-stated."""

from __future__ import annotations

from typing import Callable

from ..base import register_task
from .base import DEAD, FormalLanguage, in_window, until


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
        return tomita2(rng, lo, hi)


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
        return until(lambda: tomita3(rng, n), self.is_member, self.name)


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
        return stopping_bits(rng, lo, hi, self.is_member)


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
        return tomita7(rng, n, n)

    def official_window(self, rng, lo, hi):
        return tomita7(rng, lo, hi)
