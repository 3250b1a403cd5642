"""Printing query results in the terminal: a table, CSV or JSON.

Shared by every CLI command that shows rows (``forktrace sql``, ``forktrace runs``, ...).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any, TextIO

from forktrace.collector.reader import QueryResult, to_json


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def cell_text(value: Any) -> str:
    """One value as text: strings as they are, containers as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=to_json, ensure_ascii=False)
    return str(value)


def render(
    result: QueryResult,
    fmt: OutputFormat | str = OutputFormat.table,
    file: TextIO | None = None,
    *,
    title: str | None = None,
) -> None:
    render_rows(result.column_names, result.rows, fmt, file, title=title)


def render_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: OutputFormat | str = OutputFormat.table,
    file: TextIO | None = None,
    *,
    title: str | None = None,
) -> None:
    out = file or sys.stdout
    fmt = OutputFormat(fmt)
    if fmt is OutputFormat.json:
        records = [dict(zip(columns, row, strict=False)) for row in rows]
        json.dump(records, out, default=to_json, ensure_ascii=False, indent=2)
        out.write("\n")
    elif fmt is OutputFormat.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell_text(v) for v in row] for row in rows)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False, highlight=False)
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*(cell_text(v) for v in row))
        Console(file=out, soft_wrap=False).print(table)
