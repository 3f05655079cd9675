"""What every formal language shares: the label vocabulary, the samplers' switch, the offset range,
the FormalLanguage task, and the rejection loop of the official generators."""

from __future__ import annotations

import itertools
from typing import Callable, ClassVar, Hashable

import numpy as np

from ...errors import InputError
from ..base import BOS, PAD, Example, Task, Vocab


LABEL_PREFIX = "L:"
SAMPLERS = ("official", "uniform")
# APE training offsets, the task parameter `offset_range`, by the rule of positions.OFFSET_RULES it
# names: "longest" (the general rule: an example's last ID reaches the longest test sequence's last
# ID) or "official" (Huang et al.'s train_with_ce.py: every example shifted over the longest test sequence).
OFFSET_RULE_OF_RANGE = {"longest": "longest_sequence", "official": "longest_test_sequence"}
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
        if offset_range not in OFFSET_RULE_OF_RANGE:
            raise InputError(f"task {self.name!r}: unknown offset_range {offset_range!r}; allowed: "
                             f"{', '.join(OFFSET_RULE_OF_RANGE)} (official = Huang et al.'s shift range)")
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

    @property
    def offset_rule(self) -> str:
        return OFFSET_RULE_OF_RANGE[self.offset_range]

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
