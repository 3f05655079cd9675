"""The natural-language study of an experiment file's `study:` section: once its runs are finished,
the dependency-sparsity probe on the reference (a model trained on the long window) and every
compared model's gain at the probed targets, stored in the results store for `report`.

    study:
      reference: reference_8L          # run name (first word of the points' names)
      compare: [rope, rope_pose, nope, alibi]
      documents: 100                   # held-out documents probed at most
      probe: {window: 128, local: 32, min_target: 64, windows_per_doc: 4, positions_per_window: 8}
      gate: {min_positions: 1000, min_mean_gain: 0.05, large_gain: 0.5, min_large: 300}
      verdict: {extrapolates: 0.1, min_group: 50, margin: 0.1}

A grid over seeds gives one study per seed (the reference and the compared runs of that seed).
Our g / s / R are our own concrete form of Golowich et al.'s natural-language study (they train
OLMo models on C4 and compare context extension); the report says so beside every verdict.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..config import ConfigError, RunConfig
from ..store import ResultsStore
from .probe import TransformerScorer
from .text import Gate, TextProbeSettings, Verdict, probe_text, scheme_gains, text_summary

ANALYSIS = "language_probe"
FIELDS = {"reference", "compare", "documents", "probe", "gate", "verdict"}


@dataclass
class LanguageStudy:
    reference: str
    compare: list[str]
    documents: int = 100
    probe: TextProbeSettings = field(default_factory=TextProbeSettings)
    gate: Gate = field(default_factory=Gate)
    verdict: Verdict = field(default_factory=Verdict)

    def settings(self) -> dict:
        return asdict(self)


def _section(cls, value, what: str, source: str):
    if value is None:
        return cls()
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: study.{what} must be a mapping, got {value!r}")
    try:
        return cls(**value)
    except (TypeError, ValueError) as err:
        allowed = ", ".join(cls.__dataclass_fields__)
        raise ConfigError(f"{source}: study.{what}: {err} (fields: {allowed})") from None


def parse_study(spec: dict | None, configs: list[RunConfig], source: str) -> LanguageStudy | None:
    """The file's `study` section checked against its runs, or None when it has none."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or set(spec) - FIELDS or not {"reference", "compare"} <= set(spec):
        raise ConfigError(f"{source}: study must be a mapping with reference and compare (fields: {sorted(FIELDS)})")
    names = {run_name(c) for c in configs}
    compare = spec["compare"] if isinstance(spec["compare"], list) else [spec["compare"]]
    unknown = [n for n in [spec["reference"], *compare] if n not in names]
    if unknown:
        raise ConfigError(f"{source}: study names runs {unknown} that the file does not have; runs: {sorted(names)}")
    if any(c.task.name != "lm" for c in configs if run_name(c) in [spec["reference"], *compare]):
        raise ConfigError(f"{source}: the study probes language models: its runs must have task lm")
    documents = spec.get("documents", 100)
    if isinstance(documents, bool) or not isinstance(documents, int) or documents < 1:
        raise ConfigError(f"{source}: study.documents must be a whole number >= 1, got {documents!r}")
    return LanguageStudy(spec["reference"], compare, documents, _section(TextProbeSettings, spec.get("probe"), "probe", source),
                         _section(Gate, spec.get("gate"), "gate", source), _section(Verdict, spec.get("verdict"), "verdict", source))


def run_name(cfg: RunConfig) -> str:
    """The name a point's run entry gave it (grid labels such as `seed=1` follow after a space)."""
    return (cfg.name or "").split(" ")[0]


def analysis_name(seed: int) -> str:
    return f"{ANALYSIS} seed={seed}"


def run_study(study: LanguageStudy, configs: list[RunConfig], store: ResultsStore, experiment: str,
              log=print) -> list[str]:
    """Probe each seed's reference and score its compared runs; stores one analysis per seed and
    returns their names. A seed whose stored analysis has these settings and runs is skipped."""
    done = []
    for seed in sorted({c.seed for c in configs if run_name(c) == study.reference}):
        points = {run_name(c): c for c in configs if c.seed == seed}
        keys = {name: points[name].key() for name in [study.reference, *study.compare] if name in points}
        settings = json.loads(json.dumps({**study.settings(), "runs": keys, "seed": seed}))  # as stored
        name = analysis_name(seed)
        stored = store.analysis(experiment, name)
        if stored is not None and stored.settings == settings:
            done.append(name)
            continue
        started = time.perf_counter()
        result = _probe_seed(study, keys, store)
        result["wall_s"] = time.perf_counter() - started
        store.put_analysis(experiment, name, settings, result)
        log(f"{name}: probed {len(result['targets'])} targets of {len(result['screened'])} screened positions "
            f"in {result['wall_s']:.0f} s")
        done.append(name)
    return done


def _model(store: ResultsStore, key: str):
    from ..training import load_model

    if not store.is_finished(key):
        raise ConfigError(f"the study needs run {key}, which has not finished; rerun the experiment")
    model, cfg = load_model(store.model_path(key), cache_dir=store.cache_dir())
    return model, cfg


def held_out_documents(cfg: RunConfig, store: ResultsStore, window: int, limit: int) -> list[tuple[str, np.ndarray]]:
    data = cfg.task.build(store.cache_dir()).data
    docs = [(name, data.valid_document(i).astype(np.int64)) for i, name in enumerate(data.valid_ids)]
    return [(name, ids) for name, ids in docs if len(ids) >= window][:limit]


def _probe_seed(study: LanguageStudy, keys: dict[str, str], store: ResultsStore) -> dict:
    st = study.probe
    torch.manual_seed(st.seed)
    reference, cfg = _model(store, keys[study.reference])
    docs = held_out_documents(cfg, store, st.window, study.documents)
    if not docs:
        raise ConfigError(f"no held-out document of the reference's corpus has the probe window's {st.window} tokens")
    targets, screened, ws = probe_text(TransformerScorer(reference), docs, st)
    by_window = {w.name: w.ids for w in ws}
    schemes = {}
    for name in study.compare:
        model, _ = _model(store, keys[name])
        schemes[name] = {"key": keys[name], "rows": scheme_gains(TransformerScorer(model), targets, by_window, st.local)}
    return {"reference": keys[study.reference], "documents": len(docs), "summary": text_summary(targets, screened, st.ks, st.seed),
            "targets": targets, "screened": screened, "schemes": schemes}
