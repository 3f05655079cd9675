"""A report as one self-contained HTML page: every table (verdicts included), the figures embedded
as base64 PNG data URIs, the commands that regenerate it, and the machines: the one that wrote the
page and those the runs trained on. No scripts and no external files: the page can be mailed,
archived or opened offline."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from datetime import datetime, timezone

from matplotlib.figure import Figure

from ..records import Run
from .tables import cell_text

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3em 0; max-width: 1200px; }
figure { margin: 1em 0 2em; } img { max-width: 100%; border: 1px solid #eee; }
code, pre { background: #f6f6f6; padding: 0 0.3em; }
pre.note { white-space: pre-wrap; padding: 0.5em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; font-size: 0.9em; }
"""
MACHINE_FIELDS = ("host", "device", "gpu", "python", "torch", "lengthgen", "platform", "cpus", "git_commit", "git_dirty")

Table = tuple[str, tuple[list[str], list[list]]]  # (caption, (columns, rows))


def figure_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()


def machines_table(runs: list[Run]) -> Table:
    """The machines the runs trained on, one row per distinct environment, with its run count."""
    counts = Counter(tuple((run.environment or {}).get(f) if f != "host" else run.host
                           for f in MACHINE_FIELDS) for run in runs)
    return ("machines the runs trained on", (["runs", *MACHINE_FIELDS],
                                              [[n, *machine] for machine, n in sorted(counts.items(), key=str)]))


def html_page(title: str, tables: list[Table], images: dict[str, bytes], commands: list[str], machine: dict,
              notes: list[str] = ()) -> str:
    """The page: heading, how it was made, the tables, the notes (Markdown text, shown as written),
    then the figures (PNG bytes by name)."""
    made = [("written", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
            *((k, v) for k, v in machine.items() if v is not None)]
    about = "".join(f"<dt>{_e(k)}</dt><dd><code>{_e(v)}</code></dd>" for k, v in made)
    regenerate = "".join(f"<pre>{_e(c)}</pre>\n" for c in commands)
    figures = "".join(f'<figure><img alt="{_e(name)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                      f"<figcaption>{_e(name)}</figcaption></figure>\n" for name, png in images.items())
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n<h1>{_e(title)}</h1>\n"
            f"<h2>how to regenerate it</h2>\n{regenerate}<h2>written on</h2>\n<dl>{about}</dl>\n"
            "<h2>tables</h2>\n" + "".join(_table(caption, *table) for caption, table in tables)
            + "".join(f'<pre class="note">{_e(note)}</pre>\n' for note in notes)
            + "<h2>figures</h2>\n" + figures + "</body>\n</html>\n")


def _table(caption: str, columns: list[str], rows: list[list]) -> str:
    numeric = [c.startswith("[") for c in columns]  # length-bin columns
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f'<td class="num">{_e(cell_text(v))}</td>' if num else f"<td>{_e(cell_text(v))}</td>"
                                    for v, num in zip(row, numeric)) + "</tr>\n" for row in rows)
    return f"<table>\n<caption>{_e(caption)}</caption>\n<tr>{head}</tr>\n{body}</table>\n"


def _e(value) -> str:
    return html.escape(str(value))
