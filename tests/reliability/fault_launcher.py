"""``forktrace up`` with faults injected from outside the production code.

Run as ``python fault_launcher.py [FAULT OPTIONS] -- [forktrace up options]``.
The faults are patches applied in this process before the CLI starts, so the
collector under test is the real one, started the way a user starts it:

``--store-down-while PATH``
    every insert the store client makes fails like an unreachable ClickHouse
    (``OperationalError``) while PATH exists; the receivers are untouched.
``--kill-after-inserts N``
    the process SIGKILLs itself after its Nth successful insert, before the
    spool segment is deleted: the worst moment of a crash, when a replay
    finds a segment the store already holds.
``--disk-full-while PATH``
    every write to a spool segment fails with ENOSPC while PATH exists (for
    machines where a tiny tmpfs cannot be mounted).
``--log-inserts PATH``
    appends a line per successful insert to PATH: time, pid, the segment's
    deduplication token and the trace ids it holds (to explain a duplicate).
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any


def _store_down_while(flag: Path) -> None:
    from clickhouse_connect.driver.exceptions import OperationalError

    from forktrace.collector import store

    connect = store.connect

    def connect_with_fault(*args: Any, **kwargs: Any) -> Any:
        client = connect(*args, **kwargs)
        raw_insert = client.raw_insert

        def failing_raw_insert(*insert_args: Any, **insert_kwargs: Any) -> Any:
            if flag.exists():
                raise OperationalError("fault injection: the store is unreachable")
            return raw_insert(*insert_args, **insert_kwargs)

        client.raw_insert = failing_raw_insert
        return client

    store.connect = connect_with_fault


def _kill_after_inserts(count: int) -> None:
    from forktrace.collector.spool import Spool

    done = Spool.done
    inserted = 0

    def done_or_die(self: Spool, segment: Any) -> None:
        nonlocal inserted
        inserted += 1
        if inserted >= count:
            os.kill(os.getpid(), signal.SIGKILL)
        done(self, segment)

    Spool.done = done_or_die  # type: ignore[method-assign]


class _FullDiskFile:
    """A spool segment file whose writes fail with ENOSPC while a flag file exists."""

    def __init__(self, handle: Any, flag: Path) -> None:
        self._handle = handle
        self._flag = flag

    def write(self, data: bytes) -> int:
        if self._flag.exists():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def _disk_full_while(flag: Path) -> None:
    from forktrace.collector import spool

    def spool_open(*args: Any, **kwargs: Any) -> Any:
        return _FullDiskFile(open(*args, **kwargs), flag)

    # module globals shadow the builtin for the spool module only
    spool.open = spool_open  # type: ignore[attr-defined]


def _log_inserts(path: Path) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from forktrace.collector.inserter import Inserter
    from forktrace.collector.spool import Segment, records

    insert = Inserter.insert

    def insert_and_log(self: Inserter, client: Any, segment: Segment) -> None:
        insert(self, client, segment)
        trace_ids = []
        for record in records(segment.path):
            request = ExportTraceServiceRequest.FromString(record)
            trace_ids.append(request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex())
        with open(path, "a") as log:
            log.write(f"{time.time():.3f} {os.getpid()} {segment.token} {' '.join(trace_ids)}\n")

    Inserter.insert = insert_and_log  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store-down-while", type=Path)
    parser.add_argument("--kill-after-inserts", type=int)
    parser.add_argument("--disk-full-while", type=Path)
    parser.add_argument("--log-inserts", type=Path)
    parser.add_argument("up_args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    if options.store_down_while:
        _store_down_while(options.store_down_while)
    if options.kill_after_inserts:
        _kill_after_inserts(options.kill_after_inserts)
    if options.disk_full_while:
        _disk_full_while(options.disk_full_while)
    if options.log_inserts:
        _log_inserts(options.log_inserts)

    from forktrace.cli import main as forktrace_main

    up_args = [arg for arg in options.up_args if arg != "--"]
    sys.argv = ["forktrace", "up", *up_args]
    forktrace_main()


if __name__ == "__main__":
    main(sys.argv[1:])
