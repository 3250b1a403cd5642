"""The spool: acknowledged OTLP requests, on disk, until the store has them.

A request is appended to the open segment file and fsynced before the receiver
answers success; concurrent requests share one fsync (group commit). A segment
is a sequence of varint-length-prefixed ``ExportTraceServiceRequest`` messages,
which is exactly ClickHouse's ``Protobuf`` input format, so the inserter hands
the file to the engine as it is.

A segment is sealed when it holds ``batch_spans`` spans or its first request is
``batch_age`` seconds old; sealed segments go to the inserter, which inserts
each one with its file name as the deduplication token and deletes it after the
insert succeeded. On start-up every segment still on disk is sealed and
replayed: one that was inserted just before a crash is dropped by the engine's
deduplication, one that was not is inserted now, so a request acknowledged once
is stored exactly once.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SUFFIX = ".otlp"


class SpoolFullError(Exception):
    """The spool holds more un-inserted data than allowed, or its disk is full."""


@dataclass
class Segment:
    path: Path
    spans: int = 0
    size: int = 0
    created: float = 0.0

    @property
    def token(self) -> str:
        # unique for the life of the table: a sequence number alone would repeat
        # once the spool is empty and the numbering restarts
        return f"forktrace-spool-{self.path.stem}"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _read_varint(data: bytes, offset: int) -> tuple[int, int] | None:
    """The varint at ``offset`` and the offset after it; None if ``data`` ends inside it."""
    value, shift = 0, 0
    for position in range(offset, min(len(data), offset + 10)):
        byte = data[position]
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position + 1
    return None


def _complete_length(path: Path) -> int:
    """How many leading bytes of a segment are whole records (a crash may tear the last)."""
    size = path.stat().st_size
    offset = 0
    with open(path, "rb") as handle:
        while offset < size:
            handle.seek(offset)
            prefix = _read_varint(handle.read(10), 0)
            if prefix is None:
                return offset  # the length prefix itself is torn
            length, used = prefix
            if offset + used + length > size:
                return offset
            offset += used + length
    return offset


def records(path: Path) -> list[bytes]:
    """The whole records of a segment file: each one OTLP request as it was received."""
    data, found, offset = path.read_bytes(), [], 0
    while (prefix := _read_varint(data, offset)) is not None:
        length, start = prefix
        if start + length > len(data):
            break  # torn by a crash
        found.append(data[start : start + length])
        offset = start + length
    return found


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Append:
    __slots__ = ("future", "payload", "spans")

    def __init__(self, payload: bytes, spans: int) -> None:
        self.payload = payload
        self.spans = spans
        self.future: Future[None] = Future()


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        batch_spans: int,
        batch_age: float,
        limit_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.batch_spans = batch_spans
        self.batch_age = batch_age
        self.limit_bytes = limit_bytes
        self._clock = clock
        self._appends: queue.Queue[_Append | str] = queue.Queue()
        self._sealed: queue.Queue[Segment] = queue.Queue()
        self._lock = threading.Lock()
        self._drained = threading.Condition(self._lock)
        self._pending_bytes = 0  # appended or queued, not yet inserted
        self._unfinished = 0  # segments sealed or open, not yet inserted
        self._open: Segment | None = None
        self._handle = None
        self._sequence = 0
        self._writer: threading.Thread | None = None

    # --- start and stop -------------------------------------------------------

    def start(self) -> list[Segment]:
        """Recover what a previous run left (sealing it for the inserter) and start
        the writer. Returns the recovered segments."""
        self.directory.mkdir(parents=True, exist_ok=True)
        recovered = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            complete = _complete_length(path)
            if complete < path.stat().st_size:
                log.warning("spool: dropping a torn, unacknowledged tail of %s", path.name)
                os.truncate(path, complete)
            if complete == 0:
                path.unlink()
                continue
            self._sequence = max(self._sequence, int(path.stem.split("-", 1)[0]))
            recovered.append(Segment(path, spans=-1, size=complete, created=self._clock()))
        for segment in recovered:
            self._pending_bytes += segment.size
            self._unfinished += 1
            self._sealed.put(segment)
        self._writer = threading.Thread(
            target=self._write_loop, name="forktrace-spool", daemon=True
        )
        self._writer.start()
        return recovered

    def close(self) -> None:
        """Seal the open segment and stop the writer (appends after this fail)."""
        if self._writer is not None:
            self._appends.put("stop")
            self._writer.join()
            self._writer = None

    # --- the receivers' side --------------------------------------------------

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def append(self, payload: bytes, spans: int) -> Future[None]:
        """Queue one request; the future completes once it is on disk (fsynced).
        Raises SpoolFullError at once when the spool is over its limit."""
        record_size = len(payload) + 10
        with self._lock:
            if self._pending_bytes + record_size > self.limit_bytes:
                raise SpoolFullError(
                    f"the spool holds {self._pending_bytes} bytes not yet stored "
                    f"(limit {self.limit_bytes})"
                )
            self._pending_bytes += record_size
        item = _Append(payload, spans)
        item.future.add_done_callback(lambda future: self._forget_failed(future, record_size))
        if self._writer is None:
            item.future.set_exception(SpoolFullError("the spool is closed"))
        else:
            self._appends.put(item)
        return item.future

    def _forget_failed(self, future: Future[None], size: int) -> None:
        """A failed append holds no room in the spool."""
        if future.exception() is not None:
            with self._lock:
                self._pending_bytes -= size

    def seal_now(self) -> None:
        """Seal the open segment now (used to flush)."""
        self._appends.put("seal")

    # --- the inserter's side --------------------------------------------------

    def next_sealed(self, timeout: float | None = None) -> Segment | None:
        try:
            return self._sealed.get(timeout=timeout)
        except queue.Empty:
            return None

    def done(self, segment: Segment) -> None:
        """The segment is stored: forget it."""
        segment.path.unlink(missing_ok=True)
        _fsync_directory(self.directory)
        with self._lock:
            self._pending_bytes -= segment.size
            self._unfinished -= 1
            self._drained.notify_all()

    def wait_drained(self, timeout: float) -> bool:
        """Wait until everything appended so far is inserted."""
        self.seal_now()
        with self._lock:
            return self._drained.wait_for(lambda: self._unfinished == 0, timeout=timeout)

    # --- the writer thread ----------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            timeout = None
            if self._open is not None:
                timeout = max(0.0, self._open.created + self.batch_age - self._clock())
            try:
                first = self._appends.get(timeout=timeout)
            except queue.Empty:
                self._seal()
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self._appends.get_nowait())
                except queue.Empty:
                    break
            appends = [item for item in batch if isinstance(item, _Append)]
            if appends:
                self._write(appends)
            if "stop" in batch:
                self._seal()
                self._fail_queued()
                return
            if "seal" in batch or (self._open and self._open.spans >= self.batch_spans):
                self._seal()

    def _open_segment(self) -> Segment:
        self._sequence += 1
        path = self.directory / f"{self._sequence:012d}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        # unbuffered: a write the disk refused must leave nothing behind in a
        # buffer, where a later flush or the close at sealing would write it
        # (an unacknowledged record) or fail again and stop the writer thread
        self._handle = open(path, "ab", buffering=0)  # noqa: SIM115 - kept open across appends
        _fsync_directory(self.directory)
        with self._lock:
            self._unfinished += 1
        self._open = Segment(path, created=self._clock())
        return self._open

    def _write(self, appends: list[_Append]) -> None:
        try:
            segment = self._open or self._open_segment()
            handle = self._handle
            assert handle is not None
            start = segment.size
            records = memoryview(b"".join(_varint(len(a.payload)) + a.payload for a in appends))
            try:
                while records:  # a full disk may take part of a write before refusing
                    records = records[handle.write(records) :]
                os.fsync(handle.fileno())
            except OSError:
                # no torn record left behind a failed write (shrinking needs no space)
                os.ftruncate(handle.fileno(), start)
                raise
        except OSError as exc:
            error = SpoolFullError(f"cannot write the spool: {exc.strerror or exc}")
            for item in appends:
                item.future.set_exception(error)
            return
        written = self._handle.tell() - start
        segment.size += written
        segment.spans += sum(a.spans for a in appends)
        with self._lock:
            # the limit check reserved len+10 per record; keep the exact size
            self._pending_bytes += written - sum(len(a.payload) + 10 for a in appends)
        for item in appends:
            item.future.set_result(None)

    def _seal(self) -> None:
        if self._open is None:
            return
        assert self._handle is not None
        self._handle.close()
        self._handle = None
        segment, self._open = self._open, None
        self._sealed.put(segment)

    def _fail_queued(self) -> None:
        while True:
            try:
                item = self._appends.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, _Append):
                item.future.set_exception(SpoolFullError("the collector is stopping"))
