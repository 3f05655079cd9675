"""Coupled tasks: formats, answers and the coupled position IDs, checked against independent
reference computations (property tests over random lengths and seeds)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lengthgen.data import train_batch
from lengthgen.positions import max_offset
from lengthgen.tasks import make_task

COUPLED = ["coupled_addition", "coupled_copy", "coupled_parity", "sparse_parity_scratchpad", "var_chain"]
SETTINGS = settings(max_examples=40, deadline=None)
seeds = st.integers(0, 2**32 - 1)


def sample(name, seed, n, **params):
    task = make_task(name, **params)
    return task, task.sample(np.random.default_rng(seed), n)


def full_sequence(task, ex):
    """The example's symbols, answer and final <eos> included."""
    return task.vocab.decode(list(ex.inputs) + [ex.targets[-1]])


def split(task, ex):
    seq = full_sequence(task, ex)
    return seq[1:ex.answer_start], seq[ex.answer_start + 1:-1]  # prompt without <bos>/<sep>, answer without <eos>


def digits_value(digits_msb_first):
    return int("".join(digits_msb_first))


@SETTINGS
@given(seeds, st.integers(1, 30), st.sampled_from(["independent", "equal"]))
def test_coupled_addition_sum_and_shared_ids(seed, n, operands):
    task, ex = sample("coupled_addition", seed, n, operands=operands)
    prompt, answer = split(task, ex)
    a, b = prompt[:n], prompt[n + 1:]
    assert prompt[n] == "+" and len(a) == len(b) == n and len(answer) == n + 1
    assert digits_value(a) + digits_value(b) == digits_value(answer[::-1])
    seq, ids = full_sequence(task, ex)[:-1], ex.position_ids
    for i in range(n + 1):  # exactly the digits of significance i carry ID i+2 (Cho et al., start 1)
        sharing = [t for t in range(len(seq)) if ids[t] == i + 2]
        expected = [n - i, 2 * n + 1 - i] if i < n else []
        assert sharing == expected + [ex.answer_start + 1 + i]
    assert ids[0] == 0 and seq[0] == "<bos>"
    assert [ids[t] for t in range(len(seq)) if seq[t] in ("+", "<sep>")] == [1, 1]
    assert ex.offset_from == 1  # the random start leaves <bos> at ID 0
    assert ex.loss_mask.sum() == n + 2 and ex.loss_mask[ex.answer_start:].all()


@SETTINGS
@given(seeds, st.integers(1, 30))
def test_index_hints_mark_significance(seed, n):
    task, ex = sample("index_hints_addition", seed, n, hint_vocab=40)
    assert ex.position_ids is None
    prompt, answer = split(task, ex)
    a_part, b_part = prompt[:2 * n], prompt[2 * n + 1:]
    assert prompt[2 * n] == "+"
    c = ex.info["hint_start"]
    assert 0 <= c <= 40 - n - 1
    for part in (a_part, b_part):
        assert part[0::2] == [f"h{c + i}" for i in range(n - 1, -1, -1)]
    assert answer[0::2] == [f"h{c + i}" for i in range(n + 1)]
    assert digits_value(a_part[1::2]) + digits_value(b_part[1::2]) == digits_value(answer[1::2][::-1])


def test_index_hints_length_limited_by_hint_vocab():
    task = make_task("index_hints_addition", hint_vocab=10)
    assert list(task.valid_lengths(5, 20)) == list(range(5, 10))
    with pytest.raises(ValueError, match="needs 11 hint tokens but hint_vocab is 10"):
        task.sample(np.random.default_rng(0), 10)


@SETTINGS
@given(seeds, st.integers(1, 40), st.integers(2, 26))
def test_coupled_copy_output_shares_input_id(seed, n, alphabet):
    task, ex = sample("coupled_copy", seed, n, alphabet_size=alphabet)
    prompt, answer = split(task, ex)
    assert answer == prompt and len(prompt) == n
    ids = ex.position_ids
    inputs = ex.inputs
    for i in range(1, n + 1):
        (where,) = np.nonzero(ids == i)
        assert where.tolist() == [i, ex.answer_start + i] and inputs[where[0]] == inputs[where[1]]


@SETTINGS
@given(seeds, st.integers(1, 40))
def test_coupled_parity_scratchpad(seed, n):
    task, ex = sample("coupled_parity", seed, n)
    prompt, answer = split(task, ex)
    bits = [int(x) for x in prompt]
    assert [int(p) for p in answer] == [sum(bits[:i + 1]) % 2 for i in range(n)]
    ids = ex.position_ids
    # step i reads input bit i at the same ID and the previous step at ID distance 1
    assert (ids[1:n + 1] == np.arange(1, n + 1)).all() and (ids[ex.answer_start + 1:] == np.arange(1, n + 1)).all()


@SETTINGS
@given(seeds, st.integers(6, 60), st.sampled_from(["uniform", "block", "local:6"]))
def test_sparse_scratchpad_walks_planted_bits(seed, n, placement):
    task, ex = sample("sparse_parity_scratchpad", seed, n, k=[1, 5], placement=placement)
    seq = full_sequence(task, ex)
    prompt, answer = split(task, ex)
    planted = [t + 1 for t, x in enumerate(prompt) if x.startswith("p")]
    assert planted == ex.info["planted"] and len(planted) == ex.info["k"]
    bits = [int(seq[p][1]) for p in planted]
    running = [int(r) for r in answer]
    assert running == [sum(bits[:j]) % 2 for j in range(len(bits) + 1)]
    ids = ex.position_ids
    assert (ids[:n + 2] == np.arange(n + 2)).all()  # prompt IDs are sequential
    steps = ids[ex.answer_start + 1:]
    for j in range(len(bits)):  # r_j sits on the planted bit that r_{j+1} consumes
        read = seq[steps[j]]
        assert read.startswith("p") and running[j + 1] == running[j] ^ int(read[1])
    assert steps[-1] == planted[-1]


def resolve(program, query):
    """Reference resolution by running the program forward and recording who wrote each value."""
    env, origin = {}, {}
    for i, (lhs, rhs) in enumerate(program):
        env[lhs] = env.get(rhs) if rhs.startswith("x") else rhs
        origin[lhs] = (i, rhs)
    chain, var, before = [query], query, len(program)
    while True:
        i = max(j for j in range(before) if program[j][0] == var)  # last write to var before `before`
        rhs = program[i][1]
        chain.append(rhs)
        if not rhs.startswith("x"):
            return env[query], chain
        var, before = rhs, i


@SETTINGS
@given(seeds, st.integers(3, 30), st.integers(1, 3))
def test_var_chain_resolution_and_ids(seed, n, hops):
    task = make_task("var_chain", hops=[1, 3], num_vars=5)
    ex = task.sample(np.random.default_rng(seed), n, hops=hops)
    seq = full_sequence(task, ex)
    prompt, answer = split(task, ex)
    program = [(prompt[4 * i], prompt[4 * i + 2]) for i in range(n)]
    assert all(prompt[4 * i + 1] == "=" and prompt[4 * i + 3] == ";" for i in range(n))
    final, chain = resolve(program, prompt[-1])
    assert answer == chain and answer[-1] == final and len(answer) == hops + 1 == ex.info["hops"] + 1
    steps = ex.position_ids[ex.answer_start + 1:]
    for j in range(hops):  # u_j sits on the rhs it reads next: token there = u_{j+1}, lhs = u_j
        assert seq[steps[j]] == answer[j + 1] and seq[steps[j] - 2] == answer[j]
    assert steps[-1] == steps[-2]


@pytest.mark.parametrize("name", COUPLED)
def test_sequential_mode_same_tokens_no_ids(name):
    for seed in range(5):
        task, coupled = sample(name, seed, 12)
        _, plain = sample(name, seed, 12, positions="sequential")
        assert coupled.position_ids is not None and plain.position_ids is None
        assert (coupled.inputs == plain.inputs).all() and (coupled.targets == plain.targets).all()
        assert len(coupled.inputs) <= task.seq_len(12)


@pytest.mark.parametrize("name", COUPLED)
def test_random_start_reaches_the_longest_ids(name):
    """The training offset shifts coupled IDs so that a short example's largest ID can reach the
    largest ID of the longest evaluation length, never beyond."""
    task = make_task(name)
    longest = 40
    top = max(task.sample(np.random.default_rng(0), longest).position_ids)
    for n in (4, 12):
        ex = task.sample(np.random.default_rng(1), n)
        assert max(ex.position_ids) + max_offset(task, n, longest) <= top
    batch = train_batch(task, seed=3, step=0, batch_size=64, lengths=(4, 12), offset_max_length=longest)
    assert int(batch.position_ids.max()) <= top and int(batch.position_ids.min()) >= 0
    starts = {int(p[e.offset_from]) for p, e in zip(batch.position_ids, batch.examples)}
    assert len(starts) > 5  # starts vary across the batch
    assert all(int(p[0]) == 0 for p, e in zip(batch.position_ids, batch.examples) if e.offset_from)  # <bos> stays


def test_bad_parameters_fail_with_allowed_values():
    with pytest.raises(ValueError, match="unknown positions 'abacus'; allowed: coupled, sequential"):
        make_task("coupled_copy", positions="abacus")
    with pytest.raises(ValueError, match="num_vars=2 cannot hold a chain of 3"):
        make_task("var_chain", hops=[1, 3], num_vars=2)
    with pytest.raises(ValueError, match="bad hops"):
        make_task("var_chain", hops=[3, 1])
    with pytest.raises(ValueError, match=r"alphabet_size must be in \[2, 26\]"):
        make_task("coupled_copy", alphabet_size=30)
