"""Queries run at once where forktrace reads: two threads on one ClientReader,
and two requests to a running collector's ``POST /api/sql``, each answered
while the other still runs, each with its own answer.

"At once" is seen by the engine, not timed: while a slow query runs, a second
query counts it in ``system.processes``. Had the second waited its turn (one
client serialises its queries), the first would be over and never seen."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from collector_process import CollectorProcess

from forktrace.collector.reader import QueryResult, open_reader

Query = Callable[[str, dict[str, Any]], QueryResult]

# the engine shows a query rewritten, without comments: the marker is a value
SLOW = "SELECT {n:UInt32} * 2 AS doubled, sleep(2.5) AS slept, 'a slow probe' AS marker"
RUNNING = (
    "SELECT count() FROM system.processes "
    "WHERE query LIKE '%a slow probe%' AND query NOT LIKE '%system.processes%'"
)


def answered_while_slow_runs(query: Query) -> tuple[list[tuple[Any, ...]], set[tuple[Any, ...]]]:
    """Runs SLOW on a thread and, until it returns, asks from this thread how
    many SLOW queries run and what ``{n} * 3`` is. Returns SLOW's rows and the
    distinct answers given before SLOW returned (the last may come once SLOW
    has left the engine, its rows not yet converted)."""
    slow: dict[str, Any] = {}

    def run_slow() -> None:
        try:
            slow["rows"] = query(SLOW, {"n": 21}).rows
        except BaseException as exc:
            slow["error"] = exc

    thread = threading.Thread(target=run_slow)
    thread.start()
    seen: set[tuple[Any, ...]] = set()
    while thread.is_alive():
        rows = query(f"SELECT ({RUNNING}) AS running, {{n:UInt32}} * 3 AS tripled", {"n": 7}).rows
        if thread.is_alive():  # answered before SLOW returned
            seen.update(rows)
    thread.join()
    if "error" in slow:
        raise slow["error"]
    return slow["rows"], seen


def test_two_threads_query_one_client_reader_at_once(chdb_path: Path) -> None:
    # open_reader's reader opens another client on the store for the second query
    reader = open_reader(clickhouse=f"chdb://{chdb_path}")
    try:
        slow, seen = answered_while_slow_runs(reader.query)
    finally:
        reader.close()
    assert slow == [(42, 0, "a slow probe")]
    # (0, 21) may come too: asked before SLOW started, or after it left the engine
    assert (1, 21) in seen, "no answer came while the slow query ran: the queries took turns"
    assert seen <= {(0, 21), (1, 21)}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """``forktrace up`` in a subprocess (this process keeps its own chDB engine)."""
    running = CollectorProcess(tmp_path_factory.mktemp("reading-collector")).start()
    try:
        yield running
        running.stop()
    finally:
        running.kill()


def test_the_collector_answers_two_sql_requests_at_once(collector: CollectorProcess) -> None:
    # each query a POST /api/sql of its own (an EndpointReader)
    slow, seen = answered_while_slow_runs(collector.query)
    assert slow == [(42, 0, "a slow probe")]
    assert (1, 21) in seen, "no answer came while the slow query ran: the requests took turns"
    assert seen <= {(0, 21), (1, 21)}
