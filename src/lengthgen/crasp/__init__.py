"""C-RASP (docs/design.md §6): the language (`lang`), fragment analysis (`fragment`) and the program
library with predictions (`library`)."""

from .fragment import Fragment, fragment
from .lang import (And, Arith, Bool, BoolConst, Compare, Count, CountConst, CountWhere, IfThenElse, Local, Not,
                   Or, Periodic, PositionMod, Program, Token, count, define, evaluate)
from .library import Prediction, describe, get_program, known_tasks, predict

__all__ = ["And", "Arith", "Bool", "BoolConst", "Compare", "Count", "CountConst", "CountWhere", "IfThenElse",
           "Local", "Not", "Or", "Periodic", "PositionMod", "Program", "Token", "count", "define", "evaluate",
           "Fragment", "fragment", "Prediction", "describe", "get_program", "known_tasks", "predict"]
