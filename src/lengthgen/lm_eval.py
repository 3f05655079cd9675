"""Evaluation per context length for language modelling (docs/design.md §4.5).

A model trained at context L is run at contexts C (the evaluation bins [C, C]; by default L, 2L,
4L, 8L) on windows from held-out (validation) documents with at least C_max tokens, C_max the
longest context evaluated. Every context reads the same windows, each the first C tokens of one
window, so contexts differ only in how much of the window the model sees. Windows: in each
document, consecutive spans of C_max + 1 tokens from its start, each beginning with the previous
one's last token so that no target is scored twice (the first begins with `<bos>`); documents are visited round-robin (first span of every document, then second spans, …)
until `windows` spans are taken, so few long documents cannot dominate.

Rows (lo, hi, grp, metric, value, count): metric "loss" (mean next-token cross-entropy, nats),
lo..hi the inclusive range of input positions of a bucket [0,L), [L,2L), [2L,4L), … cut at C,
grp "ctx=4L" (or "ctx=C" for a context that is no multiple of L), count the number of windows.
For RoPE models, contexts beyond the training length are also run under each context-extension
method with factor α = C / train_length: grp "ctx=4L,ext=pi" (position interpolation) and
"ctx=4L,ext=ntk" (NTK-aware scaling); "none" is the model as trained.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from .data import EVAL_STREAM
from .errors import InputError
from .model.positional import Randomized, Rotary

EXTENSIONS = ("none", "pi", "ntk")
POSITION_STREAM = EVAL_STREAM + 3  # fixed IDs for randomized positions at evaluation


def eval_windows(task, size: int, count: int) -> np.ndarray:
    """[n, size] int64: up to `count` windows of `size` tokens from validation documents."""
    data = task.data
    docs = [data.valid_document(i) for i in range(len(data.valid_ids))]
    spans = [[d[s:s + size] for s in range(0, len(d) - size + 1, size - 1)] for d in docs]
    picked = []
    for rank in range(max((len(s) for s in spans), default=0)):
        picked += [s[rank] for s in spans if rank < len(s)]
    if not picked:
        longest = max((len(d) - 1 for d in docs), default=0)
        raise InputError(f"lm: no validation document has {size - 1} tokens (the longest has {longest}); evaluate "
                         "shorter contexts or use a corpus with longer documents")
    return np.stack(picked[:count]).astype(np.int64)


def buckets(context: int, L: int) -> list[tuple[int, int]]:
    """Half-open position buckets [0,L), [L,2L), [2L,4L), … cut at `context`."""
    edges = [0, L]
    while edges[-1] < context:
        edges.append(2 * edges[-1])
    edges = [min(e, context) for e in edges]
    return [(a, b) for a, b in zip(edges, edges[1:]) if a < b]


def context_label(context: int, L: int) -> str:
    return f"ctx={context // L}L" if context % L == 0 else f"ctx={context}"


def rope_of(model) -> Rotary | None:
    pos = model.pos.base if isinstance(model.pos, Randomized) else model.pos
    return pos if isinstance(pos, Rotary) else None


@contextlib.contextmanager
def extension(model, method: str, factor: float):
    """The model with RoPE context extension `method` at `factor` on top of its trained settings."""
    if method not in EXTENSIONS:
        raise InputError(f"unknown context extension {method!r}; choose one of: {', '.join(EXTENSIONS)}")
    rope = rope_of(model)
    if method == "none" or factor <= 1:
        yield model
        return
    if rope is None:
        raise InputError(f"context extension {method!r} needs a rope model, got positional {model.pos.name!r}")
    trained = rope.scale, rope.ntk_factor
    if method == "pi":
        rope.set_extension(trained[0] * factor, trained[1])
    else:
        rope.set_extension(trained[0], trained[1] * factor)
    try:
        yield model
    finally:
        rope.set_extension(*trained)


@torch.no_grad()
def token_losses(model, windows: np.ndarray, context: int, batch_size: int, device, bf16: bool = False) -> np.ndarray:
    """[n, context] cross-entropy of every next-token prediction on each window's first `context` + 1 tokens."""
    model.eval()
    sampler = model.pos.eval_position_sampler()
    out = []
    for i in range(0, len(windows), batch_size):
        chunk = torch.from_numpy(windows[i:i + batch_size, :context + 1]).to(device)
        ids = np.arange(context)
        if sampler is not None:  # as evaluate.score does: the scheme's own test-time IDs, from a fixed seed
            ids = sampler(np.random.default_rng([POSITION_STREAM, i]), ids)
        pos = torch.as_tensor(ids, device=device).expand(len(chunk), context)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(chunk[:, :-1], pos).logits
        out.append(F.cross_entropy(logits.float().transpose(1, 2), chunk[:, 1:], reduction="none").cpu())
    return torch.cat(out).numpy()


def bucket_rows(losses: np.ndarray, L: int, grp: str) -> list[dict]:
    n, context = losses.shape
    return [dict(lo=a, hi=b - 1, grp=grp, metric="loss", value=float(losses[:, a:b].mean()), count=n)
            for a, b in buckets(context, L)]


def evaluate_contexts(model, task, bins, windows: int, batch_size: int, device, bf16: bool = False,
                      train_length: int | None = None, methods: tuple[str, ...] | None = None) -> list[dict]:
    """Loss per position bucket at each context C = hi of `bins`, under each extension method.

    `train_length` is the context the model was trained at (default: the task's `context`), the
    base of the extension factor. `methods` defaults to all of EXTENSIONS for RoPE models and
    ("none",) otherwise.
    """
    L = task.context
    train_length = train_length or L
    if methods is None:
        methods = EXTENSIONS if rope_of(model) is not None else ("none",)
    contexts = sorted({hi for _, hi in bins})
    data = eval_windows(task, contexts[-1] + 1, windows)
    rows = []
    for context in contexts:
        for method in methods:
            if method != "none" and context <= train_length:
                continue  # no extension within the trained context: the same numbers as "none"
            with extension(model, method, context / train_length):
                losses = token_losses(model, data, context, batch_size, device, bf16)
            grp = context_label(context, L) + ("" if method == "none" else f",ext={method}")
            rows += bucket_rows(losses, L, grp)
    return rows
