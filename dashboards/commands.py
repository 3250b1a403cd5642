"""``forktrace dashboards build|provision``: light module, heavy imports inside the commands."""

from __future__ import annotations

from pathlib import Path

import typer

from forktrace._extras import MissingExtraError, require

app = typer.Typer(
    name="dashboards",
    help="Grafana dashboards: render them to JSON, provision them into a Grafana.",
    no_args_is_help=True,
)


OutOption = typer.Option(
    None, "--out", help="Directory to write the JSON to (default: the package's own json/)."
)


@app.command("build")
def build(out: Path | None = OutOption) -> None:
    """Render the dashboard builders to sorted JSON files."""
    try:
        require("grafana_foundation_sdk", "grafana")
    except MissingExtraError as exc:
        typer.echo(
            f"{exc}\n(grafana-foundation-sdk needs Python 3.11 or newer; the shipped JSON "
            "works without it.)",
            err=True,
        )
        raise typer.Exit(1) from exc
    from forktrace.dashboards import render

    for path in render.write(out or render.PACKAGE_JSON_DIR):
        typer.echo(f"wrote {path}")


@app.command("provision")
def provision(
    grafana_url: str = typer.Option(
        ..., "--grafana-url", help="Grafana's root URL, e.g. http://127.0.0.1:3000."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="GRAFANA_TOKEN", help="A service-account token."
    ),
    user: str | None = typer.Option(None, "--user", help="Basic-auth user."),
    password: str | None = typer.Option(
        None, "--password", envvar="GRAFANA_PASSWORD", help="Basic-auth password."
    ),
    datasource_url: str | None = typer.Option(
        None,
        "--datasource-url",
        help="Also create or update the ClickHouse datasource, e.g. "
        "http://grafana_ro:secret@clickhouse:8123/forktrace (a read-only user).",
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace dashboards changed in Grafana since they were read."
    ),
) -> None:
    """Create or update the forktrace folder, datasource and dashboards; idempotent."""
    if token and user:
        raise typer.BadParameter("give either --token or --user/--password, not both")
    try:
        require("grafana_client", "grafana")
    except MissingExtraError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    from forktrace.dashboards.provision import (
        Provisioner,
        ProvisionError,
        connect,
        datasource_model,
    )

    try:
        datasource = datasource_model(datasource_url) if datasource_url else None
        api = connect(grafana_url, token=token, user=user, password=password)
        changes = Provisioner(api, grafana_url, overwrite=overwrite).run(datasource)
    except ProvisionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for change in changes:
        typer.echo(str(change))
    changed = sum(change.action != "unchanged" for change in changes)
    typer.echo(f"{changed} changed, {len(changes) - changed} unchanged")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="dashboards")
