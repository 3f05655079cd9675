"""The algorithmic suite of Huang et al. (2025; docs/design.md §4.2).

Every task has the layout `<bos> x1 … xn <sep> answer <eos>`: n is the number of input tokens
x1..xn, `<sep>` sits at index n+1 (`answer_start`) and the loss covers the answer and `<eos>`.

    task                     input x1..xn                         answer
    bin_majority             bits, #zeros uniform in [0,n], no tie    the majority bit
    majority                 i.i.d. letters a–z, unique mode          the mode
    bin_majority_interleave  three tie-free bit strings of n/3,       majority bit of each string
                             interleaved (x1 = s1[0], x2 = s2[0], …)  (3 tokens)
    unique_copy              n distinct tokens of 150 ("0"…"149")     the input
    repeat_copy              i.i.d. letters a/b                       the input
    sort                     n distinct tokens of 150 ("0"…"149")     the input in numeric order
    parity                   bits, #ones uniform in [0,n]             `even` or `odd` (#ones)
    addition                 `a + b =` in binary, MSB first           a+b in binary, MSB first

Valid lengths: n ≥ 1 (parity: n ≥ 0, as the official code's window (0, 50), which only parity
does not clamp); bin_majority_interleave needs n to be a multiple of 3; unique_copy and sort
need n ≤ 150 (the vocabulary); addition needs n ≥ 4. `sample` raises ValueError for any other
n, and `valid_lengths(lo, hi)` lists the valid lengths of a bin, so training and evaluation
draw only those. Lengths within a window are uniform (`sample_window`), as in the official
code, except bin_majority_interleave, which rounds a uniform total length to a multiple of 3
as the official code does.

APE random offsets (docs/design.md §4.2, with the longest length served, `longest`, in place of the paper's 150): offset ∈
[0, longest−n] for the tasks with a short answer (both majorities, the interleaved one with
its three answer tokens, parity), [0, 2(longest−n)] for unique_copy, repeat_copy and sort,
and for addition [0, 2·longest − (the whole sequence)], the whole sequence counted with its
longest possible answer (the official code uses the example's own answer), so addition's
position table has 2·longest rows (300). Each task names its rule (`offset_rule`: `input_gap`,
`double_input_gap`, `addition_window`); positions.OFFSET_RULES computes it.

Official source: lacoco-lab/length_generalization, algorithmic/language_modeling_train.py
(the *Dataset classes).
"""

from __future__ import annotations

from string import ascii_lowercase
from typing import ClassVar

import numpy as np

from .base import BOS, EOS, FIRST_SYMBOL, SEP, Task, Vocab, register_task, sequence_example

LETTERS = tuple(ascii_lowercase)
DISTINCT_TOKENS = tuple(str(i) for i in range(150))


def tie_free_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """n bits whose number of zeros is uniform over [0, n] without the tie n/2, in random order."""
    while True:
        zeros = int(rng.integers(0, n + 1))
        if 2 * zeros != n:
            break
    bits = np.ones(n, dtype=np.int64)
    bits[:zeros] = 0
    return rng.permutation(bits)


def majority_bit(bits: np.ndarray) -> int:
    return int(2 * bits.sum() > len(bits))


class _Algorithmic(Task):
    """Shared layout and length rules; subclasses draw the input and the answer as symbol indices."""

    symbols: ClassVar[tuple[str, ...]]
    offset_rule = "input_gap"

    def __init__(self):
        self.vocab = Vocab(self.symbols)

    def draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Input and answer of one example, as indices into `symbols`."""
        raise NotImplementedError

    def max_answer_len(self, n: int) -> int:
        raise NotImplementedError

    def sample(self, rng, length):
        self.check_length(length)
        xs, answer = self.draw(rng, length)
        seq = np.concatenate([[BOS], FIRST_SYMBOL + xs, [SEP], FIRST_SYMBOL + answer, [EOS]])
        return sequence_example(seq, answer_start=length + 1, length=length)

    def seq_len(self, length):
        # <bos>, n inputs, <sep> and the answer are fed; the final <eos> is only a target.
        return length + 2 + self.max_answer_len(length)


@register_task
class BinMajority(_Algorithmic):
    name = "bin_majority"
    summary = "majority bit of a binary string"
    format = ("<bos> x1 … xn <sep> y <eos>; x ∈ {0,1} with the number of zeros uniform in [0,n], ties "
              "rejected; y = the majority bit. E.g. <bos> 0 1 1 <sep> 1 <eos>")
    symbols = ("0", "1")

    def draw(self, rng, n):
        bits = tie_free_bits(rng, n)
        return bits, np.array([majority_bit(bits)])

    def max_answer_len(self, n):
        return 1


@register_task
class Majority(_Algorithmic):
    name = "majority"
    summary = "most frequent letter of a string over a–z"
    format = ("<bos> x1 … xn <sep> y <eos>; x i.i.d. uniform over a–z, resampled until the most frequent "
              "letter is unique; y = that letter. E.g. <bos> c a c <sep> c <eos>")
    symbols = LETTERS

    def draw(self, rng, n):
        while True:
            letters = rng.integers(0, len(LETTERS), n)
            counts = np.bincount(letters, minlength=len(LETTERS))
            if np.count_nonzero(counts == counts.max()) == 1:
                return letters, np.array([counts.argmax()])

    def max_answer_len(self, n):
        return 1


@register_task
class BinMajorityInterleave(_Algorithmic):
    name = "bin_majority_interleave"
    summary = "majority bits of three interleaved binary strings"
    format = ("<bos> x1 … xn <sep> y1 y2 y3 <eos>; n = 3m; three tie-free binary strings s1, s2, s3 of "
              "length m (each drawn as in bin_majority) interleaved as s1[0] s2[0] s3[0] s1[1] …; "
              "yi = the majority bit of si. E.g. <bos> 0 1 1 0 1 0 1 0 0 <sep> 0 1 0 <eos>. Lengths within a window: "
              "the official rounding of a uniform total to a multiple of 3. answer_sep=true: our reading of the "
              "official logs' `bin_majority_interleave_sep` (absent from the released code; a guess, see "
              "docs/fidelity.md): y1 <sep> y2 <sep> y3, the <sep>s scored too; the paper's released task: false")
    symbols = ("0", "1")
    length_period = 3
    min_length = 3
    default_train_lengths = (3, 48)
    default_eval_bins = ((3, 48), (51, 99), (102, 150))

    def __init__(self, answer_sep: bool = False):
        self.answer_sep = bool(answer_sep)
        super().__init__()

    def draw(self, rng, n):
        strings = [tie_free_bits(rng, n // 3) for _ in range(3)]
        # Row-major flattening of the [m, 3] stack puts position j of every string together.
        return np.stack(strings, axis=1).reshape(-1), np.array([majority_bit(s) for s in strings])

    def sample(self, rng, length):
        if not self.answer_sep:
            return super().sample(rng, length)
        self.check_length(length)
        xs, answer = self.draw(rng, length)
        ys = np.stack([np.full(3, SEP), FIRST_SYMBOL + answer], axis=1).reshape(-1)[1:]  # y1 <sep> y2 <sep> y3
        seq = np.concatenate([[BOS], FIRST_SYMBOL + xs, [SEP], ys, [EOS]])
        return sequence_example(seq, answer_start=length + 1, length=length)

    def sample_window(self, rng, lo, hi, **overrides):
        """The official rounding: a total length uniform in [max(3, lo), hi], rounded to the
        nearest multiple of 3 and moved back inside the window if rounding left it."""
        lo = max(3, lo)
        total = int(rng.integers(lo, hi + 1))
        m = round(total / 3)  # total/3 never ends in .5, so Python's rounding rule plays no part
        if 3 * m > hi:
            m -= 1
        if 3 * m < lo:
            m += 1
        return self.sample(rng, 3 * m, **overrides)

    def max_answer_len(self, n):
        return 5 if self.answer_sep else 3


class _WholeSequenceAnswer(_Algorithmic):
    """Tasks whose answer is as long as the input: the APE offset range doubles (docs/design.md §4.2)."""

    offset_rule = "double_input_gap"

    def max_answer_len(self, n):
        return n


class _DistinctTokens(_WholeSequenceAnswer):
    """n distinct tokens out of 150, so n is capped at 150."""

    symbols = DISTINCT_TOKENS
    max_length = len(DISTINCT_TOKENS)

    def draw(self, rng, n):
        tokens = rng.choice(len(DISTINCT_TOKENS), size=n, replace=False)
        return tokens, self.answer(tokens)

    def answer(self, tokens: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@register_task
class UniqueCopy(_DistinctTokens):
    name = "unique_copy"
    summary = "copy a sequence of distinct tokens"
    format = ("<bos> x1 … xn <sep> x1 … xn <eos>; n ≤ 150 distinct tokens drawn uniformly from \"0\"…\"149\"; "
              "the answer repeats the input. E.g. <bos> 17 3 140 <sep> 17 3 140 <eos>")

    def answer(self, tokens):
        return tokens


@register_task
class Sort(_DistinctTokens):
    name = "sort"
    summary = "sort a sequence of distinct tokens"
    format = ("<bos> x1 … xn <sep> y1 … yn <eos>; n ≤ 150 distinct tokens drawn uniformly from \"0\"…\"149\"; "
              "y = the input in ascending numeric order (token ids follow the same order). "
              "E.g. <bos> 17 3 140 <sep> 3 17 140 <eos>")

    def answer(self, tokens):
        return np.sort(tokens)


@register_task
class RepeatCopy(_WholeSequenceAnswer):
    name = "repeat_copy"
    summary = "copy a sequence over {a, b}"
    format = ("<bos> x1 … xn <sep> x1 … xn <eos>; x i.i.d. uniform over {a,b}; the answer repeats the "
              "input. E.g. <bos> a b b <sep> a b b <eos>")
    symbols = ("a", "b")

    def draw(self, rng, n):
        letters = rng.integers(0, 2, n)
        return letters, letters


@register_task
class Parity(_Algorithmic):
    name = "parity"
    summary = "parity of the number of ones in a binary string"
    format = ("<bos> x1 … xn <sep> y <eos>; x ∈ {0,1} with the number of ones uniform in [0,n]; "
              "y = `even` or `odd`, the parity of that number (own tokens, not bits); n = 0 allowed (the paper's "
              "window [0, 50]). E.g. <bos> 1 0 1 <sep> even <eos>")
    symbols = ("0", "1", "even", "odd")
    min_length = 0  # the official window (0, 50) includes the empty string (answer: even)
    default_train_lengths = (0, 50)
    default_eval_bins = ((0, 50), (51, 100), (101, 150))

    def draw(self, rng, n):
        ones = int(rng.integers(0, n + 1))
        bits = np.zeros(n, dtype=np.int64)
        bits[:ones] = 1
        return rng.permutation(bits), np.array([self.symbols.index("even") + ones % 2])

    def max_answer_len(self, n):
        return 1


@register_task
class Addition(_Algorithmic):
    name = "addition"
    summary = "binary addition, most significant bit first"
    format = ("<bos> a + b = s <eos> (the paper's: `=` ends the prompt; separator=true inserts our earlier <sep> "
              "after `=`); a, b, s in binary, most significant bit first, no leading zeros (0 is the single digit "
              "0); n = len(a) + len(b) + 2 counts the `+` and `=`; len(a) is uniform in [1, n−3] and len(b) = "
              "n−2−len(a); a one-digit operand is 0 or 1, a longer one is 1 followed by uniform bits; s = a + b. "
              "E.g. <bos> 1 0 1 + 1 1 = 1 0 0 0 <eos>")
    symbols = ("0", "1", "+", "=")
    min_length = 4
    default_train_lengths = (4, 50)
    default_eval_bins = ((4, 50), (51, 100), (101, 150))
    offset_rule = "addition_window"

    def __init__(self, separator: bool = False):
        self.separator = bool(separator)
        super().__init__()

    def sample(self, rng, length):
        if self.separator:
            return super().sample(rng, length)
        self.check_length(length)
        xs, answer = self.draw(rng, length)  # xs ends with `=`, which predicts the first answer digit
        seq = np.concatenate([[BOS], FIRST_SYMBOL + xs, FIRST_SYMBOL + answer, [EOS]])
        return sequence_example(seq, answer_start=length, length=length)

    def seq_len(self, length):
        return super().seq_len(length) - (0 if self.separator else 1)

    @staticmethod
    def operand(rng, digits: int) -> np.ndarray:
        if digits == 1:
            return rng.integers(0, 2, 1)
        return np.concatenate([[1], rng.integers(0, 2, digits - 1)])

    def draw(self, rng, n):
        a_digits = int(rng.integers(1, n - 2))
        a, b = self.operand(rng, a_digits), self.operand(rng, n - 2 - a_digits)
        plus, equals = self.symbols.index("+"), self.symbols.index("=")
        total = int("".join(map(str, a)), 2) + int("".join(map(str, b)), 2)
        answer = np.array([int(bit) for bit in f"{total:b}"])
        return np.concatenate([a, [plus], b, [equals]]), answer

    def max_answer_len(self, n):
        # The longer operand has at most n−3 digits, and a carry adds one.
        return n - 2
