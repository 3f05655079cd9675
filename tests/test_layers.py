"""The package's layers: data flows tasks -> positions -> data -> model -> training -> experiments ->
store -> report, and no module imports one of a higher layer (nor is there any import loop)."""

import ast
from pathlib import Path

import lengthgen

PACKAGE = Path(lengthgen.__file__).parent

# Lowest first. A module may import modules of its own layer or lower ones only.
LAYERS = [
    {"errors", "evaluation_modes", "tasks", "text", "groups", "procs", "hardware", "stats", "progress", "version"},
    {"positions", "crasp"},
    {"data"},
    {"model", "ppc"},
    {"lm_eval"},
    {"evaluate", "config", "migrate", "store", "records"},
    {"plugins"},
    {"training"},
    {"experiments"},
    {"report", "analysis", "api"},
    {"cli"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def top_module(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_tops(path: Path) -> set[str]:
    """The top-level lengthgen modules a file imports, function-level imports included."""
    depth = len(path.relative_to(PACKAGE).parts) - 1  # folders below the package
    tops = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = (node.module or "").split(".")
            if node.level - 1 < depth:  # stays inside this file's own subpackage
                continue
            names = [parts[0]] if parts[0] else [a.name for a in node.names]
            tops |= {n for n in names if n}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lengthgen."):
            tops.add(node.module.split(".")[1])
    return tops - {"__init__"}


def test_every_module_has_a_layer():
    modules = {top_module(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert modules <= set(LAYER), f"modules without a layer: {sorted(modules - set(LAYER))}"


def test_no_import_from_a_higher_layer():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        me = top_module(path)
        if me == "__init__":
            continue
        for other in imported_tops(path):
            if other in LAYER and LAYER[other] > LAYER[me]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {other}")
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_through_the_package():
    """`from .. import x` below the package runs lengthgen/__init__.py, whose lazy `api` import (the
    top layer) closes a loop with every module below it: import the module by name instead."""
    through = []
    for path in set(PACKAGE.rglob("*.py")) - {PACKAGE / "__init__.py"}:
        depth = len(path.relative_to(PACKAGE).parts) - 1  # folders below the package
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == depth + 1 and not node.module:
                through.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not through, through


LONGEST_FUNCTION = 60  # lines: every function reads on one screen


def test_no_function_is_longer_than_a_screen():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
