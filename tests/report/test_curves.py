"""Learning curves per length bin (`train.curve_bins`), Cho et al.'s recipe options (a cosine
floor, N(0, 1) embeddings) and the first-layer attention view by position-ID distance."""

import pytest
import torch

from lengthgen.cli import main
from lengthgen.config import load_run_config
from lengthgen.report import report
from lengthgen.report.curves import bin_curves
from lengthgen.store import ResultsStore
from lengthgen.training import train_run
from lengthgen.training.build import build_model, lr_factor

from fakes import StopAt

TINY = {"task": {"name": "coupled_addition", "train_lengths": [1, 3], "eval_bins": [[1, 3], [4, 6]]},
        "model": {"n_layers": 1, "n_heads": 2, "d_model": 16},
        "train": {"steps": 40, "batch_size": 16, "eval_every": 10, "checkpoint_every": 10, "early_stop_acc": None,
                  "curve_bins": "eval", "curve_examples": 12},
        "eval": {"examples_per_bin": 20}}


def _cfg(**train):
    return load_run_config({**TINY, "name": "tiny", "train": {**TINY["train"], **train}})


def _curves(store, key):
    return [(c.step, c.name, c.value) for c in store.curves(key) if "@" in c.name]


def test_curve_bins_are_stored_per_check_and_plotted(tmp_path):
    store = ResultsStore(tmp_path)
    run = train_run(_cfg(), store)
    points = _curves(store, run.key)
    names = {name for _, name, _ in points}
    assert names == {"exact_match_greedy@1-3", "exact_match_greedy@4-6"}
    assert sorted({step for step, _, _ in points}) == [10, 20, 30, 40]
    assert all(0 <= v <= 1 for _, _, v in points)
    curves = bin_curves(store, None)
    assert set(curves) == {"tiny"} and set(curves["tiny"]) == {(1, 3), (4, 6)}
    report(store, out_dir=tmp_path / "out", console=None)
    assert (tmp_path / "out" / "all_exact_match_greedy_curves.png").stat().st_size > 1000




def test_curves_survive_an_interrupted_run(tmp_path):
    whole, cut = ResultsStore(tmp_path / "whole"), ResultsStore(tmp_path / "cut")
    ra = train_run(_cfg(), whole)
    with pytest.raises(KeyboardInterrupt):
        train_run(_cfg(), cut, progress=StopAt(25))
    rb = train_run(_cfg(), cut)
    assert rb.status == "finished" and _curves(whole, ra.key) == _curves(cut, rb.key)


def test_curve_bins_are_checked_and_part_of_the_key():
    with pytest.raises(ValueError, match="curve_bins"):
        load_run_config({**TINY, "train": {**TINY["train"], "curve_bins": [[0, 0]]}})
    off = load_run_config({**TINY, "train": {k: v for k, v in TINY["train"].items() if not k.startswith("curve")}})
    assert off.curve_bins() == [] and _cfg().curve_bins() == [(1, 3), (4, 6)]
    assert off.key() != _cfg().key() != _cfg(curve_bins=[[4, 6]]).key()


def test_cosine_floor():
    cfg = _cfg(steps=100, warmup_steps=0, schedule="cosine", min_lr_ratio=0.1)
    assert lr_factor(0, cfg) == pytest.approx(1.0) and lr_factor(100, cfg) == pytest.approx(0.1)
    assert lr_factor(50, cfg) == pytest.approx(0.55)
    lin = _cfg(steps=100, warmup_steps=0, schedule="linear", min_lr_ratio=0.1)
    assert lr_factor(100, lin) == pytest.approx(0.1)


def test_embedding_init_std_sets_token_and_position_tables_only():
    cfg = load_run_config({**TINY, "model": {**TINY["model"], "d_model": 256, "embedding_init_std": 1.0,
                                              "tie_weights": False}})
    model = build_model(cfg, cfg.task.build())
    assert model.tok.weight.std().item() == pytest.approx(1.0, abs=0.05)
    assert model.pos.position_table().weight.std().item() == pytest.approx(1.0, abs=0.05)
    assert model.head.weight.std().item() == pytest.approx(0.02, abs=0.005)
    plain = build_model(load_run_config(TINY), cfg.task.build())
    assert plain.tok.weight.std().item() == pytest.approx(0.02, abs=0.005)


def test_attention_command_reports_heads_and_bins(tmp_path, capsys):
    store = ResultsStore(tmp_path)
    run = train_run(_cfg(), store)
    assert main(["--root", str(tmp_path), "attention", run.key, "--examples", "10"]) == 0
    out = capsys.readouterr().out
    assert "| 0 |" in out and "| 1 |" in out and "| [4, 6] |" in out
    rope = train_run(load_run_config({**TINY, "model": {**TINY["model"], "positional": "rope"}}), store)
    assert main(["--root", str(tmp_path), "attention", rope.key]) == 2
    assert "position table" in capsys.readouterr().err


def test_positional_logits_match_the_attention_module():
    """The positional logit is q_i . k_j of the raw position vectors through the first layer's maps."""
    from lengthgen.analysis.position_logits import positional_logits

    cfg = load_run_config(TINY)
    model = build_model(cfg, cfg.task.build())
    logits = positional_logits(model)
    attn, p = model.blocks[0].attn, model.pos.position_table().weight
    q, k, _ = (p[[3, 5]] @ attn.qkv.weight.T).split(16, dim=-1)
    want = (q[0, :8] @ k[1, :8]) / 8 ** 0.5  # head 0, query ID 3, key ID 5
    assert logits[0, 3, 5].item() == pytest.approx(want.item(), rel=1e-4)


def test_position_head_report_counts_errors_per_answer_token(tmp_path, capsys):
    store = ResultsStore(tmp_path)
    cfg = load_run_config({"task": {"name": "var_chain", "params": {"hops": [1, 2]}, "train_lengths": [2, 4],
                                    "eval_bins": [[2, 4], [5, 8]]},
                           "model": {"n_layers": 1, "n_heads": 2, "d_model": 16, "predict_positions": True},
                           "train": {"steps": 20, "batch_size": 16, "early_stop_acc": None}, "eval": {"examples_per_bin": 10}})
    run = train_run(cfg, store)
    assert main(["--root", str(tmp_path), "position-head", run.key, "--examples", "30"]) == 0
    out = capsys.readouterr().out
    assert "| [2, 4] |" in out and "| [5, 8] |" in out and "j = 0" in out and "multiples of 4" in out
    plain = train_run(_cfg(), store)
    assert main(["--root", str(tmp_path), "position-head", plain.key]) == 2
    assert "no position head" in capsys.readouterr().err


def test_head_errors_total_equals_scored_positions():
    from lengthgen.analysis.position_head import head_errors
    from lengthgen.data import eval_examples

    cfg = load_run_config({"task": {"name": "var_chain", "params": {"hops": [1, 2]}, "train_lengths": [2, 4]},
                           "model": {"n_layers": 1, "n_heads": 2, "d_model": 16, "predict_positions": True}})
    task = cfg.task.build()
    model = build_model(cfg, task)
    examples = eval_examples(task, 2, 4, 20)
    per_token, errors = head_errors(model, examples)
    total = sum(v[1] for v in per_token.values())
    assert total == sum(int(e.loss_mask.sum()) - 1 for e in examples)  # every answer token fed back, not <eos>
    assert sum(errors.values()) == total - sum(v[0] for v in per_token.values())
