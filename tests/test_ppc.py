"""Predictive Position Coupling: position targets, decoding with predicted IDs, a tiny real run."""

import numpy as np
import pytest
import torch

from lengthgen.config import ConfigError, load_run_config
from lengthgen.data import IGNORE, collate, eval_examples
from lengthgen.evaluate import greedy_predictions, score
from lengthgen.ppc import position_targets
from lengthgen.store import ResultsStore
from lengthgen.training import build_model, load_model, train_run
from lengthgen.training.build import trains_with_offsets

PPC = {
    "task": {"name": "coupled_copy", "params": {"alphabet_size": 6}, "train_lengths": [1, 6], "eval_bins": [[1, 6]]},
    "model": {"n_layers": 2, "n_heads": 2, "d_model": 32, "predict_positions": True},
    "train": {"steps": 300, "batch_size": 32, "lr": 3e-3, "warmup_steps": 20, "eval_every": 100,
              "early_stop_acc": None},
    "eval": {"examples_per_bin": 100},
}


def test_position_targets_are_next_ids_of_fed_answer_tokens():
    task = load_run_config(PPC).task.build()
    examples = eval_examples(task, 2, 9, 6)
    batch = collate(examples, offsets=[0, 3, 1, 0, 7, 2])
    targets = position_targets(batch)
    for b, ex in enumerate(examples):
        n = len(ex.inputs)
        fed_answer = range(ex.answer_start, n - 1)  # the last input predicts <eos>, which is never fed
        for t in range(targets.shape[1]):
            want = int(batch.position_ids[b, t + 1]) if t in fed_answer else IGNORE
            assert int(targets[b, t]) == want


def test_batched_decoding_with_predicted_ids_matches_naive_loop():
    """Each generated token gets the ID the head predicted at the previous step, example by
    example, whatever the other examples in the batch (different lengths, hops)."""
    torch.manual_seed(0)
    cfg = load_run_config({**PPC, "task": {"name": "var_chain", "train_lengths": [4, 12]}})
    task = cfg.task.build()
    model = build_model(cfg, task).eval()
    examples = eval_examples(task, 4, 12, 12)
    preds = greedy_predictions(model, collate(examples), predicted_positions=True)
    for b, ex in enumerate(examples):
        seq = torch.tensor(ex.inputs[: ex.answer_start + 1])
        pos = torch.tensor(ex.position_ids[: ex.answer_start + 1])
        for t in range(ex.answer_start, len(ex.inputs)):
            out = model(seq[None], pos[None])
            nxt = out.logits[0, -1].argmax()
            assert int(preds[b, t]) == int(nxt)
            seq = torch.cat([seq, nxt[None]])
            pos = torch.cat([pos, out.position_logits[0, -1].argmax()[None]])


def test_tiny_ppc_model_decodes_with_its_own_ids(tmp_path):
    cfg = load_run_config(PPC)
    store = ResultsStore(tmp_path)
    run = train_run(cfg, store)
    m = {r.metric: r.value for r in store.metrics(keys=[run.key])}
    assert m["position_acc"] > 0.95 and m["exact_match_greedy"] > 0.9
    assert m["exact_match_greedy_oracle"] >= m["exact_match_greedy"] - 0.05

    model, _ = load_model(tmp_path / "models" / f"{run.key}.pt")
    model.eval()
    task = cfg.task.build()
    examples = eval_examples(task, 3, 6, 64)
    batch = collate(examples)
    oracle = greedy_predictions(model, batch)
    predicted = greedy_predictions(model, batch, predicted_positions=True)
    with torch.no_grad():  # corrupt the position head: it now always predicts ID 0
        model.position_head.bias[0] += 1e4
    assert torch.equal(greedy_predictions(model, batch), oracle)  # oracle IDs never consult the head
    corrupted = greedy_predictions(model, batch, predicted_positions=True)
    scored = batch.targets != IGNORE
    assert not torch.equal(corrupted[scored], predicted[scored])
    ok = score(model, examples, 64, torch.device("cpu"))
    assert ok["greedy"].mean() < 0.5 < ok["greedy_oracle"].mean()


def test_ppc_config_validation_and_wiring():
    with pytest.raises(ConfigError, match="task 'sparse_parity' .* gives no position IDs"):
        load_run_config({**PPC, "task": {"name": "sparse_parity"}})
    with pytest.raises(ConfigError, match="gives no position IDs"):
        load_run_config({**PPC, "task": {"name": "coupled_copy", "params": {"positions": "sequential"}}})
    plain = {**PPC, "model": {k: v for k, v in PPC["model"].items() if k != "predict_positions"}}
    explicit = {**plain, "model": {**plain["model"], "predict_positions": False},
                "train": {**PPC["train"], "position_loss_weight": 1.0}}
    assert load_run_config(plain).key() == load_run_config(explicit).key() != load_run_config(PPC).key()
    # a PPC head classifies absolute IDs: it gets the random training offsets even under RoPE
    rope = load_run_config({**PPC, "model": {**PPC["model"], "positional": "rope"}})
    model = build_model(rope, rope.task.build())
    assert model.position_head.out_features == model.max_positions and trains_with_offsets(rope)
    no_head = load_run_config({**plain, "model": {**plain["model"], "positional": "rope"}})
    assert not trains_with_offsets(no_head)


def test_greedy_with_predicted_ids_needs_a_head():
    cfg = load_run_config({**PPC, "model": {"n_layers": 1, "d_model": 16}})
    model = build_model(cfg, cfg.task.build())
    batch = collate(eval_examples(cfg.task.build(), 1, 6, 4))
    with pytest.raises(ValueError, match="needs a model with a position head"):
        greedy_predictions(model, batch, predicted_positions=True)
    assert np.isfinite(score(model, batch.examples, 4, torch.device("cpu"))["tf"]).all()
