"""The dependency-sparsity probe (docs/design.md §4.5): how many distant tokens carry a token's long-context gain.

For one target token t (a `Query`), the context splits into tokens that are always kept (the
last L tokens; for a synthetic task `<bos>`, `<sep>` and the query) and *candidates* that may be
added back (the distant tokens; the task's input tokens). Kept tokens keep their original
position IDs, so the model sees the same relative distances as in the full context.

    g(t)      = loss(t | kept only) - loss(t | full context)
    rec(S)    = (loss(t | kept only) - loss(t | kept + S)) / g(t)
    s(t)      = the smallest k (from a search grid) with rec(top-k attributed candidates) >= 0.5

Candidates are ranked by a causal attribution, never by attention weight:
  - `gradient`: |gradient x input| on the input embeddings in the full context picks the top
    `confirm_top` candidates, which are then re-ranked by ablation, the loss increase when each
    one is removed from (kept + those candidates) -- removal within the candidate set, so that
    tokens that only matter together (parity) are confirmed too; the rest keep the gradient order;
  - `ablation`: leave-one-out from the full context for every candidate (exact; for scorers
    without gradients and for short synthetic inputs).
Attributed top-k sets are compared with k random candidates (nested: prefixes of one permutation).

The probe is model-agnostic: it needs only a `Scorer`, which gives the log-loss of a target
token after a context of token ids at explicit position IDs. Adapters: `TransformerScorer` (our
model) and `HFScorer` (a Hugging Face causal LM).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

RANKINGS = ("gradient", "ablation")
Context = tuple[np.ndarray, np.ndarray]  # (token ids, position ids) of the kept tokens, in order


class Scorer(ABC):
    """Log-losses of a causal LM for contexts given as token ids at explicit position IDs."""

    has_gradients: ClassVar[bool] = False

    @abstractmethod
    def losses(self, contexts: Sequence[Context], targets: Sequence[int]) -> np.ndarray:
        """-log p(targets[i] | contexts[i]): the prediction made at each context's last token."""

    @abstractmethod
    def token_losses(self, ids: np.ndarray, position_ids: np.ndarray) -> np.ndarray:
        """[T-1] losses of ids[i+1] given ids[:i+1] (one pass over a whole sequence)."""

    def gradient_x_input(self, ids: np.ndarray, position_ids: np.ndarray, target: int) -> tuple[np.ndarray, float]:
        """Per-context-token gradient x input of the target's loss, and that loss."""
        raise InputError(f"{type(self).__name__} has no gradients; use ranking='ablation'")


class TorchScorer(Scorer):
    """Shared batching for torch models: right-padded batches (causal attention keeps the padding
    out of every real token's view) of at most `max_batch_tokens` tokens."""

    has_gradients = True

    def __init__(self, model: torch.nn.Module, device="cpu", max_batch_tokens: int = 4096, pad_id: int = 0):
        self.model = model.eval()
        self.device = torch.device(device)
        self.max_batch_tokens = max_batch_tokens
        self.pad_id = pad_id

    @abstractmethod
    def hidden(self, ids: torch.Tensor | None, position_ids: torch.Tensor,
               embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Final hidden states [B, T, D] from token ids or from input embeddings."""

    @abstractmethod
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Token logits from final hidden states."""

    @abstractmethod
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings of token ids."""

    def _batches(self, order: np.ndarray, lengths: np.ndarray):
        batch: list[int] = []
        for i in order:
            if batch and (len(batch) + 1) * max(lengths[batch + [i]]) > self.max_batch_tokens:
                yield batch
                batch = []
            batch.append(int(i))
        if batch:
            yield batch

    @torch.no_grad()
    def losses(self, contexts, targets):
        lengths = np.array([len(ids) for ids, _ in contexts])
        out = np.empty(len(contexts))
        for batch in self._batches(np.argsort(lengths, kind="stable"), lengths):
            T = int(lengths[batch].max())
            ids = torch.full((len(batch), T), self.pad_id, dtype=torch.long)
            pos = torch.zeros((len(batch), T), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, :lengths[i]] = torch.as_tensor(contexts[i][0])
                pos[row, :lengths[i]] = torch.as_tensor(contexts[i][1])
            h = self.hidden(ids.to(self.device), pos.to(self.device))
            last = h[torch.arange(len(batch)), torch.as_tensor(lengths[batch] - 1)]
            tgt = torch.as_tensor([targets[i] for i in batch], device=self.device)
            out[batch] = F.cross_entropy(self.logits(last).float(), tgt, reduction="none").cpu().numpy()
        return out

    @torch.no_grad()
    def token_losses(self, ids, position_ids):
        x = torch.as_tensor(ids, device=self.device)[None]
        h = self.hidden(x, torch.as_tensor(position_ids, device=self.device)[None])
        return F.cross_entropy(self.logits(h[0, :-1]).float(), x[0, 1:], reduction="none").cpu().numpy()

    def gradient_x_input(self, ids, position_ids, target):
        x = torch.as_tensor(ids, device=self.device)[None]
        e = self.embed(x).detach().requires_grad_(True)
        h = self.hidden(None, torch.as_tensor(position_ids, device=self.device)[None], embeds=e)
        loss = F.cross_entropy(self.logits(h[:, -1]).float(), torch.as_tensor([target], device=self.device))
        (grad,) = torch.autograd.grad(loss, e)
        return (grad * e).sum(-1)[0].detach().cpu().numpy(), loss.item()


class TransformerScorer(TorchScorer):
    """`lengthgen.model.Transformer`: forward(idx, position_ids) gives an `Output`, whose token
    logits are used (a PPC model's position logits are not)."""

    def hidden(self, ids, position_ids, embeds=None):
        if embeds is None:
            out = self.model(ids, position_ids)
        else:  # feed the given embeddings in place of the token-embedding output
            handle = self.model.tok.register_forward_hook(lambda module, inputs, output: embeds)
            try:
                out = self.model(torch.zeros(embeds.shape[:2], dtype=torch.long, device=embeds.device), position_ids)
            finally:
                handle.remove()
        return out.logits  # logits already: `logits` is the identity

    def logits(self, hidden):
        return hidden

    def embed(self, ids):
        return self.model.tok(ids)


class HFScorer(TorchScorer):
    """A Hugging Face causal LM: the decoder (`base_model`) with explicit `position_ids`; the output
    head is applied only where a loss is read (the 49k-word head is a fifth of SmolLM2's cost)."""

    def hidden(self, ids, position_ids, embeds=None):
        if embeds is None:
            return self.model.base_model(input_ids=ids, position_ids=position_ids).last_hidden_state
        return self.model.base_model(inputs_embeds=embeds, position_ids=position_ids).last_hidden_state

    def logits(self, hidden):
        return self.model.get_output_embeddings()(hidden)

    def embed(self, ids):
        return self.model.get_input_embeddings()(ids)


@dataclass
class Query:
    """One target: predict `target` after the context `ids` (at `position_ids`).
    `kept` and `candidates` are disjoint index arrays into the context."""

    ids: np.ndarray
    position_ids: np.ndarray
    target: int
    kept: np.ndarray
    candidates: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def subset(self, added: np.ndarray) -> Context:
        idx = np.union1d(self.kept, added).astype(int)
        return self.ids[idx], self.position_ids[idx]


def rank_candidates(scorer: Scorer, q: Query, ranking: str, confirm_top: int) -> tuple[np.ndarray, float]:
    """Candidates, most important first, and the full-context loss."""
    if ranking == "gradient":
        scores, loss_full = scorer.gradient_x_input(q.ids, q.position_ids, q.target)
        order = q.candidates[np.argsort(-np.abs(scores[q.candidates]), kind="stable")]
        top = order[:confirm_top]
        contexts = [q.subset(np.setdiff1d(top, [j])) for j in top] + [q.subset(top)]
        loss = scorer.losses(contexts, [q.target] * len(contexts))
        top = top[np.argsort(-(loss[:-1] - loss[-1]), kind="stable")]  # loss increase on removal
        return np.concatenate([top, order[confirm_top:]]), loss_full
    if ranking == "ablation":
        contexts = [(q.ids, q.position_ids)] + [q.subset(np.setdiff1d(q.candidates, [j])) for j in q.candidates]
        loss = scorer.losses(contexts, [q.target] * len(contexts))
        return q.candidates[np.argsort(-(loss[1:] - loss[0]), kind="stable")], float(loss[0])
    raise InputError(f"ranking must be one of {', '.join(RANKINGS)}, got {ranking!r}")


def probe_query(scorer: Scorer, q: Query, ks: Sequence[int], search_ks: Sequence[int], rng: np.random.Generator,
                ranking: str = "gradient", confirm_top: int = 16, threshold: float = 0.5) -> dict:
    """g, s and the recovered fraction per k (attributed and random) for one target."""
    order, loss_full = rank_candidates(scorer, q, ranking, confirm_top)
    shuffled = rng.permutation(q.candidates)
    n = len(q.candidates)
    sizes = sorted({min(k, n) for k in list(ks) + list(search_ks)})
    contexts = [q.subset(np.array([], dtype=int))] + [q.subset(order[:k]) for k in sizes] \
        + [q.subset(shuffled[:min(k, n)]) for k in ks]
    loss = scorer.losses(contexts, [q.target] * len(contexts))
    loss_base = float(loss[0])
    gain = loss_base - loss_full
    attributed = dict(zip(sizes, (loss_base - loss[1:1 + len(sizes)]) / gain))
    random = (loss_base - loss[1 + len(sizes):]) / gain
    s = next((k for k in sorted(search_ks) if attributed[min(k, n)] >= threshold), None)
    return {**q.info, "gain": gain, "loss_full": loss_full, "loss_base": loss_base, "s": s,
            "top": [int(j) for j in order[:s or 0]], "first": int(order[0]) if n else None,
            "attributed": {int(k): float(attributed[min(k, n)]) for k in ks},
            "random": {int(k): float(r) for k, r in zip(ks, random)}}


def bootstrap_mean(values: np.ndarray, groups: np.ndarray, rng: np.random.Generator,
                   n_boot: int = 1000) -> tuple[float, float, float]:
    """Mean and 95% interval, resampling groups (documents / examples) with their tokens."""
    values, groups = np.asarray(values, float), np.asarray(groups)
    labels = np.unique(groups)
    members = [values[groups == g] for g in labels]
    means = [np.concatenate([members[i] for i in rng.integers(0, len(labels), len(labels))]).mean()
             for _ in range(n_boot)]
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)
