"""The inserter moves sealed spool segments into the store, and waits out a store
that fails without losing or doubling anything."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from forktrace.collector.inserter import Inserter
from forktrace.collector.spool import Spool


def request(spans: int) -> bytes:
    message = ExportTraceServiceRequest()
    scope_spans = message.resource_spans.add().scope_spans.add()
    for i in range(spans):
        scope_spans.spans.add(trace_id=b"\x01" * 16, span_id=bytes([i + 1]) * 8, name=f"s{i}")
    return message.SerializeToString()


def test_a_failing_store_is_retried_until_it_recovers(clickhouse, tmp_path):
    attempts = []

    def connect():
        attempts.append(1)
        if len(attempts) <= 2:
            raise ConnectionError("the store is down")
        return clickhouse

    spool = Spool(tmp_path, batch_spans=5, batch_age=3600, limit_bytes=1 << 20)
    spool.start()
    inserter = Inserter(spool, connect, workers=1, max_backoff=0.5)
    inserter.start()
    try:
        spool.append(request(3), 3).result(timeout=10)
        spool.append(request(3), 3).result(timeout=10)  # 6 spans: the segment is sealed
        assert spool.wait_drained(timeout=60)
    finally:
        inserter.stop()
        spool.close()
    assert inserter.failures == 2 and inserter.inserted_segments == 1
    assert clickhouse.query("SELECT count(), uniqExact(SpanId) FROM otel_traces").result_rows == [
        (6, 3)
    ]
    assert not list(tmp_path.glob("*.otlp"))


def test_stopping_leaves_an_uninserted_segment_in_the_spool(tmp_path):
    def connect():
        raise ConnectionError("the store is down")

    spool = Spool(tmp_path, batch_spans=1, batch_age=3600, limit_bytes=1 << 20)
    spool.start()
    inserter = Inserter(spool, connect, workers=1, max_backoff=0.2)
    inserter.start()
    spool.append(request(1), 1).result(timeout=10)
    assert not spool.wait_drained(timeout=1)
    inserter.stop()
    spool.close()
    assert len(list(tmp_path.glob("*.otlp"))) == 1
