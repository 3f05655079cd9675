"""Training throughput of lengthgen's Transformer against HF transformers' GPT-2, side by side.

One training step = forward + cross-entropy + backward + AdamW step on random tokens (batch 64,
sequence length 100, no dropout). Both models get the same width, depth, heads, vocabulary,
4x MLP, learned absolute positions, tied embeddings and exact GELU. Contenders run interleaved
in one process (each repeat times every contender once, in rotating order), so load from other
jobs on a shared machine hits them alike; the reported ratio is the median over repeats of the
per-repeat ratio ours / HF fp32.

    python benchmarks/throughput.py                      # CPU, the three sizes
    python benchmarks/throughput.py --device cuda
    python benchmarks/throughput.py --sizes 4/4/256 --repeats 7

Needs the bench extra: pip install -e .[bench]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from lengthgen.config import load_run_config
from lengthgen.data import Batch
from lengthgen.evaluate import autocast
from lengthgen.config import ModelConfig
from lengthgen.model import Transformer
from lengthgen.training.build import loss_on, make_optimizer

try:
    from transformers import GPT2Config, GPT2LMHeadModel
except ImportError:  # transformers is an optional extra, not a core dependency
    sys.exit("benchmarks/throughput.py needs HF transformers: pip install -e .[bench]")

BATCH, SEQ_LEN = 64, 100


@dataclass(frozen=True)
class Size:
    n_layers: int
    n_heads: int
    d_model: int

    @classmethod
    def parse(cls, text: str) -> "Size":
        try:
            layers, heads, width = (int(p) for p in text.split("/"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size {text!r} must be LAYERS/HEADS/WIDTH, e.g. 2/2/64") from None
        if width % heads:
            raise argparse.ArgumentTypeError(f"size {text!r}: width {width} is not divisible by heads {heads}")
        return cls(layers, heads, width)

    def __str__(self):
        return f"{self.n_layers}L/{self.n_heads}H/d{self.d_model}"


def ours(size: Size, vocab: int, positions: int) -> Transformer:
    return Transformer(ModelConfig(n_layers=size.n_layers,
                                         n_heads=size.n_heads, d_model=size.d_model, positional="ape"), vocab, positions)


def hf_gpt2(size: Size, vocab: int, positions: int) -> GPT2LMHeadModel:
    cfg = GPT2Config(vocab_size=vocab, n_positions=positions, n_embd=size.d_model, n_layer=size.n_layers,
                     n_head=size.n_heads, n_inner=4 * size.d_model, activation_function="gelu",
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
                     bos_token_id=vocab - 1, eos_token_id=vocab - 1)  # GPT-2 default 50256 is out of range
    return GPT2LMHeadModel(cfg)


LR, WEIGHT_DECAY = 1e-3, 0.01


def our_step(model: Transformer, batch: Batch, bf16: bool, device: torch.device) -> Callable[[], None]:
    """lengthgen's own training step (train.py's optimizer and loss), minus data and bookkeeping."""
    cfg = load_run_config({"task": {"name": "sparse_parity"}, "train": {"lr": LR, "weight_decay": WEIGHT_DECAY}})
    opt = make_optimizer(model, cfg)

    def step():
        loss = loss_on(model, batch, bf16, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def hf_step(model: GPT2LMHeadModel, batch: Batch, bf16: bool, device: torch.device) -> Callable[[], None]:
    """GPT-2's step with the HF Trainer's default optimizer on torch >= 2.8 (adamw_torch_fused)."""
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY, fused=True)

    def step():
        with autocast(device, bf16):
            logits = model(input_ids=batch.inputs, position_ids=batch.position_ids).logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(step: Callable[[], None], steps: int, device: torch.device) -> float:
    """Tokens per second over `steps` training steps."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * BATCH * SEQ_LEN / (time.perf_counter() - start)


def random_batch(vocab: int, device: torch.device, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (BATCH, SEQ_LEN + 1), generator=g)
    positions = torch.arange(SEQ_LEN).expand(BATCH, SEQ_LEN)
    return Batch(tokens[:, :-1], tokens[:, 1:], positions.clone(), []).to(device)


def machine_info(device: torch.device) -> str:
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            first_cpu = f.read().split("\n\n")[0].splitlines()
        info = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in first_cpu if ":" in line)}
        cpu, flags = info["model name"], set(info["flags"].split())
    except (OSError, KeyError):
        pass
    bf16_units = sorted(flags & {"avx512_bf16", "amx_bf16"}) or ["none"]  # what bf16 autocast can use
    lines = [f"cpu: {cpu} ({os.cpu_count()} logical cpus; bf16 hardware: {', '.join(bf16_units)})",
             f"torch {torch.__version__}, threads: {torch.get_num_threads()} "
             f"(interop {torch.get_num_interop_threads()})", f"python {platform.python_version()}"]
    if device.type == "cuda":
        lines.append(f"gpu: {torch.cuda.get_device_name(device)}")
    return "\n".join(lines)


def bench_size(size: Size, args, device: torch.device) -> list[tuple[str, float, float, float, float]]:
    """(contender, median tok/s, median/min/max per-repeat ratio to HF fp32) for one model size."""
    batch = random_batch(args.vocab, device)
    contenders: dict[str, Callable[[], None]] = {}
    for bf16 in [False, True] if args.bf16 else [False]:
        tag = "bf16" if bf16 else "fp32"
        torch.manual_seed(0)
        contenders[f"ours {tag}"] = our_step(ours(size, args.vocab, SEQ_LEN).to(device), batch, bf16, device)
        torch.manual_seed(0)
        contenders[f"HF {tag}"] = hf_step(hf_gpt2(size, args.vocab, SEQ_LEN).to(device), batch, bf16, device)
    names = list(contenders)
    # warm-up (allocator, oneDNN/cuBLAS kernel choice); its rate sizes each timing to ~args.seconds
    slowest = min(timed(contenders[name], args.warmup, device) for name in names)
    steps = args.steps or max(1, round(args.seconds * slowest / (BATCH * SEQ_LEN)))
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            rates[name].append(timed(contenders[name], steps, device))
    base = rates["HF fp32"]
    rows = []
    for n in names:
        ratios = [a / b for a, b in zip(rates[n], base)]
        rows.append((n, statistics.median(rates[n]), statistics.median(ratios), min(ratios), max(ratios)))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--sizes", nargs="+", type=Size.parse, default=[Size(1, 1, 16), Size(2, 2, 64), Size(4, 4, 256)],
                   metavar="L/H/D", help="layers/heads/width (default: 1/1/16 2/2/64 4/4/256)")
    p.add_argument("--vocab", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5, help="interleaved timing rounds per contender")
    p.add_argument("--steps", type=int, default=0, help="steps per timing (default: about --seconds' worth)")
    p.add_argument("--seconds", type=float, default=1.0, help="target duration of one timing")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--no-bf16", dest="bf16", action="store_false", help="skip the bf16 autocast rows")
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device not in ("cpu", "cuda"):
        p.error(f"--device must be cpu, cuda or auto, got {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available to torch")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(machine_info(device))
    print(f"batch {BATCH} x {SEQ_LEN} tokens, vocab {args.vocab}, AdamW, {args.repeats} interleaved repeats\n")
    print(f"{'size':<14}{'contender':<12}{'tok/s':>12}{'x HF fp32':>11}{'(min-max)':>14}")
    for size in args.sizes:
        for name, rate, ratio, lo, hi in bench_size(size, args, device):
            print(f"{str(size):<14}{name:<12}{rate:>12,.0f}{ratio:>10.2f}x{f'({lo:.2f}-{hi:.2f})':>14}", flush=True)


if __name__ == "__main__":
    main()
