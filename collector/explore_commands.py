"""``forktrace runs``, ``forktrace tree`` and ``forktrace demo``.

Light at import: command bodies import the reader, rich and the demo only when
they run, so ``forktrace --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from forktrace.collector.commands import (
    ClickHouseOption,
    DataDirOption,
    _fail,
    _require_collector_extra,
)

FormatOption = typer.Option("table", "--format", "-f", help="table, csv or json.")
EndpointOption = typer.Option(None, "--endpoint", help="A running collector's HTTP URL.")


def _open(endpoint: str | None, clickhouse: str | None, data_dir: Path | None) -> Any:
    from forktrace.collector.reader import open_reader

    try:
        return open_reader(endpoint=endpoint, clickhouse=clickhouse, data_dir=data_dir)
    except Exception as exc:
        _fail(exc)


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "csv", "json"):
        _fail(f"unknown format {fmt!r}; use table, csv or json")


def runs(
    session: str | None = typer.Option(None, "--session", "-s", help="Only this session's runs."),
    last: int | None = typer.Option(None, "--last", "-n", min=1, help="Only the last N runs."),
    fmt: str = FormatOption,
    endpoint: str | None = EndpointOption,
    clickhouse: str | None = ClickHouseOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """List runs, newest first: status, work done, cost and waste."""
    _check_format(fmt)
    _require_collector_extra()
    from forktrace.collector import output, views

    reader = _open(endpoint, clickhouse, data_dir)
    try:
        result = views.runs(reader, session=session, last=last)
    except Exception as exc:
        _fail(exc)
    finally:
        reader.close()
    if fmt != "table":
        output.render_rows(result.column_names, result.rows, fmt)
        return
    if not result.rows:
        typer.echo("no runs yet; try `forktrace demo`", err=True)
        return
    console().print(_runs_table(result))


def console() -> Any:
    """A console as wide as the terminal, or wide enough to keep rows whole in a pipe."""
    from rich.console import Console

    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def _runs_table(result: Any) -> Any:
    """The summary columns of the runs list as a rich table, formatted for reading."""
    from rich import box
    from rich.table import Table

    from forktrace.collector import tree_render as fmt
    from forktrace.collector.views import RUNS_SUMMARY_COLUMNS

    index = {name: i for i, name in enumerate(result.column_names)}
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title="forktrace runs (newest first)")
    headers = ("run", "session", "name", "started (UTC)", "took", "status", "agents",
               "branches", "decisions", "tools", "errors", "tokens", "cost", "waste")  # fmt: skip
    for header in headers:
        numeric = header in {"agents", "branches", "decisions", "tools", "errors", "tokens", "cost"}
        table.add_column(header, justify="right" if numeric else "left", no_wrap=True)
    for row in result.rows:
        r = {name: row[index[name]] for name in RUNS_SUMMARY_COLUMNS}
        status = r["status"]
        table.add_row(
            r["run_id"][:12],
            r["session_id"][:12],
            fmt.snippet(r["name"], 30),
            r["start"].strftime("%m-%d %H:%M:%S"),
            fmt.duration(r["duration_ms"]),
            f"[{fmt.STATUS_STYLES.get(status, 'cyan')}]{status}[/]",
            str(r["agent_count"]),
            str(r["branches"]),
            str(r["decisions"]),
            str(r["tool_calls"]),
            f"[red]{r['errors']}[/]" if r["errors"] else "0",
            fmt.tokens(r["input_tokens"] + r["output_tokens"]),
            fmt.dollars(r["cost"]) if r["cost"] is not None else "unpriced",
            f"[magenta]{fmt.waste(r)}[/]",
        )
    return table


def tree(
    run_id: str = typer.Argument(..., help="A run id, or a unique prefix of one."),
    fmt: str = FormatOption,
    no_llm: bool = typer.Option(False, "--no-llm", help="Leave model calls out of the tree."),
    endpoint: str | None = EndpointOption,
    clickhouse: str | None = ClickHouseOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Show one run as a tree: forks, branches by outcome, decisions, tools, interventions."""
    _check_format(fmt)
    _require_collector_extra()
    from forktrace.collector import views

    reader = _open(endpoint, clickhouse, data_dir)
    try:
        full_id = views.resolve_run_id(reader, run_id)
        run_tree = views.run_tree(reader, full_id)
    except Exception as exc:
        _fail(exc)
    finally:
        reader.close()
    print_tree(run_tree, fmt, show_llm_calls=not no_llm)


def print_tree(run_tree: Any, fmt: str = "table", show_llm_calls: bool = True) -> None:
    """Print a ``views.RunTree``: a rich tree, its branches as CSV, or all of it as JSON."""
    from forktrace.collector import output

    if fmt == "json":
        from forktrace.collector.reader import to_json

        json.dump(run_tree.as_dict(), sys.stdout, default=to_json, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif fmt == "csv":
        columns = list(run_tree.branches[0]) if run_tree.branches else ["branch_id"]
        output.render_rows(columns, [list(b.values()) for b in run_tree.branches], "csv")
    else:
        from forktrace.collector import tree_render

        console().print(tree_render.build(run_tree, show_llm_calls=show_llm_calls))


def demo(
    data_dir: Path | None = DataDirOption,
    fmt: str = FormatOption,
) -> None:
    """Run a simulated multi-agent session (no API keys, no services) and show it."""
    _check_format(fmt)
    _require_collector_extra()
    from forktrace.collector import demo as demo_module

    try:
        demo_module.main(data_dir=data_dir, fmt=fmt)
    except Exception as exc:
        _fail(exc)


def register(app: typer.Typer) -> None:
    app.command("runs")(runs)
    app.command("tree")(tree)
    app.command("demo")(demo)
