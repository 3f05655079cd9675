"""Shared test data: fake text documents for the corpus, language-model and study tests (tests/ is on
the import path through conftest.py)."""

import numpy as np

WORDS = "the state of union nation people congress law war peace trade money year great public".split()


def fake_documents(n: int, words: int = 200, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"Address {i}.\n\n" + " ".join(rng.choice(WORDS, words)) + "." for i in range(n)]
