"""Where a CPU preset cell's time goes, and whether torch.compile pays end to end.

One representative cell of the algorithmic CPU preset (`sort`, APE, trained on lengths 1-16, bins
[1,16] [17,32] [33,48], 2 layers / 4 heads / d=64, batch 64, the preset's optimizer, schedule and
checks; early stop off so that every variant trains exactly --steps steps) is trained through the
real entry point, `training.loop.train_run`, into a throwaway store. The functions the loop calls
are wrapped with timers (they still run unchanged):

    setup        loop.start_run           task, model, optimizer
    data         data.train_batch         drawing and collating the step's batch
    train step   loop.train_step          forward, backward, clipping, AdamW, schedule
    id checks    loop.stops_early         the in-distribution check every eval_every steps
    checkpoints  loop.save_checkpoint     every checkpoint_every steps
    final        loop.finish              final evaluation (lifecycle.final_metrics), model file, store
    other        the rest of train_run    loop bookkeeping, curves

Variants, one after the other in this process (same seed, same batches):

    eager        the loop as it is
    compiled     a prototype, here only: each training batch right-padded to the next of --buckets
                 fixed lengths (padding is never scored and, with causal attention, never seen by a
                 real position: the loss is the same), and the training forward (with its backward)
                 run by torch.compile(model, dynamic=False, fullgraph=True), so it compiles once per
                 bucket. APE's bounds check reads the largest position ID on the host
                 (`int(position_ids.max())`), which breaks the graph; here it is done on the step's
                 batch before the compiled forward, and the table lookup runs unchecked. The
                 in-distribution checks and the final evaluation stay eager (they run `run.model`;
                 their IDs are within the table by construction of max_positions).
    compiled-asis  the same, but the model as it is (APE's check inside: one graph break per forward)
    padded       eager with the same padding, to tell the two effects apart

Inductor compiles into a fresh cache directory (a cold compile, as a run's first), with one compile
thread. Prints each variant's breakdown, its compile cost, and compiled / eager end to end.

    OMP_NUM_THREADS=1 python benchmarks/cpu_preset_profile.py                  # 2000 steps
    OMP_NUM_THREADS=1 python benchmarks/cpu_preset_profile.py --variants eager compiled compiled-asis padded
    OMP_NUM_THREADS=1 python benchmarks/cpu_preset_profile.py --steps 200 --variants eager padded
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from unittest import mock

import torch
import torch._inductor.config

import lengthgen.data
from lengthgen.config import load_run_config
from lengthgen.model.positional import LearnedAbsolute
from lengthgen.store import ResultsStore
from lengthgen.training import loop

PIECES = [("setup", loop, "start_run"), ("data", lengthgen.data, "train_batch"), ("train step", loop, "train_step"),
          ("id checks", loop, "stops_early"), ("checkpoints", loop, "save_checkpoint"), ("final", loop, "finish")]


def cell_config(steps: int) -> dict:
    """The sort/APE cell with the algorithmic CPU preset's training settings, shrunk lengths."""
    return {"name": "profile sort/ape", "seed": 0, "device": "cpu",
            "task": {"name": "sort", "train_lengths": [1, 16], "eval_bins": [[1, 16], [17, 32], [33, 48]]},
            "model": {"positional": "ape", "n_layers": 2, "n_heads": 4, "d_model": 64},
            "train": {"steps": steps, "batch_size": 64, "lr": 1.0e-3, "weight_decay": 0.01, "warmup_steps": 50,
                      "schedule": "linear", "position_offset": "auto", "eval_every": 200, "eval_examples": 256,
                      "early_stop_acc": None, "checkpoint_every": 200},
            "eval": {"examples_per_bin": 500, "batch_size": 250, "greedy": False}}


class Timer:
    """Seconds and per-call durations per piece, from wrappers around the real functions."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, list[float]] = {}

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took = time.perf_counter() - start
                self.seconds[name] = self.seconds.get(name, 0.0) + took
                self.calls.setdefault(name, []).append(took)
        return timed


def bucketed_train_step(buckets: list[int], compile_mode: str | None, shapes: dict):
    """loop.train_step with the batch padded to the next bucket and, with `compile_mode` ("full":
    APE's check hoisted out of the graph; "asis"), a compiled net."""
    real_step = loop.train_step
    nets: dict[int, torch.nn.Module] = {}

    def step(run, net, batch, share, dp):
        length = next(b for b in buckets if b >= batch.inputs.shape[1])
        shapes[length] = shapes.get(length, 0) + 1
        if compile_mode == "full":
            top = int(batch.position_ids.max())  # APE's check, on the host, once per step
            if top >= run.model.max_positions:
                raise ValueError(f"position id {top} is beyond the learned position table")
        if compile_mode is not None:
            net = nets.setdefault(id(run.model), torch.compile(run.model, dynamic=False,
                                                               fullgraph=compile_mode == "full"))
        return real_step(run, net, batch.padded_to(length), share, dp)
    return step


def unchecked_embed(self, position_ids):
    """LearnedAbsolute.embed without the host read of the largest ID (checked in the step instead)."""
    return self.table(position_ids)


def profile(variant: str, steps: int, n_buckets: int) -> dict:
    """Train the cell once as `variant`; its timings, buckets used, final loss and metrics."""
    cfg = load_run_config(cell_config(steps))
    t_max = cfg.task.build().seq_len(cfg.task.train_lengths[1])
    buckets = sorted({math.ceil(t_max * (i + 1) / n_buckets) for i in range(n_buckets)})
    timer, shapes = Timer(), {}
    with tempfile.TemporaryDirectory() as root, ExitStack() as patches:
        if variant != "eager":
            mode = {"compiled": "full", "compiled-asis": "asis", "padded": None}[variant]
            patches.enter_context(mock.patch.object(loop, "train_step", bucketed_train_step(buckets, mode, shapes)))
        if variant == "compiled":
            patches.enter_context(mock.patch.object(LearnedAbsolute, "embed", unchecked_embed))
        for name, module, attr in PIECES:
            patches.enter_context(mock.patch.object(module, attr, timer.wrap(name, getattr(module, attr))))
        store = ResultsStore(root)
        start = time.perf_counter()
        run = loop.train_run(cfg, store)
        total = time.perf_counter() - start
        metrics = {(m.lo, m.hi): m.value for m in store.metrics(keys=[run.key])
                   if m.metric == "exact_match_tf" and m.grp == ""}
        losses = [c.value for c in store.curves(run.key) if c.name == "loss"]
    step_calls = timer.calls["train step"]
    steady = statistics.median(step_calls[len(step_calls) // 2:])
    return dict(variant=variant, total=total, seconds=timer.seconds, steps=len(step_calls), steady_step=steady,
                first_steps=step_calls[:3], warmup=sum(step_calls) - steady * len(step_calls), buckets=buckets,
                shapes=shapes, metrics=metrics, final_loss=losses[-1], steps_done=run.steps_done)


def print_profile(p: dict) -> None:
    print(f"\n== {p['variant']}: {p['total']:.1f} s end to end, {p['steps_done']} steps, final loss "
          f"{p['final_loss']:.4f}, exact_match_tf " + " ".join(f"[{lo},{hi}] {v:.3f}" for (lo, hi), v in
                                                           sorted(p["metrics"].items())))
    accounted = 0.0
    for name, _, _ in PIECES:
        s = p["seconds"].get(name, 0.0)
        accounted += s
        print(f"  {name:12s} {s:8.2f} s  {100 * s / p['total']:5.1f}%")
    print(f"  {'other':12s} {p['total'] - accounted:8.2f} s  {100 * (p['total'] - accounted) / p['total']:5.1f}%")
    print(f"  train step: median {1000 * p['steady_step']:.1f} ms over the second half; first three "
          + ", ".join(f"{1000 * s:.0f}" for s in p["first_steps"]) + " ms; "
          f"time above the steady rate (compile, warm-up): {p['warmup']:.1f} s")
    if p["shapes"]:
        print(f"  buckets {p['buckets']}: steps per bucket {dict(sorted(p['shapes'].items()))}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--buckets", type=int, default=4, help="fixed padded lengths for the compiled variant")
    ap.add_argument("--variants", nargs="+", default=["eager", "compiled"], choices=["eager", "compiled", "compiled-asis", "padded"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    # Read when inductor first compiles (importing it already set the default): a fresh directory
    # makes the first compile here a cold one, as in a run on a new machine.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    torch._inductor.config.compile_threads = 1  # one process at a time on a shared machine
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps; inductor cache "
          f"{os.environ['TORCHINDUCTOR_CACHE_DIR']}")
    results = []
    for variant in args.variants:  # a variant may repeat (eager compiled eager brackets a load drift)
        results.append(profile(variant, args.steps, args.buckets))
        print_profile(results[-1])
    eager = [p for p in results if p["variant"] == "eager"]
    if not eager:
        return
    base_total = statistics.mean(p["total"] for p in eager)
    base_step = statistics.mean(p["steady_step"] for p in eager)
    print(f"\neager: {base_total:.1f} s end to end (mean of {len(eager)}: "
          + ", ".join(f"{p['total']:.1f}" for p in eager) + f" s), steady step {1000 * base_step:.1f} ms")
    for variant in dict.fromkeys(p["variant"] for p in results if p["variant"] != "eager"):
        runs = [p for p in results if p["variant"] == variant]
        total = statistics.mean(p["total"] for p in runs)
        step = statistics.mean(p["steady_step"] for p in runs)
        print(f"{variant} / eager end to end: {total / base_total:.3f} of the time = {base_total / total:.2f}x "
              f"(steady train step {base_step / step:.2f}x)")
        for n in (5000, 10000):  # from this run's fixed costs and per-step rates, not measured
            print(f"  projected at {n} steps: {projected(eager, n) / projected(runs, n):.2f}x")


def projected(runs: list[dict], steps: int) -> float:
    """End-to-end seconds at `steps` from measured runs: fixed costs (setup, compile and warm-up above
    the steady step rate, final evaluation) plus the per-step rest (steps, data, checks) times steps."""
    out = []
    for p in runs:
        fixed = p["seconds"].get("setup", 0.0) + p["seconds"].get("final", 0.0) + max(p["warmup"], 0.0)
        out.append(fixed + steps * (p["total"] - fixed) / p["steps"])
    return statistics.mean(out)

if __name__ == "__main__":
    main()
