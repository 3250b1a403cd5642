"""``forktrace report`` and ``forktrace compare``.

Light on purpose: the command bodies import the reader, Jinja2 and rich only
when they run, so ``forktrace --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from forktrace.collector.commands import (
    ClickHouseOption,
    DataDirOption,
    _fail,
    _require_collector_extra,
)

EndpointOption = typer.Option(None, "--endpoint", help="A running collector's HTTP URL.")
OutputOption = typer.Option("report.html", "--output", "-o", help="The HTML file to write.")


def report(
    run: str | None = typer.Argument(None, help="The run id (optional with --session)."),
    session: str | None = typer.Option(
        None, "--session", help="Report every run of this session, side by side."
    ),
    output: Path = OutputOption,
    endpoint: str | None = EndpointOption,
    clickhouse: str | None = ClickHouseOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Write a run's report: one self-contained HTML file that opens offline."""
    _require_collector_extra()
    from forktrace.collector.reader import open_reader
    from forktrace.collector.report import write_report

    if not run and not session:
        _fail("give a run id, or --session S")
    try:
        reader = open_reader(endpoint=endpoint, clickhouse=clickhouse, data_dir=data_dir)
        try:
            path = write_report(reader, output, run, session_id=session)
        finally:
            reader.close()
    except Exception as exc:
        _fail(exc)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); open it in any browser")


def compare(
    run: str = typer.Argument(..., help="The run id."),
    branch_a: str = typer.Argument(..., help="A branch: index path (1, 0.2), label or id prefix."),
    branch_b: str = typer.Argument(..., help="The branch to compare it with."),
    endpoint: str | None = EndpointOption,
    clickhouse: str | None = ClickHouseOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Compare two branches of a run side by side, and where they diverged."""
    _require_collector_extra()
    from forktrace.collector import compare as comparing
    from forktrace.collector.reader import open_reader

    try:
        reader = open_reader(endpoint=endpoint, clickhouse=clickhouse, data_dir=data_dir)
        try:
            comparison = comparing.compare(reader, run, branch_a, branch_b)
        finally:
            reader.close()
    except Exception as exc:
        _fail(exc)
    comparing.print_comparison(comparison)


def register(app: typer.Typer) -> None:
    app.command("report")(report)
    app.command("compare")(compare)
