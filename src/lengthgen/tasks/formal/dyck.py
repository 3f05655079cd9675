"""The bounded Dyck languages D-n (a opens, b closes) and the official D-n generator
(starfree_generator.D_nLanguage), re-stated."""

from __future__ import annotations

from typing import ClassVar

from ..base import register_task
from .base import DEAD, FormalLanguage, in_window, until


# --- bounded Dyck D-n (starfree_generator.D_nLanguage) -----------------------------------------

MEAN_RATIO, STD_RATIO = 0.75, 0.1


def _target(rng, length: int) -> int:
    """Their random sub-length int(length · 0.75 · (0.1 z + 1)), z standard normal."""
    return int(length * MEAN_RATIO * (STD_RATIO * rng.standard_normal() + 1))


def _d_n(rng, depth: int, length: int) -> str:
    """generate_d_n: blocks a W b, W drawn for depth − 1 and a random target of 0.75·length,
    appended until the word reaches `length` (it may overshoot)."""
    if depth == 0 or length <= 0:
        return ""
    blocks, size = [], 0
    while size < length:
        inner = _d_n(rng, depth - 1, _target(rng, length))
        blocks.append("a" + inner + "b")
        size += len(inner) + 2
    return "".join(blocks)


def bounded_dyck(rng, depth: int, lo: int, hi: int) -> str:
    """D_nLanguage.generate_string(hi): a word for a random target of 0.75·hi; words outside
    [lo, hi] are redrawn."""
    return until(lambda: _d_n(rng, depth, _target(rng, hi)), in_window(lo, hi), f"dyck{depth}")


# --- bounded Dyck D-n (a opens, b closes) ----------------------------------------------------

def _dyck_bounded(rng, n: int, max_depth: int) -> str:
    """A Dyck word of length n and depth ≤ max_depth: a sequence of blocks a W b, each W a word
    of depth ≤ max_depth − 1; block sizes uniform (built with an explicit stack, no recursion)."""
    out: list[str] = []
    todo: list[tuple[int, int] | str] = [(n, max_depth)]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        size, depth = item
        if size == 0:
            continue
        half = int(rng.integers(1, size // 2 + 1)) if depth > 1 else 1
        todo += [(size - 2 * half, depth), "b", (2 * half - 2, depth - 1), "a"]
    return "".join(out)


class _BoundedDyck(FormalLanguage):
    alphabet = ("a", "b")
    label_kind = "next-viable"
    length_period = 2
    min_length = 2
    depth: ClassVar[int]
    default_eval_bins = ((1, 100), (101, 200), (201, 300))

    def initial(self):
        return 0

    def step(self, state, c):
        d = state + (1 if c == "a" else -1)
        return d if 0 <= d <= self.depth else DEAD

    def accepts(self, state):
        return state == 0

    def sample_string(self, rng, n):
        return _dyck_bounded(rng, n, self.depth)

    def official_window(self, rng, lo, hi):
        return bounded_dyck(rng, self.depth, lo, hi)


def _bounded_dyck(depth: int, train_hi: int, bins) -> type[_BoundedDyck]:
    cls = type(f"Dyck{depth}", (_BoundedDyck,), {
        "name": f"dyck{depth}", "depth": depth, "default_train_lengths": (1, train_hi), "default_eval_bins": bins,
        "summary": f"D-{depth}: balanced brackets (a opens, b closes) of depth ≤ {depth}",
        "format": (f"Dyck word over a (open), b (close) of depth ≤ {depth}, even n; label per prefix with depth d: "
                   f"next-viable flags (a, b) = ([d < {depth}], [d > 0]) as 1/0, e.g. L:10"),
        "__module__": __name__,
    })
    return register_task(cls)


Dyck2 = _bounded_dyck(2, 50, ((1, 50), (51, 100), (101, 150)))
Dyck3 = _bounded_dyck(3, 100, _BoundedDyck.default_eval_bins)
Dyck4 = _bounded_dyck(4, 100, _BoundedDyck.default_eval_bins)
Dyck12 = _bounded_dyck(12, 100, _BoundedDyck.default_eval_bins)
