"""The language-modelling view (docs/design.md §4.5): per run, the loss of each position bucket at each
evaluated context (and context-extension method), and a figure of loss against position bucket at
the longest context, one line per run."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

from ..analysis.study import ANALYSIS
from ..analysis.text import (DENSE_ABOVE, SPARSE_AT_MOST, Gate, Verdict, by_distance, distance_strata, format_interval, gate_numbers, pooled_recovery,
                             scheme_verdict, study_verdict)
from ..records import Analysis
from ..store import DONE_STATUSES, ResultsStore, short_key
from .claims import experiment_point
from .plots import palette, panels
from .tables import bin_label

METRIC = "loss"


def _context_order(grp: str) -> tuple[int, str]:
    """ctx=1L < ctx=2L < ... ; the plain model before its extension methods."""
    ctx, _, ext = grp.partition(",")
    size = ctx.removeprefix("ctx=").removesuffix("L")
    return (int(size) if size.isdigit() else 10**9, ext)


def loss_cells(store: ResultsStore, experiment: str | None) -> dict:
    """{(run, context group): {(lo, hi): [loss per seed]}} over the runs' `loss` rows."""
    done = {r.key for r in store.runs(experiment=experiment) if r.status in DONE_STATUSES}
    cells: dict = defaultdict(lambda: defaultdict(list))
    for m in store.metrics(experiment=experiment):
        if m.run_key in done and m.metric == METRIC and m.grp.startswith("ctx="):
            cells[experiment_point(m.name) or m.run_key, m.grp][m.bin].append(m.value)
    return cells


def loss_table(store: ResultsStore, experiment: str | None = None) -> tuple[list[str], list[list]]:
    """Columns: run, context, one per position bucket; cells: mean loss over seeds (nats)."""
    cells = loss_cells(store, experiment)
    buckets = sorted({b for per_bucket in cells.values() for b in per_bucket})
    rows = []
    for (run, grp), per_bucket in sorted(cells.items(), key=lambda kv: (kv[0][0], _context_order(kv[0][1]))):
        rows.append([run, grp.removeprefix("ctx="),
                     *(f"{np.mean(per_bucket[b]):.3f}" if b in per_bucket else None for b in buckets)])
    return ["run", "context", *map(bin_label, buckets)], rows


def plot_loss_by_position(store: ResultsStore, experiment: str | None) -> Figure:
    """Loss per position bucket at the longest plain context, one line per run."""
    cells = loss_cells(store, experiment)
    longest = max((g for _, g in cells if "," not in g), key=_context_order)
    series = {run: per_bucket for (run, grp), per_bucket in sorted(cells.items()) if grp == longest}
    fig, (ax,) = panels(1)
    for colour, (run, per_bucket) in zip(palette(len(series)), series.items()):
        buckets = sorted(per_bucket)
        ax.plot(range(len(buckets)), [np.mean(per_bucket[b]) for b in buckets], "o-", color=colour, label=run)
        ax.set_xticks(range(len(buckets)), [bin_label(b) for b in buckets], fontsize=8)
    ax.set(title=f"loss per position bucket at {longest.removeprefix('ctx=')}", xlabel="positions",
           ylabel="loss (nats)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


# -- the study: gate, pooled statistic, verdict ------------------------------------------------------

SOURCE_NOTE = ("g, s and R are our own concrete form of Golowich et al.'s natural-language study (they train OLMo "
               "models on C4); see docs/natural_language.md.")


def study_markdown(store: ResultsStore, experiment: str | None) -> str | None:
    """The stored study of an experiment (one per seed) as Markdown: the gate, then only if it
    passes, R, R_sparse, R_dense and Delta per scheme and the verdict; None without a study."""
    studies = [a for a in store.analyses(experiment) if a.name.startswith(ANALYSIS)] if experiment else []
    if not studies:
        return None
    return "\n".join(_one_study(a) for a in studies)


def _one_study(stored: Analysis) -> str:
    settings, result = stored.settings, stored.result
    st, rule = settings["probe"], Verdict(**settings["verdict"])
    gate = gate_numbers(result["screened"], Gate(**settings["gate"]), st["seed"])
    lines = [f"### {stored.name}: does the recovered long-context gain come from sparse dependencies?", "",
             f"Reference `{settings['reference']}` ({short_key(result['reference'])}), {result['documents']} held-out "
             f"documents, windows of {st['window']} tokens, L = {st['local']}, targets t in [{st['min_target']}, "
             f"{st['window']}); kept context: the window's first token and the last L tokens.", "",
             f"- gate: mean long-context gain g over {gate['positions']} positions of {gate['documents']} documents: "
             f"{format_interval(gate['mean_gain'])} nats (needs >= {settings['gate']['min_mean_gain']} with the "
             f"interval above 0, over >= {settings['gate']['min_positions']} positions); positions with g >= "
             f"{settings['gate']['large_gain']}: {gate['large']} (needs >= {settings['gate']['min_large']}): "
             f"**{'passed' if gate['passed'] else 'failed'}**"]
    if gate["stitched_gain"] is not None:
        lines.append(f"- control, distant tokens from another document: mean g {format_interval(gate['stitched_gain'])} "
                     "nats at the same positions")
    if not gate["passed"]:
        return "\n".join(lines + ["", f"**Verdict: {study_verdict(gate, {})}.** {SOURCE_NOTE}", ""])
    summary = result["summary"]
    dist = ", ".join(f"s={k}: {n}" for k, n in summary.get("s_distribution", {}).items())
    lines += [f"- probed targets: {summary['targets']} (g >= {st['min_gain']}); s(t): {dist}", "",
              f"| scheme | R, all targets | R, sparse (s <= {SPARSE_AT_MOST}) | R, dense (s > {DENSE_ABOVE}) | Δ = sparse − dense | "
              "sparse / dense targets | verdict |", "|---|---|---|---|---|---|---|"]
    verdicts = {}
    for name, scheme in result["schemes"].items():
        stats = pooled_recovery(scheme["rows"], st["seed"])
        verdicts[name] = scheme_verdict(stats, rule)
        lines.append(f"| {name} | {format_interval(stats['R'])} | {format_interval(stats['R_sparse'])} | "
                     f"{format_interval(stats['R_dense'])} | {format_interval(stats['delta'])} | "
                     f"{stats['n_sparse']} / {stats['n_dense']} | {verdicts[name]} |")
    strata = distance_strata(st["local"], st["window"])
    lines += ["", "Δ by how far back the top-attributed distant token lies (t − j):", "",
              "| scheme | " + " | ".join(f"[{lo}, {hi})" for lo, hi in strata) + " |", "|---|" + "---|" * len(strata)]
    for name, scheme in result["schemes"].items():
        cells = [f"{format_interval(s['delta'])} ({s['n_sparse']}/{s['n_dense']})"
                 for s in by_distance(scheme["rows"], st["local"], st["window"], st["seed"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Statistic: R = Σ(loss at L − loss with the whole window) / Σ g over a group's targets, 95% "
                  f"intervals from resampling documents. A scheme counts when its R > {rule.extrapolates}; "
                  f"reproduces: Δ's interval above 0; refutes: >= {rule.min_group} targets per group and Δ's "
                  f"interval within ±{rule.margin} or below 0.", "",
              f"**Verdict: {study_verdict(gate, verdicts)}.** {SOURCE_NOTE}", ""]
    return "\n".join(lines)
