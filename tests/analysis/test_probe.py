"""The dependency-sparsity probe: exact search logic on an analytic k-sparse scorer, the model
adapters (dropping tokens at their original position IDs), and a trained sparse_parity model."""

import json
import math

import numpy as np
import pytest
import torch

from lengthgen.analysis.probe import HFScorer, Query, Scorer, TransformerScorer, bootstrap_mean, probe_query
from lengthgen.analysis.synthetic import probe_synthetic, synthetic_summary
from lengthgen.cli import main as cli_main
from lengthgen.config import load_run_config
from lengthgen.config import ModelConfig
from lengthgen.model import Transformer
from lengthgen.store import ResultsStore
from lengthgen.tasks import make_task
from lengthgen.training import load_model, train_run


class ParityOracle(Scorer):
    """The true conditional loss of sparse_parity's answer given any subset of its context: with
    all k planted bits visible the answer is their XOR (loss 0), with any missing a fair coin."""

    def __init__(self, task):
        self.k = task.k_lo
        self.bit = {task.vocab["p0"]: 0, task.vocab["p1"]: 1}
        self.answer = {task.vocab["0"]: 0, task.vocab["1"]: 1}

    def losses(self, contexts, targets):
        out = []
        for (ids, _), y in zip(contexts, targets):
            bits = [self.bit[t] for t in ids if t in self.bit]
            if len(bits) == self.k:
                out.append(0.0 if sum(bits) % 2 == self.answer[y] else math.inf)
            else:
                out.append(math.log(2))
        return np.array(out)

    def token_losses(self, ids, position_ids):
        raise NotImplementedError("the oracle scores only the answer")


def all_planted_chance(n, k, j):
    j = min(j, n)
    return math.comb(n - k, j - k) / math.comb(n, j) if j >= k else 0.0


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_analytic_parity_probe_finds_exactly_k(k):
    task = make_task("sparse_parity", k=k)
    rows = probe_synthetic(ParityOracle(task), task, (k + 3, 24), n_examples=20, seed=k, ranking="ablation",
                           ks=(1, 2, 4, 8))
    assert all(r["gain"] == pytest.approx(math.log(2)) for r in rows)
    assert [r["s"] for r in rows] == [k] * len(rows)
    assert all(sorted(r["top"]) == r["planted"] for r in rows)
    for r in rows:  # all-or-nothing: fewer than k attributed tokens recover nothing, k or more everything
        assert all(r["attributed"][j] == (1.0 if j >= k else 0.0) for j in (1, 2, 4, 8))
        assert all(rec in (0.0, 1.0) for rec in r["random"].values())
    # j random tokens (at most n) recover the gain only when they include all k planted ones:
    # probability C(n-k, j-k) / C(n, j)
    chance = {j: np.mean([all_planted_chance(r["length"], k, j) for r in rows]) for j in (1, 2, 4, 8)}
    for j in (1, 2, 4, 8):
        assert abs(np.mean([r["random"][j] for r in rows]) - chance[j]) < 0.3
    assert chance[k if k in chance else 4] < 0.5
    summary = synthetic_summary(rows, min_gain=0.1)
    assert summary == [{"k": k, "examples": 20, "probed": 20, "s_eq_k": 1.0, "s_lt_k": 0.0, "s_gt_k": 0.0,
                        "median_s": float(k), "top_planted": 1.0}]


def test_probe_query_s_is_none_when_no_grid_size_recovers_half():
    task = make_task("sparse_parity", k=4)
    q = probe_synthetic(ParityOracle(task), task, (10, 10), n_examples=1, seed=0)[0]
    assert q["s"] == 4
    rng = np.random.default_rng(0)
    ids = np.array(task.vocab.encode(["b0", "p1", "b1", "p0", "p1", "b2", "p1"]))
    query = Query(ids, np.arange(7), task.vocab["1"], kept=np.array([0]), candidates=np.arange(1, 7))
    row = probe_query(ParityOracle(task), query, ks=(1, 2), search_ks=(1, 2, 3), rng=rng, ranking="ablation")
    assert row["s"] is None and row["attributed"] == {1: 0.0, 2: 0.0}


def tiny_transformer(positional: str) -> Transformer:
    torch.manual_seed(0)
    return Transformer(ModelConfig(d_model=32, n_heads=2, n_layers=2, positional=positional), 11, 40)


@pytest.mark.parametrize("positional", ["ape", "rope", "alibi", "t5"])
def test_transformer_scorer_drops_tokens_but_keeps_position_ids(positional):
    model = tiny_transformer(positional)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 11, 30)
    pos = np.arange(30) + 3
    subsets = [np.sort(rng.choice(29, size=m, replace=False)) for m in (1, 5, 12, 29)]
    contexts = [(ids[s], pos[s]) for s in subsets]
    targets = ids[[29] * len(subsets)]
    got = TransformerScorer(model, max_batch_tokens=40).losses(contexts, targets)  # several padded batches
    with torch.no_grad():
        want = [-torch.log_softmax(model(torch.as_tensor(i)[None], torch.as_tensor(p)[None]).logits[0, -1], -1)[t].item()
                for (i, p), t in zip(contexts, targets)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    full = TransformerScorer(model).token_losses(ids, pos)
    np.testing.assert_allclose(full[-1], TransformerScorer(model).losses([(ids[:-1], pos[:-1])], [ids[-1]])[0],
                               rtol=1e-5)


def test_gradient_x_input_matches_the_first_order_change_of_the_loss():
    """Scaling one token's embedding by (1 - h) changes the loss by about -h * (grad . e)."""
    model = tiny_transformer("rope")
    scorer = TransformerScorer(model)
    ids, pos, target = np.array([3, 5, 7, 2, 9, 4]), np.arange(6), 8
    gxi, loss = scorer.gradient_x_input(ids, pos, target)
    assert loss == pytest.approx(scorer.losses([(ids, pos)], [target])[0], rel=1e-5)
    h = 1e-3
    for j in range(6):
        with torch.no_grad():
            e = scorer.embed(torch.as_tensor(ids)[None]).clone()
            e[0, j] *= 1 - h
            out = scorer.hidden(None, torch.as_tensor(pos)[None], embeds=e)
            moved = -torch.log_softmax(out[0, -1], -1)[target].item()
        assert (moved - loss) / h == pytest.approx(-gxi[j], rel=0.02, abs=1e-4)


def test_hf_scorer_drops_tokens_but_keeps_position_ids():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
    rng = np.random.default_rng(2)
    ids, pos = rng.integers(0, 50, 24), np.arange(24)
    subsets = [np.sort(rng.choice(23, size=m, replace=False)) for m in (2, 9, 23)]
    contexts = [(ids[s], pos[s]) for s in subsets]
    got = HFScorer(model, max_batch_tokens=30).losses(contexts, [ids[23]] * 3)
    with torch.no_grad():
        want = [-torch.log_softmax(model(torch.as_tensor(i)[None], position_ids=torch.as_tensor(p)[None])
                                   .logits[0, -1], -1)[ids[23]].item() for i, p in contexts]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    gxi, loss = HFScorer(model).gradient_x_input(ids[:23], pos[:23], ids[23])
    assert gxi.shape == (23,) and loss == pytest.approx(got[-1], rel=1e-5)  # subsets[-1] is the full context


def test_bootstrap_interval_resamples_groups():
    rng = np.random.default_rng(0)
    mean, lo, hi = bootstrap_mean(np.array([0.0, 0.0, 1.0, 1.0]), np.array([0, 0, 1, 1]), rng)
    assert mean == 0.5 and lo == 0.0 and hi == 1.0  # two groups: a resample is all-0, all-1 or mixed
    mean, lo, hi = bootstrap_mean(np.full(10, 3.0), np.arange(10), rng)
    assert mean == lo == hi == 3.0


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory):
    """A tiny model trained to 100% in-distribution exact match on 2-sparse parity (~10 s)."""
    torch.set_num_threads(1)
    # Parity learning plateaus for a seed-dependent time; seed 1 reaches 100% by step 100 (seeds 0, 2,
    # 3 were still at chance after 500 steps when tried), and CPU runs are deterministic.
    cfg = load_run_config({"seed": 1, "task": {"name": "sparse_parity", "params": {"k": 2, "background_size": 4},
                                    "train_lengths": [6, 10], "eval_bins": [[6, 10]]},
                           "model": {"positional": "rope", "d_model": 64, "n_layers": 2, "n_heads": 2},
                           "train": {"steps": 400, "batch_size": 64, "lr": 3e-3, "eval_every": 100,
                                     "eval_examples": 128},
                           "eval": {"examples_per_bin": 64, "greedy": False}, "device": "cpu"})
    root = tmp_path_factory.mktemp("runs")
    run = train_run(cfg, ResultsStore(str(root)))
    assert run.status == "finished" and run.extra["stopped_early_at"] is not None  # reached 100%
    return root, run.key


def test_trained_sparse_parity_model_depends_on_exactly_k_tokens(parity_run):
    """Integration. The probe must not find more than the planted k = 2 tokens (10% of the probed
    examples may differ: a model at 100% exact match can still be unsure on a few), and the top-s
    tokens must be planted ones. (Measured: 100% for both rankings. Gradient x input alone is saturated on this
    model, whose loss is ~0: with only its top 3 candidates confirmed by ablation s = 2 held for
    31% of the examples, top 5: 66%, so the synthetic probe confirms every input token.)"""
    root, key = parity_run
    model, cfg = load_model(root / "models" / f"{key}.pt")
    task = cfg.task.build()
    for ranking in ("gradient", "ablation"):
        rows = probe_synthetic(TransformerScorer(model), task, (6, 10), n_examples=80, seed=5, ranking=ranking)
        (summary,) = synthetic_summary(rows, min_gain=0.3)
        # Without input the model answers "0" (the parity of no bits), so only examples with y = 1
        # have a gain: about half of them.
        assert summary["probed"] >= 25, summary
        # Never more than the planted k, and the tokens found are planted ones. Whether s = k or
        # s < k depends on how the model reads absent tokens: this one (seed 1) reads a missing
        # planted bit as 0, so for y = 1 the one planted 1-bit alone recovers the answer (s = 1 on
        # every probed example); the seed-0 model of version 0.1.0 needed both (s = 2 on all).
        assert summary["s_gt_k"] <= 0.1 and summary["top_planted"] >= 0.9, summary


def test_probe_cli_on_a_finished_run(parity_run, capsys, tmp_path):
    root, key = parity_run
    out = tmp_path / "probe.json"
    assert cli_main(["--root", str(root), "probe", key, "--examples", "40", "--min-gain", "0.3",
                     "--out", str(out)]) == 0
    assert "| 2 | 40 |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    (summary,) = data["summary"]
    assert summary["k"] == 2 and summary["s_gt_k"] <= 0.1 and len(data["records"]) == 40
    assert cli_main(["--root", str(root), "probe", key, "--out", str(tmp_path / "probe.txt")]) == 2
    assert "--out must end in .json or .md" in capsys.readouterr().err
    assert cli_main(["--root", str(root), "probe", key, "--ks", "1,x"]) == 2


@pytest.mark.parametrize("name", ["sparse_parity", "kgram_lookup"])
def test_synthetic_queries_keep_the_prompt_and_offer_the_input_tokens(name):
    from lengthgen.analysis.synthetic import synthetic_queries
    from lengthgen.tasks import BOS, SEP

    task = make_task(name, k=3)
    for q in synthetic_queries(task, (12, 16), n_examples=5, seed=0):
        n, k = q.info["length"], q.info["k"]
        assert list(q.candidates) == list(range(1, n + 1)) and set(q.info["planted"]) <= set(q.candidates)
        kept = q.ids[q.kept]
        assert kept[0] == BOS and kept[1] == SEP and len(kept) == 2 + (k if name == "kgram_lookup" else 0)
        if name == "kgram_lookup":  # the query repeats the key, the first k planted tokens
            assert list(kept[2:]) == list(q.ids[q.info["planted"][:k]])
            assert q.target == q.ids[q.info["planted"][k]]  # the answer is the value after the key
