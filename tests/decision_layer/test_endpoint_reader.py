"""``forktrace runs`` and ``forktrace tree`` through a running collector's SQL
endpoint (``EndpointReader``) give the same plain Python values as a direct
read: no aggregate-state wrapper type left for the JSON wire, every time a
datetime again."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from forktrace.collector import views
from forktrace.collector.http_receiver import HttpReceiver
from forktrace.collector.reader import ClientPool, ClientReader, EndpointReader
from forktrace.collector.receivers import Intake
from forktrace.collector.spool import Spool

PLAIN = (str, int, float, bool, dt.datetime, list, dict, tuple, type(None))


@pytest.fixture(scope="module")
def endpoint(loaded: tuple[Any, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The collector's HTTP app (the real handler) serving the scenario's database."""
    client, _ = loaded
    spool = Spool(
        Path(tmp_path_factory.mktemp("spool")), batch_spans=1, batch_age=1.0, limit_bytes=1 << 20
    )
    queries = ClientPool(None, first=client, owns_first=False)
    receiver = HttpReceiver(Intake(spool), retry_after_seconds=1, queries=queries)
    runner = web.AppRunner(receiver.app)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    # The loop runs in its own thread from the start: this thread may already run
    # one (Playwright's sync API keeps a loop running in the main thread).
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return isinstance(value, PLAIN)


def test_runs_through_the_endpoint_are_the_direct_values(loaded, endpoint):
    client, _ = loaded
    direct = views.runs(ClientReader(client, "test", owns_client=False), last=10)
    wire = views.runs(EndpointReader(endpoint), last=10)
    assert wire.column_names == direct.column_names
    assert wire.types == direct.types
    assert not [t for t in wire.types if "AggregateFunction" in t]
    assert wire.rows == direct.rows
    rows = {row[wire.column_names.index("run_id")]: row for row in wire.rows}
    run_a = dict(zip(wire.column_names, rows["run-a"], strict=True))
    assert isinstance(run_a["start"], dt.datetime) and isinstance(run_a["end"], dt.datetime)
    assert run_a["agents"] == ["alpha", "beta", "coordinator", "gamma"]
    assert isinstance(run_a["cost"], float) and run_a["wasted_tokens"] > 0
    assert all(_plain(value) for row in wire.rows for value in row)


def test_a_run_tree_through_the_endpoint_is_the_direct_tree(loaded, endpoint):
    client, _ = loaded
    direct = views.run_tree(ClientReader(client, "test", owns_client=False), "run-a")
    wire = views.run_tree(EndpointReader(endpoint), "run-a")
    assert wire == direct
    assert {b["label"] for b in wire.branches} >= {"rewrite", "patch", "vendor"}
    assert all(isinstance(b["start"], dt.datetime) for b in wire.branches if b["start"])
