"""Model FLOPs utilisation (MFU) of a 12-layer / 12-head / width-768 model training on a GPU.

One step = forward + cross-entropy + backward + fused AdamW step with bf16 autocast on random
tokens (GPT-2-small shape: vocabulary 50304, sequence 1024). Contenders, interleaved in rotating
order in one process: lengthgen's `Transformer` eager, the same with each block compiled
(`torch.compile`), and HF `GPT2LMHeadModel` (SDPA attention) as the peer.

FLOPs per token follow the PaLM convention: 6 x (matmul parameters, head included) plus
12 x layers x sequence x width for attention scores and values (causal masking not discounted).
MFU is achieved FLOP/s over the GPU's dense bf16 datasheet peak; the script also measures a large
bf16 matrix product on the same GPU and prints utilisation against that practical ceiling.

    python benchmarks/mfu.py                       # needs a CUDA GPU and the bench extra
    python benchmarks/mfu.py --batch 8 --no-compile
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from throughput import Size, hf_gpt2, hf_step, our_step, ours  # the sibling benchmark's contenders
from lengthgen.data import Batch

DATASHEET_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0, "A10": 125.0}  # dense


def datasheet_peak(name: str) -> float | None:
    for key, tflops in DATASHEET_BF16_TFLOPS.items():
        if key in name:
            return tflops
    return None


def flops_per_token(size: Size, vocab: int, seq: int) -> float:
    matmul_params = 12 * size.n_layers * size.d_model ** 2 + size.d_model * vocab
    return 6 * matmul_params + 12 * size.n_layers * seq * size.d_model


def matmul_ceiling(n: int = 8192, repeats: int = 10) -> float:
    """TFLOP/s of an n x n x n bf16 matrix product on random data (median of timed repeats)."""
    a, b = (torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * n ** 3 / statistics.median(times) / 1e12


def random_batch(vocab: int, batch: int, seq: int) -> Batch:
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, vocab, (batch, seq + 1), generator=g)
    return Batch(tokens[:, :-1], tokens[:, 1:], torch.arange(seq).expand(batch, seq).clone(), []).to("cuda")


def seconds_per_step(step, steps: int) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=Size.parse, default=Size(12, 12, 768), metavar="L/H/D")
    p.add_argument("--vocab", type=int, default=50304)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=10, help="steps per timing")
    p.add_argument("--repeats", type=int, default=3, help="interleaved timing rounds per contender")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="skip the compiled contender")
    p.add_argument("--no-hf", dest="hf", action="store_false", help="skip the HF GPT-2 peer")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("benchmarks/mfu.py measures GPU utilisation: no CUDA device is available to torch")
    torch.backends.cuda.matmul.allow_tf32 = True  # what the fp32 leftovers (LayerNorm-free matmuls) use
    name = torch.cuda.get_device_name()
    peak, ceiling = datasheet_peak(name), matmul_ceiling()
    print(f"gpu: {name}; torch {torch.__version__}; bf16 datasheet peak "
          f"{f'{peak:.0f}' if peak else 'unknown'} TFLOP/s; measured 8192^3 bf16 matmul {ceiling:.0f} TFLOP/s")
    fpt = flops_per_token(args.size, args.vocab, args.seq)
    print(f"{args.size}, vocab {args.vocab}, batch {args.batch} x {args.seq}; {fpt / 1e9:.3f} GFLOP per token\n")
    batch = random_batch(args.vocab, args.batch, args.seq)
    contenders = {}
    torch.manual_seed(0)
    contenders["ours eager"] = our_step(ours(args.size, args.vocab, args.seq).cuda(), batch, True, torch.device("cuda"))
    if args.compile:
        torch.manual_seed(0)
        model = ours(args.size, args.vocab, args.seq).cuda()
        for block in model.blocks:  # blocks hold the FLOPs; APE's host-side bounds check stays eager
            block.compile()
        contenders["ours compiled"] = our_step(model, batch, True, torch.device("cuda"))
    if args.hf:
        torch.manual_seed(0)
        contenders["HF GPT-2"] = hf_step(hf_gpt2(args.size, args.vocab, args.seq).cuda(), batch, True,
                                         torch.device("cuda"))
    names = list(contenders)
    for n in names:  # warm-up: cuBLAS/flash kernel choice, compilation
        seconds_per_step(contenders[n], 3)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:
            times[n].append(seconds_per_step(contenders[n], args.steps))
    print(f"{'contender':<15}{'ms/step':>9}{'tok/s':>12}{'TFLOP/s':>9}{'MFU':>8}{'of matmul':>11}{'x HF':>7}")
    for n in names:
        t = statistics.median(times[n])
        tflops = fpt * args.batch * args.seq / t / 1e12
        mfu = f"{tflops / peak:.1%}" if peak else "n/a"
        vs_hf = f"{statistics.median(h / o for o, h in zip(times[n], times['HF GPT-2'])):.2f}" if args.hf else "n/a"
        print(f"{n:<15}{t * 1e3:>9.1f}{args.batch * args.seq / t:>12,.0f}{tflops:>9.1f}{mfu:>8}"
              f"{tflops / ceiling:>11.1%}{vs_hf:>7}")
    print(f"peak memory {torch.cuda.max_memory_allocated() / 2 ** 30:.1f} GiB")


if __name__ == "__main__":
    main()
