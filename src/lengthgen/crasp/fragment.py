"""Which positional features a C-RASP program uses, and what that predicts (Huang et al. 2025).

A program uses `local` if some count carries a local relation φ(j,i), and `periodic` if some
count carries j ≡ r (mod m) or a Boolean tests i ≡ r (mod m). Its fragment is C-RASP[…] with
those features. Degenerate relations carry no positional information and do not count: `j = i`
(`Local.offset(0)`, `Local.within(0)`) makes `#[j ≤ i, j = i] P(j)` the C-RASP[] count
`if P(i) then 1 else 0`, and modulus 1 (`PositionMod(0, 1)`, `Periodic(0, 1)`) is ⊤; counting them
would predict NoPE failure for a program that has an equivalent without positions. Predictions
for an idealised learner that prefers simple solutions:

- learned absolute positions (APE): every program in C-RASP[periodic, local] — i.e. every
  program this module accepts — predicts length generalization;
- NoPE: only programs in C-RASP[] (no positional feature at all) predict it.

A prediction from a program is only as strong as the program is minimal: if a task has a
program without positional features, it should be the one registered.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .lang import CountWhere, PositionMod
from .program import Program

FEATURES = ("periodic", "local")  # the paper's order in C-RASP[periodic, local]


@dataclass(frozen=True)
class Fragment:
    features: frozenset[str]

    def __str__(self) -> str:
        return "C-RASP[" + ", ".join(f for f in FEATURES if f in self.features) + "]"

    def generalizes_with(self, positions: str) -> bool:
        """Predicted length generalization with `positions` = "ape" or "nope"."""
        if positions == "ape":
            return self.features <= set(FEATURES)
        if positions == "nope":
            return not self.features
        raise InputError(f"positions must be 'ape' or 'nope', got {positions!r}")


def fragment(program: Program) -> Fragment:
    used: set[str] = set()
    for node in program.nodes():
        if isinstance(node, PositionMod) and node.modulus > 1:
            used.add("periodic")
        elif isinstance(node, CountWhere):
            if node.local is not None and node.local.distance > 0:
                used.add("local")
            if node.periodic is not None and node.periodic.modulus > 1:
                used.add("periodic")
    return Fragment(frozenset(used))
