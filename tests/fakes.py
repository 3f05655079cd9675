"""Shared test helpers (tests/ is on the import path through conftest.py): fake text documents for
the corpus, language-model and study tests, and a progress display that interrupts training."""

import io

import numpy as np

from lengthgen.progress import PlainLines

WORDS = "the state of union nation people congress law war peace trade money year great public".split()


def fake_documents(n: int, words: int = 200, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"Address {i}.\n\n" + " ".join(rng.choice(WORDS, words)) + "." for i in range(n)]


class StopAt(PlainLines):
    """Interrupts training at a step, as Ctrl-C would (the checkpoint before it stays)."""

    def __init__(self, step):
        super().__init__(interval_s=0.0, out=io.StringIO())
        self.step = step

    def show(self, run, snapshot):
        if snapshot.step >= self.step:
            raise KeyboardInterrupt
