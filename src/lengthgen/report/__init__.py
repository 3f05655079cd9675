"""Tables and plots of per-length-bin results read from the results store, one module per view:
`tables` (every run, pooled over seeds), `sparsity` (per k, Golowich et al.), `predictions`
(C-RASP predicted vs observed, Huang et al., beside their published numbers from `published`),
`claims` (the claims' statistics: the sparsity slope, the coupling gain), `selection` (best run,
held-out selection and success rate where cells have several runs); `plots` draws the figures.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from ..store import DONE_STATUSES, ResultsStore, write_text
from .claims import coupling_gains, gain_table, slope_table, sparsity_slopes
from .curves import plot_curves
from .language import loss_table, plot_loss_by_position, study_markdown
from .plots import plot_bins
from .predictions import plot_predictions, prediction_caption, prediction_rows, prediction_table
from .selection import selection_cells, selection_summary, selection_table, write_selection
from .sparsity import plot_accuracy_vs_length, sparsity_table
from .tables import Pooled, diverged_table, markdown_table, print_table, results_table, unfinished_table

SELECTION_CAPTION = (
    "selection rules, per task and scheme ({metric} on the judged bin: the paper's own test bin where the config "
    "names one, else the longest): best run = the highest on the test draw (Huang et al.'s rule, selected on the "
    "test bin); held-out = the configuration best on a separate validation draw, then the mean over its seeds on "
    "the test draw; runs >= 0.9 = success rate (Wilson interval)")
SUMMARY_CAPTION = (
    "selection rules per scheme: judged cells agreeing with the prediction under each rule; share of runs >= 0.9 "
    "(runs pooled over cells); AUC of the prediction against the judged-bin accuracy over all cells, ties 1/2 "
    "(bootstrap over cells, stratified), on Huang et al.'s published numbers beside")
UNFINISHED = "runs not finished (rerun their command to resume them from their checkpoints)"
__all__ = ["report", "Pooled", "markdown_table", "print_table", "results_table", "sparsity_table",
           "prediction_rows", "prediction_table"]


def report(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_greedy",
           out_dir: str | Path | None = None, markdown: bool = False, console: Console | None = None) -> list[Path]:
    """Print the tables (rich, or Markdown when `markdown`) and write the plots into out_dir.

    Runs with per-k groups get the sparsity table and plot; the other runs get the per-bin plot. A task
    with both plain and coupled runs gets the coupling gain table.
    With `markdown` and an out_dir, the Markdown (plots embedded) is also written to
    `<experiment>_<metric>.md` there. Returns the paths written.
    """
    console = console or Console()
    if metric == "loss":  # language modelling: loss per position bucket at each context
        return _language_report(store, experiment, out_dir, markdown, console)
    results, sparsity = results_table(store, experiment, metric), sparsity_table(store, experiment, metric)
    extra = [(UNFINISHED, unfinished_table(store, experiment)), ("runs that diverged (no metrics)",
                                                                  diverged_table(store, experiment))]
    extra = [(title, table) for title, table in extra if table[1]]
    if not results[1] and not sparsity[1]:
        available = store.metric_names(experiment)
        console.print(f"no finished runs with {metric!r} results" + (f" in experiment {experiment!r}"
                      if experiment else "") + (f"; metrics stored: {', '.join(available)}" if available else ""))
        for title, table in extra:
            print_table(*table, title, console)
        return []
    tables = [(f"{metric} per length bin", results), *extra]
    if sparsity[1]:
        tables.append((f"{metric} per k and length bin", sparsity))
    claims, predictions, selection = _claim_tables(store, experiment, metric)
    tables += claims
    paths = []
    stem = re.sub(r"[^\w.-]+", "_", f"{experiment or 'all'}_{metric}")
    if out_dir is not None:
        paths = _write_figures(store, experiment, metric, Path(out_dir), stem, results, sparsity, predictions,
                               selection)
    if markdown:
        text = "\n\n".join([f"### {title}\n\n{markdown_table(*table)}" for title, table in tables]
                           + [f"![{p.stem}]({p.name})" if p.suffix == ".png" else f"[{p.name}]({p.name})"
                              for p in paths]) + "\n"
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        if out_dir is not None:
            paths.append(Path(out_dir) / f"{stem}.md")
            write_text(paths[-1], text)
    else:
        for title, (columns, rows) in tables:
            print_table(columns, rows, title, console)
    return paths


def _claim_tables(store: ResultsStore, experiment: str | None, metric: str) -> tuple[list, list, list]:
    """The claims' tables (sparsity slope, coupling gain, predictions, selection rules) that the
    stored runs support, with the prediction rows and selection cells behind them."""
    tables = []
    slopes = sparsity_slopes(store.metrics(experiment=experiment), metric)
    if slopes:
        tables.append((f"the sparsity claim: slope of {metric} against k per bin beyond training, over the k "
                       "each seed learned (>= 0.99 in distribution); bootstrap over seeds and examples",
                       slope_table(slopes)))
    configs = {r["key"]: r["config"] for r in store.runs(experiment=experiment) if r["status"] in DONE_STATUSES}
    gains = coupling_gains(store.metrics(experiment=experiment), configs, metric)
    if gains:
        tables.append((f"the coupling claim: gain of {metric} over the best plain scheme (sequential IDs) per bin "
                       "beyond training, and PPC minus its oracle (decoding with the task's IDs); bootstrap over "
                       "seeds and examples", gain_table(gains)))
    predictions = prediction_rows(store, experiment, metric)
    if predictions:
        tables.append((prediction_caption(predictions, metric), prediction_table(predictions)))
    selection = [c for c in selection_cells(store, experiment, metric) if len(c.runs) > 1]
    if selection:
        tables += [(SELECTION_CAPTION.format(metric=metric), selection_table(selection)),
                   (SUMMARY_CAPTION, selection_summary(selection))]
    return tables, predictions, selection


def _write_figures(store: ResultsStore, experiment: str | None, metric: str, out_dir: Path, stem: str, results,
                   sparsity, predictions, selection) -> list[Path]:
    """The plots (per k, per bin, predicted vs observed) and the selection rules' JSON."""
    paths = []
    sparse_runs = {row[0] for row in sparsity[1]}
    run_column = results[0].index("run")
    if sparse_runs:
        paths.append(plot_accuracy_vs_length(store, experiment, metric, out_dir / f"{stem}_by_k.png"))
    if any(row[run_column] not in sparse_runs for row in results[1]):
        paths.append(plot_bins(store, experiment, metric, out_dir / f"{stem}_bins.png"))
    curves = plot_curves(store, experiment, out_dir / f"{stem}_curves.png")
    if curves is not None:
        paths.append(curves)
    if predictions:
        paths.append(plot_predictions(predictions, metric, out_dir / f"{stem}_predictions.png"))
    if selection:
        paths.append(write_selection(selection, out_dir / f"{stem}_selection.json"))
    return paths


def _language_report(store: ResultsStore, experiment: str | None, out_dir, markdown: bool, console: Console
                     ) -> list[Path]:
    """Loss per position bucket at each context, then the experiment's stored study (gate, pooled
    statistic, verdict) when it has one; with `markdown` and an out_dir also `<experiment>_loss.md`."""
    columns, rows = loss_table(store, experiment)
    if not rows:
        console.print("no finished language-modelling runs" + (f" in experiment {experiment!r}" if experiment else ""))
        return []
    title = "loss (nats) per position bucket at each context (ext: context-extension method)"
    paths = []
    stem = re.sub(r"[^\w.-]+", "_", f"{experiment or 'all'}_loss")
    if out_dir is not None:
        paths.append(plot_loss_by_position(store, experiment, Path(out_dir) / f"{stem}_by_position.png"))
    study = study_markdown(store, experiment)
    if markdown:
        text = f"### {title}\n\n{markdown_table(columns, rows)}\n" + "".join(f"\n![{p.stem}]({p.name})\n" for p in paths)
        text += "" if study is None else "\n" + study
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        if out_dir is not None:
            paths.append(Path(out_dir) / f"{stem}.md")
            write_text(paths[-1], text)
    else:
        print_table(columns, rows, title, console)
        if study is not None:
            console.print("\n" + study, markup=False, highlight=False, soft_wrap=True)
    return paths
