"""Predictive Position Coupling (Golowich et al. 2025; docs/design.md §4.4).

With `model.predict_positions`, the transformer's position head predicts, at every position t,
the position ID of the token at t+1. Training adds `train.position_loss_weight` times the
cross-entropy of that prediction on the positions whose next token is scored and fed back, i.e.
every answer token except the final <eos> (which is never fed, so it has no ID). At inference,
greedy decoding gives each generated token the ID the head predicted for it
(`evaluate.greedy_predictions(..., predicted_positions=True)`), so the coupled IDs need not be
known in advance: the point of PPC when they depend on the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import IGNORE, Batch
from .errors import InputError


def position_targets(batch: Batch) -> torch.Tensor:
    """[B, T] targets for the position head: the ID at t+1 where the token at t+1 is a scored
    answer token that gets fed back, IGNORE elsewhere."""
    T = batch.inputs.shape[1]
    lengths = torch.tensor([len(e.inputs) for e in batch.examples], device=batch.inputs.device)
    t = torch.arange(T, device=batch.inputs.device)
    fed_next = (t[None, :] + 1) < lengths[:, None]
    scored = (batch.targets != IGNORE) & fed_next
    nxt = torch.cat([batch.position_ids[:, 1:], batch.position_ids[:, -1:]], dim=1)
    return torch.where(scored, nxt, torch.full_like(nxt, IGNORE))


def position_loss(position_logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Cross-entropy of the next token's position ID over the scored answer positions."""
    targets = position_targets(batch)
    vocab = position_logits.shape[-1]
    top = int(targets.max())
    if top >= vocab:
        raise InputError(f"position ID {top} is beyond the position head's {vocab} classes; raise "
                         "model.max_positions (the head predicts IDs 0..max_positions-1)")
    if not (targets != IGNORE).any():
        return position_logits.sum() * 0.0  # no answer token is fed back in this batch
    return F.cross_entropy(position_logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


def position_hits(position_logits: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example: how many teacher-forced ID predictions are right, out of how many scored."""
    targets = position_targets(batch)
    scored = targets != IGNORE
    right = (position_logits.argmax(-1) == targets) & scored
    return right.sum(1), scored.sum(1)
