"""k-sparse planted tasks: every sample obeys its rule (docs/design.md §4.1)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lengthgen.data import train_batch
from lengthgen.tasks import BOS, EOS, SEP, make_task

PLACEMENTS = ["uniform", "block", "local:9"]


def decode_context(task, ex):
    toks = task.vocab.decode(ex.inputs)
    assert toks[0] == "<bos>"
    sep = toks.index("<sep>")
    return toks[1:sep], toks[sep + 1:]


def check_placement(placement, positions, n):
    positions = sorted(positions)
    if placement == "block":
        assert positions == list(range(positions[0], positions[0] + len(positions)))
    elif placement.startswith("local:"):
        w = int(placement.split(":")[1])
        assert all(p >= n - w for p in positions)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(9, 60), placement=st.sampled_from(PLACEMENTS),
       name=st.sampled_from(["sparse_parity", "sparse_sum"]), k_hi=st.integers(1, 6))
def test_planted_function_rule(seed, n, placement, name, k_hi):
    task = make_task(name, k=[1, k_hi], placement=placement)
    ex = task.sample(np.random.default_rng(seed), n)
    ctx, after = decode_context(task, ex)
    assert len(ctx) == n == ex.length
    planted = [(i, t) for i, t in enumerate(ctx) if t.startswith("p")]
    assert len(planted) == ex.info["k"] and 1 <= ex.info["k"] <= k_hi
    assert all(t.startswith("b") for t in ctx if not t.startswith("p"))
    check_placement(placement, [i for i, _ in planted], n)
    values = [int(t[1:]) for _, t in planted]
    modulus = 2 if name == "sparse_parity" else 5
    assert after == [str(sum(values) % modulus)] and ex.targets[-1] == EOS
    # Only y is scored: the prediction made at <sep>.
    assert ex.loss_mask.sum() == 1 and ex.inputs[ex.loss_mask.argmax()] == SEP
    assert len(ex.inputs) <= task.seq_len(n)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(15, 60), placement=st.sampled_from(["block", "local:12"]),
       k=st.integers(1, 3), distractors=st.integers(0, 2))
def test_kgram_lookup_rule(seed, n, placement, k, distractors):
    task = make_task("kgram_lookup", k=k, placement=placement, distractors=distractors)
    ex = task.sample(np.random.default_rng(seed), n)
    ctx, after = decode_context(task, ex)
    assert len(ctx) == n
    query, answer = after[:k], after[k]
    assert len(query) == k and all(t.startswith("a") for t in query)
    # Records are maximal runs of key tokens followed by a value token; exactly one matches.
    records, i = [], 0
    while i < n:
        if ctx[i].startswith("a"):
            j = i
            while ctx[j].startswith("a"):
                j += 1
            records.append((i, ctx[i:j], ctx[j]))
            i = j + 1
        else:
            i += 1
    assert len(records) == 1 + distractors
    assert all(len(key) == k and value.startswith("v") for _, key, value in records)
    matches = [(start, value) for start, key, value in records if key == query]
    assert len(matches) == 1 and matches[0][1] == answer
    check_placement(placement, range(matches[0][0], matches[0][0] + k + 1), n)
    assert ex.loss_mask.sum() == 1 and len(ex.inputs) <= task.seq_len(n)


def test_k_fixed_and_breakdown():
    task = make_task("sparse_parity", k=3)
    rng = np.random.default_rng(0)
    assert {task.sample(rng, 20).info["k"] for _ in range(20)} == {3}
    assert task.breakdown() == {"k": [3]}
    assert make_task("sparse_parity", k=[2, 5]).breakdown() == {"k": [2, 3, 4, 5]}
    assert task.sample(rng, 20, k=3).info["k"] == 3


def test_k_drawn_over_whole_range():
    task = make_task("sparse_sum", k=[1, 4])
    rng = np.random.default_rng(1)
    assert {task.sample(rng, 30).info["k"] for _ in range(200)} == {1, 2, 3, 4}


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, "1 <= lo <= hi"),
    ({"k": [3, 2]}, "1 <= lo <= hi"),
    ({"k": "three"}, "k must be an int"),
    ({"placement": "middle"}, "allowed: uniform, local:w, block"),
    ({"placement": "local:2", "k": 4}, "window must hold"),
])
def test_bad_parameters_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_task("sparse_parity", **kwargs)


def test_k_larger_than_length_refused():
    task = make_task("sparse_parity", k=[1, 8])
    with pytest.raises(ValueError, match="do not fit in length 5"):
        task.sample(np.random.default_rng(0), 5, k=8)


def test_batches_deterministic_given_seed():
    task = make_task("sparse_parity", k=[1, 4])
    a = train_batch(task, seed=3, step=7, batch_size=16, lengths=(8, 20), offset_max_length=40)
    b = train_batch(task, seed=3, step=7, batch_size=16, lengths=(8, 20), offset_max_length=40)
    c = train_batch(task, seed=3, step=8, batch_size=16, lengths=(8, 20), offset_max_length=40)
    for x, y in [(a.inputs, b.inputs), (a.targets, b.targets), (a.position_ids, b.position_ids)]:
        assert (x == y).all()
    assert not (a.inputs.shape == c.inputs.shape and (a.inputs == c.inputs).all())
    lengths = [e.length for e in a.examples]
    assert min(lengths) >= 8 and max(lengths) <= 20
    assert int(a.inputs[0, 0]) == BOS


def test_background_tokens_are_the_draws_encoded():
    """The background is each draw b_i looked up in the vocabulary: the same examples, token for
    token, as encoding the symbols one by one."""
    task = make_task("sparse_parity", background_size=5)
    for seed in range(3):
        draws = np.random.default_rng(seed).integers(0, 5, 40)
        assert (task._background(np.random.default_rng(seed), 40) == task.vocab.encode([f"b{i}" for i in draws])).all()
