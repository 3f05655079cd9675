"""A C-RASP program: named Boolean outputs over an alphabet and a readout that turns them into the
token predicted at every position."""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np

from ..errors import InputError
from .interpreter import evaluate
from .lang import Bool, Expr, Token, _Named, as_bool

class Program:
    """Named Boolean outputs over an alphabet plus a readout that turns them into a token.

    readout "flags": the token is `prefix` + one character per output, `on` where it holds and
    `off` where not, outputs in order (e.g. next-viable flags). readout "first": the token is
    the name of the first output that holds (None where none does).
    """

    def __init__(self, name: str, alphabet: Iterable[str], outputs: Sequence[tuple[str, Bool]],
                 readout: str = "flags", prefix: str = "", on: str = "1", off: str = "0", note: str = ""):
        self.name, self.alphabet, self.note = name, tuple(alphabet), note
        if readout not in ("flags", "first"):
            raise InputError(f"readout must be 'flags' or 'first', got {readout!r}")
        if not outputs:
            raise InputError(f"program {name!r} has no outputs")
        self.outputs = tuple((label, as_bool(expr, f"output {label!r} of program {name!r}"))
                             for label, expr in outputs)
        self.readout, self.prefix, self.on, self.off = readout, prefix, on, off
        self.symbol_ids = {s: k for k, s in enumerate(self.alphabet)}
        unknown = sorted({s for _, e in self.outputs for node in e.walk() if isinstance(node, Token)
                          for s in node.symbols} - set(self.alphabet))
        if unknown:
            raise InputError(f"program {name!r} tests token(s) {unknown} outside its alphabet {list(self.alphabet)}")
        definitions: dict[str, str] = {}
        for node in (n for n in self.nodes() if isinstance(n, _Named)):
            if definitions.setdefault(node.name, node.definition()) != node.definition():
                raise InputError(f"program {name!r} defines {node.name!r} twice with different bodies:\n  "
                                 f"{definitions[node.name]}\n  {node.definition()}")

    def nodes(self) -> Iterator[Expr]:
        seen: set[int] = set()
        for _, expr in self.outputs:
            for node in expr.walk():
                if id(node) not in seen:
                    seen.add(id(node))
                    yield node

    @property
    def labels(self) -> list[str]:
        """Every token the readout can produce."""
        if self.readout == "first":
            return [label for label, _ in self.outputs]
        width = len(self.outputs)
        return [self.prefix + "".join(self.on if (code >> (width - 1 - k)) & 1 else self.off for k in range(width))
                for code in range(2 ** width - 1, -1, -1)]

    def encode(self, strings: Sequence[Sequence[str]]) -> np.ndarray:
        """Token ids [B, T] of strings (a str is a sequence of one-character symbols), padded with -1."""
        T = max((len(s) for s in strings), default=0)
        out = np.full((len(strings), T), -1, dtype=np.int64)
        for b, s in enumerate(strings):
            try:
                out[b, :len(s)] = [self.symbol_ids[c] for c in s]
            except KeyError as e:
                raise InputError(f"program {self.name!r}: symbol {e.args[0]!r} is not in its alphabet "
                                 f"{list(self.alphabet)}") from None
        return out

    def output_values(self, tokens: np.ndarray) -> np.ndarray:
        """The Boolean outputs at every position: bool [B, T, number of outputs]."""
        return np.stack(evaluate([e for _, e in self.outputs], tokens, self.symbol_ids), axis=-1)

    def label_indices(self, tokens: np.ndarray) -> np.ndarray:
        """Index into `labels` of the token at every position, [B, T] (-1: no output holds)."""
        values = self.output_values(tokens)
        if self.readout == "first":
            return np.where(values.any(-1), values.argmax(-1), -1)
        weights = 2 ** np.arange(values.shape[-1] - 1, -1, -1)
        return (2 ** values.shape[-1] - 1) - (values * weights).sum(-1)

    def run(self, strings: Sequence[Sequence[str]]) -> list[list[str | None]]:
        """The output token at every position of every string."""
        index = self.label_indices(self.encode(strings))
        labels = self.labels
        return [[labels[k] if k >= 0 else None for k in row[:len(s)]] for row, s in zip(index, strings)]

    def definitions(self) -> list[_Named]:
        """Named sub-expressions, dependencies first; one per name (equal names print equally)."""
        return list({node.name: node for node in reversed(list(self.nodes()))
                     if isinstance(node, _Named)}.values())[::-1]

    def __str__(self) -> str:
        lines = [f"program {self.name} over {{{', '.join(self.alphabet)}}}"]
        lines += [f"  {d.definition()}" for d in self.definitions()]
        width = max(len(label) for label, _ in self.outputs)
        lines += [f"  out {label:<{width}} := {expr}" for label, expr in self.outputs]
        if self.readout == "flags":
            lines.append(f"  label(i) = {self.prefix!r} + one flag per output in order: {self.on!r} where it "
                         f"holds, {self.off!r} where not")
        else:
            lines.append("  label(i) = the first output (in order) that holds")
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)
