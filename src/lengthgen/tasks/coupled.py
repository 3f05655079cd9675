"""Position-coupled tasks (Cho et al. 2024) and input-dependent coupling for PPC (docs/design.md §4.4).

Position coupling gives one position ID to the tokens that play the same role, so that each
prediction reads the token(s) at a fixed *ID* distance however far apart they are in the
sequence. Every task here returns its IDs as `Example.position_ids`; the task parameter
`positions` picks between them and plain sequential IDs for the baselines on the same tokens:

    positions="coupled"     the coupled IDs below (default)
    positions="sequential"  position_ids=None, i.e. 0..T-1

Random start ID. The coupled IDs below start at 0; training shifts every ID of an example by a
random start drawn uniformly from [0, positions.max_offset(task, n, longest)], the training-time
position offset that `data.train_batch` already draws for schemes with a position table (and for
PPC, whose head predicts absolute IDs), and evaluation uses start 0. The task therefore never
needs to know whether it is being trained: its offset rule (`coupled_ids`) lets the largest
shifted ID of a short training example reach the largest ID of the longest evaluation length, so
every ID a test example uses has been trained.

Content-independent coupling (the correct IDs follow from the format alone):

    coupled_addition     <bos> a_{n-1} … a_0 + b_{n-1} … b_0 <sep> s_0 s_1 … s_n <eos>
        decimal addition as Cho et al. (HanseulJo/position-coupling, src/data/addition.py):
        the operands have independently drawn digit counts (`operands: independent`, the
        paper's; uniform over the window in `sample_window`, and given the length n = the longer
        operand's digit count in `sample`), no leading zeros (a 1-digit operand may be 0), the
        shorter one zero-padded to n digits, most significant first; the sum reversed (least
        significant first) and zero-padded to n+1 digits. `operands: equal` is our earlier
        sampler: both operands exactly n uniform digits (leading zeros allowed). IDs (their
        AdditionDatasetWithCoupledPositions with start 1): <bos> 0; + and <sep> (their `=`) the
        start ID 1; a_i, b_i and s_i (significance i) share ID i+2. The random start shifts
        every ID but <bos>'s (`Example.offset_from = 1`). Every answer digit is then predicted
        at ID distance +1 (a_i, b_i) and 0 (the carry from a_{i-1}, b_{i-1}, s_{i-1}) from the
        token that predicts it.
    coupled_copy         <bos> x1 … xn <sep> x1 … xn <eos>; output i shares input i's ID i;
        <bos> and <sep> get 0.
    coupled_parity       <bos> x1 … xn <sep> p1 … pn <eos>; p_i = x1 ⊕ … ⊕ x_i, the running
        parity (p_n is the answer); step i shares input bit i's ID i; <bos> and <sep> get 0.
    index_hints_addition the index-hints baseline (Zhou et al. 2024), sequential IDs only:
        <bos> h(c+n-1) a_{n-1} … h(c) a_0 + h(c+n-1) b_{n-1} … h(c) b_0 <sep> h(c) s_0 … h(c+n) s_n <eos>
        with the operands and sum of coupled_addition and hint tokens h0…h(H-1) (H =
        `hint_vocab`) marking significance (operands drawn as `operands` says); the hint start c
        is drawn uniformly from
        [0, H-n-1] for every example (training and evaluation alike), so short training
        examples train every hint token. The hints in the answer are generated and scored.

Input-dependent coupling (the correct IDs depend on the content, so at test time only a model
can supply them: Predictive Position Coupling). Rule for both: a scratchpad token carries the ID
of the prompt token that the *next* prediction reads, so that every value is read at ID
distance 0; the last token, with nothing left to read, repeats its predecessor's ID. The prompt
keeps sequential IDs (<bos> 0, then 1, 2, …).

    sparse_parity_scratchpad  <bos> x1 … xn <sep> r_0 r_1 … r_k <eos>
        the context of sparse_parity (background tokens b*, k planted bits p0/p1 at positions
        P_1 < … < P_k, 1-based); r_j = XOR of the first j planted bits (r_0 = 0, r_k the
        answer). IDs: r_j gets P_{j+1} for j < k and r_k gets P_k. Predicting r_{j+1} reads
        the planted bit at the ID of r_j; predicting that ID means finding the next planted
        position.
    var_chain                 <bos> l_1 = v_1 ; … l_n = v_n ; q <sep> u_0 u_1 … u_{d-1} c <eos>
        n assignments over variables x0…x(V-1) and values 0…(M-1), run in order; q asks for
        the final value of a variable. Resolution walks back through d hops (`hops`): u_0 = q,
        assignment a_1 is the last one to q, and for j ≥ 1 u_j = the right-hand side of a_j,
        a variable, and a_{j+1} the last assignment to u_j before a_j; a_d's right-hand side is
        the value c. IDs: u_j gets the ID of a_{j+1}'s right-hand side (j < d), c repeats
        u_{d-1}'s. Assignment i (1-based) occupies IDs 4i-3 … 4i (lhs, =, rhs, ;).

Length n: digits per operand (additions), input tokens (copy, parity, sparse_parity_scratchpad),
assignments (var_chain). The whole answer and <eos> are scored.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import InputError
from .base import BOS, EOS, FIRST_SYMBOL, SEP, Example, Task, Vocab, register_task, sequence_example
from .sparse import _Planted, parse_k, place

POSITION_MODES = ("coupled", "sequential")


def check_positions(name: str, positions: str) -> str:
    if positions not in POSITION_MODES:
        raise InputError(f"task {name!r}: unknown positions {positions!r}; allowed: {', '.join(POSITION_MODES)}")
    return positions


class _CoupledIDs:
    """Mixin: the `positions` switch, its offset rule and building the example."""

    name: ClassVar[str]
    positions: str

    def max_id(self, length: int) -> int:
        """Largest coupled ID (start 0) of an example of input length `length`."""
        raise NotImplementedError

    @property
    def offset_rule(self) -> str:
        return "coupled_ids" if self.positions == "coupled" else "longest_sequence"

    def mirrored_example(self, xs: np.ndarray, ys: np.ndarray) -> Example:
        """`<bos> x1 … xn <sep> y1 … yn <eos>` (symbol indices) where y_i shares x_i's ID i; the
        answer is the y half."""
        n = len(xs)
        seq = np.concatenate([[BOS], FIRST_SYMBOL + xs, [SEP], FIRST_SYMBOL + ys, [EOS]])
        inputs = np.arange(1, n + 1)
        ids = np.concatenate([[0], inputs, [0], inputs, [n + 1]])
        return self.example(seq, ids, answer_start=n + 1, length=n)

    def render(self, ex: Example) -> str:
        text = super().render(ex)  # type: ignore[misc]
        if ex.position_ids is None:
            return text
        return f"{text}   IDs: {' '.join(str(int(i)) for i in ex.position_ids)}"

    def example(self, seq, ids, answer_start: int, length: int, **kw) -> Example:
        """`seq` is the full token sequence and `ids` its coupled IDs, final <eos> included;
        the <eos> is only a target, so its ID is dropped."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) != len(seq):
            raise AssertionError(f"{self.name}: {len(ids)} IDs for {len(seq)} tokens")
        position_ids = ids[:-1] if self.positions == "coupled" else None
        return sequence_example(seq, answer_start=answer_start, length=length, position_ids=position_ids, **kw)


DIGITS = tuple(str(d) for d in range(10))


def add_reversed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Digits (least significant first, n+1 of them) of a + b for n-digit MSB-first operands."""
    carry, out = 0, []
    for x, y in zip(a[::-1], b[::-1]):
        carry, digit = divmod(int(x) + int(y) + carry, 10)
        out.append(digit)
    out.append(carry)
    return np.array(out, dtype=np.int64)


OPERAND_MODES = ("independent", "equal")


class _DecimalAddition(Task):
    default_train_lengths = (1, 8)
    default_eval_bins = ((1, 8), (9, 16), (17, 24), (25, 32))
    operands: str

    def check_operands(self, operands: str) -> str:
        if operands not in OPERAND_MODES:
            raise InputError(f"task {self.name!r}: unknown operands {operands!r}; allowed: {', '.join(OPERAND_MODES)} "
                             "(independent = Cho et al.'s, the paper's)")
        return operands

    def digit_counts(self, rng, n: int) -> tuple[int, int]:
        """Digit counts of (a, b) whose maximum is n: Cho et al.'s independent uniform counts
        conditioned on the maximum (uniform over the 2n-1 such pairs), or (n, n) for `equal`."""
        if self.operands == "equal":
            return n, n
        k = int(rng.integers(2 * n - 1))
        if k == 2 * n - 2:
            return n, n
        other = k // 2 + 1
        return (n, other) if k % 2 == 0 else (other, n)

    def operand(self, rng, digits: int, n: int) -> np.ndarray:
        """An operand written with n digits, most significant first. `independent`: a number of
        exactly `digits` digits (a 1-digit number is uniform in 0..9), zero-padded; `equal`: n
        uniform digits."""
        if self.operands == "equal":
            return rng.integers(0, 10, n)
        head = rng.integers(0, 10, 1) if digits == 1 else rng.integers(1, 10, 1)
        return np.concatenate([np.zeros(n - digits, dtype=np.int64), head, rng.integers(0, 10, digits - 1)])

    def sample(self, rng, length):
        self.check_length(length)
        return self.build(rng, length, *self.digit_counts(rng, length))

    def sample_window(self, rng, lo, hi, **overrides):
        if self.operands == "equal":
            return super().sample_window(rng, lo, hi, **overrides)
        valid = self.valid_lengths(lo, hi)
        da, db = (int(valid[int(i)]) for i in rng.integers(0, len(valid), 2))
        return self.build(rng, max(da, db), da, db)

    def build(self, rng, n: int, da: int, db: int) -> Example:
        """The example for n-digit (padded) operands with da and db real digits."""
        raise NotImplementedError


@register_task
class CoupledAddition(_CoupledIDs, _DecimalAddition):
    name = "coupled_addition"
    summary = ("decimal addition, reversed answer, digits of equal significance share a position ID; "
               "paper's choice (Cho et al.): operands=independent")
    format = ("<bos> a_{n-1} … a_0 + b_{n-1} … b_0 <sep> s_0 … s_n <eos>; operands=independent (the paper's, Cho et "
              "al.): digit counts drawn independently (uniform over the window), no leading zeros, the shorter "
              "zero-padded to n = the longer's digits, MSB first; operands=equal: both exactly n uniform digits. Sum "
              "reversed (LSB first) with n+1 digits. Coupled IDs: <bos> 0, + and <sep> the start 1, a_i, b_i, s_i -> "
              "i+2; the random start shifts all but <bos>. E.g. <bos> 0 7 + 4 5 <sep> 2 5 0 <eos>, IDs 0 3 2 1 3 2 1 "
              "2 3 4")

    def __init__(self, positions: str = "coupled", operands: str = "independent"):
        self.positions = check_positions(self.name, positions)
        self.operands = self.check_operands(operands)
        self.vocab = Vocab(DIGITS + ("+",))

    def seq_len(self, length):
        return 3 * length + 4

    def max_id(self, length):
        return length + 2

    def build(self, rng, n, da, db):
        a, b = self.operand(rng, da, n), self.operand(rng, db, n)
        s = add_reversed(a, b)
        plus = self.vocab["+"]
        seq = np.concatenate([[BOS], FIRST_SYMBOL + a, [plus], FIRST_SYMBOL + b, [SEP], FIRST_SYMBOL + s, [EOS]])
        operand_ids = np.arange(n + 1, 1, -1)
        ids = np.concatenate([[0], operand_ids, [1], operand_ids, [1], np.arange(2, n + 3), [n + 3]])
        return self.example(seq, ids, answer_start=2 * n + 2, length=n, offset_from=1, info={"digits": (da, db)})


@register_task
class IndexHintsAddition(_DecimalAddition):
    name = "index_hints_addition"
    summary = "decimal addition with index-hint tokens before every digit (baseline to coupling)"
    format = ("<bos> h(c+n-1) a_{n-1} … h(c) a_0 + h(c+n-1) b_{n-1} … h(c) b_0 <sep> h(c) s_0 … h(c+n) s_n <eos>; "
              "operands (operands=independent, the paper's, or equal) and sum as in coupled_addition; hint start c uniform in [0, hint_vocab-n-1]; hints in the "
              "answer are scored. E.g. <bos> h4 0 h3 7 + h4 4 h3 5 <sep> h3 2 h4 5 h5 0 <eos>")

    def __init__(self, hint_vocab: int = 64, operands: str = "independent"):
        self.operands = self.check_operands(operands)
        if hint_vocab < 2:
            raise InputError(f"task {self.name!r}: hint_vocab must be >= 2 (n+1 hints per example), got {hint_vocab}")
        self.hint_vocab = hint_vocab
        self.vocab = Vocab(DIGITS + ("+",) + tuple(f"h{i}" for i in range(hint_vocab)))
        self.first_hint = self.vocab["h0"]

    @property
    def max_length(self) -> int:  # type: ignore[override]
        return self.hint_vocab - 1  # n + 1 hint tokens per example

    def check_length(self, length):
        if length > self.max_length:
            raise InputError(f"task {self.name!r}: length {length} needs {length + 1} hint tokens but hint_vocab is "
                             f"{self.hint_vocab}; raise hint_vocab")
        super().check_length(length)

    def seq_len(self, length):
        return 6 * length + 5

    def build(self, rng, n, da, db):
        a, b = self.operand(rng, da, n), self.operand(rng, db, n)
        s = add_reversed(a, b)
        c = int(rng.integers(0, self.hint_vocab - n))
        hints = self.first_hint + c + np.arange(n + 1)  # hints[i] marks significance i

        def hinted(digits_by_significance, order):
            return np.stack([hints[order], FIRST_SYMBOL + digits_by_significance[order]], axis=1).reshape(-1)

        down = np.arange(n - 1, -1, -1)  # operands are written most significant first
        seq = np.concatenate([[BOS], hinted(a[::-1], down), [self.vocab["+"]], hinted(b[::-1], down), [SEP],
                              hinted(s, np.arange(n + 1)), [EOS]])
        return sequence_example(seq, answer_start=4 * n + 2, length=n, info={"hint_start": c, "digits": (da, db)})


@register_task
class CoupledCopy(_CoupledIDs, Task):
    name = "coupled_copy"
    summary = "copy a sequence; output token i shares input token i's position ID"
    format = ("<bos> x1 … xn <sep> x1 … xn <eos>; x i.i.d. uniform over the first `alphabet_size` letters; coupled "
              "IDs: x_i -> i in both copies, <bos>/<sep> -> 0. E.g. <bos> c a b <sep> c a b <eos>, IDs 0 1 2 3 0 1 2 3")
    default_train_lengths = (1, 10)
    default_eval_bins = ((1, 10), (11, 20), (21, 30), (31, 40))

    def __init__(self, alphabet_size: int = 10, positions: str = "coupled"):
        if not 2 <= alphabet_size <= 26:
            raise InputError(f"task {self.name!r}: alphabet_size must be in [2, 26], got {alphabet_size}")
        self.alphabet_size = alphabet_size
        self.positions = check_positions(self.name, positions)
        self.vocab = Vocab([chr(ord("a") + i) for i in range(alphabet_size)])

    def seq_len(self, length):
        return 2 * length + 2

    def max_id(self, length):
        return length

    def sample(self, rng, length):
        self.check_length(length)
        xs = rng.integers(0, self.alphabet_size, length)
        return self.mirrored_example(xs, xs)


@register_task
class CoupledParity(_CoupledIDs, Task):
    name = "coupled_parity"
    summary = "parity with a scratchpad of running parities; step i shares input bit i's position ID"
    format = ("<bos> x1 … xn <sep> p1 … pn <eos>; x i.i.d. uniform bits, p_i = x1 xor … xor x_i (p_n = the parity); "
              "coupled IDs: x_i and p_i -> i, <bos>/<sep> -> 0. E.g. <bos> 1 0 1 <sep> 1 1 0 <eos>")
    default_train_lengths = (1, 10)
    default_eval_bins = ((1, 10), (11, 20), (21, 30), (31, 40))

    def __init__(self, positions: str = "coupled"):
        self.positions = check_positions(self.name, positions)
        self.vocab = Vocab(("0", "1"))

    def seq_len(self, length):
        return 2 * length + 2

    def max_id(self, length):
        return length

    def sample(self, rng, length):
        self.check_length(length)
        bits = rng.integers(0, 2, length)
        return self.mirrored_example(bits, np.cumsum(bits) % 2)


@register_task
class SparseParityScratchpad(_CoupledIDs, _Planted):
    name = "sparse_parity_scratchpad"
    summary = "sparse parity answered by a scratchpad that walks the planted bits (input-dependent coupling)"
    format = ("<bos> x1 … xn <sep> r_0 … r_k <eos>; context as in sparse_parity (planted p0/p1 at positions "
              "P_1<…<P_k); r_j = XOR of the first j planted bits, r_0 = 0; coupled IDs: prompt sequential, r_j -> "
              "P_{j+1} (j<k), r_k -> P_k. E.g. <bos> b3 p1 b0 p1 <sep> 0 1 0 <eos>, IDs 0 1 2 3 4 5 2 4 4")

    default_train_lengths = (8, 16)
    default_eval_bins = ((8, 16), (17, 32), (33, 48), (49, 64))

    def __init__(self, k=(1, 3), placement: str = "uniform", background_size: int = 8, positions: str = "coupled"):
        super().__init__(k, placement, background_size)
        self.positions = check_positions(self.name, positions)
        self.vocab = Vocab([f"b{i}" for i in range(background_size)] + ["p0", "p1", "0", "1"])

    def seq_len(self, length):
        return length + self.k_hi + 3

    def max_id(self, length):
        return length + 1  # the <sep>; scratchpad IDs are planted positions <= n

    def sample(self, rng, length, k=None):
        n = length
        k = self._draw_k(rng, n, k)
        xs = self._background(rng, n)
        S = place(rng, n, k, self.place_kind, self.window)
        bits = rng.integers(0, 2, k)
        xs[S] = self.vocab.encode([f"p{v}" for v in bits])
        running = np.concatenate([[0], np.cumsum(bits) % 2])
        planted = S + 1  # sequence positions (after <bos>) = prompt IDs
        seq = np.concatenate([[BOS], xs, [SEP], self.vocab.encode([str(r) for r in running]), [EOS]])
        reads = np.concatenate([planted, planted[-1:]])  # r_j reads P_{j+1}; r_k repeats P_k
        ids = np.concatenate([np.arange(n + 2), reads, [0]])
        return self.example(seq, ids, answer_start=n + 1, length=n, info={"k": k, "planted": planted.tolist()})


@register_task
class VarChain(_CoupledIDs, Task):
    name = "var_chain"
    summary = "resolve a chain of variable assignments hop by hop (input-dependent coupling)"
    format = ("<bos> l_1 = v_1 ; … l_n = v_n ; q <sep> u_0 … u_{d-1} c <eos>; u_0 = q, u_j = rhs of the last "
              "assignment a_j to u_{j-1} (before a_{j-1}), c the value at the end of d hops; coupled IDs: prompt "
              "sequential, u_j -> ID of a_{j+1}'s rhs, c repeats it. E.g. <bos> x1 = 7 ; x3 = x1 ; x3 <sep> x3 x1 7 <eos>")
    default_train_lengths = (4, 12)
    default_eval_bins = ((4, 12), (13, 24), (25, 36), (37, 48))

    def __init__(self, hops=(1, 3), num_vars: int = 8, num_values: int = 10, positions: str = "coupled"):
        try:
            self.hops_lo, self.hops_hi = parse_k(hops)
        except ValueError as err:
            raise InputError(f"task {self.name!r}: bad hops ({err})") from None
        if num_vars < self.hops_hi:
            raise InputError(f"task {self.name!r}: num_vars={num_vars} cannot hold a chain of {self.hops_hi} distinct "
                             "variables; raise num_vars or lower hops")
        if not 1 <= num_values <= 100:
            raise InputError(f"task {self.name!r}: num_values must be in [1, 100], got {num_values}")
        self.hops, self.num_vars, self.num_values = hops, num_vars, num_values
        self.positions = check_positions(self.name, positions)
        self.vocab = Vocab([f"x{i}" for i in range(num_vars)] + [str(v) for v in range(num_values)] + ["=", ";"])
        self.first_value = self.vocab["0"]

    @property
    def min_length(self):  # type: ignore[override]
        return self.hops_hi

    def breakdown(self):
        return {"hops": list(range(self.hops_lo, self.hops_hi + 1))}

    def seq_len(self, length):
        return 4 * length + self.hops_hi + 4

    def max_id(self, length):
        return 4 * length + 2  # the <sep>

    def sample(self, rng, length, hops=None):
        self.check_length(length)
        n = length
        d = int(rng.integers(self.hops_lo, self.hops_hi + 1)) if hops is None else hops
        if not 1 <= d <= n:
            raise InputError(f"task {self.name!r}: {d} hops do not fit in {n} assignments")
        chain_at = np.sort(rng.choice(n, size=d, replace=False))[::-1]  # a_1 is the latest
        chain_vars = FIRST_SYMBOL + rng.choice(self.num_vars, size=d, replace=False)  # u_0 … u_{d-1}
        value = self.first_value + int(rng.integers(self.num_values))
        lhs = np.empty(n, dtype=np.int64)
        rhs = np.empty(n, dtype=np.int64)
        for j, i in enumerate(chain_at):
            lhs[i] = chain_vars[j]
            rhs[i] = chain_vars[j + 1] if j + 1 < d else value
        # A filler between a_{j+1} and a_j (a_0 = the end) must not assign u_j, the variable
        # whose last assignment hop j+1 looks up; before a_d anything goes.
        guard = np.full(n, -1)
        bounds = [n] + chain_at.tolist()
        for j in range(d):
            guard[bounds[j + 1] + 1:bounds[j]] = chain_vars[j]
        for i in sorted(set(range(n)) - set(chain_at.tolist())):
            choices = [FIRST_SYMBOL + v for v in range(self.num_vars) if FIRST_SYMBOL + v != guard[i]]
            lhs[i] = choices[int(rng.integers(len(choices)))]
            if rng.random() < 0.5:
                rhs[i] = self.first_value + int(rng.integers(self.num_values))
            else:
                rhs[i] = FIRST_SYMBOL + int(rng.integers(self.num_vars))
        eq, semi = self.vocab["="], self.vocab[";"]
        program = np.stack([lhs, np.full(n, eq), rhs, np.full(n, semi)], axis=1).reshape(-1)
        answer = np.concatenate([chain_vars, [value]])
        seq = np.concatenate([[BOS], program, [chain_vars[0], SEP], answer, [EOS]])
        rhs_ids = 4 * chain_at + 3  # assignment i (0-based) has its rhs at ID 4i+3
        ids = np.concatenate([np.arange(4 * n + 3), rhs_ids, rhs_ids[-1:], [0]])
        return self.example(seq, ids, answer_start=4 * n + 2, length=n,
                            info={"hops": d, "assignments": (chain_at + 1).tolist()})
