"""The spool keeps acknowledged requests on disk until they are stored."""

from __future__ import annotations

import errno
import os

import pytest

from forktrace.collector import spool as spool_module
from forktrace.collector.spool import Spool, SpoolFullError, _varint, records


def make(directory, **options) -> Spool:
    settings = {"batch_spans": 1000, "batch_age": 3600.0, "limit_bytes": 1 << 20, **options}
    return Spool(directory, **settings)


def test_an_append_is_on_disk_when_its_future_completes(tmp_path):
    spool = make(tmp_path)
    spool.start()
    spool.append(b"first", 1).result(timeout=10)
    spool.append(b"x" * 300, 2).result(timeout=10)
    (segment,) = tmp_path.glob("*.otlp")
    assert records(segment) == [b"first", b"x" * 300]
    spool.close()


def test_a_segment_is_sealed_by_span_count_and_by_age(tmp_path):
    spool = make(tmp_path, batch_spans=3, batch_age=0.2)
    spool.start()
    spool.append(b"a", 2).result(timeout=10)
    assert spool.next_sealed(timeout=0.05) is None
    spool.append(b"b", 2).result(timeout=10)
    by_count = spool.next_sealed(timeout=10)
    assert by_count is not None and by_count.spans == 4
    spool.append(b"c", 1).result(timeout=10)
    by_age = spool.next_sealed(timeout=10)
    assert by_age is not None and records(by_age.path) == [b"c"]
    assert by_count.token != by_age.token
    spool.done(by_count)
    spool.done(by_age)
    assert not list(tmp_path.glob("*.otlp")) and spool.pending_bytes == 0
    spool.close()


def test_the_limit_rejects_at_once_and_frees_as_segments_are_stored(tmp_path):
    spool = make(tmp_path, limit_bytes=1000, batch_spans=1)
    spool.start()
    spool.append(b"x" * 600, 1).result(timeout=10)
    with pytest.raises(SpoolFullError):
        spool.append(b"y" * 600, 1)
    segment = spool.next_sealed(timeout=10)
    spool.done(segment)
    spool.append(b"y" * 600, 1).result(timeout=10)
    spool.close()


def test_a_restart_replays_what_is_left_and_drops_a_torn_tail(tmp_path):
    spool = make(tmp_path)
    spool.start()
    spool.append(b"acknowledged", 1).result(timeout=10)
    spool.close()
    (segment,) = tmp_path.glob("*.otlp")
    with open(segment, "ab") as handle:  # a crash in the middle of the next write
        handle.write(_varint(100) + b"partial")

    again = make(tmp_path)
    recovered = again.start()
    assert [s.path for s in recovered] == [segment]
    assert records(segment) == [b"acknowledged"]
    assert again.next_sealed(timeout=1).path == segment
    again.append(b"new", 1).result(timeout=10)
    newest = max(tmp_path.glob("*.otlp"))
    assert newest != segment  # numbering continues after the recovered segment
    again.close()


def test_wait_drained_seals_and_waits_for_the_inserter(tmp_path):
    spool = make(tmp_path)
    spool.start()
    spool.append(b"a", 1).result(timeout=10)
    assert not spool.wait_drained(timeout=0.2)
    spool.done(spool.next_sealed(timeout=10))
    assert spool.wait_drained(timeout=10)
    spool.close()


class _DiskFilling:
    """A segment file on a disk that takes part of a write, then refuses (ENOSPC)."""

    full = False

    def __init__(self, handle) -> None:
        self._handle = handle

    def write(self, data) -> int:
        if not _DiskFilling.full:
            return self._handle.write(data)
        if len(data) > 1:
            return self._handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._handle, name)


def test_a_full_disk_refuses_appends_leaves_whole_records_and_recovers(tmp_path, monkeypatch):
    def filling_open(*args, **kwargs) -> _DiskFilling:
        return _DiskFilling(open(*args, **kwargs))

    monkeypatch.setattr(spool_module, "open", filling_open, raising=False)
    monkeypatch.setattr(_DiskFilling, "full", False)
    spool = make(tmp_path)
    spool.start()
    spool.append(b"first", 1).result(timeout=10)
    _DiskFilling.full = True
    with pytest.raises(SpoolFullError, match="No space left"):
        spool.append(b"y" * 5000, 1).result(timeout=10)
    (segment,) = tmp_path.glob("*.otlp")
    assert records(segment) == [b"first"]  # the refused record's first half is gone
    spool.seal_now()  # sealing on a full disk must not stop the writer
    sealed = spool.next_sealed(timeout=10)
    assert sealed is not None and records(sealed.path) == [b"first"]
    _DiskFilling.full = False
    spool.append(b"third", 1).result(timeout=10)
    assert spool.pending_bytes == sum(path.stat().st_size for path in tmp_path.glob("*.otlp"))
    spool.close()
