"""What `train.length_buckets: auto` chooses, against every fixed count, on real training batches.

For each case (a preset's model and task), 30 training batches of 64 are trained one step each with
1, 2, 3, 4, 6 and 8 length-sorted sub-batches and with `auto`, in rounds of 10 batches; printed: the
median milliseconds per step by count, auto's mean count, and a least-squares fit of step time =
a x sub-batches + b x computed tokens + c, whose a / b is what one more sub-batch costs in tokens
(`data.PART_COST_TOKENS` is set from it).

    OMP_NUM_THREADS=1 python benchmarks/buckets_auto.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from lengthgen.config import load_run_config
from lengthgen.data import PART_COST_TOKENS, length_buckets, train_batch
from lengthgen.training.build import build_model, loss_on, make_optimizer, offset_length

CASES = {
    "demo (sparse_parity 8-24, RoPE 2L/4H/d64)": ("sparse_parity", {"k": [1, 6]}, [8, 24], "rope", 2, 4, 64),
    "sparsity preset (sparse_parity 8-32, RoPE 2L/4H/d64)": ("sparse_parity", {"k": [1, 8]}, [8, 32], "rope", 2, 4, 64),
    "sort 1-50, APE 1L/2H/d256": ("sort", {}, [1, 50], "ape", 1, 2, 256),
    "sort 1-50, NoPE 1L/1H/d16": ("sort", {}, [1, 50], "nope", 1, 1, 16),
}
COUNTS = (1, 2, 3, 4, 6, 8, "auto")


def measure(task_name, params, lengths, scheme, layers, heads, width) -> list[tuple]:
    cfg = load_run_config({"task": {"name": task_name, "params": params, "train_lengths": lengths},
                           "model": {"positional": scheme, "n_layers": layers, "n_heads": heads, "d_model": width}})
    task = cfg.task.build()
    torch.manual_seed(0)
    model = build_model(cfg, task)
    opt = make_optimizer(model, cfg)
    batches = [train_batch(task, 0, s, 64, tuple(lengths), offset_length(cfg)) for s in range(30)]
    rows = []
    for round_ in range(3):
        for count in COUNTS:
            for batch in batches[10 * round_:10 * round_ + 10]:
                pieces = length_buckets(batch, count)
                start = time.perf_counter()
                opt.zero_grad(set_to_none=True)
                for part, share in pieces:
                    (share * loss_on(model, part, False, torch.device("cpu"), scored_only=True)).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                rows.append((count, len(pieces), sum(p.inputs.numel() for p, _ in pieces), time.perf_counter() - start))
    return rows


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; PART_COST_TOKENS = {PART_COST_TOKENS}\n")
    print("| case | " + " | ".join(f"{c} ms" for c in COUNTS) + " | auto's mean count | one sub-batch costs |")
    print("|---|" + "---:|" * (len(COUNTS) + 2))
    for name, case in CASES.items():
        rows = measure(*case)
        fixed = [r for r in rows if r[0] != "auto"]
        a, b, _ = np.linalg.lstsq(np.array([[r[1], r[2], 1.0] for r in fixed]), np.array([r[3] for r in fixed]),
                                  rcond=None)[0]
        medians = [1e3 * statistics.median(r[3] for r in rows if r[0] == c) for c in COUNTS]
        auto_count = statistics.mean(r[1] for r in rows if r[0] == "auto")
        print(f"| {name} | " + " | ".join(f"{m:.1f}" for m in medians) + f" | {auto_count:.1f} | {a / b:.0f} tokens |",
              flush=True)


if __name__ == "__main__":
    main()
