"""k-sparse planted correlation tasks (Golowich et al. 2025; docs/design.md §4.1).

`n` background tokens are drawn i.i.d. uniformly; a set S of k positions, chosen by the
placement rule, is overwritten with *planted* tokens from a disjoint alphabet (so attention can
find them), and the answer depends on the planted tokens only.

Formats (n = the number of context tokens x1..xn, planted ones included):

    sparse_parity   <bos> x1 … xn <sep> y <eos>          y = XOR of the planted bits
    sparse_sum      <bos> x1 … xn <sep> y <eos>          y = sum of planted values mod p
    kgram_lookup    <bos> x1 … xn <sep> q1 … qk y <eos>  q = the planted key, y = its value

Only `y` is scored. Placement: `uniform` (any k positions), `local:w` (all planted tokens in
the last w positions) or `block` (contiguous, at a uniform start).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..errors import InputError
from .base import BOS, EOS, SEP, Task, Vocab, register_task, sequence_example

PLACEMENTS = ("uniform", "local:w", "block")


def parse_k(k) -> tuple[int, int]:
    """`k` is an int or an inclusive [lo, hi] range."""
    if isinstance(k, int):
        lo = hi = k
    elif isinstance(k, (list, tuple)) and len(k) == 2 and all(isinstance(v, int) for v in k):
        lo, hi = k
    else:
        raise InputError(f"k must be an int or an inclusive [lo, hi] pair of ints, got {k!r}")
    if not 1 <= lo <= hi:
        raise InputError(f"k range must satisfy 1 <= lo <= hi, got {k!r}")
    return lo, hi


def parse_placement(placement: str) -> tuple[str, int | None]:
    if placement in ("uniform", "block"):
        return placement, None
    if placement.startswith("local:"):
        try:
            w = int(placement.split(":", 1)[1])
        except ValueError:
            w = 0
        if w >= 1:
            return "local", w
    raise InputError(f"unknown placement {placement!r}; allowed: {', '.join(PLACEMENTS)} (w a positive int)")


def place(rng: np.random.Generator, n: int, k: int, kind: str, window: int | None) -> np.ndarray:
    """Sorted positions of k planted tokens among n, following the placement rule."""
    if kind == "uniform":
        return np.sort(rng.choice(n, size=k, replace=False))
    if kind == "block":
        start = int(rng.integers(0, n - k + 1))
        return np.arange(start, start + k)
    w = min(window, n)
    return np.sort(n - w + rng.choice(w, size=k, replace=False))


class _Planted(Task):
    """Shared machinery: parameters, background sampling and placement."""

    default_train_lengths = (10, 40)
    default_eval_bins = ((10, 40), (41, 80), (81, 120), (121, 160))
    extra_planted = 0  # planted tokens beyond the k that define the dependency

    def __init__(self, k=(1, 4), placement: str = "uniform", background_size: int = 8):
        self.k = k
        self.k_lo, self.k_hi = parse_k(k)
        self.placement = placement
        self.place_kind, self.window = parse_placement(placement)
        if self.window is not None and self.window < self.k_hi + self.extra_planted:
            raise InputError(f"placement {placement!r}: window must hold k_max + {self.extra_planted} "
                             f"= {self.k_hi + self.extra_planted} planted tokens")
        if background_size < 1:
            raise InputError("background_size must be >= 1")
        self.background_size = background_size

    @property
    def min_length(self):  # type: ignore[override]
        return self.k_hi + self.extra_planted

    def _draw_k(self, rng, n, k):
        if k is None:
            k = int(rng.integers(self.k_lo, self.k_hi + 1))
        if k + self.extra_planted > n:
            raise InputError(f"task {self.name!r}: k={k} (+{self.extra_planted}) planted tokens do not fit "
                             f"in length {n}")
        return k

    @cached_property
    def _background_ids(self) -> np.ndarray:
        return self.vocab.encode([f"b{i}" for i in range(self.background_size)])

    def _background(self, rng, n):
        return self._background_ids[rng.integers(0, self.background_size, n)]

    def breakdown(self):
        return {"k": list(range(self.k_lo, self.k_hi + 1))}


class _PlantedFunction(_Planted):
    """Planted values v_i in Z_m; y = f(values in position order)."""

    modulus: int

    def __init__(self, k=(1, 4), placement: str = "uniform", background_size: int = 8):
        super().__init__(k, placement, background_size)
        m = self.modulus
        self.vocab = Vocab([f"b{i}" for i in range(background_size)] + [f"p{v}" for v in range(m)]
                           + [str(v) for v in range(m)])

    @cached_property
    def _planted_ids(self) -> np.ndarray:  # p0 … p(m−1)
        return self.vocab.encode([f"p{v}" for v in range(self.modulus)])

    def answer(self, values: np.ndarray) -> int:
        raise NotImplementedError

    def seq_len(self, length):
        return length + 3

    def sample(self, rng, length, k=None):
        n = length
        k = self._draw_k(rng, n, k)
        xs = self._background(rng, n)
        S = place(rng, n, k, self.place_kind, self.window)
        values = rng.integers(0, self.modulus, k)
        xs[S] = self._planted_ids[values]
        y = self.answer(values)
        seq = np.concatenate([[BOS], xs, [SEP, self.vocab[str(y)], EOS]])
        sep = n + 1
        return sequence_example(seq, answer_start=sep, length=n, scored_to=sep + 1,
                                info={"k": k, "planted": (S + 1).tolist()})


@register_task
class SparseParity(_PlantedFunction):
    name = "sparse_parity"
    summary = "XOR of k planted bits hidden among background tokens"
    format = "<bos> x1 … xn <sep> y <eos>; planted tokens p0/p1 carry bits, y ∈ {0,1} = XOR; only y scored"
    modulus = 2

    def answer(self, values):
        return int(values.sum() % 2)


@register_task
class SparseSum(_PlantedFunction):
    name = "sparse_sum"
    summary = "sum mod p of k planted values hidden among background tokens"
    format = "<bos> x1 … xn <sep> y <eos>; planted tokens p0…p{p-1} carry values, y = sum mod p; only y scored"

    def __init__(self, k=(1, 4), placement: str = "uniform", background_size: int = 8, p: int = 5):
        if p < 2:
            raise InputError("sparse_sum: modulus p must be >= 2")
        self.p = self.modulus = p
        super().__init__(k, placement, background_size)

    def answer(self, values):
        return int(values.sum() % self.p)


@register_task
class KgramLookup(_Planted):
    name = "kgram_lookup"
    summary = "induction-style lookup: the value stored after a key k-gram, queried by repeating the key"
    format = ("<bos> x1 … xn <sep> q1 … qk y <eos>; the context holds 1 + `distractors` planted records, each "
              "a key of k tokens from a0…a(A-1) followed by a value v0…v(A-1), keys pairwise different; q repeats "
              "one record's key and y is that record's value; only y scored. Records are contiguous; the "
              "placement rule places the queried record (`uniform`/`block`: anywhere, `local:w`: in the last w)")

    def __init__(self, k=(1, 4), placement: str = "block", background_size: int = 8, alphabet_size: int = 8,
                 distractors: int = 2):
        if distractors < 0:
            raise InputError("kgram_lookup: distractors must be >= 0")
        self.distractors = distractors
        self.extra_planted = 1 + distractors * (parse_k(k)[1] + 1)
        super().__init__(k, placement, background_size)
        if alphabet_size < 2:
            raise InputError("kgram_lookup: alphabet_size must be >= 2")
        if alphabet_size ** self.k_lo < 1 + distractors:
            raise InputError(f"kgram_lookup: {alphabet_size}^{self.k_lo} keys cannot give {1 + distractors} "
                             "different records; raise alphabet_size or lower distractors")
        self.alphabet_size = alphabet_size
        self.vocab = Vocab([f"b{i}" for i in range(background_size)] + [f"a{i}" for i in range(alphabet_size)]
                           + [f"v{i}" for i in range(alphabet_size)])

    def seq_len(self, length):
        return length + self.k_hi + 3

    def _draw_k(self, rng, n, k):
        if k is None:
            k = int(rng.integers(self.k_lo, self.k_hi + 1))
        if (k + 1) * (1 + self.distractors) > n:
            raise InputError(f"task {self.name!r}: {1 + self.distractors} records of k+1={k + 1} tokens do not "
                             f"fit in length {n}")
        return k

    def _record_starts(self, rng, n, size):
        """Non-overlapping starts for 1 + distractors records; the first is the queried one."""
        lo = 0 if self.window is None else max(0, n - self.window)
        while True:  # rejection sampling: records are few and short next to n
            starts = [int(rng.integers(lo, n - size + 1))]
            starts += [int(s) for s in rng.integers(0, n - size + 1, self.distractors)]
            ordered = sorted(starts)
            if all(b - a >= size for a, b in zip(ordered, ordered[1:])):
                return starts

    def sample(self, rng, length, k=None):
        n = length
        k = self._draw_k(rng, n, k)
        xs = self._background(rng, n)
        keys: list[tuple[int, ...]] = []
        while len(keys) < 1 + self.distractors:
            key = tuple(int(a) for a in rng.integers(0, self.alphabet_size, k))
            if key not in keys:
                keys.append(key)
        values = rng.integers(0, self.alphabet_size, len(keys))
        starts = self._record_starts(rng, n, k + 1)
        for start, key, value in zip(starts, keys, values):
            xs[start:start + k + 1] = self.vocab.encode([f"a{a}" for a in key] + [f"v{value}"])
        query = xs[starts[0]:starts[0] + k]
        answer = self.vocab[f"v{values[0]}"]
        seq = np.concatenate([[BOS], xs, [SEP], query, [answer, EOS]])
        last_prompt = n + 1 + k
        planted = list(range(starts[0] + 1, starts[0] + k + 2))
        return sequence_example(seq, answer_start=last_prompt, length=n, scored_to=last_prompt + 1,
                                info={"k": k, "planted": planted})
