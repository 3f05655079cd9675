"""Ensemble training against the same runs trained one after another, side by side.

E runs (seeds 0..E-1, learning rates alternating 1e-3 / 3e-3) of one architecture are trained
twice, end to end through the real entry points: E calls of `train_run`, and one call of
`train_ensemble`. Both do the same steps on the same batches; in-distribution checks and the final
evaluation are kept small so that training dominates. Rounds alternate the two (in rotating
order) so that load from other jobs on a shared machine hits them alike; the reported ratio is the
median over rounds of sequential time / ensemble time, which is also the tokens/s ratio.

    python benchmarks/ensemble.py                    # CPU: 8 runs of 2 layers, width 64
    python benchmarks/ensemble.py --device cuda --members 8 --steps 200 --data-workers 4
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import torch

from lengthgen.config import load_run_config
from lengthgen.data import train_batch
from lengthgen.training.ensemble import train_ensemble
from lengthgen.store import ResultsStore
from lengthgen.training import train_run


def configs(args) -> list:
    base = {"task": {"name": "sparse_parity", "params": {"k": [1, 3]}, "train_lengths": [10, 30],
                     "eval_bins": [[10, 30]]},
            "model": {"n_layers": args.layers, "n_heads": args.heads, "d_model": args.width},
            "train": {"steps": args.steps, "batch_size": args.batch, "early_stop_acc": None,
                      "eval_every": args.steps, "eval_examples": 64, "checkpoint_every": 10 ** 6},
            "eval": {"examples_per_bin": 64, "greedy": False},
            "device": args.device, "data_workers": args.data_workers}
    return [load_run_config({**base, "seed": m, "train": {**base["train"], "lr": (1e-3, 3e-3)[m % 2]}})
            for m in range(args.members)]


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--data-workers", type=int, default=0,
                   help="processes drawing batches ahead, for both contenders (config data_workers)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = configs(args)
    task = runs[0].task.build()
    per_step = statistics.mean(int((train_batch(task, 0, s, args.batch, runs[0].task.train_lengths, None).inputs
                                    != 0).sum()) for s in range(5))
    tokens = per_step * args.steps * args.members  # <pad> is token 0: real tokens only
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, device {args.device}, {args.data_workers} data workers")
    print(f"{args.members} runs x {args.steps} steps, batch {args.batch}, {args.layers} layers / {args.heads} heads / "
          f"width {args.width}; about {tokens / 1e6:.2f} M training tokens per contender")
    contenders = {
        "sequential": lambda store: [train_run(c, store) for c in runs],
        "ensemble": lambda store: train_ensemble(runs, store),
    }
    times = {name: [] for name in contenders}
    for r in range(args.rounds):
        order = list(contenders)[r % 2:] + list(contenders)[:r % 2]
        for name in order:
            with tempfile.TemporaryDirectory() as root:
                times[name].append(timed(lambda: contenders[name](ResultsStore(root))))
        print(f"round {r}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in contenders))
    ratio = statistics.median(s / e for s, e in zip(times["sequential"], times["ensemble"]))
    for name, ts in times.items():
        print(f"{name:>10}: median {statistics.median(ts):.2f}s, {tokens / statistics.median(ts):,.0f} tokens/s")
    print(f"ensemble / sequential tokens/s ratio: {ratio:.2f}x (median over {args.rounds} rounds)")


if __name__ == "__main__":
    main()
