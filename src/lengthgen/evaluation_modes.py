"""How a task is evaluated: a task names its mode (`Task.evaluation`), and evaluation, the run's
reported metric, learning curves and probes read what the mode says."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class EvaluationMode:
    name: str
    # What is scored: exact match per input-length bin (docs/design.md §3; learning curves apply), or
    # else the loss per position bucket at each context (language modelling, docs/design.md §4.5,
    # lm_eval.py).
    per_length_bin: bool
    default_metric: str  # what `lengthgen run` reports
    teacher_forced_metric: str  # what it reports when greedy decoding is off (`eval.greedy: false`)

    def reported_metric(self, greedy: bool) -> str:
        return self.default_metric if greedy else self.teacher_forced_metric


EVALUATION_MODES = {mode.name: mode for mode in (
    EvaluationMode("length_bins", per_length_bin=True, default_metric="exact_match_greedy",
                   teacher_forced_metric="exact_match_tf"),
    EvaluationMode("context_buckets", per_length_bin=False, default_metric="loss", teacher_forced_metric="loss"),
)}


def evaluation_mode(name: str) -> EvaluationMode:
    if name not in EVALUATION_MODES:
        raise InputError(f"unknown evaluation mode {name!r}; choose one of: {', '.join(EVALUATION_MODES)}")
    return EVALUATION_MODES[name]
