"""Length-bin evaluation (DESIGN §3).

Per inclusive length bin, on a fixed evaluation set:
- `exact_match_tf`: teacher-forced argmax is right at every scored position (Huang et al.);
- `exact_match_greedy`: the answer generated autoregressively is right at every scored position;
- `token_acc`: fraction of scored positions whose teacher-forced argmax is right.
Tasks with a breakdown (e.g. k for sparse tasks) get one evaluation set per value (group `k=3`)
and a pooled row (group "").
"""

from __future__ import annotations

import contextlib
from itertools import product

import numpy as np
import torch

from .data import IGNORE, Batch, batches, eval_examples
from .tasks import Example, Task


def autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def token_logits(model, inputs, position_ids):
    out = model(inputs, position_ids)
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def greedy_predictions(model, batch: Batch) -> torch.Tensor:
    """Predictions [B, T] where, from each example's `answer_start` on, every prediction is fed
    back as the next input token; positions before it are teacher-forced. Position IDs are the
    example's own (oracle) IDs."""
    inputs, pos = batch.inputs.clone(), batch.position_ids
    B, T = inputs.shape
    starts = torch.tensor([e.answer_start if e.answer_start is not None else T for e in batch.examples])
    lengths = torch.tensor([len(e.inputs) for e in batch.examples])
    scored = batch.targets != IGNORE
    last = torch.where(scored.any(1), T - 1 - scored.flip(1).int().argmax(1), 0)  # last scored index
    preds = token_logits(model, inputs, pos).argmax(-1)  # teacher-forced part
    rows = torch.arange(B)
    for s in range(int((last - starts).clamp(min=-1).max()) + 1):
        t = starts + s
        active = (t <= last).to(inputs.device)
        if not active.any():
            break
        t = t.clamp(max=T - 1).to(inputs.device)
        horizon = int(t[active].max()) + 1  # causal: later columns cannot matter
        step_pred = token_logits(model, inputs[:, :horizon], pos[:, :horizon])[rows, t].argmax(-1)
        preds[rows[active], t[active]] = step_pred[active]
        feed = active & (t + 1 < lengths.to(inputs.device))
        inputs[rows[feed], t[feed] + 1] = step_pred[feed]
    return preds


@torch.no_grad()
def score(model, examples: list[Example], batch_size: int, device, bf16=False, greedy=True) -> dict:
    """Per-example correctness arrays for a list of examples (order of the sorted batches)."""
    tf, greedy_ok, tok_right, tok_total = [], [], [], []
    for batch in batches(examples, batch_size):
        batch = batch.to(device)
        with autocast(device, bf16):
            pred = token_logits(model, batch.inputs, batch.position_ids).argmax(-1)
            gpred = greedy_predictions(model, batch) if greedy else None
        scored = batch.targets != IGNORE
        right = (pred == batch.targets) & scored
        tf.append((right.sum(1) == scored.sum(1)).cpu())
        tok_right.append(right.sum(1).cpu())
        tok_total.append(scored.sum(1).cpu())
        if greedy:
            greedy_ok.append((((gpred == batch.targets) & scored).sum(1) == scored.sum(1)).cpu())
    out = {"tf": torch.cat(tf).numpy(), "tok_right": torch.cat(tok_right).numpy(),
           "tok_total": torch.cat(tok_total).numpy()}
    if greedy:
        out["greedy"] = torch.cat(greedy_ok).numpy()
    return out


def _rows(lo, hi, grp, s) -> list[dict]:
    n = len(s["tf"])
    rows = [dict(lo=lo, hi=hi, grp=grp, metric="exact_match_tf", value=float(s["tf"].mean()), count=n),
            dict(lo=lo, hi=hi, grp=grp, metric="token_acc", value=float(s["tok_right"].sum() / max(1, s["tok_total"].sum())),
                 count=n)]
    if "greedy" in s:
        rows.append(dict(lo=lo, hi=hi, grp=grp, metric="exact_match_greedy", value=float(s["greedy"].mean()), count=n))
    return rows


def evaluate(model, task: Task, bins, examples_per_bin: int, batch_size: int, device, bf16=False,
             greedy=True) -> list[dict]:
    """Metric rows (lo, hi, grp, metric, value, count) for every bin and breakdown group."""
    model.eval()
    rows = []
    breakdown = task.breakdown()
    for lo, hi in bins:
        if not breakdown:
            s = score(model, eval_examples(task, lo, hi, examples_per_bin), batch_size, device, bf16, greedy)
            rows += _rows(lo, hi, "", s)
            continue
        names = list(breakdown)
        parts = []
        for values in product(*breakdown.values()):
            fixed = dict(zip(names, values))
            s = score(model, eval_examples(task, lo, hi, examples_per_bin, **fixed), batch_size, device, bf16, greedy)
            rows += _rows(lo, hi, ",".join(f"{k}={v}" for k, v in fixed.items()), s)
            parts.append(s)
        pooled = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        rows += _rows(lo, hi, "", pooled)
    return rows


def in_distribution_accuracy(model, task: Task, lengths, count: int, batch_size: int, device, bf16=False) -> float:
    """Teacher-forced exact match on a fixed set from the training length range (early stopping)."""
    model.eval()
    s = score(model, eval_examples(task, lengths[0], lengths[1], count, tag=1), batch_size, device, bf16, greedy=False)
    return float(s["tf"].mean())
