"""A report's page in Markdown: its title, the commands that regenerate it, the tables (the claims'
statistics and verdicts among them), the machines the runs trained on, notes, then links to the
figures beside it. Everything on it comes from the results store and the command, nothing from the
machine or the hour that writes it, so the same store gives the same page byte for byte."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from ..config import ConfigError
from ..experiments.presets import find_preset
from ..store import DONE_STATUSES, ResultsStore
from .html import Table, machines_table
from .tables import markdown_table


def page_stem(experiment: str | None, metric: str, preset: str | None) -> str:
    """The file stem of a report's page and figures: the preset's name (`coupling_cpu` for both
    `coupling_cpu` and `presets/coupling_cpu.yaml`), else `<experiment>_<metric>`."""
    return Path(preset).stem if preset else re.sub(r"[^\w.-]+", "_", f"{experiment or 'all'}_{metric}")


def page_title(experiment: str | None, metric: str) -> str:
    return f"lengthgen report: {experiment or 'all runs'}, {metric}"


def regenerating_commands(store: ResultsStore, experiment: str | None, preset: str | None, command: str) -> list[str]:
    """`command`, after the `lengthgen run` that trains the runs still missing when the page
    comes from a preset (`run` of a finished preset trains nothing)."""
    source = preset or (experiment if experiment and _is_preset(experiment) else None)
    if source is None:
        return [command]
    return [shlex.join(["lengthgen", "--root", str(store.root), "run", source]), command]


def report_command(store: ResultsStore, experiment: str | None, metric: str, preset: str | None,
                   output: list[str]) -> str:
    """The `lengthgen report` command that writes this report with the `output` flags."""
    source = ["--preset", preset] if preset else ["--experiment", experiment] if experiment else []
    return shlex.join(["lengthgen", "--root", str(store.root), "report", *source, "--metric", metric, *output])


def machines(store: ResultsStore, experiment: str | None) -> Table:
    """The machines and versions the experiment's finished runs trained with."""
    return machines_table([r for r in store.runs(experiment=experiment) if r.status in DONE_STATUSES])


def markdown_page(title: str, commands: list[str], tables: list[Table], notes: list[str], figures: list[Path]) -> str:
    """The page: how to regenerate it, the tables, the notes (Markdown as written), the figure links."""
    regenerate = "\n".join(commands)
    header = (f"# {title}\n\nWritten by lengthgen from a results store: do not edit it by hand. These commands "
              f"regenerate it (`run` trains only the runs the store lacks):\n\n```\n{regenerate}\n```")
    return "\n\n".join([header, *(f"### {caption}\n\n{markdown_table(*table)}" for caption, table in tables), *notes,
                        *(_link(p) for p in figures)]) + "\n"


def _link(path: Path) -> str:
    return f"![{path.stem}]({path.name})" if path.suffix == ".png" else f"[{path.name}]({path.name})"


def _is_preset(name: str) -> bool:
    try:
        find_preset(name)
    except ConfigError:
        return False
    return True
