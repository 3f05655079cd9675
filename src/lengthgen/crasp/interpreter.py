"""The C-RASP interpreter: every node of a program evaluated once per batch of strings, as a numpy
array [batch, T] (Booleans as bool, counts as int64; a count is a cumulative sum along T), by a
table of one rule per kind of node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from .lang import (COMPARISONS, Arith, BoolConst, Compare, CountConst, CountWhere, Expr, IfThenElse, Local, Not,
                   Periodic, PositionMod, Token, _Connective, _Named)


@dataclass
class Evaluation:
    """One evaluation: what the rules read, the token ids [B, T], the alphabet's ids, positions 1..T, and the
    values computed so far by node id."""

    tokens: np.ndarray
    symbol_ids: dict[str, int]
    positions: np.ndarray
    values: dict[int, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, node: Expr) -> np.ndarray:  # a child's value
        return self.values[id(node)]

    def full(self, value, dtype=None) -> np.ndarray:
        return np.full(self.tokens.shape, value, dtype=dtype)


def _token(node: Token, b: Evaluation) -> np.ndarray:
    missing = [s for s in node.symbols if s not in b.symbol_ids]
    if missing:
        raise InputError(f"{node} tests symbol(s) {missing} that the strings' alphabet lacks")
    return np.isin(b.tokens, [b.symbol_ids[s] for s in node.symbols])


RULES: dict[type, Callable[[Expr, Evaluation], np.ndarray]] = {
    Token: _token,
    BoolConst: lambda n, b: b.full(n.value),
    Not: lambda n, b: ~b[n.arg],
    _Connective: lambda n, b: n.combine.reduce([b[a] for a in n.args]),
    Compare: lambda n, b: COMPARISONS[n.op][0](b[n.left], b[n.right]),
    PositionMod: lambda n, b: np.broadcast_to(b.positions % n.modulus == n.residue, b.tokens.shape),
    CountWhere: lambda n, b: count_where(b[n.predicate], n.local, n.periodic, b.positions),
    CountConst: lambda n, b: b.full(n.value, np.int64),
    Arith: lambda n, b: Arith.OPS[n.op][0](b[n.left], b[n.right]),
    IfThenElse: lambda n, b: np.where(b[n.condition], b[n.then], b[n.otherwise]),
    _Named: lambda n, b: b[n.body],
}


def rule_for(node: Expr) -> Callable[[Expr, Evaluation], np.ndarray]:
    for kind in type(node).__mro__:  # And and Or are connectives, named Booleans and counts are names
        if kind in RULES:
            return RULES[kind]
    raise TypeError(f"not a C-RASP expression: {node!r}")


def evaluate(roots: Sequence[Expr], tokens: np.ndarray, symbol_ids: dict[str, int]) -> list[np.ndarray]:
    """Values of `roots` at every position of a batch of token-id strings [B, T].

    Symbols are looked up in `symbol_ids`; padding (any id no symbol has, e.g. -1) goes after the
    real tokens, and since every value at i depends only on positions ≤ i it never affects them.
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must have shape [batch, T], got {tokens.shape}")
    order: list[Expr] = []
    users: dict[int, int] = {}  # how many parents still need a node's value
    for root in roots:
        for node in root.walk():
            if id(node) not in users:
                users[id(node)] = 0
                order.append(node)
                for child in node.children():
                    users[id(child)] += 1
    keep = {id(r) for r in roots}
    batch = Evaluation(tokens, symbol_ids, np.arange(1, tokens.shape[1] + 1))
    for node in order:
        batch.values[id(node)] = rule_for(node)(node, batch)
        # Free values nobody needs any more: large programs have tens of thousands of nodes.
        for child in node.children():
            users[id(child)] -= 1
            if users[id(child)] == 0 and id(child) not in keep:
                del batch.values[id(child)]
    return [batch[r] for r in roots]


def shifted(x: np.ndarray, by: int) -> np.ndarray:
    """x[:, t − by] with zeros where t − by falls before the string."""
    if by == 0:
        return x
    out = np.zeros_like(x)
    out[:, by:] = x[:, :-by] if by < x.shape[1] else 0
    return out


def count_where(holds: np.ndarray, local: Local | None, periodic: Periodic | None, positions) -> np.ndarray:
    """#[j ≤ i, local, periodic] holds(j) at every i."""
    holds = holds.astype(np.int64)
    if periodic is not None:
        holds = holds * (positions % periodic.modulus == periodic.residue)
    if local is not None and local.kind == "offset":
        return shifted(holds, local.distance)
    running = np.cumsum(holds, axis=1)
    if local is None:
        return running
    return running - shifted(running, local.distance + 1)
