"""From examples to tensors: training batches drawn on the fly or from a fixed training set, and
fixed evaluation sets.

Every training batch is a pure function of (seed, step): `SeedSequence([seed, step])` seeds it.
A resumed run therefore sees exactly the batches it would have seen, and data-parallel ranks can
split a step's batch without coordination. A fixed training set (`train.dataset_size`) is drawn
once from (DATASET_STREAM, seed) and served in epochs shuffled by (DATASET_STREAM, seed, epoch), so
its batches are pure functions of (seed, step) too. Evaluation sets use the separate EVAL_STREAM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .positions import PositionSampler, draw_offsets, pad_ids, shifted_ids, with_positions
from .procs import exit_with_parent
from .tasks import PAD, Example, Task

IGNORE = -100  # cross-entropy ignore index for unscored targets
# Evaluation sets are drawn from numpy SeedSequence([EVAL_STREAM, ...]); training batches come from
# SeedSequence([seed, step]), so no training run ever draws an evaluation set.
EVAL_STREAM = 0x5EED_E7A1
DATASET_STREAM = 0xDA7A_5E75  # fixed training sets: never an evaluation set, never a step's batch
DRAWS_PER_EXAMPLE = 50  # a fixed set gives up looking for new distinct examples after size * this draws


@dataclass
class Batch:
    inputs: torch.Tensor  # [B, T] int64, right-padded with <pad>
    targets: torch.Tensor  # [B, T] int64, IGNORE where unscored or padding
    position_ids: torch.Tensor  # [B, T] int64
    examples: list[Example]

    def to(self, device) -> "Batch":
        return Batch(self.inputs.to(device), self.targets.to(device), self.position_ids.to(device), self.examples)

    def padded_to(self, length: int) -> "Batch":
        """Right-padded to `length` the way `collate` pads (padding IDs repeat each row's last ID)."""
        extra = length - self.inputs.shape[1]
        ids = torch.cat([self.position_ids, self.position_ids[:, -1:].expand(-1, extra)], dim=1)
        return Batch(F.pad(self.inputs, (0, extra), value=PAD), F.pad(self.targets, (0, extra), value=IGNORE), ids,
                     self.examples)


def collate(examples: list[Example], offsets=None) -> Batch:
    """Right-pad a list of examples. With causal attention, right padding never influences the
    real positions, so no key-padding mask is needed. `offsets` shift each example's IDs."""
    T = max(len(e.inputs) for e in examples)
    B = len(examples)
    inputs = np.full((B, T), PAD, dtype=np.int64)
    targets = np.full((B, T), IGNORE, dtype=np.int64)
    positions = np.zeros((B, T), dtype=np.int64)
    for b, e in enumerate(examples):
        n = len(e.inputs)
        inputs[b, :n] = e.inputs
        targets[b, :n] = np.where(e.loss_mask, e.targets, IGNORE)
        positions[b] = pad_ids(shifted_ids(e, 0 if offsets is None else offsets[b]), T)
    return Batch(torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(positions), examples)


class TrainingSet:
    """A fixed training set: up to `size` distinct examples (by tokens and targets) drawn once from
    the run's seed, as the formal-language papers train on a de-duplicated set. Where the training
    lengths hold fewer distinct examples (a periodic language has one string per length), the set is
    all of those found in `size * DRAWS_PER_EXAMPLE` draws. Epochs visit every example once, each in
    its own shuffled order."""

    def __init__(self, task: Task, seed: int, size: int, lengths: tuple[int, int]):
        rng = np.random.default_rng([DATASET_STREAM, seed])
        self.seed, self.examples, seen = seed, [], set()
        for _ in range(size * DRAWS_PER_EXAMPLE):
            example = task.sample_window(rng, *lengths)
            identity = (example.inputs.tobytes(), example.targets.tobytes())
            if identity not in seen:
                seen.add(identity)
                self.examples.append(example)
                if len(self.examples) == size:
                    break
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.examples)

    def order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            if len(self._orders) > 2:  # steps move forward: older epochs are not asked again
                self._orders.pop(min(self._orders))
            self._orders[epoch] = np.random.default_rng([DATASET_STREAM, self.seed, epoch]).permutation(len(self))
        return self._orders[epoch]

    def batch(self, step: int, batch_size: int) -> list[Example]:
        """The examples of training step `step`: positions step·B … step·B + B − 1 of the epochs laid
        end to end."""
        spots = (divmod(i, len(self)) for i in range(step * batch_size, (step + 1) * batch_size))
        return [self.examples[self.order(epoch)[j]] for epoch, j in spots]


def train_batch(task: Task, seed: int, step: int, batch_size: int, lengths: tuple[int, int],
                offset_max_length: int | None, position_sampler: PositionSampler | None = None,
                training_set: TrainingSet | None = None) -> Batch:
    """The batch of training step `step`: fresh examples, or the step's share of `training_set`.
    With `offset_max_length`, each example gets a random position offset
    (`positions.draw_offsets`, APE: docs/design.md §4.2). With `position_sampler` (randomized positions),
    each example's IDs are redrawn."""
    rng = np.random.default_rng([seed, step])
    if training_set is None:
        examples = [task.sample_window(rng, *lengths) for _ in range(batch_size)]  # lengths as the task draws them
    else:
        examples = training_set.batch(step, batch_size)
    ns = [e.length for e in examples]
    offsets = None if offset_max_length is None else draw_offsets(rng, task, ns, offset_max_length)
    if position_sampler is not None:
        examples = with_positions(examples, position_sampler, rng)
    return collate(examples, offsets)


class TrainBatches:
    """`train_batch` for (seed, step) pairs, drawn in this process or by `workers` processes ahead.

    Sampling is Python code per example: on a GPU a tiny model's step takes less time than
    drawing its batch, so with workers the next batches are drawn while the current one trains.
    Batches are pure functions of (seed, step), so workers change when a batch is made, never
    what it holds. Ahead of a request for (seed, step), steps up to `lookahead` further (and below
    `stop`) of the same seed are queued. Use as a context manager: leaving it stops the workers.
    """

    def __init__(self, task: Task, batch_size: int, lengths: tuple[int, int], offset_max_length: int | None,
                 position_sampler=None, workers: int = 0, stop: int | None = None, lookahead: int | None = None,
                 dataset_size: int | None = None):
        self.args = (batch_size, tuple(lengths), offset_max_length)
        self.task, self.position_sampler, self.stop = task, position_sampler, stop
        self.training_sets = TrainingSets(task, dataset_size, tuple(lengths))
        self.lookahead = lookahead or 2 * workers
        self.pending: dict[tuple[int, int], object] = {}  # (seed, step) -> future
        self.served: dict[tuple[int, int], Batch] = {}  # the latest batch handed out per seed
        self.pool = None
        if workers:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a forked child would inherit torch's thread pools and open files.
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_batch_worker_init,
                                            initargs=(os.getpid(), task, position_sampler, self.args,
                                                      self.training_sets.size))

    def __call__(self, seed: int, step: int) -> Batch:
        for table in (self.pending, self.served):  # earlier steps of this seed are not asked again
            for key in [k for k in table if k[0] == seed and k[1] < step]:
                old = table.pop(key)
                if table is self.pending:
                    old.cancel()
        if (seed, step) in self.served:  # ensemble members that differ only in learning rate
            return self.served[(seed, step)]
        if self.pool is None:
            batch = train_batch(self.task, seed, step, *self.args, self.position_sampler, self.training_sets(seed))
        else:
            last = step + self.lookahead if self.stop is None else min(step + self.lookahead, self.stop - 1)
            for s in range(step, max(last, step) + 1):
                if (seed, s) not in self.pending:
                    self.pending[(seed, s)] = self.pool.submit(_batch_worker_draw, seed, s)
            inputs, targets, positions, examples = self.pending.pop((seed, step)).result()
            batch = Batch(torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(positions), examples)
        self.served[(seed, step)] = batch
        return batch

    def __enter__(self) -> "TrainBatches":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class TrainingSets:
    """Each seed's fixed training set, drawn when first asked for; None throughout without a size."""

    def __init__(self, task: Task, size: int | None, lengths: tuple[int, int]):
        self.task, self.size, self.lengths = task, size, lengths
        self.sets: dict[int, TrainingSet] = {}

    def __call__(self, seed: int) -> TrainingSet | None:
        if self.size is None:
            return None
        if seed not in self.sets:
            self.sets[seed] = TrainingSet(self.task, seed, self.size, self.lengths)
        return self.sets[seed]


_worker_state: dict = {}


def _batch_worker_init(parent: int, task: Task, position_sampler, args: tuple, dataset_size: int | None) -> None:
    exit_with_parent(parent)  # a killed run must not leave its batch workers behind
    torch.set_num_threads(1)
    _worker_state.update(task=task, sampler=position_sampler, args=args,
                         sets=TrainingSets(task, dataset_size, args[1]))


def _batch_worker_draw(seed: int, step: int):
    """One batch as numpy arrays: torch tensors would travel as shared-memory handles, one file
    descriptor each, and a long run would exhaust them."""
    w = _worker_state
    b = train_batch(w["task"], seed, step, *w["args"], w["sampler"], w["sets"](seed))
    return b.inputs.numpy(), b.targets.numpy(), b.position_ids.numpy(), b.examples


# What one more sub-batch costs, in padded tokens: its fixed share of a step (a forward and a
# backward pass launched, Python) measured against the per-token cost of the presets' models.
PART_COST_TOKENS = 96
MOST_PARTS = 8


def auto_parts(lengths: np.ndarray) -> int:
    """How many length-sorted sub-batches compute the fewest tokens, each one beyond the first
    counted as PART_COST_TOKENS more: 1 when the lengths are equal, more as they spread."""
    ordered = np.sort(lengths)
    costs = [sum(len(rows) * int(rows[-1]) for rows in np.array_split(ordered, parts)) + (parts - 1) * PART_COST_TOKENS
             for parts in range(1, min(MOST_PARTS, len(ordered)) + 1)]
    return 1 + int(np.argmin(costs))


def length_buckets(batch: Batch, parts: int | str) -> list[tuple[Batch, torch.Tensor]]:
    """Split a step's batch into up to `parts` sub-batches of examples sorted by length ("auto":
    as many as `auto_parts` finds cheapest), each cut to its own longest example, so short examples
    stop paying for the longest one's padding.
    Each comes with the factor that turns its mean loss into its share of the whole batch's mean
    loss (its scored targets / the batch's), so summed sub-batch losses give the step's gradient.
    Sub-batches without scored targets are dropped (they contribute nothing)."""
    lengths = np.array([len(e.inputs) for e in batch.examples])
    if parts == "auto":
        parts = auto_parts(lengths)
    if parts == 1:
        return [(batch, torch.ones(()))]
    lengths = torch.from_numpy(lengths)
    scored = (batch.targets != IGNORE).sum(dim=1)
    total = scored.sum()
    out = []
    for rows in torch.argsort(lengths, stable=True).tensor_split(parts):
        if len(rows) == 0 or scored[rows].sum() == 0:
            continue
        T = int(lengths[rows].max())
        part = Batch(batch.inputs[rows, :T], batch.targets[rows, :T], batch.position_ids[rows, :T],
                     [batch.examples[int(r)] for r in rows])
        out.append((part, scored[rows].sum() / total))
    return out


def eval_examples(task: Task, lo: int, hi: int, count: int, tag: int = 0, **overrides) -> list[Example]:
    """A fixed evaluation set: `count` examples with lengths uniform over the task's valid lengths
    in [lo, hi]. The set depends
    only on (task parameters, bin, tag, overrides), never on a training seed."""
    key = [EVAL_STREAM, tag, lo, hi] + [int(v) for v in overrides.values()]
    rng = np.random.default_rng(key)
    return [task.sample_window(rng, lo, hi, **overrides) for _ in range(count)]


def batches(examples: list[Example], batch_size: int):
    """Evaluation batches of similar lengths, to waste little compute on padding."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].inputs))
    for i in range(0, len(order), batch_size):
        yield collate([examples[j] for j in order[i:i + batch_size]])
