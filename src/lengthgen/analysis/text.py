"""The sparsity probe on text, its stitched control, and the pooled statistic.

Windows: from each held-out document of >= `window` tokens, up to `windows_per_doc` disjoint
windows of `window` tokens (random ones among the document's aligned slots), each at position IDs
0 … window-1. Screening draws `positions_per_window` target positions t in [min_target, window)
per window and measures the reference's long-context gain

    g(t) = loss(t | kept) - loss(t | the whole window before t),   kept = {0} + [t-L, t)

The window's first token is kept because it is an attention sink: without it the short context
lacks what every trained context starts with, and the probe would credit the sink as a distant
dependency. Targets with g >= `min_gain` (up to `max_targets`, drawn at random) are probed: s(t)
is the fewest attributed distant tokens (candidates 1 … t-L-1) that recover half of g.

Stitched control: the same targets with their distant tokens (1 … t-L-1) taken from a window of
another document, the kept tokens unchanged. A gain that is real long-range dependency vanishes
there; one that is position or length alone does not.

Pooled statistic, per model trained at context L (`scheme_gains`): its own gain at a target is
loss(last L tokens, at IDs 0 … L-1: how it was trained) - loss(the whole window before t), and

    R(group) = sum of its gains / sum of the reference's g,   over the group's targets
    Delta    = R(sparse: s <= 4) - R(dense: s > 16 or none within the grid)

with 95% intervals from resampling documents (targets travel with their document).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .probe import Query, Scorer, bootstrap_mean, probe_query

SPARSE_AT_MOST = 4  # s <= 4: sparse targets
DENSE_ABOVE = 16  # s > 16 (or none within the grid): dense targets


@dataclass
class TextProbeSettings:
    window: int = 128  # full context W (targets sit inside it)
    local: int = 32  # L: the last L tokens are the short context
    min_target: int = 64  # targets t in [min_target, window)
    windows_per_doc: int = 4
    positions_per_window: int = 8
    min_gain: float = 0.5  # nats: targets probed
    max_targets: int = 1000
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    confirm_top: int = 8  # gradient candidates re-ranked by ablation
    threshold: float = 0.5
    seed: int = 0

    def __post_init__(self):
        self.ks = tuple(self.ks)
        if not 0 < self.local < self.min_target < self.window:
            raise InputError(f"text probe: need 0 < local ({self.local}) < min_target ({self.min_target}) "
                             f"< window ({self.window})")
        counts = (self.confirm_top, self.windows_per_doc, self.positions_per_window, self.max_targets)
        if min(counts) < 1:
            raise InputError("text probe: confirm_top, windows_per_doc, positions_per_window and max_targets must be >= 1")
        if self.positions_per_window > self.window - self.min_target:
            raise InputError(f"text probe: positions_per_window ({self.positions_per_window}) exceeds the "
                             f"{self.window - self.min_target} target positions of a window")
        if not self.ks or min(self.ks) < 1:
            raise InputError(f"text probe: ks must be whole numbers >= 1, got {self.ks}")


@dataclass
class Window:
    doc: str  # the document it comes from: the unit intervals resample
    name: str  # doc@offset
    ids: np.ndarray


def windows(docs: list[tuple[str, np.ndarray]], st: TextProbeSettings, rng: np.random.Generator) -> list[Window]:
    out = []
    for doc, ids in docs:
        slots = len(ids) // st.window
        for slot in np.sort(rng.permutation(slots)[:st.windows_per_doc]):
            start = int(slot) * st.window
            out.append(Window(doc, f"{doc}@{start}", np.asarray(ids[start:start + st.window], dtype=np.int64)))
    return out


def kept_context(ids: np.ndarray, t: int, local: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.r_[0, t - local:t]
    return ids[idx], idx


def stitched(ids: np.ndarray, donor: np.ndarray, t: int, local: int) -> np.ndarray:
    """The context before t with its distant tokens 1 … t-L-1 from `donor` (another document)."""
    return np.r_[ids[:1], donor[1:t - local], ids[t - local:t]]


def screen(scorer: Scorer, w: Window, donor: Window | None, st: TextProbeSettings,
           rng: np.random.Generator) -> list[dict]:
    """g(t) at random target positions of one window, and with `donor`, the stitched control's g."""
    pos = np.arange(len(w.ids))
    full = scorer.token_losses(w.ids, pos)  # full[t-1] = loss of ids[t] given ids[:t]
    ts = np.sort(rng.choice(np.arange(st.min_target, len(w.ids)), size=st.positions_per_window, replace=False))
    contexts = [kept_context(w.ids, t, st.local) for t in ts]
    if donor is not None:
        contexts += [(stitched(w.ids, donor.ids, t, st.local), pos[:t]) for t in ts]
    loss = scorer.losses(contexts, [int(w.ids[t]) for t in ts] * (2 if donor is not None else 1))
    rows = []
    for i, t in enumerate(ts):
        row = {"doc": w.doc, "window": w.name, "t": int(t), "loss_full": float(full[t - 1]),
               "loss_kept": float(loss[i]), "gain": float(loss[i] - full[t - 1])}
        if donor is not None:
            row.update(donor=donor.name, stitched_gain=float(loss[i] - loss[len(ts) + i]))
        rows.append(row)
    return rows


def text_query(w: Window, t: int, local: int) -> Query:
    return Query(w.ids[:t], np.arange(t), int(w.ids[t]), kept=np.r_[0, t - local:t], candidates=np.arange(1, t - local),
                 info={"doc": w.doc, "window": w.name, "t": t})


def probe_text(scorer: Scorer, docs: list[tuple[str, np.ndarray]], st: TextProbeSettings, probe: bool = True,
               control: bool = True) -> tuple[list[dict], list[dict], list[Window]]:
    """(probed target records, screened positions, the windows) over documents of >= window tokens."""
    rng = np.random.default_rng(st.seed)
    ws = windows(docs, st, rng)
    screened = []
    for i, w in enumerate(ws):
        others = [j for j, o in enumerate(ws) if o.doc != w.doc]
        donor = ws[others[rng.integers(len(others))]] if control and others else None
        screened += screen(scorer, w, donor, st, rng)
    if not probe:
        return [], screened, ws
    by_name = {w.name: w for w in ws}
    gaining = [r for r in screened if r["gain"] >= st.min_gain]
    chosen = sorted(rng.permutation(len(gaining))[:st.max_targets])
    ranking = "gradient" if scorer.has_gradients else "ablation"  # scorers without gradients rank exactly
    targets = [probe_query(scorer, text_query(by_name[gaining[i]["window"]], gaining[i]["t"], st.local), st.ks, st.ks,
                           rng, ranking, st.confirm_top, st.threshold) for i in chosen]
    return targets, screened, ws


# -- the pooled statistic -------------------------------------------------------------------------

def scheme_gains(scorer: Scorer, targets: list[dict], by_window: dict[str, np.ndarray], local: int) -> list[dict]:
    """Per probed target: a model's own gain, loss at its training context L (the last L tokens at
    IDs 0 … L-1) minus loss given the whole window before t; beside the reference's g and s."""
    contexts, goals = [], []
    for r in targets:
        ids, t = by_window[r["window"]], r["t"]
        contexts += [(ids[t - local:t], np.arange(local)), (ids[:t], np.arange(t))]
        goals += [int(ids[t])] * 2
    loss = scorer.losses(contexts, goals) if contexts else np.zeros(0)
    return [{"doc": r["doc"], "window": r["window"], "t": r["t"], "s": r["s"], "first": r["first"],
             "reference_gain": r["gain"], "gain": float(loss[2 * i] - loss[2 * i + 1])} for i, r in enumerate(targets)]


def is_sparse(s) -> bool:
    return s is not None and s <= SPARSE_AT_MOST


def is_dense(s) -> bool:
    return s is None or s > DENSE_ABOVE


def pooled_recovery(rows: list[dict], seed: int = 0, n_boot: int = 2000) -> dict:
    """R over all targets, R_sparse, R_dense and Delta = R_sparse - R_dense, each (estimate, lo, hi)
    with a 95% interval from resampling documents; counts of sparse and dense targets."""
    docs = sorted({r["doc"] for r in rows})
    index = {d: i for i, d in enumerate(docs)}
    # sums[doc, group, (model gain, reference g)] for groups all / sparse / dense
    sums = np.zeros((len(docs), 3, 2))
    for r in rows:
        for g, member in enumerate((True, is_sparse(r["s"]), is_dense(r["s"]))):
            if member:
                sums[index[r["doc"]], g] += (r["gain"], r["reference_gain"])

    def shares(total):
        with np.errstate(divide="ignore", invalid="ignore"):
            r = total[..., 0] / total[..., 1]
        return np.where(total[..., 1] > 0, r, np.nan)

    estimate = shares(sums.sum(0))
    rng = np.random.default_rng([seed, 5])
    boot = np.stack([shares(sums[rng.integers(0, len(docs), len(docs))].sum(0)) for _ in range(n_boot)]) \
        if docs else np.full((1, 3), np.nan)
    delta = boot[:, 1] - boot[:, 2]

    def interval(value, samples):
        samples = samples[np.isfinite(samples)]
        if not np.isfinite(value) or len(samples) == 0:
            return None
        lo, hi = np.percentile(samples, [2.5, 97.5])
        return float(value), float(lo), float(hi)

    return {"R": interval(estimate[0], boot[:, 0]), "R_sparse": interval(estimate[1], boot[:, 1]),
            "R_dense": interval(estimate[2], boot[:, 2]), "delta": interval(estimate[1] - estimate[2], delta),
            "n": len(rows), "n_sparse": sum(is_sparse(r["s"]) for r in rows),
            "n_dense": sum(is_dense(r["s"]) for r in rows), "documents": len(docs)}


def distance_strata(local: int, window: int) -> list[tuple[int, int]]:
    """[L, 2L), [2L, 4L), … up to the window: how far back a target's top-attributed token lies."""
    edges, lo = [], local
    while lo < window:
        edges.append((lo, min(2 * lo, window)))
        lo *= 2
    return edges


def by_distance(rows: list[dict], local: int, window: int, seed: int = 0) -> list[dict]:
    """The pooled statistic within each stratum of the top-attributed token's distance t - j."""
    out = []
    for lo, hi in distance_strata(local, window):
        chosen = [r for r in rows if r["first"] is not None and lo <= r["t"] - r["first"] < hi]
        out.append({"distance": [lo, hi], **pooled_recovery(chosen, seed, n_boot=500)})
    return out


# -- the gate and the verdict ----------------------------------------------------------------------

def document_mean(rows: list[dict], field: str, rng: np.random.Generator):
    """Mean of `field` over rows that have it, with a 95% interval resampling documents; None if none do."""
    rows = [r for r in rows if field in r]
    if not rows:
        return None
    return bootstrap_mean(np.array([r[field] for r in rows]), np.array([r["doc"] for r in rows]), rng)


@dataclass
class Gate:
    min_positions: int = 1000  # screened held-out positions
    min_mean_gain: float = 0.05  # nats, with the 95% interval above 0
    large_gain: float = 0.5  # nats
    min_large: int = 300  # positions with g >= large_gain


def gate_numbers(screened: list[dict], gate: Gate, seed: int = 0) -> dict:
    """The reference's mean g over the screened positions (95% interval over documents), how many
    carry g >= large_gain, the stitched control's mean g, and whether the gate passes."""
    rng = np.random.default_rng([seed, 6])
    out = {"positions": len(screened), "documents": len({r["doc"] for r in screened}),
           "mean_gain": document_mean(screened, "gain", rng), "large": sum(r["gain"] >= gate.large_gain for r in screened),
           "stitched_gain": document_mean(screened, "stitched_gain", rng)}
    mean = out["mean_gain"]
    out["passed"] = bool(out["positions"] >= gate.min_positions and mean is not None and mean[0] >= gate.min_mean_gain
                         and mean[1] > 0 and out["large"] >= gate.min_large)
    return out


@dataclass
class Verdict:
    extrapolates: float = 0.1  # pooled R above which a scheme recovers anything
    min_group: int = 50  # targets per group for "refutes"
    margin: float = 0.1  # |Delta| within this (interval) counts as no difference


def scheme_verdict(stats: dict, rule: Verdict) -> str:
    """reproduces | refutes | inconclusive | does not extrapolate, for one scheme's pooled statistic."""
    if stats["R"] is None or stats["R"][0] <= rule.extrapolates:
        return "does not extrapolate"
    delta = stats["delta"]
    if delta is not None and delta[1] > 0:
        return "reproduces"
    enough = min(stats["n_sparse"], stats["n_dense"]) >= rule.min_group
    if delta is not None and enough and (delta[2] < 0 or (delta[1] >= -rule.margin and delta[2] <= rule.margin)):
        return "refutes"
    return "inconclusive"


def study_verdict(gate: dict, per_scheme: dict[str, str]) -> str:
    """One line: the gate first; then the schemes that extrapolate must agree."""
    if not gate["passed"]:
        return "inconclusive: the reference does not use long context"
    judged = {s: v for s, v in per_scheme.items() if v != "does not extrapolate"}
    if not judged:
        return "inconclusive: no scheme trained at L recovers more than a tenth of the reference's gain"
    if all(v == "reproduces" for v in judged.values()):
        return "reproduces"
    if all(v == "refutes" for v in judged.values()):
        return "refutes"
    return "inconclusive: " + ", ".join(f"{s} {v}" for s, v in judged.items())


def format_interval(v) -> str:
    """(mean, lo, hi) as "mean [lo, hi]"; "–" for None (nothing to average)."""
    return "–" if v is None else f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def text_summary(targets: list[dict], screened: list[dict], ks, seed: int = 0) -> dict:
    """Distribution of s, and attributed vs random recovery per k, with 95% intervals clustered by document."""
    rng = np.random.default_rng([seed, 2])
    out: dict = {"targets": len(targets), "documents": len({r["doc"] for r in targets})}
    if screened:
        out.update(screened=len(screened), screened_gain=document_mean(screened, "gain", rng),
                   stitched_gain=document_mean(screened, "stitched_gain", rng))
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


GROUPS = f"sparse (s <= {SPARSE_AT_MOST}) / dense (s > {DENSE_ABOVE})"


def summary_markdown(title: str, summary: dict) -> str:
    lines = [f"### {title}", ""]
    if "screened_gain" in summary:
        lines.append(f"- mean g over {summary['screened']} random target positions: "
                     f"{format_interval(summary['screened_gain'])} nats")
    if summary.get("stitched_gain") is not None:
        lines.append(f"- control (distant tokens from another document), mean g at the same positions: "
                     f"{format_interval(summary['stitched_gain'])} nats")
    lines.append(f"- probed targets (g >= threshold): {summary['targets']} from {summary['documents']} documents")
    if summary["targets"]:
        lines.append(f"- mean g of probed targets: {format_interval(summary['gain'])} nats")
        dist = ", ".join(f"s={k}: {n}" for k, n in summary["s_distribution"].items())
        lines += [f"- distribution of s(t): {dist}", "",
                  "| k | recovered, attributed | recovered, random | attributed - random |", "|---|---|---|---|"]
        lines += [f"| {r['k']} | {format_interval(r['attributed'])} | {format_interval(r['random'])} | "
                  f"{format_interval(r['difference'])} |" for r in summary["recovery"]]
    lines.append("")
    return "\n".join(lines)
