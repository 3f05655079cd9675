"""C-RASP as a small embedded language: syntax, well-formedness and printing (the interpreter is
`interpreter.py`, programs over an alphabet `program.py`).

C-RASP (docs/design.md §6; Yang & Chiang 2024, Huang et al. 2025) computes, at every position i of a
string w1..wT (positions start at 1), Boolean and count values:

    Boolean  φ ::= Q_σ(i) | ¬φ | φ ∧ φ | φ ∨ φ | C ∘ C (∘ ∈ <, ≤, =, ≠, >, ≥) | ⊤ | ⊥
                 | i ≡ r (mod m)                                  (periodic predicate on i)
    count    C ::= #[j ≤ i, φ(j,i), j ≡ r (mod m)] P(j) | if φ then C else C | C + C | C − C | k

`#[j ≤ i, …] P(j)` counts the positions j ≤ i where the Boolean P holds (P is itself a program
evaluated at j), optionally restricted by a *local* relation φ(j,i) — `j = i − c` or `i − j ≤ c`
for a fixed c ≥ 0 — and by a *periodic* predicate `j ≡ r (mod m)`. `Q_{a,b}` is shorthand for
`Q_a ∨ Q_b`. Names given with `define` only print as a definition; they do not change meaning.

In Python, ∧ ∨ ¬ are `&` `|` `~` and counts compare with `<` `<=` `==` `!=` `>` `>=`. No node has a
Python truth value, so `and`, `or`, `not` and chained comparisons (`0 < C < 5`) raise instead of
silently standing for ⊤ or ⊥.

Construction checks the types (a count is never a Boolean and vice versa), the relations
(only `Local` objects are local relations) and, when a `Program` binds an alphabet, the tokens.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..errors import InputError

VARIABLES = "ijklmnpqrs"  # the position variable at each nesting depth of counts


def _variable(depth: int) -> str:
    return VARIABLES[depth] if depth < len(VARIABLES) else f"j{depth}"


def _describe(x) -> str:
    if isinstance(x, Bool):
        return f"the Boolean {x}"
    if isinstance(x, Count):
        return f"the count {x}"
    return f"{type(x).__name__} {x!r}"


class Expr:
    """A C-RASP expression; subclasses are Booleans or counts."""

    def children(self) -> tuple[Expr, ...]:
        return ()

    def show(self, depth: int) -> str:
        """Notation with the current position named by `_variable(depth)`."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.show(0)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def __bool__(self):
        # `P and Q`, `not P`, `if C > 0:` and `0 < C < 5` (Python's `(0 < C) and (C < 5)`) all ask
        # for a truth value; returning one would silently replace part of the program.
        raise TypeError(f"{_describe(self)} has no Python truth value: it holds at some positions and not "
                        "others. Write ∧, ∨, ¬ as P & Q, P | Q, ~P (not `and`, `or`, `not`), a range as "
                        "(0 < C) & (C < 5) (not 0 < C < 5), and compute values with evaluate() or Program.run()")

    def walk(self) -> Iterator[Expr]:
        """Every node of the expression, each once, children before parents."""
        seen: set[int] = set()
        open_: set[int] = set()  # expanded, children not yet done: the path from the root
        stack: list[tuple[Expr, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in seen:
                continue
            if expanded:
                open_.discard(id(node))
                seen.add(id(node))
                yield node
            elif id(node) in open_:  # reached again from below itself (a node was mutated)
                raise InputError(f"the expression contains a cycle through a {type(node).__name__} node (was a node "
                                 "changed after it was built?): C-RASP expressions are trees with shared parts")
            else:
                open_.add(id(node))
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(node.children()))


class Bool(Expr):
    __hash__ = Expr.__hash__  # nodes are hashed and shared by identity

    def __eq__(self, other):
        raise TypeError(f"{_describe(self)} == ...: C-RASP compares counts, not Booleans; write P ⇔ Q as "
                        "(P & Q) | (~P & ~Q)")

    def __ne__(self, other):
        raise TypeError(f"{_describe(self)} != ...: C-RASP compares counts, not Booleans; write P ⊕ Q as "
                        "(P & ~Q) | (~P & Q)")

    def __and__(self, other) -> Bool:
        return And(self, other)

    def __rand__(self, other) -> Bool:
        return And(other, self)

    def __or__(self, other) -> Bool:
        return Or(self, other)

    def __ror__(self, other) -> Bool:
        return Or(other, self)

    def __invert__(self) -> Bool:
        return Not(self)


class Count(Expr):
    def __add__(self, other) -> Count:
        return Arith(self, "+", other)

    def __radd__(self, other) -> Count:
        return Arith(other, "+", self)

    def __sub__(self, other) -> Count:
        return Arith(self, "-", other)

    def __rsub__(self, other) -> Count:
        return Arith(other, "-", self)

    def __lt__(self, other) -> Bool:
        return Compare(self, "<", other)

    def __le__(self, other) -> Bool:
        return Compare(self, "<=", other)

    def __gt__(self, other) -> Bool:
        return Compare(self, ">", other)

    def __ge__(self, other) -> Bool:
        return Compare(self, ">=", other)

    # == and != build comparisons like < does, as the paper writes C = 0; nodes stay hashable
    # by identity. eq/ne are the same, spelled as methods.
    __hash__ = Expr.__hash__

    def __eq__(self, other) -> Bool:
        return Compare(self, "==", other)

    def __ne__(self, other) -> Bool:
        return Compare(self, "!=", other)

    eq, ne = __eq__, __ne__


def as_bool(x, where: str) -> Bool:
    if isinstance(x, Bool):
        return x
    if isinstance(x, (bool, np.bool_)):
        return BoolConst(bool(x))
    hint = "; compare it with another count first (e.g. C > 0)" if isinstance(x, (Count, int)) else ""
    raise TypeError(f"{where} needs a Boolean, got {_describe(x)}{hint}")


def as_count(x, where: str) -> Count:
    if isinstance(x, Count):
        return x
    if _integer(x) is not None:
        return CountConst(_integer(x))
    hint = "; count the positions where it holds with count(P) (#[j ≤ i] P(j))" if isinstance(x, (Bool, bool)) else ""
    raise TypeError(f"{where} needs a count, got {_describe(x)}{hint}")


# --- Booleans --------------------------------------------------------------------------------

class Token(Bool):
    """Q_σ(i): the token at i is σ (or, with several symbols, one of them)."""

    def __init__(self, *symbols: str):
        if not symbols or not all(isinstance(s, str) and s for s in symbols):
            raise TypeError(f"Token needs one or more non-empty symbol strings, got {symbols!r}")
        if len(set(symbols)) != len(symbols):
            raise InputError(f"Token symbols repeat: {symbols!r}")
        self.symbols = tuple(symbols)

    def show(self, depth):
        name = self.symbols[0] if len(self.symbols) == 1 else "{" + ",".join(self.symbols) + "}"
        return f"Q_{name}({_variable(depth)})"


class BoolConst(Bool):
    def __init__(self, value: bool):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"BoolConst needs True or False, got {_describe(value)}")
        self.value = bool(value)

    def show(self, depth):
        return "⊤" if self.value else "⊥"


class Not(Bool):
    def __init__(self, arg):
        self.arg = as_bool(arg, "¬")

    def children(self):
        return (self.arg,)

    def show(self, depth):
        return f"¬{_grouped(self.arg, depth)}"


class _Connective(Bool):
    symbol: str
    combine: Callable

    def __init__(self, *args):
        if len(args) < 2:
            raise TypeError(f"{self.symbol} needs at least two Booleans, got {len(args)}")
        self.args = tuple(as_bool(a, self.symbol) for a in args)

    def children(self):
        return self.args

    def show(self, depth):
        return "(" + f" {self.symbol} ".join(a.show(depth) for a in self.args) + ")"


class And(_Connective):
    symbol = "∧"
    combine = staticmethod(np.logical_and)


class Or(_Connective):
    symbol = "∨"
    combine = staticmethod(np.logical_or)


COMPARISONS = {"<": (np.less, "<"), "<=": (np.less_equal, "≤"), "==": (np.equal, "="),
               "!=": (np.not_equal, "≠"), ">": (np.greater, ">"), ">=": (np.greater_equal, "≥")}


class Compare(Bool):
    """C1 ∘ C2 for two counts."""

    def __init__(self, left, op: str, right):
        if op not in COMPARISONS:
            raise InputError(f"unknown comparison {op!r}; allowed: {', '.join(COMPARISONS)}")
        self.left = as_count(left, f"the left side of {op}")
        self.right = as_count(right, f"the right side of {op}")
        self.op = op

    def children(self):
        return (self.left, self.right)

    def show(self, depth):
        return f"{self.left.show(depth)} {COMPARISONS[self.op][1]} {self.right.show(depth)}"


def _integer(x):
    """x as a Python int when it is an integer (numpy's included, bools not), else None."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        return int(x)
    return None


def _grouped(expr: Expr, depth: int) -> str:
    """A comparison in parentheses where an operator applies to all of it (¬, a count's body)."""
    text = expr.show(depth)
    return f"({text})" if isinstance(expr, Compare) else text


def _check_period(residue, modulus) -> tuple[int, int]:
    r, m = _integer(residue), _integer(modulus)
    if r is None or m is None or m < 1 or not 0 <= r < m:
        raise InputError(f"a periodic predicate needs integers 0 <= r < m, got r={residue!r}, m={modulus!r}")
    return r, m


class PositionMod(Bool):
    """i ≡ r (mod m): a periodic predicate on the current position itself."""

    def __init__(self, residue: int, modulus: int):
        self.residue, self.modulus = _check_period(residue, modulus)

    def show(self, depth):
        return f"{_variable(depth)} ≡ {self.residue} (mod {self.modulus})"


# --- counts ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Local:
    """A local relation φ(j, i): `offset` (j = i − c) or `within` (i − j ≤ c), c ≥ 0 fixed.
    Both are translation invariant and false beyond distance c — what "local" means."""

    kind: str
    distance: int

    def __post_init__(self):
        if self.kind not in ("offset", "within"):
            raise InputError(f"a local relation is 'offset' (j = i − c) or 'within' (i − j ≤ c), got {self.kind!r}")
        distance = _integer(self.distance)
        if distance is None or distance < 0:
            raise InputError(f"a local relation needs a fixed distance c >= 0, got {self.distance!r}; an "
                             "unbounded or position-dependent relation is not local")
        object.__setattr__(self, "distance", distance)  # a numpy integer becomes an int (frozen class)

    @classmethod
    def offset(cls, c: int) -> Local:
        return cls("offset", c)

    @classmethod
    def within(cls, c: int) -> Local:
        return cls("within", c)

    def show(self, j: str, i: str) -> str:
        if self.kind == "offset":
            return f"{j} = {i}" if self.distance == 0 else f"{j} = {i}−{self.distance}"
        return f"{i}−{j} ≤ {self.distance}"


@dataclass(frozen=True)
class Periodic:
    """The periodic predicate j ≡ residue (mod modulus) on the counted position j."""

    residue: int
    modulus: int

    def __post_init__(self):
        residue, modulus = _check_period(self.residue, self.modulus)
        object.__setattr__(self, "residue", residue)
        object.__setattr__(self, "modulus", modulus)


class CountWhere(Count):
    """#[j ≤ i, φ(j,i), j ≡ r (mod m)] P(j)."""

    def __init__(self, predicate, local: Local | None = None, periodic: Periodic | None = None):
        self.predicate = as_bool(predicate, "the counted predicate P(j) of #[j ≤ i] P(j)")
        if local is not None and not isinstance(local, Local):
            raise TypeError(f"{local!r} is not a local relation: pass Local.offset(c) (j = i − c) or "
                            "Local.within(c) (i − j ≤ c) with a fixed c >= 0")
        if periodic is not None and not isinstance(periodic, Periodic):
            raise TypeError(f"{periodic!r} is not a periodic predicate: pass Periodic(r, m) for j ≡ r (mod m)")
        self.local, self.periodic = local, periodic

    def children(self):
        return (self.predicate,)

    def show(self, depth):
        i, j = _variable(depth), _variable(depth + 1)
        conditions = [f"{j} ≤ {i}"]
        if self.local is not None:
            conditions.append(self.local.show(j, i))
        if self.periodic is not None:
            conditions.append(f"{j} ≡ {self.periodic.residue} (mod {self.periodic.modulus})")
        return f"#[{', '.join(conditions)}] {_grouped(self.predicate, depth + 1)}"


class CountConst(Count):
    def __init__(self, value: int):
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"a count constant must be an integer, got {_describe(value)}")
        self.value = int(value)

    def show(self, depth):
        return str(self.value)


class Arith(Count):
    OPS = {"+": (operator.add, "+"), "-": (operator.sub, "−")}

    def __init__(self, left, op: str, right):
        if op not in self.OPS:
            raise InputError(f"unknown count operation {op!r}; allowed: + and -")
        self.left = as_count(left, f"the left side of {op}")
        self.right = as_count(right, f"the right side of {op}")
        self.op = op

    def children(self):
        return (self.left, self.right)

    def show(self, depth):
        return f"({self.left.show(depth)} {self.OPS[self.op][1]} {self.right.show(depth)})"


class IfThenElse(Count):
    def __init__(self, condition, then, otherwise):
        self.condition = as_bool(condition, "the condition of if-then-else")
        self.then = as_count(then, "the then-branch of if-then-else")
        self.otherwise = as_count(otherwise, "the else-branch of if-then-else")

    def children(self):
        return (self.condition, self.then, self.otherwise)

    def show(self, depth):
        return f"(if {self.condition.show(depth)} then {self.then.show(depth)} else {self.otherwise.show(depth)})"


# --- names -------------------------------------------------------------------------------------

class _Named:
    name: str
    body: Expr

    def children(self):
        return (self.body,)

    def show(self, depth):
        return f"{self.name}({_variable(depth)})"

    def definition(self) -> str:
        return f"{self.name}(i) := {self.body.show(0)}"


class NamedBool(_Named, Bool):
    def __init__(self, name: str, body: Bool):
        self.name, self.body = name, body


class NamedCount(_Named, Count):
    def __init__(self, name: str, body: Count):
        self.name, self.body = name, body


def define(name: str, body):
    """Give an expression a name: the program prints `name(i) := body` once and uses `name(i)`."""
    if not name.isidentifier():
        raise InputError(f"a definition name must be an identifier, got {name!r}")
    if isinstance(body, Bool):
        return NamedBool(name, body)
    if isinstance(body, Count):
        return NamedCount(name, body)
    raise TypeError(f"define({name!r}, ...) needs a Boolean or a count, got {_describe(body)}")


def count(predicate, local: Local | None = None, periodic: Periodic | None = None) -> CountWhere:
    """#[j ≤ i, local, periodic] predicate(j)."""
    return CountWhere(predicate, local, periodic)
