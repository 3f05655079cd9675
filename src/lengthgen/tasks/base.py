"""The task protocol: a task is a generator of examples, not a dataset file.

Every task produces `Example`s for a decoder-only model. `inputs[t]` is fed at position t and
`targets[t]` is what the model must predict there; `loss_mask[t]` says which targets are scored.
For tasks whose answer is generated (`<bos> input <sep> answer <eos>`), `targets` is `inputs`
shifted by one and `answer_start` is the position of `<sep>`: from there on each prediction is
fed back as the next input. Labelling tasks (formal languages) predict a label at every
position that is never fed back, so they have `answer_start=None`.

Position IDs are data (docs/design.md §2): a task may return its own `position_ids` (position coupling,
Abacus, ...); `None` means the usual 0..T-1.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError
from ..evaluation_modes import evaluation_mode

SPECIALS = ("<pad>", "<bos>", "<sep>", "<eos>")
PAD, BOS, SEP, EOS = range(len(SPECIALS))
FIRST_SYMBOL = len(SPECIALS)  # a Vocab's symbol i has id FIRST_SYMBOL + i


class Vocab:
    """Special tokens first (fixed ids 0-3), then the task's symbols in a fixed global order."""

    def __init__(self, symbols):
        symbols = list(symbols)
        clash = set(symbols) & set(SPECIALS)
        if clash or len(set(symbols)) != len(symbols):
            raise InputError(f"vocabulary symbols must be unique and not special tokens: {symbols}")
        self.itos = list(SPECIALS) + symbols
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __getitem__(self, symbol: str) -> int:
        return self.stoi[symbol]

    def encode(self, symbols) -> np.ndarray:
        return np.array([self.stoi[s] for s in symbols], dtype=np.int64)

    def decode(self, ids) -> list[str]:
        return [self.itos[int(i)] for i in ids]


@dataclass
class Example:
    inputs: np.ndarray  # int64 [T]
    targets: np.ndarray  # int64 [T]
    loss_mask: np.ndarray  # bool [T]
    length: int  # the task's own input length n
    answer_start: int | None = None  # index of <sep>; None for labelling tasks
    position_ids: np.ndarray | None = None  # int64 [T]; None = arange(T)
    info: dict[str, Any] = field(default_factory=dict)  # e.g. {"k": 3}
    # The random training position offset shifts position IDs from this index on; the tokens
    # before it keep their ID (Cho et al.: <bos> stays at ID 0 under the random start).
    offset_from: int = 0

    def __post_init__(self):
        T = len(self.inputs)
        if not (len(self.targets) == len(self.loss_mask) == T):
            raise ValueError("inputs, targets and loss_mask must have the same length")
        if self.position_ids is not None and len(self.position_ids) != T:
            raise ValueError("position_ids must have one entry per input token")


def sequence_example(seq, answer_start: int, length: int, scored_from: int | None = None,
                     scored_to: int | None = None, **kw) -> Example:
    """Example for `<bos> input <sep> answer <eos>`-style tasks: next-token prediction on `seq`.

    Targets at positions `scored_from..scored_to-1` (default: `answer_start` to the end, i.e. the
    answer and `<eos>`) are scored.
    """
    seq = np.asarray(seq, dtype=np.int64)
    inputs, targets = seq[:-1], seq[1:]
    mask = np.zeros(len(inputs), dtype=bool)
    lo = answer_start if scored_from is None else scored_from
    hi = len(inputs) if scored_to is None else scored_to
    mask[lo:hi] = True
    return Example(inputs, targets, mask, length=length, answer_start=answer_start, **kw)


class Task(ABC):
    """A task: a vocabulary, a notion of length and a sampler.

    Subclasses set `name`, `summary` (one line), `format` (exact documented format) and
    implement `sample` and `seq_len`. Constructor keyword arguments are the task's parameters.
    A task only names how it is evaluated and how far its examples are shifted; the rules live in
    `evaluation_modes` and `positions`.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    format: ClassVar[str] = ""
    # The task's default train length range and evaluation bins (inclusive).
    default_train_lengths: ClassVar[tuple[int, int]] = (1, 50)
    default_eval_bins: ClassVar[tuple[tuple[int, int], ...]] = ((1, 50), (51, 100), (101, 150))
    min_length: ClassVar[int] = 1
    # How the task is scored and reported: a name in `evaluation_modes.EVALUATION_MODES`.
    evaluation: ClassVar[str] = "length_bins"
    # The range of its random APE training offsets: a name in `positions.OFFSET_RULES` (docs/design.md
    # §4.2). A task whose rule depends on its parameters makes this a property.
    offset_rule: str = "longest_sequence"

    vocab: Vocab

    @abstractmethod
    def sample(self, rng: np.random.Generator, length: int, **overrides) -> Example:
        """One example of input length `length`; `overrides` fix a breakdown variable (e.g. k)."""

    @abstractmethod
    def seq_len(self, length: int) -> int:
        """Upper bound on the number of input tokens T of an example of input length `length`."""

    def sample_window(self, rng: np.random.Generator, lo: int, hi: int, **overrides) -> Example:
        """One example with input length in the window [lo, hi], drawn as the task's reference
        generator draws it. Default: a length uniform over `valid_lengths(lo, hi)`, then `sample`.
        Tasks whose reference code draws lengths its own way (independent operand lengths,
        formal-language generators) override this; `sample(rng, n)` stays the same generator
        conditioned on the length n."""
        valid = self.valid_lengths(lo, hi)
        return self.sample(rng, int(valid[int(rng.integers(len(valid)))]), **overrides)

    def breakdown(self) -> dict[str, list]:
        """Variables evaluation reports separately, with their values, e.g. {"k": [1, 2, 3]}."""
        return {}

    # -- the length contract: n is valid iff min_length <= n <= max_length (None: unbounded) and
    # n is a multiple of length_period. One rule for bins: a bin holds the valid lengths inside
    # it, and a bin holding none is refused (`valid_lengths` raises).
    length_period: ClassVar[int] = 1
    max_length: ClassVar[int | None] = None

    def length_rule(self) -> str:
        rule = f"lengths >= {self.min_length}"
        if self.max_length is not None:
            rule += f" and <= {self.max_length}"
        if self.length_period > 1:
            rule += f", multiples of {self.length_period}"
        return rule

    def is_valid_length(self, length: int) -> bool:
        return (length >= self.min_length and length % self.length_period == 0
                and (self.max_length is None or length <= self.max_length))

    def valid_lengths(self, lo: int, hi: int) -> range:
        """The valid lengths in the inclusive bin [lo, hi]; raises when there is none."""
        first = max(lo, self.min_length)
        first += -first % self.length_period
        last = hi if self.max_length is None else min(hi, self.max_length)
        lengths = range(first, last + 1, self.length_period)
        if not lengths:
            raise InputError(f"task {self.name!r} has no valid length in [{lo}, {hi}]: {self.length_rule()}")
        return lengths

    def check_length(self, length: int) -> None:
        if not self.is_valid_length(length):
            raise InputError(f"task {self.name!r} has no string of length {length}: {self.length_rule()}")

    def provenance(self) -> dict:
        """What a stored run must record about where this task's data came from, beyond its
        parameters (the LM task: which corpus files, and which Python's library). Generated tasks: {}."""
        return {}

    def render(self, ex: Example) -> str:
        """Human-readable form of an example: the full sequence, answer included."""
        if ex.answer_start is None:
            ins = " ".join(self.vocab.decode(ex.inputs))
            labels = " ".join(self.vocab.decode(ex.targets[ex.loss_mask]))
            return f"{ins}  ->  labels: {labels}"
        seq = list(ex.inputs) + [ex.targets[-1]]
        return " ".join(self.vocab.decode(seq))

    def params(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in _init_params(type(self))}


class UsesCache(ABC):
    """A task that keeps what it derives from its parameters and reuses across runs (the lm task's
    trained tokenizer). Whoever builds such a task for a run gives it the results root's `cache/`
    (`TaskConfig.build(cache_dir)`); without one it derives everything afresh."""

    @abstractmethod
    def set_cache_dir(self, directory: Path) -> None:
        """Where to keep and find what the task derives."""


TASKS: dict[str, type[Task]] = {}


def same_definition(a: type, b: type) -> bool:
    """Whether two classes are one definition run twice (a notebook cell run again, a module
    reloaded): same module and qualified name."""
    return (a.__module__, a.__qualname__) == (b.__module__, b.__qualname__)


def register_task(cls: type[Task]) -> type[Task]:
    """Add a task under `cls.name`. The same definition again replaces it; another class under a
    taken name is an error, and so is an unknown evaluation mode."""
    try:
        evaluation_mode(cls.evaluation)
    except InputError as err:
        raise InputError(f"task {cls.name!r}: {err}") from None
    old = TASKS.get(cls.name)
    if old is not None and not same_definition(old, cls):
        raise InputError(f"task {cls.name!r} is already registered by {old.__module__}.{old.__qualname__}; "
                         f"choose another name for {cls.__module__}.{cls.__qualname__}")
    TASKS[cls.name] = cls
    return cls


def _init_params(cls) -> list[str]:
    sig = inspect.signature(cls.__init__)
    return [p for p in sig.parameters if p != "self"]


def make_task(name: str, **params) -> Task:
    """Build a registered task; unknown names or parameters fail with the allowed values.
    The families register themselves when `lengthgen.tasks` is imported."""
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose one of: {', '.join(sorted(TASKS))}")
    cls = TASKS[name]
    allowed = _init_params(cls)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InputError(f"task {name!r} has no parameter(s) {unknown}; allowed: {allowed}")
    return cls(**params)


def available_tasks() -> list[str]:
    return sorted(TASKS)
