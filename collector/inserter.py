"""Moving sealed spool segments into ClickHouse.

Each segment is one ``INSERT ... FORMAT Protobuf`` into the Null table
``otel_traces_otlp_ingest``, whose materialised view writes ``otel_traces``;
the engine decodes and flattens the requests. The segment's name is the
insert's deduplication token, which makes a replay after a crash harmless.
While the store fails, the inserter retries with capped exponential backoff
and the receivers keep spooling; the spool's limit turns that into
backpressure (429 / RESOURCE_EXHAUSTED) for the exporters.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential, wait_random

from forktrace.collector.otlp_proto import ROOT_MESSAGE, proto_text
from forktrace.collector.spool import Segment, Spool

log = logging.getLogger(__name__)

INGEST_TABLE = "otel_traces_otlp_ingest"


def write_schema_file(directory: Path) -> Path:
    """Write the OTLP ``.proto`` text into ``directory`` for the embedded engine."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "otlp_trace.proto"
    text = proto_text()
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def ingest_settings(token: str, schema_file: Path | None = None) -> dict[str, Any]:
    """Settings of one ingest insert.

    A server takes the schema as a string (it caches it in its own
    ``format_schemas`` directory). chDB would write that cache into the current
    working directory of the user's process, so the embedded engine reads the
    schema from ``schema_file`` instead: chDB, like clickhouse-local, accepts
    an absolute path there.
    """
    if schema_file is not None:
        schema = {"format_schema": f"{schema_file}:{ROOT_MESSAGE}"}
    else:
        schema = {
            "format_schema_source": "string",
            "format_schema": proto_text(),
            "format_schema_message_name": ROOT_MESSAGE,
        }
    return {
        **schema,
        "input_format_protobuf_oneof_presence": 1,
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
    }


def _is_bad_data(exc: BaseException) -> bool:
    """An error the data itself causes, which no retry will cure. Requests are
    validated before they are spooled, so this is a safety valve, not a path."""
    text = str(exc)
    return any(code in text for code in ("CANNOT_PARSE_PROTOBUF", "UNKNOWN_PROTOBUF_FORMAT"))


class Inserter:
    """Worker threads that insert sealed segments, each with its own client."""

    def __init__(
        self,
        spool: Spool,
        connect: Callable[[], Any],
        *,
        workers: int = 1,
        # a store that comes back is used within 5 s: a longer cap kept the spool
        # full, and exporters throttled, for up to ~25 s after a 30 s outage
        max_backoff: float = 5.0,
        schema_file: Path | None = None,
    ) -> None:
        self._spool = spool
        self._schema_file = schema_file
        self._connect = connect
        self._stopping = threading.Event()
        self._max_backoff = max_backoff
        self._threads = [
            threading.Thread(target=self._run, name=f"forktrace-insert-{i}", daemon=True)
            for i in range(workers)
        ]
        self.inserted_segments = 0
        self.failures = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop after the segment in hand; what is left stays spooled for the next start."""
        self._stopping.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        client = None
        while not self._stopping.is_set():
            segment = self._spool.next_sealed(timeout=0.2)
            if segment is None:
                continue

            def attempt(segment: Segment = segment) -> None:
                nonlocal client
                try:
                    if client is None:
                        client = self._connect()
                    self.insert(client, segment)
                except Exception:
                    self.failures += 1
                    client = None  # a fresh connection for the next attempt
                    raise

            retrying = Retrying(
                # capped exponential backoff with jitter, so several collectors
                # behind one recovering server do not retry in lockstep
                wait=wait_exponential(multiplier=0.2, max=self._max_backoff) + wait_random(0, 0.2),
                retry=retry_if_exception(
                    lambda exc: not self._stopping.is_set() and not _is_bad_data(exc)
                ),
                sleep=self._stopping.wait,
                before_sleep=_log_retry,
                reraise=True,
            )
            try:
                retrying(attempt)
            except Exception as exc:
                if _is_bad_data(exc):
                    self._quarantine(segment, exc)
                continue  # stopping: the segment stays in the spool
            self._spool.done(segment)
            self.inserted_segments += 1

    def insert(self, client: Any, segment: Segment) -> None:
        with open(segment.path, "rb") as body:
            client.raw_insert(
                INGEST_TABLE,
                insert_block=body,
                fmt="Protobuf",
                settings=ingest_settings(segment.token, self._schema_file),
            )

    def _quarantine(self, segment: Segment, exc: BaseException) -> None:
        target = self._spool.directory / "rejected"
        target.mkdir(exist_ok=True)
        shutil.move(segment.path, target / segment.path.name)
        log.error(
            "the store rejects spool segment %s; kept in %s: %s", segment.path.name, target, exc
        )
        self._spool.done(segment)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "insert failed (attempt %d), retrying in %.1fs: %s",
        state.attempt_number,
        state.next_action.sleep if state.next_action else 0,
        exc,
    )
