"""Spans from the real OpenTelemetry SDK and OTLP exporters, over gRPC and over
HTTP, reach a collector subprocess and come back from ``forktrace sql`` with
every column as the upstream ClickHouse exporter would write it."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from collector_process import CollectorProcess
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

COUNT_SPANS = "SELECT count() FROM otel_traces"
FORKTRACE = [sys.executable, "-m", "forktrace.cli"]


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    process = CollectorProcess(
        tmp_path_factory.mktemp("collector"),
        "--batch-age",
        "0.1",
        "--max-request-mb",
        "1",
        "--max-decompressed-mb",
        "1",
    ).start()
    try:
        yield process
        output = process.stop()
        assert "stopped." in output
    finally:
        process.kill()


def send_spans(exporter, service: str) -> dict[str, int]:
    """A small agent-like trace: a server root, a client child with an error,
    events, a link, and attributes of every OTLP value type."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment": "test"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("forktrace.tests", "9.9.9")
    linked = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(1),
    )
    with tracer.start_as_current_span("invoke_agent coder", kind=SpanKind.SERVER) as root:
        root.set_attributes(
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.usage.input_tokens": 1200,
                "forktrace.decision.confidence": 0.75,
                "forktrace.branch.won": True,
                "forktrace.decision.options": ["grep", "parse", "rewrite"],
                "ints": [1, 2, 3],
                "text": "x" * 5000,
            }
        )
        with tracer.start_as_current_span(
            "execute_tool grep",
            kind=SpanKind.CLIENT,
            links=[Link(linked, {"forktrace.link": "fork"})],
        ) as child:
            child.add_event("forktrace.intervention", {"kind": "approve", "count": 2})
            child.set_status(Status(StatusCode.ERROR, "tool failed"))
    ids = {
        "trace_id": root.get_span_context().trace_id,
        "root": root.get_span_context().span_id,
        "child": child.get_span_context().span_id,
    }
    provider.shutdown()
    return ids


def forktrace_sql(collector: CollectorProcess, query: str) -> list[dict]:
    """``forktrace sql`` as a user runs it: it finds the running collector by the data dir."""
    completed = subprocess.run(
        [*FORKTRACE, "sql", query, "--format", "json", "--data-dir", str(collector.data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(completed.stdout)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_spans_arrive_with_every_column(collector: CollectorProcess, transport: str) -> None:
    service = f"agent-{transport}"
    exporter = (
        GrpcExporter(endpoint=collector.grpc_endpoint, insecure=True)
        if transport == "grpc"
        else HttpExporter(endpoint=f"{collector.http_endpoint}/v1/traces")
    )
    ids = send_spans(exporter, service)
    count = f"SELECT count() FROM otel_traces WHERE ServiceName = '{service}'"
    assert collector.wait_for_count(count, 2) == 2

    rows = forktrace_sql(
        collector,
        f"SELECT * EXCEPT (Timestamp, `Events.Timestamp`), toUnixTimestamp64Nano(Timestamp) AS start_ns, "
        f"arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`) AS event_ns "
        f"FROM otel_traces WHERE ServiceName = '{service}' ORDER BY SpanKind DESC",
    )
    root, child = rows
    trace_id = f"{ids['trace_id']:032x}"
    assert root["TraceId"] == child["TraceId"] == trace_id
    assert root["SpanId"] == f"{ids['root']:016x}"
    assert child["SpanId"] == f"{ids['child']:016x}"
    assert root["ParentSpanId"] == "" and child["ParentSpanId"] == root["SpanId"]
    assert (root["SpanName"], root["SpanKind"]) == ("invoke_agent coder", "Server")
    assert (child["SpanName"], child["SpanKind"]) == ("execute_tool grep", "Client")
    assert root["ServiceName"] == service
    assert root["ResourceAttributes"]["service.name"] == service
    assert root["ResourceAttributes"]["deployment.environment"] == "test"
    assert root["ResourceAttributes"]["telemetry.sdk.language"] == "python"
    assert (root["ScopeName"], root["ScopeVersion"]) == ("forktrace.tests", "9.9.9")
    assert root["SpanAttributes"] == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.usage.input_tokens": "1200",
        "forktrace.decision.confidence": "0.75",
        "forktrace.branch.won": "true",
        "forktrace.decision.options": '["grep","parse","rewrite"]',
        "ints": "[1,2,3]",
        "text": "x" * 5000,
    }
    assert (root["StatusCode"], root["StatusMessage"]) == ("Unset", "")
    assert (child["StatusCode"], child["StatusMessage"]) == ("Error", "tool failed")
    assert root["Duration"] > 0 and root["Duration"] >= child["Duration"]
    assert abs(root["start_ns"] - time.time_ns()) < 600 * 10**9
    assert child["Events.Name"] == ["forktrace.intervention"]
    assert child["Events.Attributes"] == [{"kind": "approve", "count": "2"}]
    assert child["start_ns"] <= child["event_ns"][0] <= child["start_ns"] + child["Duration"]
    assert child["Links.TraceId"] == ["0af7651916cd43dd8448eb211c80319c"]
    assert child["Links.SpanId"] == ["00f067aa0ba902b7"]
    assert child["Links.TraceState"] == [""]
    assert child["Links.Attributes"] == [{"forktrace.link": "fork"}]
    assert root["Events.Name"] == [] and root["Links.TraceId"] == []

    lookup = forktrace_sql(
        collector, f"SELECT count() AS n FROM otel_traces_trace_id_ts WHERE TraceId = '{trace_id}'"
    )
    assert lookup == [{"n": 1}]


def post(
    collector: CollectorProcess, body: bytes, content_type: str, **headers: str
) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(
        f"{collector.http_endpoint}/v1/traces",
        data=body,
        method="POST",
        headers={"Content-Type": content_type, **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


OTLP_JSON = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "json-agent"}}]
            },
            "scopeSpans": [
                {
                    "scope": {"name": "raw-json"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "name": "chat",
                            "kind": 3,
                            "startTimeUnixNano": "1764300000000000000",
                            "endTimeUnixNano": "1764300000500000000",
                            "attributes": [
                                {"key": "n", "value": {"intValue": "42"}},
                                {"key": "raw", "value": {"bytesValue": "AAE="}},
                                {
                                    "key": "kv",
                                    "value": {
                                        "kvlistValue": {
                                            "values": [
                                                {"key": "z", "value": {"boolValue": False}},
                                                {"key": "a", "value": {"stringValue": "<b>"}},
                                            ]
                                        }
                                    },
                                },
                            ],
                            "status": {"code": 1},
                        },
                        {"traceId": "", "spanId": "eee19b7ec3c1b175", "name": "invalid id"},
                    ],
                }
            ],
        }
    ]
}


def test_otlp_json_gzip_with_a_partial_success(collector: CollectorProcess) -> None:
    body = gzip.compress(json.dumps(OTLP_JSON).encode())
    status, headers, answer = post(
        collector, body, "application/json", **{"Content-Encoding": "gzip"}
    )
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(answer) == {
        "partialSuccess": {
            "rejectedSpans": "1",
            "errorMessage": "1 span(s) dropped: trace ids must be 16 non-zero bytes, span ids 8 non-zero bytes",
        }
    }
    count = "SELECT count() FROM otel_traces WHERE ServiceName = 'json-agent'"
    assert collector.wait_for_count(count, 1) == 1
    (row,) = collector.query(
        "SELECT TraceId, SpanId, SpanKind, StatusCode, Duration, SpanAttributes, toUnixTimestamp64Nano(Timestamp) "
        "FROM otel_traces WHERE ServiceName = 'json-agent'"
    ).rows
    assert row == (
        "5b8efff798038103d269b633813fc60c",
        "eee19b7ec3c1b174",
        "Client",
        "Ok",
        500_000_000,
        {"n": "42", "raw": "AAE=", "kv": '{"a":"\\u003cb\\u003e","z":false}'},
        1764300000000000000,
    )


def _valid_request(service: str) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    span = resource_spans.scope_spans.add().spans.add(
        trace_id=os.urandom(16),
        span_id=os.urandom(8),
        name="ok",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
    )
    span.attributes.add(key="a").value.string_value = "b"
    return request.SerializeToString()


def test_bad_input_gets_its_error_and_spoils_nothing(collector: CollectorProcess) -> None:
    status, _, answer = post(collector, _valid_request("before-bad"), "application/x-protobuf")
    assert (
        status == 200
        and ExportTraceServiceResponse.FromString(answer) == ExportTraceServiceResponse()
    )
    before = "SELECT count() FROM otel_traces WHERE ServiceName = 'before-bad'"
    assert collector.wait_for_count(before, 1) == 1
    total = collector.query(COUNT_SPANS).rows[0][0]

    valid = _valid_request("x")
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in about 64 KiB
    cases = [
        (os.urandom(2048), "application/x-protobuf", {}, 400),
        (valid[: len(valid) // 2], "application/x-protobuf", {}, 400),
        (b'{"resourceSpans": [', "application/json", {}, 400),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            {},
            400,
        ),
        (valid, "text/plain", {}, 415),
        (os.urandom(2 * 1024 * 1024), "application/x-protobuf", {}, 413),
        (bomb, "application/x-protobuf", {"Content-Encoding": "gzip"}, 413),
        (b"not gzip at all", "application/x-protobuf", {"Content-Encoding": "gzip"}, 400),
    ]
    for body, content_type, headers, expected in cases:
        status, _, answer = post(collector, body, content_type, **headers)
        assert status == expected, (content_type, headers, answer[:200])

    channel = grpc.insecure_channel(collector.grpc_endpoint.removeprefix("http://"))
    export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
    with pytest.raises(grpc.RpcError) as raised:
        export(os.urandom(1024), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as raised:
        export(os.urandom(2 * 1024 * 1024), timeout=30)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # past the message size limit
    channel.close()

    assert collector.health()["status"] == "ok"
    status, _, _ = post(collector, _valid_request("after-bad"), "application/x-protobuf")
    assert status == 200
    after = "SELECT count() FROM otel_traces WHERE ServiceName = 'after-bad'"
    assert collector.wait_for_count(after, 1) == 1
    assert collector.query(COUNT_SPANS).rows[0][0] == total + 1
    assert collector.query(before).rows[0][0] == 1


def test_the_sql_endpoint_is_read_only(collector: CollectorProcess) -> None:
    completed = subprocess.run(
        [*FORKTRACE, "sql", "DROP TABLE otel_traces", "--data-dir", str(collector.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1
    assert "readonly" in completed.stderr.lower()
    result = collector.query("SELECT {n:UInt8} + 1 AS x", {"n": 41})
    assert (result.column_names, result.rows) == (["x"], [(42,)])


def test_a_second_collector_on_the_same_data_dir_is_refused(
    collector: CollectorProcess, tmp_path: Path
) -> None:
    completed = subprocess.run(
        [
            *FORKTRACE,
            "up",
            "--data-dir",
            str(collector.data_dir),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 1
    assert "in use by another process" in completed.stderr


def _padded_request(service: str, spans: int, pad: int) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    scope_spans = resource_spans.scope_spans.add()
    trace_id = os.urandom(16)
    for _ in range(spans):
        span = scope_spans.spans.add(
            trace_id=trace_id,
            span_id=os.urandom(8),
            name="step",
            start_time_unix_nano=1,
            end_time_unix_nano=2,
        )
        span.attributes.add(key="gen_ai.tool.call.result").value.string_value = "r" * pad
    return request.SerializeToString()


def test_acknowledged_spans_survive_sigkill_exactly_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    spool = data_dir / "spool"
    durable = "SELECT count() FROM otel_traces WHERE ServiceName = 'durable'"
    # nothing is inserted before the kill: a batch waits an hour or a million spans
    first = CollectorProcess(
        data_dir,
        "--batch-age",
        "3600",
        "--batch-spans",
        "1000000",
        "--spool-limit-mb",
        "1",
        "--max-request-mb",
        "1",
    ).start()
    try:
        acknowledged = 0
        for _ in range(20):
            status, headers, _ = post(
                first, _padded_request("durable", 20, 4000), "application/x-protobuf"
            )
            if status == 429:
                assert headers["Retry-After"] == "5"
                break
            assert status == 200
            acknowledged += 20
        else:
            pytest.fail("the spool limit never answered 429")

        channel = grpc.insecure_channel(first.grpc_endpoint.removeprefix("http://"))
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as raised:
            export(_padded_request("durable", 20, 4000), timeout=30)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = dict(raised.value.trailing_metadata())["grpc-status-details-bin"]
        retry_info = error_details_pb2.RetryInfo()
        status_pb2.Status.FromString(details).details[0].Unpack(retry_info)
        assert retry_info.retry_delay.seconds == 5
        channel.close()

        assert first.query(durable).rows[0][0] == 0
        segments = {path.name: path.read_bytes() for path in spool.glob("*.otlp")}
        assert segments
    finally:
        first.kill()  # SIGKILL: no flush, no goodbye

    second = CollectorProcess(data_dir, "--batch-age", "0.1").start()
    try:
        assert second.wait_for_count(durable, acknowledged) == acknowledged
        second.stop()
    finally:
        second.kill()
    assert not list(spool.glob("*.otlp"))

    # The worst moment of a crash: the segments were inserted, but the crash
    # came before they were deleted. Put them back; the replay must add nothing.
    for name, content in segments.items():
        (spool / name).write_bytes(content)
    third = CollectorProcess(data_dir, "--batch-age", "0.1").start()
    try:
        deadline = time.monotonic() + 180
        while list(spool.glob("*.otlp")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not list(spool.glob("*.otlp"))
        counts = third.query(
            "SELECT count(), uniqExact(SpanId), uniqExact(TraceId) FROM otel_traces WHERE ServiceName = 'durable'"
        ).rows[0]
        assert counts == (acknowledged, acknowledged, acknowledged // 20)
        lookups = third.query(
            "SELECT count() FROM otel_traces_trace_id_ts WHERE TraceId IN "
            "(SELECT TraceId FROM otel_traces WHERE ServiceName = 'durable')"
        ).rows[0][0]
        assert lookups == acknowledged // 20
        third.stop()
    finally:
        third.kill()


EMBEDDED_SCRIPT = """
import sys
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from forktrace.collector import embedded
from forktrace.collector.reader import open_reader

collector = embedded.start(sys.argv[1])
provider = TracerProvider(resource=Resource.create({"service.name": "embedded"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.grpc_endpoint, insecure=True)))
with provider.get_tracer("demo").start_as_current_span("run"):
    pass
provider.shutdown()
assert collector.flush(timeout=120)
print(collector.query("SELECT ServiceName, SpanName FROM otel_traces").rows)
print(open_reader(data_dir=sys.argv[1]).query("SELECT count() FROM otel_traces").rows)
assert collector.stop()
"""


def test_an_embedded_collector_receives_stores_and_answers_in_one_process(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", EMBEDDED_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == ["[('embedded', 'run')]", "[(1,)]"]
    assert not (tmp_path / "collector.json").exists()
