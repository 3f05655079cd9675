"""Greedy decoding with the key/value cache against the same decoding that recomputes the prefix.

Both decode the same evaluation batches (sorted by length, as `evaluate` batches them) of an
untrained model position by position, feeding each prediction back; the peer runs a full forward
pass over the prefix at every position, lengthgen's `greedy_predictions` one token per position
through the cache. The script checks that both predict the same tokens and prints the median
over repeats of the per-repeat time ratio peer / cached.

    python benchmarks/decoding.py --threads 1
    python benchmarks/decoding.py --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lengthgen.config import load_run_config
from lengthgen.data import IGNORE, batches, eval_examples
from lengthgen.evaluate import greedy_predictions
from lengthgen.training.build import build_model

CASES = [("sort", (1, 50), (101, 150)), ("unique_copy", (1, 50), (101, 150)), ("sparse_parity", (8, 32), (97, 128))]


@torch.no_grad()
def greedy_recomputing(model, batch) -> torch.Tensor:
    """The peer: the same greedy decoding, with a full forward pass over the prefix per position."""
    inputs, T = batch.inputs.clone(), batch.inputs.shape[1]
    starts = torch.tensor([e.answer_start for e in batch.examples], device=inputs.device)
    lengths = torch.tensor([len(e.inputs) for e in batch.examples], device=inputs.device)
    scored = batch.targets != IGNORE
    last = T - 1 - scored.flip(1).int().argmax(1)
    preds = model(inputs, batch.position_ids).logits.argmax(-1)
    for t in range(int(starts.min()), int(last.max()) + 1):
        step_pred = model(inputs[:, :t + 1], batch.position_ids[:, :t + 1]).logits[:, -1].argmax(-1)
        active = (starts <= t) & (t <= last)
        preds[active, t] = step_pred[active]
        feed = active & (t + 1 < lengths)
        if t + 1 < T:
            inputs[feed, t + 1] = step_pred[feed]
    return preds


def timed(fn, device) -> tuple[float, list[torch.Tensor]]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--examples", type=int, default=128, help="examples per case (default: 128)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}; 2 layers, 4 heads, "
          f"width 64, {args.examples} examples per case, batches of {args.batch_size}\n")
    print(f"{'task':<15}{'bin':<12}{'recompute s':>12}{'cached s':>10}{'ratio':>8}")
    for name, train_lengths, (lo, hi) in CASES:
        cfg = load_run_config({"task": {"name": name, "train_lengths": list(train_lengths), "eval_bins": [[lo, hi]]},
                               "model": {"n_layers": 2, "n_heads": 4, "d_model": 64}})
        task = cfg.task.build()
        torch.manual_seed(0)
        model = build_model(cfg, task).to(device).eval()
        data = [b.to(device) for b in batches(eval_examples(task, lo, hi, args.examples), args.batch_size)]
        contenders = {"recompute": lambda: [greedy_recomputing(model, b) for b in data],
                      "cached": lambda: [greedy_predictions(model, b) for b in data]}
        times: dict[str, list[float]] = {n: [] for n in contenders}
        outputs = {}
        for r in range(args.repeats):
            for n in list(contenders)[r % 2:] + list(contenders)[:r % 2]:
                seconds, outputs[n] = timed(contenders[n], device)
                times[n].append(seconds)
        same = all(torch.equal(a, b) for a, b in zip(outputs["recompute"], outputs["cached"]))
        ratio = statistics.median(r / c for r, c in zip(times["recompute"], times["cached"]))
        print(f"{name:<15}{f'[{lo},{hi}]':<12}{statistics.median(times['recompute']):>12.2f}"
              f"{statistics.median(times['cached']):>10.2f}{ratio:>7.1f}x"
              f"{'' if same else '  PREDICTIONS DIFFER'}", flush=True)


if __name__ == "__main__":
    main()
