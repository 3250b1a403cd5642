"""OTLP requests decoded by the engine become otel_traces rows exactly as the
upstream OpenTelemetry Collector ClickHouse exporter writes them."""

from __future__ import annotations

import tempfile
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from forktrace.collector.inserter import INGEST_TABLE, ingest_settings, write_schema_file
from forktrace.collector.spool import _varint

# The embedded engine reads the OTLP schema from a file, as the collector does.
SCHEMA_FILE = write_schema_file(Path(tempfile.gettempdir()) / "forktrace-test-format-schemas")
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")


def insert(client, *requests: ExportTraceServiceRequest, token: str = "") -> None:
    body = b"".join(_varint(len(raw)) + raw for raw in (r.SerializeToString() for r in requests))
    client.raw_insert(
        INGEST_TABLE,
        insert_block=body,
        fmt="Protobuf",
        settings=ingest_settings(token, SCHEMA_FILE),
    )


def attributes_request() -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value="svc"))
    resource_spans.resource.attributes.add(key="host.cpu", value=AnyValue(int_value=2))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name, scope_spans.scope.version = "scope", "1.0"
    span = scope_spans.spans.add(trace_id=TRACE, span_id=b"\x01" * 8, name="values", kind=2)
    add = span.attributes.add
    add(key="string", value=AnyValue(string_value="text"))
    add(key="empty", value=AnyValue(string_value=""))
    add(key="zero", value=AnyValue(int_value=0))
    add(key="negative", value=AnyValue(int_value=-7))
    add(key="false", value=AnyValue(bool_value=False))
    add(key="double", value=AnyValue(double_value=0.1))
    add(key="whole", value=AnyValue(double_value=3.0))
    add(key="bytes", value=AnyValue(bytes_value=b"\x00\xff"))
    add(key="unset", value=AnyValue())
    mixed = add(key="mixed").value.array_value.values
    mixed.add(string_value='say "hi" <now> & then')
    mixed.add(int_value=1)
    mixed.add(double_value=1.5)
    mixed.add(bool_value=True)
    mixed.add(bytes_value=b"\x01")
    mixed.add()
    nested = add(key="nested").value.kvlist_value.values
    nested.add(key="b", value=AnyValue(int_value=2))
    inner = nested.add(key="a").value.array_value.values
    inner.add(string_value="x")
    inner.add().kvlist_value.values.add(key="deep", value=AnyValue(int_value=1))
    return request


def test_attribute_values_take_the_upstream_string_forms(clickhouse):
    insert(clickhouse, attributes_request())
    row = clickhouse.query(
        "SELECT ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanKind, SpanAttributes FROM otel_traces"
    ).result_rows[0]
    assert row[:5] == ("svc", {"service.name": "svc", "host.cpu": "2"}, "scope", "1.0", "Server")
    assert row[5] == {
        "string": "text",
        "empty": "",
        "zero": "0",
        "negative": "-7",
        "false": "false",
        "double": "0.1",
        "whole": "3",
        "bytes": "AP8=",
        "unset": "",
        "mixed": '["say \\"hi\\" \\u003cnow\\u003e \\u0026 then",1,1.5,true,"AQ==",null]',
        # keys sorted as Go's encoding/json sorts a map; a list or array on the
        # third level is past the depth the engine reads: null (a documented limit)
        "nested": '{"a":["x",null],"b":2}',
    }


def test_ids_kinds_status_times_events_and_links(clickhouse):
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()  # no service.name at all
    for kind in range(6):
        span = resource_spans.scope_spans.add().spans.add(
            trace_id=TRACE,
            span_id=bytes([kind + 1]) * 8,
            parent_span_id=b"" if kind == 0 else b"\x01" * 8,
            trace_state="k=v" if kind == 0 else "",
            name=f"kind {kind}",
            kind=kind,
            start_time_unix_nano=1_764_300_000_123_456_789,
            end_time_unix_nano=1_764_300_001_123_456_790,
        )
        span.status.code = kind % 3
        span.status.message = "broken" if kind % 3 == 2 else ""
        event = span.events.add(
            time_unix_nano=1_764_300_000_200_000_001, name="forktrace.intervention"
        )
        event.attributes.add(key="kind", value=AnyValue(string_value="approve"))
        link = span.links.add(trace_id=b"\0" * 16, span_id=b"\x02" * 8, trace_state="a=b")
        link.attributes.add(key="n", value=AnyValue(int_value=3))
    insert(clickhouse, request)
    rows = clickhouse.query(
        "SELECT SpanKind, StatusCode, StatusMessage, TraceId, SpanId, ParentSpanId, TraceState, ServiceName, "
        "toUnixTimestamp64Nano(Timestamp), Duration, "
        "arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp), Events.Name, Events.Attributes, "
        "Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes "
        "FROM otel_traces ORDER BY SpanName"
    ).result_rows
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("Unspecified", "Unset", ""),
        ("Internal", "Ok", ""),
        ("Server", "Error", "broken"),
        ("Client", "Unset", ""),
        ("Producer", "Ok", ""),
        ("Consumer", "Error", "broken"),
    ]
    first = rows[0]
    assert first[3:8] == (TRACE.hex(), "01" * 8, "", "k=v", "")
    assert rows[1][5] == "01" * 8
    assert first[8:10] == (1_764_300_000_123_456_789, 1_000_000_001)
    assert first[10:13] == (
        [1_764_300_000_200_000_001],
        ["forktrace.intervention"],
        [{"kind": "approve"}],
    )
    # an all-zero id is written empty, as the upstream exporter does
    assert first[13:] == ([""], ["02" * 8], ["a=b"], [{"n": "3"}])


def test_one_insert_holds_many_requests(clickhouse):
    insert(clickhouse, *[attributes_request() for _ in range(50)])
    assert clickhouse.query("SELECT count() FROM otel_traces").result_rows == [(50,)]


def test_a_replayed_segment_is_not_stored_twice(clickhouse):
    requests = [attributes_request() for _ in range(3)]
    insert(clickhouse, *requests, token="segment-1")
    insert(clickhouse, *requests, token="segment-1")  # the replay after a crash
    insert(clickhouse, *requests, token="segment-2")  # new data that happens to be equal
    assert clickhouse.query("SELECT count() FROM otel_traces").result_rows == [(6,)]
    # tables filled by materialised views deduplicate too
    assert clickhouse.query("SELECT count() FROM otel_traces_trace_id_ts").result_rows == [(2,)]
