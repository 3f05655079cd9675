"""Tables and plots of per-length-bin results read from the results store, one module per view:
`tables` (every run, pooled over seeds), `sparsity` (per k, Golowich et al.), `predictions`
(C-RASP predicted vs observed, Huang et al., beside their published numbers from `published`),
`claims` (the claims' statistics: the sparsity slope, the coupling gain), `selection` (best run,
held-out selection and success rate where cells have several runs); `plots`, `curves` and the views
draw the figures, which `report` saves.
"""

from __future__ import annotations

import socket
from pathlib import Path

from matplotlib.figure import Figure
from rich.console import Console

from ..store import DONE_STATUSES, ResultsStore, environment, write_text
from .claims import coupling_gains, gain_table, slope_table, sparsity_slopes
from .curves import plot_curves, plot_training
from .html import MACHINE_FIELDS, figure_png, html_page
from .language import loss_table, plot_loss_by_position, study_markdown
from .page import machines, markdown_page, page_stem, page_title, regenerating_commands, report_command
from .plots import plot_bins, save_figures
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
FIGURE_CAPTIONS = {"by_k": "{metric} per k and length bin, one panel per configuration",
                   "bins": "{metric} per length bin, one panel per task", "curves": "learning curves per length bin",
                   "predictions": "{metric}: predicted vs observed per task", "training": "training curves",
                   "by_position": "loss per position bucket at the longest context"}
UNFINISHED = "runs not finished (rerun their command to resume them from their checkpoints)"
__all__ = ["report", "Pooled", "markdown_table", "print_table", "results_table", "sparsity_table",
           "prediction_rows", "prediction_table"]


def report(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_greedy",
           out_dir: str | Path | None = None, markdown: bool = False, console: Console | None = None,
           formats: tuple[str, ...] = ("png",), html: str | Path | None = None, command: str | None = None,
           preset: str | None = None) -> list[Path]:
    """Print the tables (rich, or Markdown when `markdown`) and write the figures into out_dir, each
    in every one of `formats` (png, pdf, svg). With `html`, also the whole report as that one
    self-contained page. Either page names `command` (default: the `lengthgen report` equivalent of
    this call) as what regenerates it.

    Runs with per-k groups get the sparsity table and plot; the other runs get the per-bin plot; runs
    that stored training curves get those plotted. A task with both plain and coupled runs gets the
    coupling gain table. With `markdown` and an out_dir, the whole page (tables, verdicts, machines,
    PNG figures linked) is also written there, to `<preset>.md` for the runs of `preset`, else to
    `<experiment>_<metric>.md`, the figures beside it under the same stem. Returns the paths written.
    """
    console = console or Console()
    if metric == "loss":  # language modelling: loss per position bucket at each context
        return _language_report(store, experiment, out_dir, markdown, console, formats, html, command, preset)
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
    stem = page_stem(experiment, metric, preset)
    figs = figures(store, experiment, metric, results, sparsity, predictions) if out_dir is not None or html is not None else {}
    if out_dir is not None:
        for name, fig in figs.items():
            paths += save_figures(fig, Path(out_dir) / f"{stem}_{name}", formats)
        if selection:
            paths.append(write_selection(selection, Path(out_dir) / f"{stem}_selection.json"))
    if markdown:
        paths += _markdown(store, experiment, metric, out_dir, console, command, preset, tables, [], paths)
    else:
        for title, (columns, rows) in tables:
            print_table(columns, rows, title, console)
    if html is not None:
        images = {FIGURE_CAPTIONS[name].format(metric=metric): figure_png(fig) for name, fig in figs.items()}
        paths.append(write_html(store, experiment, metric, Path(html), tables, images, command, preset=preset))
    return paths


def _markdown(store: ResultsStore, experiment: str | None, metric: str, out_dir, console: Console,
              command: str | None, preset: str | None, tables: list, notes: list[str], figures: list[Path]
              ) -> list[Path]:
    """Print the report's Markdown page and, with an out_dir, write it there; returns the path
    written, if any."""
    if command is None:
        output = ["--markdown", *(["--out", str(out_dir)] if out_dir is not None else [])]
        command = report_command(store, experiment, metric, preset, output)
    text = markdown_page(page_title(experiment, metric), regenerating_commands(store, experiment, preset, command),
                         [*tables, machines(store, experiment)], notes, figures)
    console.print(text, markup=False, highlight=False, soft_wrap=True)
    if out_dir is None:
        return []
    return [write_text(Path(out_dir) / f"{page_stem(experiment, metric, preset)}.md", text)]


def _claim_tables(store: ResultsStore, experiment: str | None, metric: str) -> tuple[list, list, list]:
    """The claims' tables (sparsity slope, coupling gain, predictions, selection rules) that the
    stored runs support, with the prediction rows and selection cells behind them."""
    tables = []
    slopes = sparsity_slopes(store.metrics(experiment=experiment), metric)
    if slopes:
        tables.append((f"the sparsity claim: slope of {metric} against k per bin beyond training, over the k "
                       "each seed learned (>= 0.99 in distribution); bootstrap over seeds and examples",
                       slope_table(slopes)))
    configs = {r.key: r.config for r in store.runs(experiment=experiment) if r.status in DONE_STATUSES}
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


def figures(store: ResultsStore, experiment: str | None, metric: str, results, sparsity, predictions
            ) -> dict[str, Figure]:
    """The report's figures by file-name suffix: per k, per bin, learning curves per bin, predicted vs
    observed, training curves."""
    out = {}
    sparse_runs = {row[0] for row in sparsity[1]}
    run_column = results[0].index("run")
    if sparse_runs:
        out["by_k"] = plot_accuracy_vs_length(store, experiment, metric)
    if any(row[run_column] not in sparse_runs for row in results[1]):
        out["bins"] = plot_bins(store, experiment, metric)
    out["curves"] = plot_curves(store, experiment)
    if predictions:
        out["predictions"] = plot_predictions(predictions, metric)
    out["training"] = plot_training(store, experiment)
    return {name: fig for name, fig in out.items() if fig is not None}


def write_html(store: ResultsStore, experiment: str | None, metric: str, path: Path, tables: list,
               images: dict[str, bytes], command: str | None, notes: list[str] = (), preset: str | None = None
               ) -> Path:
    """The report's page, with the commands that regenerate it and the machines involved; `notes`
    (Markdown, shown as written) follow the tables."""
    if command is None:
        command = report_command(store, experiment, metric, preset, ["--html", str(path)])
    here = {"host": socket.gethostname(), **environment()}
    page = html_page(page_title(experiment, metric), [*tables, machines(store, experiment)], images,
                     regenerating_commands(store, experiment, preset, command),
                     {k: here.get(k) for k in MACHINE_FIELDS}, notes)
    return write_text(path, page)


def _language_report(store: ResultsStore, experiment: str | None, out_dir, markdown: bool, console: Console,
                     formats: tuple[str, ...], html: str | Path | None, command: str | None, preset: str | None
                     ) -> list[Path]:
    """Loss per position bucket at each context, then the experiment's stored study (gate, pooled
    statistic, verdict) when it has one; with `markdown` the page (written when there is an
    out_dir), with `html` the HTML page."""
    columns, rows = loss_table(store, experiment)
    if not rows:
        console.print("no finished language-modelling runs" + (f" in experiment {experiment!r}" if experiment else ""))
        return []
    tables = [("loss (nats) per position bucket at each context (ext: context-extension method)", (columns, rows))]
    paths = []
    figure = plot_loss_by_position(store, experiment) if out_dir is not None or html is not None else None
    if out_dir is not None:
        paths += save_figures(figure, Path(out_dir) / f"{page_stem(experiment, 'loss', preset)}_by_position", formats)
    study = study_markdown(store, experiment)
    notes = [] if study is None else [study.rstrip("\n")]
    if html is not None:
        paths.append(write_html(store, experiment, "loss", Path(html), tables,
                                {FIGURE_CAPTIONS["by_position"]: figure_png(figure)}, command, notes, preset))
    if markdown:
        paths += _markdown(store, experiment, "loss", out_dir, console, command, preset, tables, notes,
                           [p for p in paths if p.suffix != ".html"])
    else:
        print_table(*tables[0][1], tables[0][0], console)
        if study is not None:
            console.print("\n" + study, markup=False, highlight=False, soft_wrap=True)
    return paths
