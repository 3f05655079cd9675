"""Periodic languages ((aa)*, (aaaa)*, (abab)*; member labels 1/0) and the official periodic
generator (nonstarfree_generator.py), re-stated."""

from __future__ import annotations

from typing import ClassVar

from ..base import register_task
from .base import DEAD, FormalLanguage, in_window, until


# --- periodic (nonstarfree_generator.py) -------------------------------------------------------

def periodic(rng, lo: int, hi: int, block: str) -> str:
    """AAStarLanguage / ABABStarLanguage.generate_string: the block repeated
    (lo + uniform[0, hi − lo]) // len(block) times; strings outside [lo, hi] are redrawn."""
    return until(lambda: block * (int(rng.integers(lo, hi + 1)) // len(block)), in_window(lo, hi), block + "*")


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
        return periodic(rng, lo, hi, self.block)


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
