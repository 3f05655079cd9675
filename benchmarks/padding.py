"""Fraction of useful tokens in training batches, now and with length bucketing.

Training batches are right-padded to the longest example of the batch (data.collate), so every
padded position costs a full forward/backward for nothing. This script draws the real training
batches (data.train_batch, a pure function of (seed, step)) and reports, per task:

- real:   non-padding tokens / computed tokens (B x T summed over batches);
- scored: loss-masked target tokens / computed tokens (what actually trains the model);

for the current layout and for the same examples split into length-sorted sub-batches (each
padded to its own longest example). Sorting a step's own examples keeps every batch a pure
function of (seed, step) and the step's gradient unchanged when the sub-batch losses are summed
with weights (scored tokens in sub-batch) / (scored tokens in the step): that is
`train.length_buckets` (data.length_buckets). With `--time`, it also times real training steps
(forward, backward, AdamW) per setting, interleaved in one process, and prints steps/s relative to
one padded batch.

    python benchmarks/padding.py
    python benchmarks/padding.py --time --threads 1
    python benchmarks/padding.py --task unique_copy --lengths 1 50 --splits 1 2 4 8
    python benchmarks/padding.py --task sort --lengths 1 16 --splits 1 2 4 --time --threads 1 --size 1/2/256
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lengthgen.config import load_run_config
from lengthgen.data import IGNORE, length_buckets, train_batch
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


def steps_per_second(name: str, lengths: tuple[int, int], splits_list: list[int], batch_size: int,
                     size: tuple[int, int, int] = (2, 4, 64), rounds: int = 3, steps: int = 15) -> dict[int, float]:
    """Training steps/s of a (layers, heads, width) model per number of sorted sub-batches, interleaved."""
    from lengthgen.training.build import build_model, loss_on, make_optimizer

    layers, heads, width = size
    cfg = load_run_config({"task": {"name": name, "train_lengths": list(lengths)},
                           "model": {"n_layers": layers, "n_heads": heads, "d_model": width}})
    task = cfg.task.build()
    model = build_model(cfg, task)
    opt = make_optimizer(model, cfg)
    cpu = torch.device("cpu")
    batches = [train_batch(task, 0, step, batch_size, lengths, None) for step in range(steps)]
    elapsed = {s: 0.0 for s in splits_list}
    for r in range(rounds + 1):  # round 0 warms up
        for splits in splits_list:
            start = time.perf_counter()
            for batch in batches:
                opt.zero_grad(set_to_none=True)
                for part, share in length_buckets(batch, splits):
                    (share * loss_on(model, part, False, cpu)).backward()
                opt.step()
            if r:
                elapsed[splits] += time.perf_counter() - start
    return {s: rounds * steps / elapsed[s] for s in splits_list}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", help="task name (default: sparse_parity 6-32 and unique_copy 1-50)")
    p.add_argument("--lengths", nargs=2, type=int, metavar=("LO", "HI"), help="training lengths, inclusive")
    p.add_argument("--splits", nargs="+", type=int, default=[1, 2, 4, 8], help="sorted sub-batches per step")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=200, help="batches drawn per case")
    p.add_argument("--time", action="store_true", help="also time real training steps per setting")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--size", default="2/4/64", help="model timed by --time, layers/heads/width (default 2/4/64)")
    args = p.parse_args(argv)
    if (args.task is None) != (args.lengths is None):
        p.error("--task and --lengths go together")
    try:
        size = tuple(int(v) for v in args.size.split("/"))
    except ValueError:
        size = ()
    if len(size) != 3 or min(size) < 1 or size[2] % size[1]:
        p.error(f"--size must be layers/heads/width, whole numbers >= 1 with width divisible by heads, got {args.size!r}")
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
    if not args.time:
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"\ntraining steps/s ({size[0]} layers, {size[1]} heads, d={size[2]}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads)")
    print(f"{'task':<16}{'lengths':<10}{'sub-batches':>12}{'steps/s':>9}{'x 1 batch':>11}")
    for name, lo, hi in cases:
        rates = steps_per_second(name, (lo, hi), args.splits, args.batch_size, size)
        for splits, rate in rates.items():
            print(f"{name:<16}{f'{lo}-{hi}':<10}{splits:>12}{rate:>9.2f}{rate / rates[args.splits[0]]:>10.2f}x")


if __name__ == "__main__":
    main()
