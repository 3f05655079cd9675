"""Task zoo: the protocol and registry live in `base`; each family is one module."""

from .base import EOS, BOS, PAD, SEP, Example, Task, Vocab, available_tasks, make_task, register_task

__all__ = ["Example", "Task", "Vocab", "make_task", "register_task", "available_tasks",
           "PAD", "BOS", "SEP", "EOS"]
