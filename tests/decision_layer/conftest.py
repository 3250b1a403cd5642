from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import scenario as _scenario

_databases = itertools.count()


@contextlib.contextmanager
def fresh_database(chdb_path: Path) -> Iterator[Any]:
    """Like the shared ``clickhouse`` fixture, for fixtures wider than a test:
    a client on a new database of the shared engine, with the schema applied."""
    import clickhouse_connect

    from forktrace.collector import schema

    database = f"decision_layer_{next(_databases)}"
    admin = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    admin.command(f"CREATE DATABASE {database}")
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database=database)
    schema.apply(client)
    try:
        yield client
    finally:
        admin.command(f"DROP DATABASE {database} SYNC")


@pytest.fixture(scope="package", params=["one insert", "out of order, in pieces"])
def loaded(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[tuple[Any, Any]]:
    """The scenario, stored once per arrival mode for all these tests; they only read it."""
    with fresh_database(chdb_path) as client:
        yield client, _scenario.store(client, in_pieces=request.param != "one insert")


@pytest.fixture(scope="module")
def clickhouse_module(chdb_path: Path) -> Iterator[Any]:
    with fresh_database(chdb_path) as client:
        yield client
