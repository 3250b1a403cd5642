"""The inserter moves sealed spool segments into the store, and waits out a store
that fails without losing or doubling anything."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from forktrace.collector.inserter import Inserter
from forktrace.collector.spool import Segment, Spool


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


def agent_run_request() -> ExportTraceServiceRequest:
    """One run with a fork of two branches, a model call, a tool call, a branch
    outcome event and an intervention: a row for every decision-layer table."""
    message = ExportTraceServiceRequest()
    scope_spans = message.resource_spans.add().scope_spans.add()
    ids = iter(range(1, 100))

    def span(name: str, kind: str, parent: bytes = b"", **attributes: str | int) -> Any:
        added = scope_spans.spans.add(
            trace_id=b"\x02" * 16,
            span_id=bytes([next(ids)]) * 8,
            parent_span_id=parent,
            name=name,
            start_time_unix_nano=1_764_300_000_000_000_000,
            end_time_unix_nano=1_764_300_001_000_000_000,
        )
        for key, value in {
            "forktrace.run.id": "run-1",
            "forktrace.kind": kind,
            **attributes,
        }.items():
            pair = added.attributes.add(key=key)
            if isinstance(value, int):
                pair.value.int_value = value
            else:
                pair.value.string_value = value
        return added

    run = span("run", "run", **{"forktrace.run.name": "fix the parser"})
    fork = span("fork", "fork", run.span_id, **{"forktrace.fork.strategy": "race"})
    outcome = fork.events.add(
        time_unix_nano=1_764_300_000_500_000_000, name="forktrace.branch.outcome"
    )
    for key, value in {"forktrace.branch.id": "b1", "forktrace.branch.outcome": "won"}.items():
        outcome.attributes.add(key=key).value.string_value = value
    for index, branch_id in enumerate(("b1", "b2")):
        lineage = {"forktrace.fork.id": "f1", "forktrace.branch.id": branch_id}
        branch = span(
            "branch", "branch", fork.span_id, **lineage, **{"forktrace.branch.index": index}
        )
        span(
            "chat",
            "llm",
            branch.span_id,
            **lineage,
            **{
                "gen_ai.request.model": "claude-sonnet-4",
                "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 10,
            },
        )
        tool = span("bash", "tool", branch.span_id, **lineage, **{"gen_ai.tool.name": "bash"})
        note = tool.events.add(
            time_unix_nano=1_764_300_000_600_000_000, name="forktrace.intervention"
        )
        note.attributes.add(key="kind").value.string_value = "approve"
    return message


def table_digests(client: Any) -> dict[str, tuple[int, int]]:
    """(rows, a hash of every row) for each table that stores data."""
    tables = client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree' AND name != 'forktrace_schema_migrations'"
    ).result_rows
    return {
        table: tuple(
            client.query(
                f"SELECT count(), sum(cityHash64(toString(tuple(*)))) FROM {table}"
            ).result_rows[0]
        )
        for (table,) in tables
    }


def test_a_replayed_segment_adds_nothing_to_any_table(clickhouse, tmp_path):
    for (table,) in clickhouse.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'"
    ).result_rows:
        # merges would change the row counts this test compares
        clickhouse.command(f"SYSTEM STOP MERGES {table}")
    spool = Spool(tmp_path, batch_spans=1, batch_age=3600, limit_bytes=1 << 20)
    spool.start()
    spool.append(agent_run_request().SerializeToString(), 8).result(timeout=10)
    spool.close()
    segment = spool.next_sealed(timeout=10)
    inserter = Inserter(spool, lambda: clickhouse)

    seeded = {table for table, (rows, _) in table_digests(clickhouse).items() if rows}
    inserter.insert(clickhouse, segment)
    first = table_digests(clickhouse)
    filled = set(first) - seeded  # otel_traces and every table a view fills from it
    assert {"otel_traces", "forktrace_spans", "forktrace_run_totals"} <= filled
    assert all(first[table][0] for table in filled), first
    inserter.insert(clickhouse, segment)  # the replay after a crash: same file, same token
    assert table_digests(clickhouse) == first

    other = Segment(segment.path)  # the same bytes under a new name: new data
    other.path = segment.path.with_name("000000000099-other.otlp")
    segment.path.rename(other.path)
    inserter.insert(clickhouse, other)
    after = table_digests(clickhouse)
    assert {table: after[table][0] for table in filled} == {
        table: 2 * first[table][0] for table in filled
    }
