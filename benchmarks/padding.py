"""Fraction of useful tokens in training batches, now and with length bucketing.

Training batches are right-padded to the longest example of the batch (data.collate), so every
padded position costs a full forward/backward for nothing. This script draws the real training
batches (data.train_batch, a pure function of (seed, step)) and reports, per task:

- real:   non-padding tokens / computed tokens (B x T summed over batches);
- scored: loss-masked target tokens / computed tokens (what actually trains the model);

for the current layout and for the same examples split into length-sorted sub-batches (each
padded to its own longest example). Sorting a step's own examples keeps every batch a pure
function of (seed, step) and the step's gradient unchanged when the sub-batch losses are summed
with weights (scored tokens in sub-batch) / (scored tokens in the step).

    python benchmarks/padding.py
    python benchmarks/padding.py --task unique_copy --lengths 1 50 --splits 1 2 4 8
"""

from __future__ import annotations

import argparse

import numpy as np

from lengthgen.data import IGNORE, train_batch
from lengthgen.tasks import make_task

DEFAULT_CASES = [("sparse_parity", 6, 32), ("unique_copy", 1, 50)]


def fractions(task, lengths: tuple[int, int], splits: int, batch_size: int, steps: int) -> tuple[float, float]:
    """(real, scored) token fractions over `steps` batches cut into `splits` sorted sub-batches."""
    computed = real = scored = 0
    for step in range(steps):
        batch = train_batch(task, 0, step, batch_size, lengths, None)
        n_real = np.array([len(e.inputs) for e in batch.examples])
        n_scored = (batch.targets != IGNORE).sum(dim=1).numpy()
        order = np.argsort(n_real, kind="stable")
        for part in np.array_split(order, splits):
            computed += len(part) * n_real[part].max()
            real += n_real[part].sum()
            scored += n_scored[part].sum()
    return real / computed, scored / computed


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", help="task name (default: sparse_parity 6-32 and unique_copy 1-50)")
    p.add_argument("--lengths", nargs=2, type=int, metavar=("LO", "HI"), help="training lengths, inclusive")
    p.add_argument("--splits", nargs="+", type=int, default=[1, 2, 4, 8], help="sorted sub-batches per step")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=200, help="batches drawn per case")
    args = p.parse_args(argv)
    if (args.task is None) != (args.lengths is None):
        p.error("--task and --lengths go together")
    if any(s < 1 or s > args.batch_size for s in args.splits):
        p.error(f"--splits must lie in 1..{args.batch_size} (the batch size), got {args.splits}")
    cases = [(args.task, *args.lengths)] if args.task else DEFAULT_CASES
    print(f"batch {args.batch_size}, {args.steps} steps (seed 0); fractions of computed tokens")
    print(f"{'task':<16}{'lengths':<10}{'sub-batches':>12}{'real':>8}{'scored':>8}")
    for name, lo, hi in cases:
        task = make_task(name)
        for splits in args.splits:
            real, scored = fractions(task, (lo, hi), splits, args.batch_size, args.steps)
            print(f"{name:<16}{f'{lo}-{hi}':<10}{splits:>12}{real:>8.1%}{scored:>8.1%}")


if __name__ == "__main__":
    main()
