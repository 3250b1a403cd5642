"""Tokens, TLS, limits and metrics, against a ``forktrace up`` subprocess with
real clients: the OpenTelemetry OTLP exporters, grpcio, requests and the CLI."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from collector_process import CollectorProcess
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from test_collector_otlp import FORKTRACE

from forktrace.collector.reader import EndpointReader, QueryError

WRITE, READ = "write-token-0123456789", "read-token-9876543210"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _count_sql(service: str) -> str:
    return f"SELECT count() FROM otel_traces WHERE ServiceName = '{service}'"


class Secured:
    def __init__(self, process: CollectorProcess, cert: Path) -> None:
        self.process = process
        self.cert = cert
        self.http = process.http_endpoint
        self.grpc_target = process.grpc_endpoint.removeprefix("https://")

    def channel(self) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(root_certificates=self.cert.read_bytes())
        return grpc.secure_channel(self.grpc_target, credentials)

    def post(self, body: bytes, token: str | None = None, **headers: str) -> requests.Response:
        if token:
            headers["Authorization"] = f"Bearer {token}"
        headers.setdefault("Content-Type", "application/x-protobuf")
        return requests.post(
            f"{self.http}/v1/traces", data=body, headers=headers, verify=self.cert, timeout=30
        )

    def sql(self, query: str, token: str | None = READ) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(
            f"{self.http}/api/sql", json={"query": query}, headers=headers, verify=self.cert,
            timeout=60,
        )  # fmt: skip

    # the process reads with the read token and certificate its discovery file names
    def count(self, service: str) -> int:
        return self.process.query(_count_sql(service)).rows[0][0]

    def wait_for(self, service: str, expected: int) -> int:
        return self.process.wait_for_count(_count_sql(service), expected)

    def metrics(self) -> dict[str, float]:
        text = requests.get(f"{self.http}/metrics", verify=self.cert, timeout=30).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    directory = tmp_path_factory.mktemp("secured")
    cert, key = self_signed(directory)
    process = CollectorProcess(
        directory / "data",
        *("--write-token", WRITE, "--read-token", READ),
        *("--tls-cert", str(cert), "--tls-key", str(key)),
        *("--batch-age", "0.1", "--max-request-mb", "1", "--max-decompressed-mb", "2"),
        *("--max-spans-per-request", "20", "--max-attributes-per-span", "8"),
        *("--max-attribute-value-kb", "1", "--max-attribute-depth", "2"),
    ).start()
    try:
        yield Secured(process, cert)
        process.stop()
    finally:
        process.kill()


def request(service: str, spans: int = 1, attributes: int = 1) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    scope_spans = resource_spans.scope_spans.add()
    trace_id = os.urandom(16)
    for _ in range(spans):
        span = scope_spans.spans.add(
            trace_id=trace_id, span_id=os.urandom(8), name="step", start_time_unix_nano=1,
            end_time_unix_nano=2,
        )  # fmt: skip
        for i in range(attributes):
            span.attributes.add(key=f"a{i}").value.string_value = "v"
    return message


def export_with(exporter: SpanExporter, service: str) -> SpanExportResult:
    results = []

    class Recording(SpanExporter):
        def export(self, spans):  # type: ignore[no-untyped-def]
            results.append(exporter.export(spans))
            return results[-1]

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(Recording()))
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    provider.shutdown()
    return results[0]


def test_grpc_exporters_need_the_write_token_over_tls(secured: Secured) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=secured.cert.read_bytes())
    endpoint = f"https://{secured.grpc_target}"

    def exporter(token: str | None) -> GrpcExporter:
        headers = {"authorization": f"Bearer {token}"} if token else None
        return GrpcExporter(endpoint=endpoint, credentials=credentials, headers=headers, timeout=10)

    assert export_with(exporter(WRITE), "grpc-ok") == SpanExportResult.SUCCESS
    assert export_with(exporter(None), "grpc-none") == SpanExportResult.FAILURE
    assert export_with(exporter(READ), "grpc-read") == SpanExportResult.FAILURE

    channel = secured.channel()
    export = channel.unary_unary(EXPORT)
    body = request("grpc-raw").SerializeToString()
    for metadata, code in [
        (None, grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Bearer nope"),), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", f"Bearer {READ}"),), grpc.StatusCode.PERMISSION_DENIED),
    ]:
        with pytest.raises(grpc.RpcError) as raised:
            export(body, metadata=metadata, timeout=30)
        assert raised.value.code() == code
    assert export(body, metadata=(("authorization", f"Bearer {WRITE}"),), timeout=30) == b""
    channel.close()
    assert secured.wait_for("grpc-ok", 1) == 1
    assert secured.wait_for("grpc-raw", 1) == 1
    assert secured.count("grpc-none") == secured.count("grpc-read") == 0


def test_http_ingest_and_sql_tokens_by_kind(
    secured: Secured, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests prefers these variables to the exporter's certificate_file
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    exporter = HttpExporter(
        endpoint=f"{secured.http}/v1/traces",
        certificate_file=str(secured.cert),
        headers={"authorization": f"Bearer {WRITE}"},
        timeout=10,
    )
    assert export_with(exporter, "http-ok") == SpanExportResult.SUCCESS
    body = request("http-raw").SerializeToString()
    assert secured.post(body).status_code == 401
    assert secured.post(body, "wrong").status_code == 401
    assert secured.post(body, READ).status_code == 403
    assert secured.post(body, WRITE).status_code == 200
    assert secured.sql("SELECT 1", None).status_code == 401
    assert secured.sql("SELECT 1", WRITE).status_code == 403
    answer = secured.sql("SELECT 1 AS one", READ)
    assert answer.status_code == 200 and answer.json()["rows"] == [[1]]
    assert secured.wait_for("http-ok", 1) == 1
    with pytest.raises(requests.exceptions.SSLError):  # TLS is on, the cert is self-signed
        requests.get(f"{secured.http}/health", timeout=10)
    with pytest.raises(QueryError, match="403"):
        EndpointReader(secured.http, WRITE, ca_file=str(secured.cert)).query("SELECT 1")


def test_the_cli_reads_with_the_read_token(secured: Secured) -> None:
    data_dir = str(secured.process.data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORKTRACE_")}
    found = subprocess.run(  # token and certificate from the discovery file
        [*FORKTRACE, "sql", "SELECT 40 + 2 AS x", "--data-dir", data_dir, "--format", "json"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == [{"x": 42}]
    explicit = [*FORKTRACE, "sql", "SELECT 1 AS x", "--endpoint", secured.http]
    env["FORKTRACE_CA_FILE"] = str(secured.cert)
    denied = subprocess.run(
        explicit, capture_output=True, text=True, timeout=120,
        env={**env, "FORKTRACE_READ_TOKEN": WRITE},
    )  # fmt: skip
    assert denied.returncode == 1 and "403" in denied.stderr
    allowed = subprocess.run(
        [*explicit, "--token", READ], capture_output=True, text=True, timeout=120, env=env
    )
    assert allowed.returncode == 0, allowed.stderr


def nested(value, depth: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(depth):
        value = value.kvlist_value.values.add(key="k").value
    value.string_value = "leaf"


def test_limits_answer_with_clear_otlp_errors(secured: Secured) -> None:
    # spans per request: the whole request, not retryable
    too_many = request("limit-spans", spans=21).SerializeToString()
    answer = secured.post(too_many, WRITE)
    assert answer.status_code == 413 and b"--max-spans-per-request" in answer.content
    with secured.channel() as channel, pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(EXPORT)(
            too_many, metadata=(("authorization", f"Bearer {WRITE}"),), timeout=30
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # body size as sent, and after decompression (a gzip bomb)
    assert secured.post(os.urandom(1024 * 1024 + 1), WRITE).status_code == 413
    bomb = gzip.compress(b"\0" * (3 * 1024 * 1024))
    answer = secured.post(bomb, WRITE, **{"Content-Encoding": "gzip"})
    assert answer.status_code == 413 and b"--max-decompressed-mb" in answer.content
    # attributes per span and nesting depth: those spans dropped, a partial success
    message = request("limit-spans-ok", spans=3, attributes=2)
    spans = message.resource_spans[0].scope_spans[0].spans
    for i in range(9):
        spans[0].attributes.add(key=f"x{i}").value.int_value = i
    nested(spans[1].attributes.add(key="deep").value, 3)
    nested(spans[2].attributes.add(key="shallow").value, 2)
    answer = secured.post(gzip.compress(message.SerializeToString()), WRITE, **{
        "Content-Encoding": "gzip"})  # fmt: skip
    assert answer.status_code == 200
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 2
    assert "more than 8 attributes" in partial.error_message
    assert "nested more than 2 levels" in partial.error_message
    assert secured.wait_for("limit-spans-ok", 1) == 1
    # a resource attribute nested too deep: the request
    deep_resource = request("limit-deep-resource")
    nested(deep_resource.resource_spans[0].resource.attributes.add(key="r").value, 3)
    assert secured.post(deep_resource.SerializeToString(), WRITE).status_code == 400
    # long values: truncated with a marker, stored
    long = request("limit-long")
    long.resource_spans[0].scope_spans[0].spans[0].attributes.add(
        key="gen_ai.prompt"
    ).value.string_value = "é" * 1000  # 2,000 bytes in UTF-8
    assert secured.post(long.SerializeToString(), WRITE).status_code == 200
    assert secured.wait_for("limit-long", 1) == 1
    value = secured.process.query(
        "SELECT SpanAttributes['gen_ai.prompt'] FROM otel_traces WHERE ServiceName = 'limit-long'"
    ).rows[0][0]
    assert value == "é" * 512 + "…[truncated 976 bytes]"


def test_metrics_count_what_happened(secured: Secured) -> None:
    body = request("metrics", spans=3).SerializeToString()
    before = secured.metrics()
    assert secured.post(body, WRITE).status_code == 200
    assert secured.post(body, None).status_code == 401
    assert secured.post(request("metrics", spans=21).SerializeToString(), WRITE).status_code == 413
    assert secured.wait_for("metrics", 3) == 3
    after = secured.metrics()

    def grew(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    prefix = "forktrace_collector_"
    assert grew(f'{prefix}accepted_spans_total{{transport="http"}}') == 3
    assert grew(f'{prefix}accepted_requests_total{{transport="http"}}') == 1
    assert grew(f'{prefix}rejected_requests_total{{reason="unauthenticated"}}') == 1
    assert grew(f'{prefix}rejected_requests_total{{reason="spans_per_request"}}') == 1
    assert after[f"{prefix}inserted_segments_total"] >= 1
    assert after[f"{prefix}inserted_spans_total"] >= 3
    assert after[f"{prefix}insert_duration_seconds_count"] >= 1
    assert f"{prefix}spool_bytes" in after and f"{prefix}insert_retries_total" in after
    # earlier tests of this module dropped spans and truncated a value
    assert after[f'{prefix}rejected_spans_total{{reason="attributes_per_span"}}'] >= 1
    assert after[f"{prefix}truncated_values_total"] >= 1


def test_an_exposed_collector_without_a_read_token_says_so_on_stderr(tmp_path: Path) -> None:
    up = [*FORKTRACE, "up", "--data-dir", str(tmp_path), "--host", "0.0.0.0"]
    process = subprocess.Popen(
        [*up, "--grpc-port", "0", "--http-port", "0", "--write-token", WRITE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("FORKTRACE_")},
    )
    try:
        warning = process.stderr.readline()  # type: ignore[union-attr]
    finally:
        process.send_signal(signal.SIGTERM)
        output, rest = process.communicate(timeout=180)
    assert warning.startswith("WARNING: listening on 0.0.0.0 without a read token:")
    assert "can read traces;" in warning and "write traces" not in warning
    assert "WARNING" not in rest and "listening:" in output
