"""Length-bin evaluation (docs/design.md §3).

Per inclusive length bin, on a fixed evaluation set:
- `exact_match_tf`: teacher-forced argmax is right at every scored position (Huang et al.);
- `exact_match_greedy`: the answer generated autoregressively is right at every scored position;
- `token_acc`: fraction of scored positions whose teacher-forced argmax is right.
Models with a position head (PPC, `ppc.py`) decode greedily with the position IDs they predict,
so their `exact_match_greedy` is PPC's; they also get `exact_match_greedy_oracle` (greedy with the
task's own IDs: plain position coupling, the upper bound) and `position_acc` (fraction of
teacher-forced next-token ID predictions that are right).
Tasks with a breakdown (e.g. k for sparse tasks) get one evaluation set per value (group `k=3`,
`groups.group_name`) and a pooled row (group "").
"""

from __future__ import annotations

import contextlib
from itertools import product

import numpy as np
import torch

from .data import EVAL_STREAM, IGNORE, Batch, batches, eval_examples
from .errors import InputError
from .evaluation_modes import evaluation_mode
from .groups import VALIDATION, group_name
from .lm_eval import evaluate_contexts
from .positions import with_positions
from .ppc import position_hits
from .tasks import Example, Task


def autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@torch.no_grad()
def greedy_predictions(model, batch: Batch, predicted_positions: bool = False,
                       teacher_forced: torch.Tensor | None = None) -> torch.Tensor:
    """Predictions [B, T] where, from each example's `answer_start` on, every prediction is fed
    back as the next input token; positions before it are teacher-forced. Position IDs are the
    example's own (oracle) IDs, or with `predicted_positions` (PPC) each generated token gets the
    ID the model's position head predicted for it. `teacher_forced`: the batch's teacher-forced
    argmax when the caller already has it (saves one forward pass)."""
    if predicted_positions and not model.predicts_positions:
        raise InputError("decoding with predicted position IDs needs a model with a position head "
                         "(model.predict_positions: true)")
    inputs = batch.inputs.clone()
    pos = batch.position_ids.clone() if predicted_positions else batch.position_ids
    T = inputs.shape[1]
    device = inputs.device  # everything below lives beside the batch: no host/device mixing
    starts = torch.tensor([e.answer_start if e.answer_start is not None else T for e in batch.examples],
                          device=device)
    lengths = torch.tensor([len(e.inputs) for e in batch.examples], device=device)
    scored = batch.targets != IGNORE
    last = torch.where(scored.any(1), T - 1 - scored.flip(1).int().argmax(1), 0)  # last scored index
    # Up to and including each answer's first position every input is given, so teacher forcing
    # already holds those predictions; decoding starts where a prediction is fed back.
    preds = model(inputs, pos).logits.argmax(-1) if teacher_forced is None else teacher_forced.clone()
    decoded = starts < last
    if not decoded.any():  # one-token answers
        return preds
    first, end = int(starts[decoded].min()), int(last[decoded].max())
    # Position by position for the whole batch, keeping every token's keys and values: the prefix
    # up to the earliest answer start in one pass, then one token per step.
    cache = model.new_cache()
    out = model(inputs[:, :first + 1], pos[:, :first + 1], cache)
    for t in range(first, end + 1):
        step_pred = out.logits[:, -1].argmax(-1)
        active = (starts <= t) & (t <= last)
        preds[active, t] = step_pred[active]
        if t == end:
            break
        feed = active & (t + 1 < lengths)
        inputs[feed, t + 1] = step_pred[feed]
        if predicted_positions:
            pos[feed, t + 1] = out.position_logits[:, -1].argmax(-1)[feed]
        out = model(inputs[:, t + 1:t + 2], pos[:, :t + 2], cache)
    return preds


@torch.no_grad()
def score(model, examples: list[Example], batch_size: int, device, bf16=False, greedy=True) -> dict:
    """Per-example correctness arrays for a list of examples (order of the sorted batches)."""
    ppc = model.predicts_positions
    sampler = model.pos.eval_position_sampler()
    if sampler is not None:  # randomized positions at test time too; a fixed seed keeps sets comparable
        examples = with_positions(examples, sampler, np.random.default_rng([EVAL_STREAM, 2]))
    tf, greedy_ok, tok_right, tok_total = [], [], [], []
    oracle_ok, pos_right, pos_total = [], [], []
    for batch in batches(examples, batch_size):
        batch = batch.to(device)
        scored = batch.targets != IGNORE

        def all_right(p):
            return (((p == batch.targets) & scored).sum(1) == scored.sum(1)).cpu()

        with autocast(device, bf16):
            outputs = model(batch.inputs, batch.position_ids)
            pred = outputs.logits.argmax(-1)
            gpred = greedy_predictions(model, batch, ppc, pred) if greedy else None
            if ppc and greedy:
                oracle_ok.append(all_right(greedy_predictions(model, batch, teacher_forced=pred)))
        right = (pred == batch.targets) & scored
        tf.append((right.sum(1) == scored.sum(1)).cpu())
        tok_right.append(right.sum(1).cpu())
        tok_total.append(scored.sum(1).cpu())
        if greedy:
            greedy_ok.append(all_right(gpred))
        if ppc:
            hits, total = position_hits(outputs.position_logits, batch)
            pos_right.append(hits.cpu())
            pos_total.append(total.cpu())
    out = {"tf": torch.cat(tf).numpy(), "tok_right": torch.cat(tok_right).numpy(),
           "tok_total": torch.cat(tok_total).numpy()}
    if greedy:
        out["greedy"] = torch.cat(greedy_ok).numpy()
    if oracle_ok:
        out["greedy_oracle"] = torch.cat(oracle_ok).numpy()
    if pos_right:
        out["pos_right"], out["pos_total"] = torch.cat(pos_right).numpy(), torch.cat(pos_total).numpy()
    return out


def _rows(lo, hi, grp, s) -> list[dict]:
    n = len(s["tf"])
    rows = [dict(lo=lo, hi=hi, grp=grp, metric="exact_match_tf", value=float(s["tf"].mean()), count=n),
            dict(lo=lo, hi=hi, grp=grp, metric="token_acc", value=float(s["tok_right"].sum() / max(1, s["tok_total"].sum())),
                 count=n)]
    if "greedy" in s:
        rows.append(dict(lo=lo, hi=hi, grp=grp, metric="exact_match_greedy", value=float(s["greedy"].mean()), count=n))
    if "greedy_oracle" in s:
        rows.append(dict(lo=lo, hi=hi, grp=grp, metric="exact_match_greedy_oracle",
                         value=float(s["greedy_oracle"].mean()), count=n))
    if "pos_right" in s:
        rows.append(dict(lo=lo, hi=hi, grp=grp, metric="position_acc",
                         value=float(s["pos_right"].sum() / max(1, s["pos_total"].sum())), count=n))
    return rows


def evaluate(model, task: Task, bins, examples_per_bin: int, batch_size: int, device, bf16=False,
             greedy=True, train_length: int | None = None,
             validation: tuple[tuple[int, int], int] | None = None) -> list[dict]:
    """Metric rows (lo, hi, grp, metric, value, count) for every bin and breakdown group, and with
    `validation` = (bin, examples) that bin's validation draw (group `groups.VALIDATION`); for
    tasks not scored per length bin (language modelling, `evaluation_modes`), loss per position bucket
    at each context (lm_eval.py; `train_length` is the context the model was trained at)."""
    model.eval()
    if not evaluation_mode(task.evaluation).per_length_bin:
        return evaluate_contexts(model, task, bins, examples_per_bin, batch_size, device, bf16, train_length)
    rows = []
    if validation is not None:
        (lo, hi), count = validation
        s = score(model, eval_examples(task, lo, hi, count, tag=VALIDATION_TAG), batch_size, device, bf16, greedy)
        rows += _rows(lo, hi, VALIDATION, s)
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
            rows += _rows(lo, hi, group_name(fixed), s)
            parts.append(s)
        pooled = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        rows += _rows(lo, hi, "", pooled)
    return rows


HELD_OUT_TAG = 1  # the early-stop set's tag: never one of the reported sets (tag 0)
VALIDATION_TAG = 2  # the longest bin's validation draw, for choosing among configurations
CURVE_TAG = 3  # the fixed sets of the learning curves per bin


def in_distribution_accuracy(model, task: Task, lengths, count: int, batch_size: int, device, bf16=False,
                             tag: int = HELD_OUT_TAG) -> float:
    """Teacher-forced exact match on a fixed set from a length range (early stopping); tag 0 is the
    reported set of the bin `lengths` (for tasks without a breakdown)."""
    model.eval()
    s = score(model, eval_examples(task, lengths[0], lengths[1], count, tag=tag), batch_size, device, bf16,
              greedy=False)
    return float(s["tf"].mean())


def curve_point_name(metric: str, lo: int, hi: int) -> str:
    return f"{metric}@{lo}-{hi}"


def curve_points(model, task: Task, bins, count: int, batch_size: int, device, bf16=False, greedy=True) -> dict:
    """The reported metric (greedy or teacher-forced exact match) on a fixed set of `count`
    examples per bin, by curve name (`curve_point_name`)."""
    model.eval()
    metric, column = ("exact_match_greedy", "greedy") if greedy else ("exact_match_tf", "tf")
    return {curve_point_name(metric, lo, hi): float(score(model, eval_examples(task, lo, hi, count, tag=CURVE_TAG),
                                                           batch_size, device, bf16, greedy)[column].mean())
            for lo, hi in bins}
