"""First-layer attention by position-ID distance, for a run with learned absolute positions.

Two views separate the two ways a coupled APE model can fail on longer inputs:
- **far pairs never seen**: the positional logit p_i W_QK p_j (query ID i, key ID j, the raw
  position vectors through one head's query and key maps) at ID distances j - i that no training
  example holds may be as large as at the distance the head was trained to find;
- **attention diluted**: the logits keep their margin, but a longer input holds more keys, so the
  softmax weight on the keys at the head's distance falls. Measured on real examples per length
  bin: the first layer's full logits (tokens and positions), the mean attention weight on keys at
  the head's own distance.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data import IGNORE, batches
from ..errors import InputError
from ..evaluate import CURVE_TAG, eval_examples


def distances_in(examples) -> set[int]:
    """ID distances (key ID - query ID, key at or before the query) that the examples hold among
    the tokens a training offset shifts together (a <bos> kept at ID 0 meets every distance)."""
    seen: set[int] = set()
    for ex in examples:
        ids = np.arange(len(ex.inputs)) if ex.position_ids is None else np.asarray(ex.position_ids)
        ids = ids[ex.offset_from:]
        seen.update(np.unique((ids[None, :] - ids[:, None])[np.tril_indices(len(ids))]).tolist())
    return seen


def positional_logits(model) -> torch.Tensor:
    """[H, P, P]: p_i W_QK p_j / sqrt(d_head) of the first layer for every pair of IDs."""
    table = model.pos.position_table()
    if table is None:
        raise InputError(f"scheme {model.cfg.positional!r} has no learned absolute position table; this view needs "
                         "one (ape)")
    attn = model.blocks[0].attn
    H, D = attn.n_heads, model.cfg.d_model
    p = table.weight.detach()
    w_q, w_k, _ = attn.qkv.weight.detach().split(D)
    q, k = (p @ w_q.T).view(-1, H, D // H), (p @ w_k.T).view(-1, H, D // H)
    return torch.einsum("ihd,jhd->hij", q, k) / (D // H) ** 0.5


def by_distance(logits: torch.Tensor, max_id: int) -> dict[int, np.ndarray]:
    """Mean positional logit per head at each distance j - i <= 0, over query IDs i < max_id."""
    out = {}
    for delta in range(-(max_id - 1), 1):
        i = torch.arange(-delta, max_id)
        out[delta] = logits[:, i, i + delta].mean(1).numpy()
    return out


@torch.no_grad()
def attention_weights(model, examples, delta_per_head: list[int], seen: set[int],
                      batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Mean first-layer attention weight [H] that answer positions put on keys at the head's own
    distance, and [H] on keys at distances no training example holds."""
    model.eval()
    attn, pos = model.blocks[0].attn, model.pos
    H = attn.n_heads
    total, unseen_total, count = np.zeros(H), np.zeros(H), 0
    for batch in batches(examples, batch_size):
        x = model.tok(batch.inputs)
        pe = pos.embed(batch.position_ids)
        if pe is not None:
            x = x + pe
        B, T, D = x.shape
        q, k, _ = attn.qkv(model.blocks[0].ln1(x)).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        q, k = pos.rotate(q, k, batch.position_ids)
        logits = q @ k.transpose(-1, -2) / (D // H) ** 0.5
        logits = logits.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        weights = logits.softmax(-1)  # [B, H, T, T]
        delta = batch.position_ids[:, None, :] - batch.position_ids[:, :, None]  # [B, Tq, Tk]
        answer = batch.targets != IGNORE  # the positions whose next token is scored
        unseen = ~torch.isin(delta, torch.tensor(sorted(seen)))
        unseen[:, :, 0] = False  # <bos>
        for h in range(H):
            total[h] += (weights[:, h] * (delta == delta_per_head[h])).sum(-1)[answer].sum().item()
            unseen_total[h] += (weights[:, h] * unseen).sum(-1)[answer].sum().item()
        count += int(answer.sum())
    return total / max(count, 1), unseen_total / max(count, 1)


def position_logit_report(model, cfg, task, examples: int = 100) -> str:
    """Markdown: per head, the positional logit at its own distance against the best seen and
    unseen distances, and the attention weight it puts there in each evaluation bin."""
    lo, hi = cfg.task.train_lengths
    seen = distances_in(eval_examples(task, lo, hi, examples, tag=CURVE_TAG))
    logits = positional_logits(model)
    rows = by_distance(logits, model.max_positions)
    H = logits.shape[0]
    top = [max((d for d in rows if d in seen), key=lambda d: rows[d][h]) for h in range(H)]
    by_bin = {b: eval_examples(task, b[0], b[1], examples, tag=CURVE_TAG) for b in cfg.task.eval_bins}
    tested = set().union(*(distances_in(drawn) for drawn in by_bin.values()))
    unseen = [d for d in rows if d in tested and d not in seen]
    lines = [f"First layer of {cfg.name or cfg.key()}: training lengths [{lo}, {hi}] hold ID distances "
             f"{min(seen)}..{max(seen)} (key ID - query ID).", "",
             "| head | own distance | logit there | best other seen | best unseen (distance) |",
             "|---|---|---|---|---|"]
    for h in range(H):
        other = max(rows[d][h] for d in rows if d in seen and d != top[h])
        far = max(unseen, key=lambda d: rows[d][h]) if unseen else None
        far_text = f"{rows[far][h]:+.2f} ({far})" if far is not None else "–"
        lines.append(f"| {h} | {top[h]} | {rows[top[h]][h]:+.2f} | {other:+.2f} | {far_text} |")
    lines += ["", "Mean attention weight of answer positions (real examples, tokens and positions) on keys at the "
                  "head's own distance / on keys at distances no training example holds:", "",
              "| bin | " + " | ".join(f"head {h}" for h in range(H)) + " |", "|---" * (H + 1) + "|"]
    for (b_lo, b_hi), drawn in by_bin.items():
        own, far = attention_weights(model, drawn, top, seen)
        lines.append(f"| [{b_lo}, {b_hi}] | " + " | ".join(f"{a:.3f} / {b:.3f}" for a, b in zip(own, far)) + " |")
    return "\n".join(lines) + "\n"
