"""The ``forktrace`` command line.

Each part of forktrace registers its commands here from a light module whose
command bodies import their heavy dependencies (chDB, gRPC, Grafana) lazily, so
``forktrace --help`` stays fast and works with only the base install.
"""

from __future__ import annotations

import typer

from forktrace import __version__

app = typer.Typer(
    name="forktrace",
    help="Make parallel AI-agent work legible: runs, forks, branches and decisions.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"forktrace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """forktrace: make parallel AI-agent work legible."""


from forktrace import doctor as _doctor  # noqa: E402

_doctor.register(app)

from forktrace.collector import commands as _collector_commands  # noqa: E402

_collector_commands.register(app)

from forktrace.collector import report_commands as _report_commands  # noqa: E402

_report_commands.register(app)

from forktrace.dashboards import commands as _dashboards_commands  # noqa: E402

_dashboards_commands.register(app)

from forktrace.collector import explore_commands as _explore_commands  # noqa: E402

_explore_commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
