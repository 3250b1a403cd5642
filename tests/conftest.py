"""Shared fixtures.

chDB opens one data path per process, so every test in a pytest process shares
one engine; each test that stores data gets a database of its own in it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def clickhouse(chdb_path: Path) -> Iterator[Any]:
    """A clickhouse-connect client on the in-process engine, in a fresh database
    with the forktrace schema applied."""
    clickhouse_connect = pytest.importorskip("clickhouse_connect")
    from forktrace.collector import schema

    database = f"test_{next(_database_numbers)}"
    admin = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    admin.command(f"CREATE DATABASE {database}")
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database=database)
    schema.apply(client)
    yield client
    admin.command(f"DROP DATABASE {database} SYNC")
