"""Every position-ID rule, in one place (docs/design.md §2: position IDs are data).

A task gives each example its IDs (`Example.position_ids`, None for the sequential 0..T-1); the
model consumes whatever IDs it is given. What happens to them between the two is decided here:

- sequential IDs and the IDs of an example (`example_ids`);
- random training offsets: which runs use them (`uses_offsets`), how far an example may be shifted
  (`max_offset`, by the rule of `OFFSET_RULES` the task names in `offset_rule`; a task family may fix
  its own range, docs/design.md §4.2), the draw (`draw_offsets`) and the shift itself (`shifted_ids`,
  from the example's `offset_from` on);
- the size of a learned position table that serves every evaluation length and every shifted
  training example (`table_size`);
- random subsets of IDs (Ruoss et al.'s randomized positions, `subset_positions`), applied to
  training and evaluation examples (`with_positions`) when the positional scheme asks for them;
- padding IDs (`pad_ids`: padding repeats the last real ID, so it stays inside the table);
- PoSE (`pose_position_ids`): skip-wise IDs that let a short window cover a longer target window.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from .errors import InputError
from .tasks import Example, Task

OFFSET_MODES = ("auto", "random", "none")

# (rng, ids) -> ids: a data transform that redraws an example's IDs (randomized positions).
PositionSampler = Callable[[np.random.Generator, np.ndarray], np.ndarray]


def example_ids(example: Example) -> np.ndarray:
    """The example's own IDs, or the sequential 0..T-1."""
    return np.arange(len(example.inputs)) if example.position_ids is None else example.position_ids


def shifted_ids(example: Example, offset: int) -> np.ndarray:
    """The example's IDs with a training offset added from `example.offset_from` on (Cho et al.'s
    random start leaves <bos> at ID 0)."""
    ids = example_ids(example).copy()
    ids[example.offset_from:] += offset
    return ids


def pad_ids(ids: np.ndarray, length: int) -> np.ndarray:
    """`ids` right-padded to `length` by repeating the last ID (padding must stay in the table)."""
    return np.concatenate([ids, np.full(length - len(ids), ids[-1], dtype=ids.dtype)])


def uses_offsets(mode: str, has_table: bool, predicts_positions: bool) -> bool:
    """Whether training shifts every example by a random offset. "auto": for schemes with a finite
    position table (every entry must be trained) and for PPC, whose head classifies absolute IDs."""
    return mode == "random" or (mode == "auto" and (has_table or predicts_positions))


# (task, length, longest) -> the largest random offset of an example of `length` when the model
# serves lengths up to `longest`.
OffsetRule = Callable[[Task, int, int], int]

# The offset rules a task can name (`Task.offset_rule`), each after the code it follows.
OFFSET_RULES: dict[str, OffsetRule] = {
    # The general rule: far enough for the example's last ID to reach the longest sequence's last ID.
    "longest_sequence": lambda task, n, longest: max(0, task.seq_len(longest) - task.seq_len(n)),
    # Huang et al.'s algorithmic tasks (lacoco-lab/length_generalization,
    # algorithmic/language_modeling_train.py), with the longest length served in place of their 150:
    # [0, longest − n] where the answer is short (both majorities, the interleaved one, parity) ...
    "input_gap": lambda task, n, longest: max(0, longest - n),
    # ... twice that where the answer is as long as the input (unique_copy, repeat_copy, sort) ...
    "double_input_gap": lambda task, n, longest: 2 * max(0, longest - n),
    # ... and for addition their bound 2·longest − (the whole sequence, <bos> to <eos>), counted with
    # the longest possible answer (theirs uses the example's own), so the table has 2·longest rows.
    "addition_window": lambda task, n, longest: max(0, 2 * longest - (task.seq_len(n) + 1)),
    # Cho et al.'s random start for coupled IDs (HanseulJo/position-coupling; tasks/coupled.py): the
    # largest shifted ID of a short training example reaches the largest ID of the longest
    # evaluation length. Only tasks with coupled IDs (`max_id`) name it.
    "coupled_ids": lambda task, n, longest: max(0, task.max_id(longest) - task.max_id(n)),
    # Huang et al.'s formal languages (train_with_ce.py offset_and_forward): every example shifted by
    # k uniform in [0, L), L the longest test sequence, whatever its length; the table then has
    # about 2L rows, as their n_positions = 2 * max_seq_length.
    "longest_test_sequence": lambda task, n, longest: task.seq_len(longest) - 1,
}


def max_offset(task: Task, length: int, longest: int) -> int:
    """Largest random offset for an example of `length` when the model serves lengths up to
    `longest`, by the rule the task declares (`Task.offset_rule`, one of `OFFSET_RULES`)."""
    rule = OFFSET_RULES.get(task.offset_rule)
    if rule is None:
        raise InputError(f"task {task.name!r}: unknown offset rule {task.offset_rule!r}; "
                         f"allowed: {', '.join(OFFSET_RULES)}")
    return rule(task, length, longest)


def draw_offsets(rng: np.random.Generator, task: Task, lengths: list[int], longest: int) -> list[int]:
    """One offset per example, uniform over [0, max_offset]."""
    return [int(rng.integers(0, max_offset(task, n, longest) + 1)) for n in lengths]


def table_size(task: Task, train_lengths: tuple[int, int], longest: int, offsets: bool) -> int:
    """Rows of a position table that serves the longest length and every (shifted) training example."""
    need = task.seq_len(longest)
    if offsets:
        lo, hi = train_lengths
        need = max([need] + [task.seq_len(n) + max_offset(task, n, longest) for n in task.valid_lengths(lo, hi)])
    return need


def subset_positions(span: int, rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    """`ids` mapped through a sorted random subset of [0, span): order and equal IDs are kept."""
    size = int(ids.max()) + 1
    if size > span:
        raise InputError(f"randomized: position ID {size - 1} does not fit in span {span}; raise "
                         "model.positional_params.span")
    subset = np.sort(rng.choice(span, size=size, replace=False))
    return subset[ids]


def with_positions(examples: list[Example], sampler: PositionSampler, rng: np.random.Generator) -> list[Example]:
    """Each example with its IDs (its own, else 0..T-1) redrawn by `sampler(rng, ids)`."""
    return [replace(e, position_ids=sampler(rng, example_ids(e))) for e in examples]


def pose_position_ids(target_window: int, chunks: int, rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    """PoSE (Zhu et al., ICLR 2024, §3.2): skip-wise position IDs that make a short training window
    cover the relative distances of a longer `target_window` Lt.

    The example's n tokens are cut into `chunks` N contiguous chunks at N−1 distinct uniform cut
    points; chunk i gets the skipping bias u_i ~ U{u_{i−1}, …, Lt − n} with u_0 = 0 (their eq. 4),
    added to its IDs. So IDs stay sorted, consecutive inside a chunk, and below Lt. A `(rng, ids)`
    transform like randomized positions (data.train_batch's `position_sampler`); `ids` are the
    example's own IDs (0..n−1 for language modelling) and Lt − n becomes Lt − (max ID + 1).
    Departure from the paper: the text stays contiguous (their content skip v_i = 0, an ablation
    they report), since only position IDs are a data transform here.
    """
    n = len(ids)
    slack = target_window - (int(ids.max()) + 1)
    if slack < 0:
        raise InputError(f"pose: position ID {int(ids.max())} does not fit in the target window {target_window}; "
                         "raise train.pose_window")
    if not 1 <= chunks <= n:
        raise InputError(f"pose: chunks must be in [1, {n}] for a window of {n} tokens, got {chunks}")
    cuts = np.sort(rng.choice(np.arange(1, n), size=chunks - 1, replace=False))
    skips = np.zeros(chunks, dtype=np.int64)
    for i in range(1, chunks):
        skips[i] = rng.integers(skips[i - 1], slack + 1)
    chunk_of = np.searchsorted(cuts, np.arange(n), side="right")
    return np.asarray(ids, dtype=np.int64) + skips[chunk_of]
