"""The sparsity probe on synthetic tasks: how many input tokens does each answer depend on?

For an example `<bos> x1 … xn <sep> [query] y <eos>` the context of the answer y is everything
before it; `<bos>`, `<sep>` and the query (kgram_lookup) are always kept, the input tokens
x1 … xn are the candidates. So g = loss(y | no input tokens) - loss(y | full input) and s = the
smallest number of attributed input tokens that recover >= 50% of g, searched over every k
from 1 to n (not a grid), so that s can be compared with the planted k exactly.

Against the planted k (Example.info): sparse_parity's answer is a function of exactly the k
planted bits, and without any one of them it is a fair coin, so a model that learned the task
has s = k. kgram_lookup's answer is the value after the queried key: `planted` lists the key
and the value (k + 1 tokens), and the value alone may already suffice, so s <= k + 1.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..tasks import Task
from .probe import Query, Scorer, probe_query


def synthetic_queries(task: Task, lengths: tuple[int, int], n_examples: int, seed: int) -> list[Query]:
    rng = np.random.default_rng(seed)
    queries = []
    for i in range(n_examples):
        ex = task.sample(rng, int(rng.integers(lengths[0], lengths[1] + 1)))
        scored = np.flatnonzero(ex.loss_mask)
        if len(scored) != 1:
            raise InputError(f"task {task.name!r}: the synthetic probe needs exactly one scored answer token, "
                             f"got {len(scored)}")
        a = int(scored[0])
        pos = np.arange(len(ex.inputs)) if ex.position_ids is None else ex.position_ids
        candidates = np.arange(1, ex.length + 1)  # x1 … xn
        queries.append(Query(ex.inputs[:a + 1], pos[:a + 1], int(ex.targets[a]),
                             np.setdiff1d(np.arange(a + 1), candidates), candidates,
                             info={"example": i, "length": ex.length, "k": ex.info["k"],
                                   "planted": list(ex.info["planted"])}))
    return queries


def probe_synthetic(scorer: Scorer, task: Task, lengths: tuple[int, int], n_examples: int = 64, seed: int = 0,
                    ranking: str = "ablation", confirm_top: int | None = None, ks=(1, 2, 4, 8),
                    threshold: float = 0.5) -> list[dict]:
    """Per-example records: planted k, g, s, whether the top-s tokens are all planted ones.
    `confirm_top`: candidates re-ranked by ablation after the gradient ranking (None: all)."""
    rng = np.random.default_rng([seed, 1])
    rows = []
    for q in synthetic_queries(task, lengths, n_examples, seed):
        n = len(q.candidates)
        row = probe_query(scorer, q, ks, range(1, n + 1), rng, ranking=ranking, confirm_top=confirm_top or n, threshold=threshold)
        row["top_planted"] = set(row["top"]) <= set(row["planted"])
        rows.append(row)
    return rows


def synthetic_summary(rows: list[dict], min_gain: float) -> list[dict]:
    """Per planted k, over examples with g >= min_gain: how often s = k, s < k, s > k (or none)."""
    out = []
    for k in sorted({r["k"] for r in rows}):
        sel = [r for r in rows if r["k"] == k and r["gain"] >= min_gain]
        s = np.array([r["s"] if r["s"] is not None else np.inf for r in sel], dtype=float)
        out.append({"k": k, "examples": sum(r["k"] == k for r in rows), "probed": len(sel),
                    "s_eq_k": float(np.mean(s == k)) if sel else float("nan"),
                    "s_lt_k": float(np.mean(s < k)) if sel else float("nan"),
                    "s_gt_k": float(np.mean(s > k)) if sel else float("nan"),
                    "median_s": float(np.median(s)) if sel else float("nan"),
                    "top_planted": float(np.mean([r["top_planted"] for r in sel])) if sel else float("nan")})
    return out
