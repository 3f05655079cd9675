"""Predicted vs observed length generalization (Huang et al. 2025, docs/design.md §4.2): per task and
scheme, the bins, the C-RASP prediction, the observed outcome and whether they agree, plus a figure
with one panel per task. For a protocol experiment its rows are the protocol's decisions, averaged
over the chosen configuration's successful seeds. Beside each row, Huang et al.'s published numbers
(published.py) judged by the same rule."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from matplotlib.figure import Figure

from ..config import judged_bin
from ..records import Run
from ..store import ResultsStore
from ..stats import GENERALIZES, GENERALIZES_, LEARNED, NOT_LEARNED, agreement, huang_verdict
from .plots import OKABE_ITO, metric_label, palette, panels, plot_series, run_labels, shade_training_range
from .published import published
from .tables import Bin, Pooled, Series, bin_label, collect

GENERALIZES_AT = GENERALIZES  # observed to generalize: mean metric on the longest bin >= this


def scheme_label(positional: str, positional_reg: float) -> str:
    return f"{positional}+reg {positional_reg:g}" if positional_reg else positional


def predicted_to_generalize(task: str, positional: str, *, ours: bool = False) -> bool | None:
    """The prediction agreement is counted against (docs/design.md §7): Huang et al.'s stated one where they
    state it, else our C-RASP library's (crasp.library.predict); with `ours`, always the library's.
    For APE (with or without the positional regulariser) and NoPE; None for other schemes and for
    tasks the library does not cover."""
    from ..crasp.library import predict

    if positional not in ("ape", "nope"):
        return None
    try:
        prediction = predict(task)
    except ValueError:
        return None
    if prediction.paper is not None and not ours:
        return prediction.paper[0] if positional == "ape" else prediction.paper[1]
    return prediction.ape if positional == "ape" else prediction.nope


@dataclass
class PredictionRow:
    task: str
    scheme: str
    positional: str
    chosen: str  # the protocol's chosen configuration and rule, or the run label
    seeds: str  # "successful/attempted" under the protocol, else the seed count
    run: Run  # a representative run (its config: training lengths)
    cells: dict[Bin, Pooled]
    predicted: bool | None

    @property
    def judged_bin(self) -> Bin | None:
        """The bin the verdict judges: the config's `task.judged_bin`, else the longest bin."""
        if not self.cells:
            return None
        return judged_bin(list(self.cells), self.run.config["task"].get("judged_bin"))

    @property
    def verdict(self) -> str | None:
        """`stats.huang_verdict`: learned (first, training-length bin >= 0.99 in a majority of
        seeds), then generalizes (mean on the judged bin over the learned seeds >= 0.9) or fails.
        A model that never fit its training lengths says nothing about length generalization."""
        first = min(self.cells, key=lambda b: (b[0], b[1]), default=None)
        if first is None or len(self.cells[first].values) != len(self.cells[self.judged_bin].values):
            return None
        return huang_verdict(self.cells[first].values, self.cells[self.judged_bin].values)

    @property
    def learned(self) -> bool:
        return self.verdict not in (None, NOT_LEARNED)

    @property
    def observed(self) -> bool | None:
        return self.verdict == GENERALIZES_ if self.learned else None

    @property
    def agrees(self) -> bool | None:
        return _agrees(self.predicted, self.verdict)

    @property
    def published(self) -> tuple[float, float, float] | None:
        return published(self.task, self.scheme)

    @property
    def published_verdict(self) -> str | None:
        """Huang et al.'s numbers under the same rule, one value per bin (a mean over seeds in the
        algorithmic suite, one plotted number per formal language), on their own windows."""
        values = self.published
        return None if values is None else huang_verdict([values[0] / 100], [values[-1] / 100])

    @property
    def published_agrees(self) -> bool | None:
        return _agrees(self.predicted, self.published_verdict)


def _agrees(predicted: bool | None, verdict: str | None) -> bool | None:
    """Whether a verdict matches the prediction; None when either is missing or nothing was learned."""
    if predicted is None or verdict in (None, NOT_LEARNED):
        return None
    return predicted == (verdict == GENERALIZES_)


def _protocol_rows(store: ResultsStore, experiment: str | None, metric: str) -> list[PredictionRow]:
    rows = []
    for d in store.decisions(experiment):
        keys = d.counted or d.attempted
        overrides = " ".join(f"{k.split('.')[-1]}={v}" for k, v in d.overrides.items())
        shown = f"{len(d.successful)}/{len(d.attempted)}" + ("" if d.successful else " (all shown)")
        if keys != (d.successful or d.attempted):  # the fallback's first seeds count
            shown = f"first {len(keys)} of the fallback ({len(d.successful)} perfect)"
        cells = {b: Pooled.of(pairs) for b, pairs in store.bin_values(keys, metric).items()}
        rows.append(PredictionRow(d.task, scheme_label(d.positional, d.positional_reg), d.positional,
                                  f"{overrides} ({d.rule})", shown, store.get_run(keys[0]), cells,
                                  predicted_to_generalize(d.task, d.positional)))
    return rows


def prediction_rows(store: ResultsStore, experiment: str | None = None, metric: str = "exact_match_tf"
                    ) -> list[PredictionRow]:
    """One row per (task, scheme): from the protocol's decisions when the experiment has them
    (mean over its successful seeds), else one per configuration pooled over seeds. Only tasks and
    schemes with a prediction are listed."""
    rows = _protocol_rows(store, experiment, metric)
    if not rows:
        for s in collect(store, experiment, metric, by_k=False):
            reg = s.run.config.get("train", {}).get("positional_reg", 0.0)
            n = max(c.n for c in s.cells.values())
            rows.append(PredictionRow(s.run.task, scheme_label(s.run.positional, reg), s.run.positional,
                                      s.label, str(n), s.run, s.cells,
                                      predicted_to_generalize(s.run.task, s.run.positional)))
    rows = [r for r in rows if r.predicted is not None]
    return sorted(rows, key=lambda r: (r.task, r.scheme, r.chosen))


def _verdict(value: bool | None) -> str | None:
    return None if value is None else ("generalizes" if value else "fails")


def prediction_table(rows: list[PredictionRow]) -> tuple[list[str], list[list]]:
    """Columns: task, scheme, chosen, seeds, one per length bin, predicted, observed, agrees, then
    Huang et al.'s published values (%, ID / first / longest test bin) and their verdict."""
    bins = sorted({b for r in rows for b in r.cells})
    columns = ["task", "scheme", "chosen", "seeds", *map(bin_label, bins), "predicted", "observed", "agrees",
               "Huang et al. (%)", "theirs: observed"]
    return columns, [[r.task, r.scheme, r.chosen, r.seeds, *(r.cells.get(b) for b in bins), _predicted(r),
                      _verdict(r.observed) if r.learned else NOT_LEARNED, _yes_no(r.agrees),
                      None if r.published is None else "/".join(f"{v:g}" for v in r.published), _theirs(r)]
                     for r in rows]


def _predicted(row: PredictionRow) -> str:
    """The counted prediction, with our library's beside it where the two differ."""
    ours = predicted_to_generalize(row.task, row.positional, ours=True)
    return _verdict(row.predicted) + ("" if ours == row.predicted else f" (our C-RASP: {_verdict(ours)})")


def _theirs(row: PredictionRow) -> str | None:
    """Their verdict, and whether it agrees with the prediction where it is judged."""
    if row.published_verdict is None:
        return None
    return row.published_verdict + {True: " (agrees)", False: " (disagrees)", None: ""}[row.published_agrees]


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "NO")


def _tally(rows: list[PredictionRow], verdict_of) -> str:
    """'a/b' judged rows agreeing (`stats.agreement`), overall and per scheme, for one verdict per row."""
    per_scheme: dict = defaultdict(lambda: ({}, {}))
    for r in rows:
        if verdict_of(r) is not None:
            verdicts, predictions = per_scheme[r.scheme]
            verdicts[r.task, r.chosen], predictions[r.task, r.chosen] = verdict_of(r), _verdict(r.predicted)
    tallies = {s: agreement(*vp) for s, vp in sorted(per_scheme.items())}
    agree, judged = sum(t.agree for t in tallies.values()), sum(t.judged for t in tallies.values())
    return f"{agree}/{judged}" + "".join(f"; {s} {t.agree}/{t.judged}" for s, t in tallies.items() if t.judged)


def prediction_caption(rows: list[PredictionRow], metric: str) -> str:
    judged = {r.judged_bin for r in rows if r.judged_bin}
    where = bin_label(next(iter(judged))) if len(judged) == 1 else "its judged bin (its own test bin, else its longest)"
    return (f"{metric}: predicted (Huang et al.'s stated prediction where given, else our C-RASP library's; APE+reg "
            f"uses the APE prediction) vs observed length generalization "
            f"(observed generalizes iff the mean on {where} is >= {GENERALIZES_AT:.0%} over the seeds that learned "
            f"it; a row is learned when its first, in-distribution bin is >= {LEARNED:.0%} in a majority of its "
            f"seeds, else 'not learned' and not judged); judged rows that agree: {_tally(rows, lambda r: r.verdict)}. "
            f"Huang et al.'s published numbers judged the same way (on their windows): "
            f"{_tally(rows, lambda r: r.published_verdict)}")


def plot_predictions(rows: list[PredictionRow], metric: str) -> Figure:
    """One panel per task: metric per bin, one line per scheme; the title gives the predictions
    (bluish green: APE predicted to generalize, vermillion: predicted to fail)."""
    by_task = defaultdict(list)
    for r in rows:
        by_task[r.task].append(r)
    fig, axes = panels(len(by_task))
    for ax, (task, task_rows) in zip(axes, sorted(by_task.items())):
        shade_training_range(ax, task_rows[0].run)
        series = [Series(r.run, r.scheme, None, r.cells) for r in task_rows]
        per_scheme = Counter(r.scheme for r in task_rows)  # several configurations: name each
        labels = [r.scheme if per_scheme[r.scheme] == 1 else f"{r.scheme}: {label}"
                  for r, label in zip(task_rows, run_labels([r.run for r in task_rows]))]
        plot_series(ax, series, palette(len(series)), labels)
        ax.axhline(GENERALIZES_AT, color="0.4", ls=":", lw=1)
        ape, nope = predicted_to_generalize(task, "ape"), predicted_to_generalize(task, "nope")
        ax.set_title(f"{task}\npredicted: APE {_verdict(ape)}, NoPE {_verdict(nope)}", fontsize=9,
                     color=OKABE_ITO[2] if ape else OKABE_ITO[1])
        ax.set(xlabel="length bin", ylabel=metric_label(metric))
        ax.legend(fontsize=7)
    return fig


