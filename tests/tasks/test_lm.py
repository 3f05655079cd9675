"""Language modelling: the `lm` task, PoSE position IDs, RoPE context extension, evaluation per
context length, and a few training steps through the real loop."""

import json
import math

import numpy as np
import pytest
import torch

from lengthgen.config import ConfigError, load_run_config
from lengthgen.config import ModelConfig
from lengthgen.model import Transformer
from lengthgen.model.positional import SCHEMES, Rotary
from lengthgen.positions import pose_position_ids
from lengthgen.store import ResultsStore
from lengthgen.tasks import BOS, make_task
from lengthgen.lm_eval import buckets, eval_windows, evaluate_contexts, extension
from lengthgen.training import load_model, train_run

from fakes import WORDS, fake_documents


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for i, text in enumerate(fake_documents(30, words=300, seed=1)):
        (root / f"doc{i:02d}.txt").write_text(text)
    return str(root)


@pytest.fixture(scope="module")
def task(corpus_dir, tmp_path_factory):
    task = make_task("lm", corpus=corpus_dir, context=16, vocab_size=300, valid_fraction=0.2)
    task.set_cache_dir(tmp_path_factory.mktemp("cache"))
    return task


def test_pose_ids_sorted_in_window_and_chunked():
    n, target = 32, 256
    tops = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        ids = pose_position_ids(target, 3, rng, np.arange(n))
        steps = np.diff(ids)
        assert len(ids) == n and ids[0] == 0 and ids[-1] < target
        assert (steps >= 1).all()  # sorted, no two tokens share an ID
        assert (steps > 1).sum() <= 2  # three chunks of consecutive IDs: at most two skips
        tops.append(ids[-1])
    assert max(tops) >= target - 8  # the skips reach the end of the target window
    rng = np.random.default_rng(0)
    assert np.array_equal(pose_position_ids(n, 2, rng, np.arange(n)), np.arange(n))  # no room: no skip
    assert np.array_equal(pose_position_ids(target, 1, rng, np.arange(n)), np.arange(n))
    with pytest.raises(ValueError, match="target window"):
        pose_position_ids(n - 1, 2, rng, np.arange(n))


def test_pose_config_is_validated(corpus_dir):
    base = {"task": {"name": "lm", "params": {"corpus": corpus_dir, "context": 16}}}
    assert load_run_config({**base, "train": {"pose_window": 64}}).train.pose_chunks == 2
    with pytest.raises(ConfigError, match="pose_window"):
        load_run_config({**base, "train": {"pose_window": 8}})
    with pytest.raises(ConfigError, match="randomized"):
        load_run_config({**base, "train": {"pose_window": 64}, "model": {"positional": "randomized"}})
    plain = load_run_config(base)
    assert plain.key() == load_run_config({**base, "train": {"pose_chunks": 2}}).key()  # defaults leave keys alone


def test_rope_interpolation_and_ntk_scaling():
    torch.manual_seed(0)
    q, k = torch.randn(2, 1, 2, 6, 8).unbind(0)
    ids = torch.arange(6)[None] * 3
    rope = Rotary(8, 1, 64)
    plain = rope.rotate(q, k, ids)
    rope.set_extension(scale=3.0)
    interpolated = rope.rotate(q, k, ids)
    rope.set_extension()
    assert torch.allclose(rope.rotate(q, k, ids)[0], plain[0])  # restored
    assert torch.allclose(interpolated[0], rope.rotate(q, k, ids / 3.0)[0], atol=1e-6)  # PI: IDs divided by 3
    ntk = Rotary(8, 1, 64, ntk_factor=4.0)
    assert torch.allclose(ntk.rotate(q, k, ids)[1], Rotary(8, 1, 64, base=10000.0 * 4.0 ** (8 / 6)).rotate(q, k, ids)[1])
    with pytest.raises(ValueError, match="ntk_factor"):
        rope.set_extension(ntk_factor=0.5)


def test_lm_windows_are_contiguous_and_fully_scored(task):
    rng = np.random.default_rng(3)
    ex = task.sample(rng, 16)
    assert len(ex.inputs) == 16 and ex.loss_mask.all() and ex.answer_start is None
    assert np.array_equal(ex.inputs[1:], ex.targets[:-1])
    stream = task.data.train
    start = [s for s in range(len(stream) - 16) if np.array_equal(stream[s:s + 16], ex.inputs)]
    assert start and stream[start[0] + 16] == ex.targets[-1]
    assert np.array_equal(task.sample(np.random.default_rng(3), 16).inputs, ex.inputs)
    assert len(task.vocab) == 300 and task.default_eval_bins == ((16, 16), (32, 32), (64, 64), (128, 128))
    assert set(task.render(ex).split()) & set(WORDS)  # decoded back to the corpus's words
    with pytest.raises(ValueError, match="reader"):
        make_task("lm", corpus=task.corpus, reader="pandas")


def test_eval_windows_and_buckets(task):
    windows = eval_windows(task, 65, 1000)
    docs = [task.data.valid_document(i) for i in range(len(task.data.valid_ids))]
    assert len(windows) == sum((len(d) - 1) // 64 for d in docs)
    assert (windows[:len(docs), 0] == BOS).all()  # round-robin: every document's first window comes first
    assert len(eval_windows(task, 65, 3)) == 3
    with pytest.raises(ValueError, match="no validation document"):
        eval_windows(task, 10**6, 4)
    assert buckets(128, 16) == [(0, 16), (16, 32), (32, 64), (64, 128)]
    assert buckets(40, 16) == [(0, 16), (16, 32), (32, 40)]


@pytest.mark.parametrize("scheme", sorted(set(SCHEMES) - {"abacus"}) + ["abacus"])
def test_every_scheme_is_evaluated_per_context(task, scheme):
    torch.manual_seed(0)
    model = Transformer(ModelConfig(n_layers=1, n_heads=2, d_model=16, positional=scheme), len(task.vocab), 64)
    rows = evaluate_contexts(model, task, [(16, 16), (32, 32), (64, 64)], 4, 4, "cpu", train_length=16)
    plain = [r for r in rows if "ext" not in r["grp"]]
    assert [(r["grp"], r["lo"], r["hi"]) for r in plain][:3] == [("ctx=1L", 0, 15), ("ctx=2L", 0, 15), ("ctx=2L", 16, 31)]
    assert len(plain) == 1 + 2 + 3 and all(math.isfinite(r["value"]) and r["count"] == 4 for r in rows)
    assert all(abs(r["value"] - math.log(len(task.vocab))) < 1.0 for r in plain)  # an untrained model is near uniform
    extended = {r["grp"] for r in rows} - {r["grp"] for r in plain}
    assert extended == ({"ctx=2L,ext=pi", "ctx=2L,ext=ntk", "ctx=4L,ext=pi", "ctx=4L,ext=ntk"} if scheme == "rope" else set())


def test_extension_is_undone_and_refused_without_rope(task):
    model = Transformer(ModelConfig(n_layers=1, n_heads=2, d_model=16, positional="rope"), len(task.vocab), 64)
    with extension(model, "pi", 4.0):
        assert model.pos.scale == 4.0
    assert model.pos.scale == 1.0
    alibi = Transformer(ModelConfig(positional="alibi"), len(task.vocab), 64)
    with pytest.raises(ValueError, match="needs a rope model"):
        with extension(alibi, "ntk", 2.0):
            pass


def test_lm_trains_through_the_real_loop(corpus_dir, tmp_path):
    cfg = load_run_config({
        "task": {"name": "lm", "params": {"corpus": corpus_dir, "context": 16, "vocab_size": 300},
                 "eval_bins": [[16, 16], [32, 32]]},
        "model": {"positional": "rope", "n_layers": 1, "n_heads": 2, "d_model": 32},
        "train": {"steps": 30, "batch_size": 8, "lr": 3e-3, "eval_every": 1000, "eval_examples": 4,
                  "early_stop_acc": None},
        "eval": {"examples_per_bin": 4, "batch_size": 4}, "device": "cpu"})
    store = ResultsStore(tmp_path)
    run = train_run(cfg, store)
    assert run.status == "finished" and run.steps_done == 30
    assert run.extra["corpus"]["corpus"] == corpus_dir and run.extra["corpus"]["documents"] == 30  # provenance
    losses = [c.value for c in store.curves(run.key) if c.name == "loss"]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0] - 0.5
    stored = store.metrics(keys=[run.key])  # the loop evaluated it per context
    assert {r.grp for r in stored} == {"ctx=1L", "ctx=2L", "ctx=2L,ext=pi", "ctx=2L,ext=ntk"}
    assert {r.metric for r in stored} == {"loss"} and (store.cache_dir() / "lm_corpus").is_dir()
    model, loaded = load_model(store.model_path(run.key), cache_dir=store.cache_dir())
    rows = evaluate_contexts(model, loaded.task.build(), loaded.task.eval_bins, 4, 4, "cpu", train_length=16)
    assert {r["grp"] for r in rows} == {"ctx=1L", "ctx=2L", "ctx=2L,ext=pi", "ctx=2L,ext=ntk"}
    assert all(math.isfinite(r["value"]) and r["value"] < math.log(300) for r in rows)
    from rich.console import Console

    from lengthgen.report import report
    from lengthgen.report.language import loss_table

    columns, table = loss_table(store)
    assert columns == ["run", "context", "[0,15]", "[16,31]"] and [r[1] for r in table] == ["1L", "2L", "2L,ext=ntk",
                                                                                         "2L,ext=pi"]
    by_context = {r[1]: r for r in table}
    assert by_context["1L"][2] == by_context["2L"][2] and by_context["1L"][3] is None  # causal: same first bucket
    [plot, svg, page] = report(store, metric="loss", out_dir=tmp_path / "plots", console=Console(record=True),
                               formats=("png", "svg"), html=tmp_path / "lm.html")
    assert plot.name.endswith("_loss_by_position.png") and plot.stat().st_size > 0 and svg.suffix == ".svg"
    assert "<caption>loss (nats) per position bucket" in page.read_text() and "data:image/png;base64," in page.read_text()


def test_pose_run_trains_into_a_table_for_its_target_window(corpus_dir, tmp_path):
    cfg = load_run_config({
        "task": {"name": "lm", "params": {"corpus": corpus_dir, "context": 16, "vocab_size": 300},
                 "eval_bins": [[16, 16], [32, 32]]},
        "model": {"positional": "ape", "n_layers": 1, "n_heads": 2, "d_model": 16},
        "train": {"steps": 5, "batch_size": 4, "eval_every": 1000, "eval_examples": 4, "early_stop_acc": None,
                  "pose_window": 64, "position_offset": "none"},
        "eval": {"examples_per_bin": 4, "batch_size": 4}, "device": "cpu"})
    store = ResultsStore(tmp_path)
    run = train_run(cfg, store)
    assert run.config["resolved"]["max_positions"] == 64
    assert {(r.grp, r.lo, r.hi) for r in store.metrics(keys=[run.key])} == \
        {("ctx=1L", 0, 15), ("ctx=2L", 0, 15), ("ctx=2L", 16, 31)}


def test_probe_on_a_language_model_run_and_the_recovered_share(corpus_dir, tmp_path, capsys):
    """`lengthgen probe` on an lm run probes windows of held-out documents; with --compare each probed
    target gets the compared model's own gain, pooled into R."""
    from lengthgen.analysis.command import run_probe
    from lengthgen.analysis.text import TextProbeSettings

    def lm_run(name, context, steps):
        cfg = load_run_config({
            "name": name, "task": {"name": "lm", "params": {"corpus": corpus_dir, "context": 16, "vocab_size": 300,
                                                            "valid_fraction": 0.2},
                                   "train_lengths": [context, context], "eval_bins": [[16, 16]]},
            "model": {"positional": "rope", "n_layers": 1, "n_heads": 2, "d_model": 32},
            "train": {"steps": steps, "batch_size": 8, "lr": 3e-3, "eval_every": 1000, "eval_examples": 4,
                      "early_stop_acc": None},
            "eval": {"examples_per_bin": 2, "batch_size": 2}, "device": "cpu"})
        return train_run(cfg, ResultsStore(tmp_path)).key

    reference, short = lm_run("reference", 64, 20), lm_run("short", 16, 10)
    st = TextProbeSettings(window=64, local=16, min_target=32, windows_per_doc=2, positions_per_window=4,
                           max_targets=5, min_gain=-10.0, ks=(1, 2, 4), confirm_top=4)
    out = tmp_path / "probe.json"
    report = run_probe(reference, str(tmp_path), st, documents=3, compare=(short,), out=str(out))
    data = json.loads(out.read_text())
    rows, records = data["compared"]["short"]["rows"], data["records"]
    assert len(data["screened"]) == 3 * 2 * 4 and len(records) == 5 and len(rows) == 5
    assert all("stitched_gain" in r for r in data["screened"]) and "share R of the reference gain" in report
    for row, target in zip(rows, records):
        assert (row["window"], row["t"]) == (target["window"], target["t"]) and row["reference_gain"] == target["gain"]
    summary = data["compared"]["short"]["summary"]
    total = sum(r["reference_gain"] for r in rows)
    assert summary["n"] == 5 and (summary["R"] is None) == (total <= 0)  # a share of no gain is undefined
    if total > 0:
        assert summary["R"][0] == pytest.approx(sum(r["gain"] for r in rows) / total)
