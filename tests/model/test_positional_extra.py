"""T5 bias, FIRE, randomized positions and Abacus: causality, shapes and the property that
characterises each scheme."""

import numpy as np
import pytest
import torch

from lengthgen.config import load_run_config
from lengthgen.data import eval_examples, train_batch
from lengthgen.evaluate import score
from lengthgen.config import ModelConfig
from lengthgen.model import Transformer, make_scheme
from lengthgen.model.positional import t5_buckets
from lengthgen.store import ResultsStore
from lengthgen.tasks import make_task
from lengthgen.training import train_run

NEW = ["t5", "fire", "randomized", "abacus"]
# Coupled IDs are not monotone: equal IDs and IDs that go back down (coupled_copy, n=4).
COUPLED_IDS = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 3, 4]])


def model_for(scheme, **params):
    torch.manual_seed(0)
    return Transformer(ModelConfig(n_layers=2, n_heads=2, d_model=16,
                                         positional=scheme, positional_params=params), 13, 64).eval()


@pytest.mark.parametrize("scheme", NEW)
@pytest.mark.parametrize("ids", [None, COUPLED_IDS])
def test_causal_and_shapes_with_sequential_and_coupled_ids(scheme, ids):
    model = model_for(scheme)
    x = torch.randint(4, 13, (1, 10))
    y = x.clone()
    y[0, 6] = 4 if x[0, 6] != 4 else 5
    with torch.no_grad():
        a, b = model(x, ids).logits, model(y, ids).logits
    assert a.shape == (1, 10, 13) and torch.isfinite(a).all()
    assert torch.allclose(a[:, :6], b[:, :6], atol=1e-6) and not torch.allclose(a[:, 6:], b[:, 6:])
    bias = model.pos.bias(torch.arange(10)[None] if ids is None else ids)
    assert bias is None or bias.shape == (1, 2, 10, 10)


def test_t5_buckets_exact_then_logarithmic_then_capped():
    rel = torch.arange(0, 400)
    b = t5_buckets(rel, num_buckets=32, max_distance=128)
    assert b[:8].tolist() == list(range(8))  # a quarter of the buckets are exact
    assert (b[1:] >= b[:-1]).all() and b.max() == 15 and (b[128:] == 15).all()
    assert set(b[8:128].tolist()) == set(range(8, 16))
    neg = t5_buckets(-rel[1:], num_buckets=32, max_distance=128)
    assert (neg == b[1:] + 16).all()  # keys with a higher ID get their own half


def test_t5_bias_is_translation_invariant_and_per_bucket():
    t5 = make_scheme("t5", 16, 2, 64)
    for ids in (torch.arange(12)[None], COUPLED_IDS):
        assert torch.equal(t5.bias(ids), t5.bias(ids + 17))
    bias = t5.bias(torch.arange(12)[None])
    assert torch.equal(bias[0, :, 9, 2], t5.table.weight[7])  # distance 7: its own exact bucket


def test_fire_relative_below_threshold_normalised_beyond():
    fire = make_scheme("fire", 16, 2, 64, threshold=32.0)
    short = torch.arange(20)[None]
    assert torch.allclose(fire.bias(short), fire.bias(short + 10), atol=1e-6)  # all IDs < 32
    assert torch.allclose(fire.bias(COUPLED_IDS), fire.bias(COUPLED_IDS + 5), atol=1e-6)
    long = torch.arange(200)[None]
    x = fire.normalized_distance(long)[0]
    causal = torch.ones(200, 200, dtype=torch.bool).tril()
    assert x[causal].min() >= 0 and x[causal].max() <= 1 + 1e-6
    assert torch.allclose(x[32:, 0], torch.ones(168))  # the first key seen from beyond L: distance 1
    assert not torch.allclose(fire.bias(long[:, 100:]), fire.bias(long[:, :100]), atol=1e-4)
    # the per-distinct-value evaluation equals running the MLP on every pair
    direct = fire.mlp(fire.normalized_distance(COUPLED_IDS)[..., None]).permute(0, 3, 1, 2)
    assert torch.allclose(fire.bias(COUPLED_IDS), direct, atol=1e-6)


def test_fire_learns_c_and_threshold():
    fire = make_scheme("fire", 16, 2, 64, threshold=8.0)
    fire.bias(torch.arange(40)[None]).square().sum().backward()
    assert fire.log_c.grad.abs() > 0 and fire.log_threshold.grad.abs() > 0


def test_randomized_positions_sorted_in_range_and_coupling_preserving():
    scheme = make_scheme("randomized", 16, 2, 64, span=200)
    rng = np.random.default_rng(0)
    for n in (1, 10, 150):
        ids = scheme.train_position_sampler()(rng, np.arange(n))
        assert (np.diff(ids) > 0).all() and ids.min() >= 0 and ids.max() < 200
    coupled = COUPLED_IDS[0].numpy()
    drawn = scheme.train_position_sampler()(rng, coupled)
    assert (drawn[:5] == drawn[5:]).all() and (np.diff(drawn[:5]) > 0).all()
    with pytest.raises(ValueError, match="position ID 200 does not fit in span 200"):
        scheme.train_position_sampler()(rng, np.arange(201))
    # the base scheme consumes the drawn IDs: sinusoidal features of the IDs themselves
    ids = torch.tensor([[3, 50, 199]])
    assert torch.allclose(scheme.embed(ids), make_scheme("sinusoidal", 16, 2, 200).embed(ids))


def test_randomized_training_batches_are_seeded_and_varied():
    task = make_task("repeat_copy")
    sampler = make_scheme("randomized", 16, 2, 64, span=300).train_position_sampler()
    a = train_batch(task, 0, 5, 8, (4, 10), None, sampler)
    b = train_batch(task, 0, 5, 8, (4, 10), None, sampler)
    c = train_batch(task, 0, 6, 8, (4, 10), None, sampler)
    assert torch.equal(a.position_ids, b.position_ids) and not torch.equal(a.position_ids[:, :5], c.position_ids[:, :5])
    plain = train_batch(task, 0, 5, 8, (4, 10), None)
    assert torch.equal(plain.inputs, a.inputs)  # the draw comes after the examples: same data
    assert a.position_ids.max() > 2 * plain.position_ids.max()


def test_randomized_run_trains_and_evaluates(tmp_path):
    cfg = load_run_config({
        "task": {"name": "repeat_copy", "train_lengths": [2, 6], "eval_bins": [[2, 6], [7, 12]]},
        "model": {"positional": "randomized", "positional_params": {"base": "ape"}, "n_layers": 1, "d_model": 16},
        "train": {"steps": 5, "batch_size": 8, "early_stop_acc": None}, "eval": {"examples_per_bin": 8}})
    run = train_run(cfg, ResultsStore(tmp_path))
    assert run.status == "finished" and not run.config["resolved"]["position_offsets"]


def test_randomized_evaluation_draws_fixed_random_positions():
    """eval_positions random (Ruoss et al.): test examples get sorted random IDs, the same ones on
    every evaluation; plain: the examples' own IDs. A model whose output hinges on the IDs scores
    the two differently."""
    task = make_task("repeat_copy")
    examples = eval_examples(task, 4, 10, 32)
    scores = {}
    for mode in ("random", "plain"):
        torch.manual_seed(0)
        model = Transformer(ModelConfig(n_layers=1,
                                              d_model=16, positional="randomized",
                                              positional_params={"base": "ape", "eval_positions": mode}), len(task.vocab), 64).eval()
        with torch.no_grad():
            model.pos.base.table.weight.mul_(50)  # make predictions depend on the IDs
        first, again = (score(model, examples, 8, torch.device("cpu"), greedy=False) for _ in range(2))
        assert all(np.array_equal(first[k], again[k]) for k in first)
        scores[mode] = first
    assert not np.array_equal(scores["random"]["tok_right"], scores["plain"]["tok_right"])
    with pytest.raises(ValueError, match="eval_positions must be one of random, plain, got 'fixed'"):
        make_scheme("randomized", 16, 2, 64, eval_positions="fixed")


def test_abacus_embeds_data_ids_and_orders_by_sequence_index():
    model = model_for("abacus", base="rope")
    ids = torch.tensor([[0, 3, 2, 1, 0, 3, 2, 1, 0]])  # digit indices of two numbers
    assert torch.equal(model.pos.embed(ids), model.pos.table(ids))  # rope adds no embedding
    q, k = torch.randn(1, 2, 9, 8), torch.randn(1, 2, 9, 8)
    rope = make_scheme("rope", 16, 2, 64)
    for got, want in zip(model.pos.rotate(q, k, ids), rope.rotate(q, k, torch.arange(9)[None])):
        assert torch.allclose(got, want)
    nope = model_for("abacus")
    x = torch.tensor([[5, 6, 7, 5, 6, 7]])
    emb = nope.tok(x) + nope.pos.embed(torch.tensor([[1, 2, 3, 1, 2, 3]]))
    assert torch.equal(emb[0, :3], emb[0, 3:])  # same digit index, same token: same input
    with pytest.raises(ValueError, match=r"abacus: index 64 is beyond the embedding table \(0..63\)"):
        nope(x, torch.tensor([[1, 2, 3, 64, 2, 3]]))


def test_bad_parameters_fail_clearly():
    with pytest.raises(ValueError, match="randomized: base must be a plain scheme"):
        make_scheme("randomized", 16, 2, 64, base="abacus")
    with pytest.raises(ValueError, match="unknown positional scheme 'fourier'"):
        make_scheme("abacus", 16, 2, 64, base="fourier")
    with pytest.raises(ValueError, match="t5: num_buckets must be an even number"):
        make_scheme("t5", 16, 2, 64, num_buckets=7)
    with pytest.raises(ValueError, match="bad parameters for positional scheme 'fire'"):
        make_scheme("fire", 16, 2, 64, width=3)
