"""The sparsity probe on text (DESIGN §4.5), and its control: sentences shuffled across documents.

Per document the first `window` tokens are the full context, at position IDs 0…window-1. Target
positions t are drawn uniformly from [min_target, window); for each, the local context is the
last `local` tokens (t-L … t-1) at their original IDs and the distant tokens are 0 … t-L-1.
Screening scores `candidates_per_doc` random positions (one full pass plus one short pass each);
among those with g >= `min_gain`, up to `targets_per_doc` random ones are probed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .probe import Query, Scorer, bootstrap_mean, probe_query


@dataclass
class TextProbeSettings:
    window: int = 512  # full context F
    local: int = 128  # L
    min_target: int = 256  # targets t in [min_target, window)
    candidates_per_doc: int = 8
    targets_per_doc: int = 2
    min_gain: float = 0.5  # nats
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    confirm_top: int = 8  # gradient candidates re-ranked by ablation
    threshold: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.local < self.min_target < self.window:
            raise ValueError(f"text probe: need 0 < local ({self.local}) < min_target ({self.min_target}) "
                             f"< window ({self.window})")
        if self.confirm_top < 1 or self.candidates_per_doc < 1 or self.targets_per_doc < 1:
            raise ValueError("text probe: confirm_top, candidates_per_doc and targets_per_doc must be >= 1")


def shuffle_sentences(texts: list[str], rng: np.random.Generator) -> list[str]:
    """The control: all sentences pooled and shuffled, each document keeping its sentence count."""
    split = [re.split(r"(?<=[.!?])\s+", t.strip()) for t in texts]
    pool = [s for sentences in split for s in sentences]
    order = rng.permutation(len(pool))
    out, i = [], 0
    for sentences in split:
        out.append(" ".join(pool[j] for j in order[i:i + len(sentences)]))
        i += len(sentences)
    return out


def screen(scorer: Scorer, ids: np.ndarray, st: TextProbeSettings, rng: np.random.Generator) -> list[dict]:
    """g(t) at random target positions of one document."""
    ids = ids[:st.window]
    pos = np.arange(len(ids))
    full = scorer.token_losses(ids, pos)  # full[t-1] = loss of ids[t] given ids[:t]
    ts = np.sort(rng.choice(np.arange(st.min_target, len(ids)), size=st.candidates_per_doc, replace=False))
    local = scorer.losses([(ids[t - st.local:t], pos[t - st.local:t]) for t in ts], ids[ts])
    return [{"t": int(t), "loss_full": float(full[t - 1]), "loss_local": float(lo), "gain": float(lo - full[t - 1])}
            for t, lo in zip(ts, local)]


def text_query(ids: np.ndarray, t: int, local: int, info: dict) -> Query:
    return Query(ids[:t], np.arange(t), int(ids[t]), kept=np.arange(t - local, t), candidates=np.arange(t - local),
                 info={"t": t, **info})


def probe_text(scorer: Scorer, docs: list[tuple[str, np.ndarray]], st: TextProbeSettings,
               probe: bool = True) -> tuple[list[dict], list[dict]]:
    """(probed target records, screened positions) over documents of >= window tokens."""
    rng = np.random.default_rng(st.seed)
    targets, screened = [], []
    for name, ids in docs:
        rows = [{"doc": name, **r} for r in screen(scorer, ids, st, rng)]
        screened += rows
        if not probe:
            continue
        gaining = [r for r in rows if r["gain"] >= st.min_gain]
        for r in (gaining[i] for i in rng.permutation(len(gaining))[:st.targets_per_doc]):
            q = text_query(ids, r["t"], st.local, {"doc": name})
            targets.append(probe_query(scorer, q, st.ks, st.ks, rng, "gradient", st.confirm_top, st.threshold))
    return targets, screened


def recovered_fraction(scorer: Scorer, targets: list[dict], docs: dict[str, np.ndarray], local: int) -> list[dict]:
    """Per probed target (of a reference model): r = (loss given the last `local` tokens − loss given
    the whole prefix) under `scorer`'s model, divided by the reference's gain g(t)."""
    rows = []
    for r in targets:
        ids, t = docs[r["doc"]], r["t"]
        pos = np.arange(t)
        full, last = scorer.losses([(ids[:t], pos), (ids[t - local:t], pos[t - local:])], [int(ids[t])] * 2)
        rows.append({"doc": r["doc"], "t": t, "s": r["s"], "reference_gain": r["gain"],
                     "gain": float(last - full), "r": float((last - full) / r["gain"])})
    return rows


def recovery_by_sparsity(rows: list[dict], dense_above: int, seed: int = 0, sparse_at_most: int = 4) -> dict:
    """Mean r for sparse targets (s <= sparse_at_most) and dense ones (s > dense_above, or no s found),
    each with a 95% interval clustered by document."""
    rng = np.random.default_rng([seed, 4])
    out = {}
    for name, keep in (("sparse", lambda s: s is not None and s <= sparse_at_most),
                       ("dense", lambda s: s is None or s > dense_above)):
        chosen = [r for r in rows if keep(r["s"])]
        out[f"n_{name}"] = len(chosen)
        out[name] = bootstrap_mean(np.array([r["r"] for r in chosen]), np.array([r["doc"] for r in chosen]), rng) \
            if chosen else None
    return out


def text_summary(targets: list[dict], screened: list[dict], ks, seed: int = 0) -> dict:
    """Distribution of s, and attributed vs random recovery per k, with 95% intervals clustered by document."""
    rng = np.random.default_rng([seed, 2])
    out: dict = {"targets": len(targets), "documents": len({r["doc"] for r in targets})}
    if screened:
        groups = np.array([r["doc"] for r in screened])
        out["screened_gain"] = bootstrap_mean(np.array([r["gain"] for r in screened]), groups, rng)
        out["screened"] = len(screened)
    if not targets:
        return out
    docs = np.array([r["doc"] for r in targets])
    out["gain"] = bootstrap_mean(np.array([r["gain"] for r in targets]), docs, rng)
    labels = [str(k) for k in ks] + [f">{max(ks)}"]
    counts = [sum(r["s"] == k for r in targets) for k in ks] + [sum(r["s"] is None for r in targets)]
    out["s_distribution"] = dict(zip(labels, counts))
    out["recovery"] = []
    for k in ks:
        att = np.array([r["attributed"][k] for r in targets])
        rnd = np.array([r["random"][k] for r in targets])
        out["recovery"].append({"k": k, "attributed": bootstrap_mean(att, docs, rng),
                                "random": bootstrap_mean(rnd, docs, rng),
                                "difference": bootstrap_mean(att - rnd, docs, rng)})
    return out


def format_interval(v) -> str:
    """(mean, lo, hi) as "mean [lo, hi]"; "–" for None (nothing to average)."""
    return "–" if v is None else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def summary_markdown(title: str, summary: dict, control: dict | None = None) -> str:
    lines = [f"### {title}", ""]
    if "screened_gain" in summary:
        lines.append(f"- mean g over {summary['screened']} random target positions: {format_interval(summary['screened_gain'])} nats")
    if control is not None and "screened_gain" in control:
        lines.append(f"- control (sentences shuffled across documents), mean g over {control['screened']} positions: "
                     f"{format_interval(control['screened_gain'])} nats")
    lines.append(f"- probed targets (g >= threshold): {summary['targets']} from {summary['documents']} documents")
    if summary["targets"]:
        lines.append(f"- mean g of probed targets: {format_interval(summary['gain'])} nats")
        dist = ", ".join(f"s={k}: {n}" for k, n in summary["s_distribution"].items())
        lines += [f"- distribution of s(t): {dist}", "",
                  "| k | recovered, attributed | recovered, random | attributed - random |", "|---|---|---|---|"]
        lines += [f"| {r['k']} | {format_interval(r['attributed'])} | {format_interval(r['random'])} | {format_interval(r['difference'])} |"
                  for r in summary["recovery"]]
    lines.append("")
    return "\n".join(lines)
