"""C-RASP (docs/design.md §6): the language (`lang`), its interpreter (`interpreter`), programs over an
alphabet (`program`), fragment analysis (`fragment`) and the program library with predictions (`library`)."""

from .fragment import Fragment, fragment
from .interpreter import evaluate
from .lang import (And, Arith, Bool, BoolConst, Compare, Count, CountConst, CountWhere, IfThenElse, Local, Not,
                   Or, Periodic, PositionMod, Token, count, define)
from .program import Program
from .library import Prediction, describe, get_program, known_tasks, predict

__all__ = ["And", "Arith", "Bool", "BoolConst", "Compare", "Count", "CountConst", "CountWhere", "IfThenElse",
           "Local", "Not", "Or", "Periodic", "PositionMod", "Program", "Token", "count", "define", "evaluate",
           "Fragment", "fragment", "Prediction", "describe", "get_program", "known_tasks", "predict"]
