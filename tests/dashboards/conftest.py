from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import dashboard_seed

_databases = itertools.count()


@pytest.fixture(scope="module")
def seeded(chdb_path: Path) -> Iterator[tuple[Any, dict[str, dashboard_seed.Run]]]:
    """One database per test module in the session's chDB path, with the forktrace
    schema and the hand-built runs: the panels only read, so a module shares it."""
    clickhouse_connect = pytest.importorskip("clickhouse_connect")
    from forktrace.collector import schema

    database = f"dashboards_{next(_databases)}"
    admin = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    admin.command(f"CREATE DATABASE {database}")
    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database=database)
    schema.apply(client)
    runs = dashboard_seed.seed(client)
    yield client, runs
    admin.command(f"DROP DATABASE {database} SYNC")
