"""The collector's CLI commands: ``forktrace up``, ``sql`` and ``schema``.

This module stays light: command bodies import the collector's heavy parts
(chDB, grpcio, aiohttp) only when they run, so ``forktrace --help`` is fast and
works without the ``collector`` extra.
"""

from __future__ import annotations

from pathlib import Path

import typer

from forktrace._extras import MissingExtraError, require
from forktrace.collector.limits import DEFAULT_LIMITS, KIB, MIB

_COLLECTOR_MODULES = ("clickhouse_connect", "chdb", "grpc", "aiohttp", "opentelemetry.proto")

schema_app = typer.Typer(help="Print or apply the storage schema.", no_args_is_help=True)

DataDirOption = typer.Option(
    None, "--data-dir", help="Data directory (default: FORKTRACE_DATA_DIR or the user data dir)."
)
ClickHouseOption = typer.Option(
    None, "--clickhouse", help="A ClickHouse server URL, e.g. http://user:pass@host:8123/db."
)
TlsCertOption = typer.Option(None, help="TLS certificate (PEM) for both ports.")
TlsKeyOption = typer.Option(None, help="The certificate's private key (PEM).")
ParamOption = typer.Option(
    [], "--param", "-p", help="A query parameter name=value, bound to {name:Type}."
)


def _require_collector_extra() -> None:
    try:
        for module in _COLLECTOR_MODULES:
            require(module, "collector")
    except MissingExtraError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _fail(message: object) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def up(
    data_dir: Path | None = DataDirOption,
    clickhouse: str | None = ClickHouseOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    grpc_port: int = typer.Option(4317, help="OTLP/gRPC port (0: any free port)."),
    http_port: int = typer.Option(4318, help="OTLP/HTTP and SQL port (0: any free port)."),
    token: str | None = typer.Option(
        None,
        envvar="FORKTRACE_TOKEN",
        help="Bearer token for writing and reading (see --write-token, --read-token).",
    ),
    write_token: str | None = typer.Option(
        None, envvar="FORKTRACE_WRITE_TOKEN", help="Bearer token OTLP exporters must send."
    ),
    read_token: str | None = typer.Option(
        None, envvar="FORKTRACE_READ_TOKEN", help="Bearer token the SQL endpoint requires."
    ),
    tls_cert: Path | None = TlsCertOption,
    tls_key: Path | None = TlsKeyOption,
    batch_spans: int = typer.Option(10_000, help="Insert when this many spans are spooled."),
    batch_age: float = typer.Option(
        1.0, help="Insert spooled spans at least this often (seconds)."
    ),
    spool_limit_mb: int = typer.Option(1024, help="Answer 429 past this much un-inserted spool."),
    max_request_mb: int = typer.Option(
        DEFAULT_LIMITS.max_request_bytes // MIB, help="Largest request body, as sent."
    ),
    max_decompressed_mb: int = typer.Option(
        DEFAULT_LIMITS.max_decompressed_bytes // MIB, help="Largest body after decompression."
    ),
    max_spans_per_request: int = typer.Option(
        DEFAULT_LIMITS.max_spans_per_request, help="Larger requests are refused."
    ),
    max_attributes_per_span: int = typer.Option(
        DEFAULT_LIMITS.max_attributes_per_span, help="Spans with more are dropped."
    ),
    max_attribute_value_kb: int = typer.Option(
        DEFAULT_LIMITS.max_attribute_value_bytes // KIB, help="Longer values are truncated."
    ),
    max_attribute_depth: int = typer.Option(
        DEFAULT_LIMITS.max_attribute_depth, help="Deeper nested values are refused."
    ),
    insert_workers: int = typer.Option(2, help="Spool segments inserted concurrently."),
    query_clients: int = typer.Option(2, help="SQL requests (/api/sql) answered at once."),
    redact: str | None = typer.Option(
        None,
        envvar="FORKTRACE_REDACT",
        help="Redaction rules, e.g. 'off' or '+email;-jwt;name=REGEX' (docs/sdk.md).",
    ),
) -> None:
    """Run the collector in the foreground until Ctrl-C: OTLP in, ClickHouse out."""
    _require_collector_extra()
    from forktrace.collector.limits import Limits
    from forktrace.collector.service import run_forever
    from forktrace.collector.settings import CollectorSettings

    settings = CollectorSettings.build(
        data_dir=data_dir,
        clickhouse=clickhouse,
        host=host,
        grpc_port=grpc_port,
        http_port=http_port,
        token=token,
        write_token=write_token,
        read_token=read_token,
        tls_cert=tls_cert,
        tls_key=tls_key,
        batch_spans=batch_spans,
        batch_age=batch_age,
        spool_limit_bytes=spool_limit_mb * 1024 * 1024,
        limits=Limits(
            max_request_bytes=max_request_mb * MIB,
            max_decompressed_bytes=max_decompressed_mb * MIB,
            max_spans_per_request=max_spans_per_request,
            max_attributes_per_span=max_attributes_per_span,
            max_attribute_value_bytes=max_attribute_value_kb * KIB,
            max_attribute_depth=max_attribute_depth,
        ),
        insert_workers=insert_workers,
        query_clients=query_clients,
        redact=redact,
    )
    try:
        run_forever(settings, announce=typer.echo)
    except Exception as exc:  # a clear line, not a traceback, for start-up failures
        _fail(exc)


def sql(
    query: str = typer.Argument(..., help="The SQL to run (read-only on a collector endpoint)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    param: list[str] = ParamOption,
    endpoint: str | None = typer.Option(None, help="A running collector's HTTP URL."),
    token: str | None = typer.Option(
        None,
        envvar="FORKTRACE_READ_TOKEN",
        help="The collector's read token (default: FORKTRACE_READ_TOKEN, else FORKTRACE_TOKEN).",
    ),
    clickhouse: str | None = ClickHouseOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Run SQL on the traces: via the running collector, a server, or the data directory."""
    # no up-front extra check: reading through a running collector needs none,
    # and opening a store directly names the missing extra itself
    from forktrace.collector import output
    from forktrace.collector.reader import open_reader

    if fmt not in {f.value for f in output.OutputFormat}:
        _fail(f"unknown format {fmt!r}; use table, csv or json")
    parameters = {}
    for item in param:
        name, sep, value = item.partition("=")
        if not sep:
            _fail(f"--param wants name=value, got {item!r}")
        parameters[name] = value
    try:
        reader = open_reader(
            endpoint=endpoint, clickhouse=clickhouse, data_dir=data_dir, token=token
        )
        try:
            result = reader.query(query, parameters)
        finally:
            reader.close()
    except Exception as exc:
        _fail(exc)
    output.render(result, fmt)


def _schema_options(cluster: str | None, ttl: str | None):  # -> SchemaOptions
    from forktrace.collector.schema import SchemaOptions

    days = None
    if ttl:
        if not ttl.endswith("d") or not ttl[:-1].isdigit():
            _fail(f"--ttl wants a number of days like 30d, got {ttl!r}")
        days = int(ttl[:-1])
    return SchemaOptions(cluster=cluster, ttl_days=days)


@schema_app.command("print")
def schema_print(
    cluster: str | None = typer.Option(None, help="Render the cluster variant for this cluster."),
    ttl: str | None = typer.Option(None, help="Retention, e.g. 30d."),
) -> None:
    """Print the schema's SQL statements."""
    from forktrace.collector.schema import render_all

    for statement in render_all(_schema_options(cluster, ttl)):
        typer.echo(f"{statement};\n")


@schema_app.command("apply")
def schema_apply(
    cluster: str | None = typer.Option(None, help="Apply the cluster variant (ON CLUSTER)."),
    ttl: str | None = typer.Option(None, help="Retention, e.g. 30d."),
    clickhouse: str | None = ClickHouseOption,
    data_dir: Path | None = DataDirOption,
) -> None:
    """Apply the schema files not yet applied to the store."""
    _require_collector_extra()
    from forktrace.collector import config, schema, store

    options = _schema_options(cluster, ttl)
    try:
        client = store.connect(clickhouse, config.engine_path(config.data_dir(data_dir)))
        applied = schema.apply(client, options)
    except Exception as exc:
        _fail(exc)
    if applied:
        for migration in applied:
            typer.echo(f"applied {migration.version:04d}_{migration.name}")
    else:
        typer.echo("schema is up to date")


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("sql")(sql)
    app.add_typer(schema_app, name="schema")
