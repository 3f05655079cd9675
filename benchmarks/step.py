"""lengthgen's training step beside its peers at the presets' sizes, and where a preset cell's time goes.

Part 1, the step (forward, cross-entropy, backward, gradient clipping at 1.0, fused AdamW) on one
fixed random batch of 64 x T tokens, per size L/H/D@T. Contenders, run interleaved in rotating order
within each repeat (so load drifts hit them alike):

    lengthgen ape / rope   `Transformer` with `training.build`'s optimizer and loss (the real step)
    minimal ape / rope     a nanoGPT-style model written out below: the same blocks, no position
                           IDs (positions are 0..T-1), RoPE from a cached complex table sliced to T
    HF GPT-2               `GPT2LMHeadModel` (SDPA), APE; only with the bench extra (transformers)

Reported: each contender's median ms per step over the repeats with min-max, the ratios the speed
targets name (median and min-max of per-repeat ratios), and lengthgen's share of the matmul peak
(model FLOPs per step, 6 x matmul parameters x tokens + attention, over a large one-thread matrix
product's FLOP/s measured here).

Part 2, a preset cell: trains --cell-steps steps of one run of a preset through the real `train_run`
with timers around the loop's pieces, and projects each piece's share of the cell at its own
length (steps x per-step cost, checks x per-check cost, one final evaluation).

    python benchmarks/step.py                                     # the presets' sizes, 7 repeats
    python benchmarks/step.py --sizes 2/4/64@35 --repeats 9
    python benchmarks/step.py --cells demo:K6 golowich_sparsity_cpu:K8 --cell-steps 300
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable
from unittest import mock

import torch
import torch.nn.functional as F
import yaml
from torch import nn

import lengthgen.data
from lengthgen.config import ModelConfig, load_run_config
from lengthgen.data import Batch
from lengthgen.experiments.grid import expand
from lengthgen.experiments.presets import find_preset
from lengthgen.model import Transformer
from lengthgen.store import ResultsStore
from lengthgen.training import lifecycle, loop
from lengthgen.training.build import loss_on, make_optimizer

BATCH, VOCAB, LR = 64, 32, 1e-3
# The presets' model sizes at their training lengths (tokens per sequence): the sparsity presets and
# the demo, the algorithmic and formal cells, the natural-language models.
PRESET_SIZES = ["2/4/64@27", "2/4/64@35", "1/2/128@52", "1/4/256@52", "4/4/128@32"]


@dataclass(frozen=True)
class Size:
    layers: int
    heads: int
    width: int
    tokens: int

    @classmethod
    def parse(cls, text: str) -> "Size":
        try:
            shape, tokens = text.split("@")
            layers, heads, width = (int(p) for p in shape.split("/"))
            return cls(layers, heads, width, int(tokens))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size {text!r} must be LAYERS/HEADS/WIDTH@TOKENS, e.g. 2/4/64@35") from None

    def __str__(self):
        return f"{self.layers}L/{self.heads}H/d{self.width}@{self.tokens}"

    def flops(self) -> float:
        """Training FLOPs of one step: 6 x matmul parameters x tokens, plus attention scores and values."""
        matmul = self.layers * 12 * self.width ** 2 + VOCAB * self.width
        return BATCH * self.tokens * (6 * matmul + 6 * self.layers * self.tokens * self.width)


# -- the minimal nanoGPT-style model ---------------------------------------------------------------

class MinimalBlock(nn.Module):
    def __init__(self, width: int, heads: int, rope: torch.Tensor | None):
        super().__init__()
        self.heads, self.rope = heads, rope
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        if self.rope is not None:
            turns = self.rope[:T]
            q, k = (torch.view_as_real(torch.view_as_complex(t.reshape(*t.shape[:-1], -1, 2)) * turns).flatten(-2)
                    for t in (q, k))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, D))
        return x + self.mlp(self.ln2(x))


class Minimal(nn.Module):
    def __init__(self, size: Size, rope: bool):
        super().__init__()
        head = size.width // size.heads
        angles = torch.outer(torch.arange(size.tokens).float(), 10000.0 ** (-torch.arange(0, head, 2).float() / head))
        table = torch.polar(torch.ones_like(angles), angles) if rope else None
        self.wte = nn.Embedding(VOCAB, size.width)
        self.wpe = None if rope else nn.Embedding(size.tokens, size.width)
        self.blocks = nn.ModuleList(MinimalBlock(size.width, size.heads, table) for _ in range(size.layers))
        self.ln_f = nn.LayerNorm(size.width)
        self.head = nn.Linear(size.width, VOCAB, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx):
        x = self.wte(idx) if self.wpe is None else self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


# -- the contenders' steps -------------------------------------------------------------------------

def step_of(model: nn.Module, forward: Callable[[], torch.Tensor], opt=None) -> Callable[[], None]:
    """One training step: `forward`'s loss, backward, clipping at 1.0, `opt` (default: fused AdamW)."""
    opt = opt or torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, fused=True)

    def step():
        opt.zero_grad(set_to_none=True)
        forward().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return step


def lengthgen_step(size: Size, scheme: str, batch: Batch) -> Callable[[], None]:
    """lengthgen's model, loss and optimizer (`training.build`)."""
    torch.manual_seed(0)
    model = Transformer(ModelConfig(n_layers=size.layers, n_heads=size.heads, d_model=size.width, positional=scheme),
                        VOCAB, size.tokens)
    opt = make_optimizer(model, load_run_config({"task": {"name": "sparse_parity"}, "train": {"lr": LR}}))
    return step_of(model, lambda: loss_on(model, batch, False, torch.device("cpu")), opt)


def minimal_step(size: Size, rope: bool, batch: Batch) -> Callable[[], None]:
    torch.manual_seed(0)
    model = Minimal(size, rope)
    return step_of(model, lambda: F.cross_entropy(model(batch.inputs).flatten(0, 1), batch.targets.flatten()))


def hf_step(size: Size, batch: Batch) -> Callable[[], None] | None:
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=size.tokens, n_embd=size.width,
                                       n_layer=size.layers, n_head=size.heads, activation_function="gelu",
                                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                                       eos_token_id=0))
    return step_of(model, lambda: F.cross_entropy(model(input_ids=batch.inputs).logits.flatten(0, 1),
                                                  batch.targets.flatten()))


def matmul_peak(seconds: float = 1.0) -> float:
    """FLOP/s of a 512 x 512 float32 matrix product on this thread count: the practical peak."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    for _ in range(5):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return n * 2 * 512 ** 3 / (time.perf_counter() - start)


def bench_size(size: Size, repeats: int, seconds: float) -> dict[str, list[float]]:
    """Seconds per step of each contender, one list entry per interleaved repeat."""
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, VOCAB, (BATCH, size.tokens + 1), generator=g)
    batch = Batch(tokens[:, :-1], tokens[:, 1:], torch.arange(size.tokens).expand(BATCH, -1).clone(), [])
    steps = {"lengthgen ape": lengthgen_step(size, "ape", batch), "minimal ape": minimal_step(size, False, batch),
             "lengthgen rope": lengthgen_step(size, "rope", batch), "minimal rope": minimal_step(size, True, batch),
             "HF GPT-2 ape": hf_step(size, batch)}
    steps = {name: fn for name, fn in steps.items() if fn is not None}
    for fn in steps.values():  # warm-up: allocator, kernel choice
        for _ in range(3):
            fn()
    start = time.perf_counter()
    steps["lengthgen ape"]()
    count = max(3, round(seconds / (time.perf_counter() - start)))
    out: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            for _ in range(count):
                steps[name]()
            out[name].append((time.perf_counter() - start) / count)
    return out


def ratio(times: dict[str, list[float]], num: str, den: str) -> str:
    """Speed of `num` over `den` (den's time / num's time): median over repeats, min-max."""
    if num not in times or den not in times:
        return "-"
    r = [d / n for n, d in zip(times[num], times[den])]
    return f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})"


def print_sizes(sizes: list[Size], repeats: int, seconds: float) -> None:
    peak = matmul_peak()
    print(f"matmul peak (512^3 float32, {torch.get_num_threads()} thread(s)): {peak / 1e9:.1f} GFLOP/s; batch {BATCH}, "
          f"vocab {VOCAB}; {repeats} interleaved repeats; medians, (min-max)\n")
    print("| size | contender | ms/step (min-max) | % of matmul peak |\n|---|---|---:|---:|")
    ratios = []
    for size in sizes:
        times = bench_size(size, repeats, seconds)
        for name, t in times.items():
            share = 100 * size.flops() / statistics.median(t) / peak
            print(f"| {size} | {name} | {1e3 * statistics.median(t):.2f} ({1e3 * min(t):.2f}-{1e3 * max(t):.2f}) | "
                  f"{share:.0f}% |", flush=True)
        ratios.append((size, ratio(times, "lengthgen rope", "lengthgen ape"), ratio(times, "lengthgen ape", "minimal ape"),
                       ratio(times, "lengthgen rope", "minimal rope"), ratio(times, "lengthgen ape", "HF GPT-2 ape")))
    print("\nspeed ratios (median of per-repeat ratios, min-max; > 1 = the first is faster)\n")
    print("| size | lengthgen RoPE / APE | lengthgen / minimal, APE | lengthgen / minimal, RoPE | lengthgen / HF GPT-2, APE |")
    print("|---|---:|---:|---:|---:|")
    for row in ratios:
        print("| " + " | ".join(map(str, row)) + " |")


# -- a preset cell's time shares -------------------------------------------------------------------

PIECES = [("setup", loop, "start_run"), ("data", lengthgen.data, "train_batch"), ("step", loop, "train_step"), ("checks", loop, "stops_early"),
          ("final evaluation", lifecycle, "final_metrics")]


def cell_shares(preset: str, run_name: str, steps: int) -> None:
    """Train `steps` steps of the preset's run `run_name` (its first grid point) with timers, the
    in-distribution check made due three times, then print each piece's projected share of the
    whole cell at its own length."""
    spec = yaml.safe_load(find_preset(preset).read_text())
    configs = [c for c in expand(spec, preset) if c.name == run_name or c.name.startswith(run_name + " ")]
    if not configs:
        sys.exit(f"{preset}: no run named {run_name!r}; runs: {sorted({c.name for c in expand(spec, preset)})}")
    full = configs[0]
    every = max(1, min(full.train.eval_every, steps // 3))
    cfg = full.model_copy(update={"train": full.train.model_copy(update={"steps": steps, "eval_every": every})})
    seconds: dict[str, float] = {}

    def wrap(name, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        return timed

    with tempfile.TemporaryDirectory() as root, ExitStack() as patches:
        for name, module, attr in PIECES:
            patches.enter_context(mock.patch.object(module, attr, wrap(name, getattr(module, attr))))
        start = time.perf_counter()
        loop.train_run(cfg, ResultsStore(root))
        total = time.perf_counter() - start
    n = full.train.steps
    projected = {"step": seconds["step"] / steps * n, "data": seconds["data"] / steps * n,
                 "in-distribution checks": seconds.get("checks", 0.0) / (steps // every) * (n // full.train.eval_every),
                 "final evaluation": seconds.get("final evaluation", 0.0), "setup": seconds["setup"],
                 "other (bookkeeping, checkpoints, store)": (total - sum(seconds.values())) / steps * n}
    whole = sum(projected.values())
    print(f"\n{preset}:{run_name}, {n} steps (timed: {steps} steps in {total:.1f} s): projected {whole:.0f} s per run; "
          f"step {1e3 * seconds['step'] / steps:.1f} ms, data {1e3 * seconds['data'] / steps:.2f} ms per step\n")
    print("| piece | projected s | share |\n|---|---:|---:|")
    for name, s in projected.items():
        print(f"| {name} | {s:.1f} | {100 * s / whole:.1f}% |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="*", type=Size.parse, default=[Size.parse(s) for s in PRESET_SIZES],
                    metavar="L/H/D@T", help=f"model sizes at tokens per sequence (default: {' '.join(PRESET_SIZES)})")
    ap.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds per contender (default 7)")
    ap.add_argument("--seconds", type=float, default=0.5, help="target duration of one timing (default 0.5)")
    ap.add_argument("--cells", nargs="*", default=["demo:K6", "golowich_sparsity_cpu:K8"], metavar="PRESET:RUN",
                    help="preset cells whose time shares to print (default: demo:K6 golowich_sparsity_cpu:K8)")
    ap.add_argument("--cell-steps", type=int, default=300, help="steps to time per cell (default 300)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as runs train)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    if args.sizes:
        print_sizes(args.sizes, args.repeats, args.seconds)
    for cell in args.cells:
        preset, _, run_name = cell.partition(":")
        cell_shares(preset, run_name, args.cell_steps)


if __name__ == "__main__":
    main()
