"""Counter languages (Dyck-1, Shuffle-2, aⁿbⁿ…, Boolean expressions; next-viable flags 1/0): no
public generator, so both samplers are ours."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..base import register_task
from .base import DEAD, FormalLanguage, _uniform_composition


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
