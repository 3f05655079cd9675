"""`lengthgen probe`: the dependency-sparsity probe on a finished run or on SmolLM2.

A run key (or models/<key>.pt) of a single-answer synthetic task (sparse_parity, sparse_sum,
kgram_lookup) is probed on its training lengths with exact leave-one-out ranking, against the
planted k. A language-model run (task `lm`) is the reference model: it is probed on the
held-out documents of its corpus, and with `compare` (runs trained at the short context L) each
probed target also gets the compared model's own gain from the whole window over its last L
tokens, pooled into R, the share of the reference's gain it recovers, for sparse against dense
targets (analysis/text.py). `smollm2` is probed on the longest State of the Union addresses
(gradient x input, confirmed by ablation). The control (distant tokens from another document) runs
unless switched off.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from ..evaluation_modes import evaluation_mode
from ..store import write_text
from .probe import HFScorer, TransformerScorer
from .synthetic import probe_synthetic, synthetic_summary
from .text import (GROUPS, TextProbeSettings, format_interval, pooled_recovery, probe_text, scheme_gains, summary_markdown,
                   text_summary)

PRETRAINED = ("smollm2",)


def run_probe(target: str, root: str, settings: TextProbeSettings, documents: int = 20, examples: int = 200,
              control: bool = True, out: str | None = None, compare: tuple[str, ...] = ()) -> str:
    """Probe `target`; returns the markdown report and writes it (.md) or the records (.json) to `out`."""
    if out is not None and Path(out).suffix not in (".json", ".md"):
        raise ConfigError(f"--out must end in .json or .md, got {out!r}")
    started = time.perf_counter()
    if target in PRETRAINED:
        report, data = _probe_smollm2(settings, documents, control)
    else:
        report, data = _probe_run(target, root, settings, examples, documents, compare, control)
    wall = time.perf_counter() - started
    report += f"\nwall time {wall:.0f} s on {torch.get_num_threads()} torch thread(s)\n"
    if out is not None:
        text = json.dumps({**data, "wall_s": wall}, indent=1) if out.endswith(".json") else report
        write_text(Path(out), text)
    return report


def run_position_logits(target: str, root: str, examples: int) -> str:
    """`lengthgen attention`: the first-layer view of `position_logits` on a finished run."""
    from .position_logits import position_logit_report

    _, model, cfg, task = _load_run(target, root)
    return position_logit_report(model, cfg, task, examples)


def run_position_head(target: str, root: str, examples: int, period: int) -> str:
    """`lengthgen position-head`: `position_head`'s accuracy per answer token and ID errors of a PPC run."""
    from .position_head import position_head_report

    _, model, cfg, task = _load_run(target, root)
    return position_head_report(model, cfg, task, examples, period)


def _load_run(target: str, root: str):
    from ..store import ResultsStore
    from ..training import load_model

    store = ResultsStore(root)
    try:
        path = store.find_model(target)
    except ValueError as err:
        raise ConfigError(f"target must be one of {', '.join(PRETRAINED)}, a finished run (key, key prefix or "
                          f"name) or a models/<key>.pt file: {err}") from None
    model, cfg = load_model(path, cache_dir=store.cache_dir())
    return path, model, cfg, cfg.task.build(store.cache_dir())


def _probe_lm(path: Path, model, cfg, task, st: TextProbeSettings, documents: int, root: str,
              compare: tuple[str, ...], control: bool) -> tuple[str, dict]:
    from ..store import ResultsStore
    from .study import held_out_documents

    docs = held_out_documents(cfg, ResultsStore(root), st.window, documents)
    if not docs:
        raise ConfigError(f"no held-out document of {cfg.task.name!r} has the probe window's {st.window} tokens")
    targets, screened, ws = probe_text(TransformerScorer(model), docs, st, control=control)
    summary = text_summary(targets, screened, st.ks, st.seed)
    title = (f"{cfg.name or path.stem} (reference) on {len(docs)} held-out documents: L = {st.local}, "
             f"window {st.window} tokens, targets t in [{st.min_target}, {st.window})")
    report = summary_markdown(title, summary)
    records = {"target": str(path), "settings": asdict(st), "summary": summary, "records": targets,
               "screened": screened, "compared": {}}
    by_window = {w.name: w.ids for w in ws}
    for key in compare:
        other_path, other, other_cfg, _ = _load_run(key, root)
        rows = scheme_gains(TransformerScorer(other), targets, by_window, st.local)
        stats = pooled_recovery(rows, st.seed)
        records["compared"][other_cfg.name or key] = {"rows": rows, "summary": stats}
        report += (f"\n{other_cfg.name or key}: share R of the reference gain recovered at {st.window} tokens "
                   f"(trained at {other_cfg.task.train_lengths[1]}): all {format_interval(stats['R'])}, {GROUPS} "
                   f"{format_interval(stats['R_sparse'])} / {format_interval(stats['R_dense'])} over "
                   f"{stats['n_sparse']} / {stats['n_dense']} targets, difference "
                   f"{format_interval(stats['delta'])}\n")
    return report, records


def _probe_run(target: str, root: str, st: TextProbeSettings, examples: int, documents: int = 20,
               compare: tuple[str, ...] = (), control: bool = True) -> tuple[str, dict]:
    path, model, cfg, task = _load_run(target, root)
    if not evaluation_mode(task.evaluation).per_length_bin:  # a language-model run
        return _probe_lm(path, model, cfg, task, st, documents, root, compare, control)
    if compare:
        raise ConfigError("--compare needs a language-model reference run (task lm)")
    lengths = tuple(cfg.task.train_lengths)
    rows = probe_synthetic(TransformerScorer(model), task, lengths, examples, st.seed, ranking="ablation",
                           threshold=st.threshold)
    summary = synthetic_summary(rows, st.min_gain)
    lines = [f"### {cfg.name or cfg.task.name} ({path.name}): lengths {list(lengths)}, {examples} examples, "
             f"examples with g >= {st.min_gain} probed", "",
             "| planted k | examples | probed | s = k | s < k | s > k | median s | top-s all planted |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['k']} | {r['examples']} | {r['probed']} | {r['s_eq_k']:.2f} | {r['s_lt_k']:.2f} | "
              f"{r['s_gt_k']:.2f} | {r['median_s']:g} | {r['top_planted']:.2f} |" for r in summary]
    return "\n".join(lines) + "\n", {"target": str(path), "settings": asdict(st), "summary": summary, "records": rows}


def _probe_smollm2(st: TextProbeSettings, documents: int, control: bool) -> tuple[str, dict]:
    from .pretrained import load_smollm2, sotu_addresses

    t0 = time.perf_counter()
    model, tokenizer = load_smollm2()
    load_s = time.perf_counter() - t0
    scorer = HFScorer(model)
    texts = sotu_addresses(documents)

    def tokenized(named_texts):
        docs = [(name, np.array(tokenizer(text)["input_ids"])) for name, text in named_texts]
        return [(name, ids) for name, ids in docs if len(ids) >= st.window]

    t0 = time.perf_counter()
    targets, screened, _ = probe_text(scorer, tokenized(texts), st, control=control)
    probe_s = time.perf_counter() - t0
    summary = text_summary(targets, screened, st.ks, st.seed)
    data = {"target": "smollm2", "settings": asdict(st), "documents": [n for n, _ in texts], "load_s": load_s,
            "probe_s": probe_s, "summary": summary, "records": targets, "screened": screened}
    title = (f"SmolLM2-135M-Instruct on the {len(texts)} longest State of the Union addresses: "
             f"L = {st.local}, full context {st.window} tokens, targets t in [{st.min_target}, {st.window})")
    report = summary_markdown(title, summary)
    report += f"\nload {load_s:.0f} s, probe {probe_s:.0f} s (control included)"
    return report + "\n", data
