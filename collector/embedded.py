"""A collector inside the calling process, on a background thread.

For programs that produce, store and query spans in one go (the demo, tests,
notebooks)::

    from forktrace.collector import embedded

    collector = embedded.start(data_dir)          # free ports by default
    ...  # export spans to collector.grpc_endpoint or collector.http_endpoint
    collector.flush()                             # everything received is now stored
    result = collector.query("SELECT count() FROM otel_traces")
    collector.stop()

The process then owns the chDB engine: open no other chDB path in it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from forktrace.collector.reader import QueryResult
from forktrace.collector.service import Collector
from forktrace.collector.settings import CollectorSettings


class EmbeddedCollector:
    def __init__(
        self, collector: Collector, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self._collector = collector
        self._loop = loop
        self._thread = thread

    @property
    def grpc_endpoint(self) -> str:
        return self._collector.grpc_endpoint

    @property
    def http_endpoint(self) -> str:
        return self._collector.http_endpoint

    @property
    def data_dir(self) -> Path:
        return self._collector.settings.data_dir

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        """Read-only SQL on the collector's store (on the clients that answer
        /api/sql: as many queries at once, from any threads)."""
        assert self._collector.queries is not None  # set by start(), before this exists
        return self._collector.queries.query(sql, parameters)

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every request received so far is inserted."""
        return self._collector.spool.wait_drained(timeout)

    def stop(self, flush_timeout: float = 30.0) -> bool:
        stopped = asyncio.run_coroutine_threadsafe(self._collector.stop(flush_timeout), self._loop)
        drained = stopped.result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        return drained

    def __enter__(self) -> EmbeddedCollector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    grpc_port: int = 0,
    http_port: int = 0,
    **options: Any,
) -> EmbeddedCollector:
    """Start a collector on a background thread; returns once it listens.
    ``options`` are CollectorSettings fields (clickhouse, batch_age, token, ...)."""
    settings = CollectorSettings.build(
        data_dir=data_dir, grpc_port=grpc_port, http_port=http_port, **options
    )
    collector = Collector(settings)
    loop = asyncio.new_event_loop()
    started: Future[None] = Future()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(collector.start())
        except BaseException as exc:
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="forktrace-collector", daemon=True)
    thread.start()
    started.result()
    return EmbeddedCollector(collector, loop, thread)
