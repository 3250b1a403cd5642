"""``forktrace doctor``: the SDK's resolved configuration and whether its endpoint answers.

Exit codes: 0 the configuration is valid and the endpoint accepts connections;
1 the endpoint does not answer; 2 the configuration is invalid.
"""

from __future__ import annotations

import socket

import typer

from forktrace.config import DEFAULT, Config, ConfigError, endpoint_address, resolve

EXIT_UNREACHABLE = 1
EXIT_INVALID = 2


def probe(host: str, port: int, timeout: float) -> str | None:
    """None if a TCP connection to ``host:port`` opens within ``timeout`` seconds, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def describe(config: Config) -> list[tuple[str, str, str]]:
    """(setting, value, source) rows; header values are hidden, they often hold credentials."""
    rows = []
    for name, setting in config.settings().items():
        value = setting.value
        if name == "headers":
            shown = ", ".join(f"{key}=***" for key in value) or "(none)"
        elif name == "session" and setting.source == DEFAULT:
            shown = f"{value} (a new id in every process; set FORKTRACE_SESSION to group runs)"
        else:
            shown = str(value)
        rows.append((name, shown, setting.source))
    return rows


def doctor(
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Check this endpoint instead of the configured one."
    ),
    protocol: str | None = typer.Option(None, "--protocol", help="grpc or http/protobuf."),
    timeout: float = typer.Option(
        2.0, "--timeout", min=0.01, help="Seconds to wait for the endpoint."
    ),
) -> None:
    """Show the SDK's resolved configuration and whether the collector endpoint answers."""
    try:
        config = resolve(endpoint=endpoint, protocol=protocol)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EXIT_INVALID) from None

    rows = describe(config)
    width = max(len(name) for name, _, _ in rows)
    typer.echo("forktrace SDK configuration (argument, then environment, then default):")
    for name, value, source in rows:
        typer.echo(f"  {name:<{width}}  {value}  [{source}]")

    host, port = endpoint_address(config.endpoint.value)
    problem = probe(host, port, timeout)
    if problem is None:
        typer.echo(f"endpoint {host}:{port} ({config.protocol.value}): reachable")
        return
    typer.echo(
        f"endpoint {host}:{port} ({config.protocol.value}): NOT reachable ({problem}). "
        "Start a collector with `forktrace up`, or point OTEL_EXPORTER_OTLP_ENDPOINT at one.",
        err=True,
    )
    raise typer.Exit(EXIT_UNREACHABLE)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
