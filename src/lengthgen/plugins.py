"""Plugins: a user's own tasks and positional schemes, registered by importing their module.

Two ways in: `--import MODULE` on any command (a module that defines `@register_task` or
`@register_scheme` classes), and installed packages that declare entry points in the groups
`lengthgen.tasks` / `lengthgen.schemes` (the entry may name a module, or a class: a task class is
registered under its `name`, a scheme class under the entry's name). The modules given with
--import are also kept in the LENGTHGEN_IMPORT environment variable, so that the worker processes
of a local sweep, which start afresh, import them too.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points

from .config import ConfigError
from .tasks import Task, register_task

ENV = "LENGTHGEN_IMPORT"
TASK_GROUP, SCHEME_GROUP = "lengthgen.tasks", "lengthgen.schemes"


def import_modules(names: list[str]) -> None:
    """Import the named modules (their registrations run on import), for this process and its
    workers; a module in the current folder is found as on `python -m`."""
    if names and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    for name in names:
        if not all(part.isidentifier() for part in name.split(".")):
            raise ConfigError(f"--import {name!r}: expected a module name, such as my_tasks or package.module")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            raise ConfigError(f"--import {name}: no module {err.name!r} (is its folder on PYTHONPATH, or the "
                              "package installed?)") from None
    known = [n for n in os.environ.get(ENV, "").split(",") if n]
    os.environ[ENV] = ",".join(dict.fromkeys(known + list(names)))


def load_entry_points() -> None:
    """Register what installed packages declare in the lengthgen.tasks and lengthgen.schemes groups."""
    for entry in entry_points(group=TASK_GROUP):
        loaded = entry.load()
        if isinstance(loaded, type) and issubclass(loaded, Task):
            register_task(loaded)
    for entry in entry_points(group=SCHEME_GROUP):
        loaded = entry.load()
        if isinstance(loaded, type):
            from .model.positional import register_scheme

            register_scheme(entry.name)(loaded)


def load_plugins(names: list[str] = ()) -> None:
    """Entry points, then the modules named here and in LENGTHGEN_IMPORT (a worker's inheritance)."""
    load_entry_points()
    inherited = [n for n in os.environ.get(ENV, "").split(",") if n]
    import_modules(list(dict.fromkeys(inherited + list(names))))
