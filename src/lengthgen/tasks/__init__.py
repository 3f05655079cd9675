"""Task zoo: the protocol and registry live in `base`; each family is one module, registered on import."""

from .base import (BOS, EOS, FIRST_SYMBOL, PAD, SEP, SPECIALS, Example, Task, UsesCache, Vocab, available_tasks,
                   make_task, register_task, same_definition, sequence_example)
from . import sparse, algorithmic, coupled, formal, language  # noqa: E402,F401  (registers every family)

__all__ = ["Example", "Task", "UsesCache", "Vocab", "make_task", "register_task", "available_tasks", "same_definition",
           "sequence_example",
           "PAD", "BOS", "SEP", "EOS", "FIRST_SYMBOL", "SPECIALS"]
