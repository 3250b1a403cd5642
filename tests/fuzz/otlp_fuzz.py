"""Hostile OTLP input for the fuzz tests and ``benchmarks/fuzz.py``: hypothesis
strategies, the properties each input must satisfy, and a collector to aim at.

The properties:

- decoders (``accept_protobuf``, ``accept_json``): an input either raises
  :class:`InvalidRequestError` or succeeds; a success keeps the spans it does
  not report as rejected, byte for byte;
- HTTP endpoint: every answer is 2xx or 4xx, never 5xx or a dropped
  connection; afterwards the collector still answers, the data stored before
  is unchanged, and every span it acknowledged is stored.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import random
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from forktrace.collector.otlp import InvalidRequestError, accept_json, accept_protobuf

# tests/ holds the shared collector helper; benchmarks/fuzz.py imports this module outside pytest
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from collector_process import CollectorProcess

# hypothesis caches what it learns in ./.hypothesis by default: keep the checkout clean
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "forktrace-hypothesis")

# -- structured requests -------------------------------------------------------------

_scalars = st.one_of(
    st.text(max_size=40).map(lambda v: ("s", v)),
    st.booleans().map(lambda v: ("b", v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: ("i", v)),
    st.floats().map(lambda v: ("d", v)),
    st.binary(max_size=20).map(lambda v: ("y", v)),
    st.just(("none", None)),
)
value_trees = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda v: ("a", v)),
        st.lists(st.tuples(st.text(max_size=12), children), max_size=4).map(lambda v: ("k", v)),
    ),
    max_leaves=12,
)


def _fill(target: AnyValue, tree: tuple[str, Any]) -> None:
    kind, value = tree
    if kind == "s":
        target.string_value = value
    elif kind == "b":
        target.bool_value = value
    elif kind == "i":
        target.int_value = value
    elif kind == "d":
        target.double_value = value
    elif kind == "y":
        target.bytes_value = value
    elif kind == "a":
        target.array_value.SetInParent()
        for child in value:
            _fill(target.array_value.values.add(), child)
    elif kind == "k":
        target.kvlist_value.SetInParent()
        for key, child in value:
            pair = target.kvlist_value.values.add(key=key)
            _fill(pair.value, child)


def _add_attributes(container: Any, items: list[tuple[str, tuple[str, Any]]]) -> None:
    for key, tree in items:
        pair: KeyValue = container.add(key=key)
        _fill(pair.value, tree)


attribute_lists = st.lists(st.tuples(st.text(max_size=20), value_trees), max_size=6)
# mostly valid ids (so spans reach the store), sometimes empty, zero or the wrong length
_valid_trace_ids = st.binary(min_size=16, max_size=16)
_valid_span_ids = st.binary(min_size=8, max_size=8)
trace_ids = st.one_of(
    _valid_trace_ids, _valid_trace_ids, _valid_trace_ids, st.just(bytes(16)), st.binary(max_size=20)
)
span_ids = st.one_of(
    _valid_span_ids, _valid_span_ids, _valid_span_ids, st.just(bytes(8)), st.binary(max_size=10)
)


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    """An ExportTraceServiceRequest with arbitrary (mostly well-formed) content."""
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        resource_spans = request.resource_spans.add()
        _add_attributes(resource_spans.resource.attributes, draw(attribute_lists))
        for _ in range(draw(st.integers(0, 2))):
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = draw(st.text(max_size=20))
            for _ in range(draw(st.integers(0, 3))):
                span = scope_spans.spans.add(
                    trace_id=draw(trace_ids),
                    span_id=draw(span_ids),
                    parent_span_id=draw(st.one_of(st.just(b""), span_ids)),
                    name=draw(st.text(max_size=30)),
                    kind=draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 5)),
                    start_time_unix_nano=draw(st.integers(0, 2**64 - 1)),
                    end_time_unix_nano=draw(st.integers(0, 2**64 - 1)),
                )
                _add_attributes(span.attributes, draw(attribute_lists))
                for _ in range(draw(st.integers(0, 2))):
                    event = span.events.add(
                        name=draw(st.text(max_size=20)),
                        time_unix_nano=draw(st.integers(0, 2**64 - 1)),
                    )
                    _add_attributes(event.attributes, draw(attribute_lists))
                for _ in range(draw(st.integers(0, 1))):
                    link = span.links.add(trace_id=draw(trace_ids), span_id=draw(span_ids))
                    _add_attributes(link.attributes, draw(attribute_lists))
                span.status.code = draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 2))
                span.status.message = draw(st.text(max_size=20))
    return request


def spans_of(request: ExportTraceServiceRequest) -> list[Any]:
    return [
        span
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


# -- mutated bytes ---------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, body: bytes) -> bytes:
    """``body`` with a few random byte-level edits: flips, cuts, insertions, repeats."""
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if operation == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif operation == "cut":
            del data[at : at + draw(st.integers(1, 8))]
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 32))]
        else:
            del data[at:]
    return bytes(data)


def byte_mutations(body: bytes, rng: random.Random, count: int) -> list[bytes]:
    """``count`` cheap random variants of ``body`` (the long run's multiplier: generating
    a structured request costs hypothesis ~30 ms, a mutation microseconds)."""
    variants = []
    for _ in range(count):
        data = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            at = rng.randint(0, len(data))
            operation = rng.randrange(5)
            if operation == 0 and at < len(data):
                data[at] = rng.randrange(256)
            elif operation == 1:
                del data[at : at + rng.randint(1, 8)]
            elif operation == 2:
                data[at:at] = rng.randbytes(rng.randint(1, 8))
            elif operation == 3:
                data[at:at] = data[at : at + rng.randint(1, 32)]
            else:
                del data[at:]
        variants.append(bytes(data))
    return variants


protobuf_bodies = st.one_of(
    st.binary(max_size=300),
    requests().map(lambda request: request.SerializeToString()),
    requests().flatmap(lambda request: mutated(request.SerializeToString())),
)

# -- OTLP/JSON documents -----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=15,
)


def otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON form of a request: camelCase keys and hex ids."""
    document = json_format.MessageToDict(request)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for item in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = base64.b64decode(item[key]).hex()
    return document


@st.composite
def scrambled(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with random members replaced by arbitrary JSON values or deleted."""
    paths: list[tuple[Any, Any]] = []
    pending = [document]
    while pending:
        node = pending.pop()
        keys = node.keys() if isinstance(node, dict) else range(len(node))
        for key in keys:
            paths.append((node, key))
            if isinstance(node[key], dict | list):
                pending.append(node[key])
    if not paths:
        return draw(json_values)
    for _ in range(draw(st.integers(1, 3))):
        parent, key = draw(st.sampled_from(paths))
        if isinstance(parent, dict) and draw(st.booleans()):
            parent.pop(key, None)
        elif isinstance(parent, dict) or key < len(parent):
            parent[key] = draw(json_values)
    return document


json_bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda value: json.dumps(value).encode()),
    requests().map(lambda request: json.dumps(otlp_json(request)).encode()),
    requests()
    .flatmap(lambda request: scrambled(otlp_json(request)))
    .map(lambda document: json.dumps(document).encode()),
    requests().flatmap(lambda request: mutated(json.dumps(otlp_json(request)).encode())),
)

# -- the decoder property ------------------------------------------------------------------


def check_decoder(body: bytes, *, json_body: bool) -> str:
    """Feed one body to a decoder; raise AssertionError if it breaks the contract.
    Returns ``accepted`` or ``rejected``."""
    accept = accept_json if json_body else accept_protobuf
    try:
        accepted = accept(body)
    except InvalidRequestError:
        return "rejected"
    assert accepted.spans >= 0 and accepted.rejected_spans >= 0
    if not accepted.payload:
        assert accepted.spans == 0, "spans reported accepted but nothing to spool"
        return "accepted"
    stored = ExportTraceServiceRequest.FromString(accepted.payload)
    kept = spans_of(stored)
    assert len(kept) == accepted.spans, f"{len(kept)} spans spooled, {accepted.spans} reported"
    if not json_body:
        sent = spans_of(ExportTraceServiceRequest.FromString(body))
        assert accepted.spans + accepted.rejected_spans == len(sent), "spans went missing"
        if not accepted.rejected_spans and not accepted.truncated_values:
            assert [s.SerializeToString() for s in kept] == [s.SerializeToString() for s in sent]
    return "accepted"


# -- the HTTP endpoint ------------------------------------------------------------------------

_ENCODINGS = ["", "gzip", "deflate", "identity", "br", "gzip, gzip", "x-unknown", "GZIP"]
_CONTENT_TYPES = [
    "application/x-protobuf",
    "application/json",
    "application/json; charset=utf-8",
    "application/x-protobuf; foo=bar",
    "text/plain",
    "",
    "application/",
    "multipart/form-data; boundary=x",
]
_header_names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"),
    min_size=1,
    max_size=20,
).filter(lambda name: name.lower() not in ("content-length", "transfer-encoding", "host"))
# latin-1 without control characters: what an HTTP client can put on the wire
_header_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=40
).map(str.strip)


def _encode(body: bytes, encoding: str) -> bytes:
    if encoding.lower() == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "gzip, gzip":
        return gzip.compress(gzip.compress(body))
    return body


@dataclass(frozen=True)
class HttpCase:
    method: str
    path: str
    content_type: str
    encoding: str
    encode_body: bool  # compress as the header says, or send the bytes as they are
    headers: dict[str, str]
    body: bytes

    def send(self, endpoint: str, timeout: float = 30.0) -> int:
        host, port = endpoint.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        headers = dict(self.headers)
        if self.content_type:
            headers["Content-Type"] = self.content_type
        if self.encoding:
            headers["Content-Encoding"] = self.encoding
        headers["Connection"] = "close"
        body = _encode(self.body, self.encoding) if self.encode_body else self.body
        try:
            connection.request(self.method, self.path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


_hostile_cases = st.builds(
    HttpCase,
    method=st.sampled_from(["POST"] * 6 + ["GET", "PUT", "OPTIONS"]),
    path=st.sampled_from(["/v1/traces"] * 8 + ["/api/sql", "/health", "/v1/logs", "/%00", "//"]),
    content_type=st.sampled_from(_CONTENT_TYPES) | _header_values,
    encoding=st.sampled_from(_ENCODINGS),
    encode_body=st.booleans() | st.just(True),
    headers=st.dictionaries(_header_names, _header_values, max_size=3),
    body=st.one_of(protobuf_bodies, json_bodies),
)
# a well-formed envelope (method, path, content type, encoding) around a fuzzed body,
# so most requests reach the decoders and the store
_enveloped_cases = st.builds(
    HttpCase,
    method=st.just("POST"),
    path=st.just("/v1/traces"),
    content_type=st.just("application/x-protobuf"),
    encoding=st.sampled_from(["", "", "gzip", "deflate"]),
    encode_body=st.just(True),
    headers=st.dictionaries(_header_names, _header_values, max_size=2),
    body=protobuf_bodies,
) | st.builds(
    HttpCase,
    method=st.just("POST"),
    path=st.just("/v1/traces"),
    content_type=st.just("application/json"),
    encoding=st.sampled_from(["", "", "gzip", "deflate"]),
    encode_body=st.just(True),
    headers=st.dictionaries(_header_names, _header_values, max_size=2),
    body=json_bodies,
)
http_cases = st.one_of(_enveloped_cases, _enveloped_cases, _hostile_cases)


def assert_served(case: HttpCase, endpoint: str) -> int:
    """Send one case; raise AssertionError unless the answer is 2xx or 4xx."""
    try:
        status = case.send(endpoint)
    except (ConnectionError, http.client.HTTPException, TimeoutError) as exc:
        raise AssertionError(f"no answer to {case!r}: {exc!r}") from exc
    assert 200 <= status < 300 or 400 <= status < 500, f"HTTP {status} for {case!r}"
    return status


# -- a collector to aim at ------------------------------------------------------------------


class Collector(CollectorProcess):
    """``forktrace up`` in a subprocess on free ports (the test process keeps its own
    chDB), sealing batches every 0.2 s; its log is ``DATA_DIR/collector.log``."""

    def __init__(self, data_dir: Path, extra: list[str] | None = None) -> None:
        super().__init__(data_dir, "--batch-age", "0.2", *(extra or []))

    def stop(self, timeout: float = 60.0, *, check: bool = False) -> str:
        # the fuzz runs only need it gone: how it exits is not what they test
        return super().stop(timeout, check=check)

    def sql(self, query: str) -> list[list[Any]]:
        """Rows as ``/api/sql`` sends them (JSON, not revived into Python types)."""
        host, port = self.http_endpoint.removeprefix("http://").rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            body = json.dumps({"query": query})
            connection.request("POST", "/api/sql", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            assert response.status == 200, f"/api/sql: HTTP {response.status} {payload[:300]!r}"
            return json.loads(payload)["rows"]
        finally:
            connection.close()

    def wait_stored(self, timeout: float = 120.0) -> tuple[int, int]:
        """Wait until the store holds every span the collector acknowledged;
        returns (acknowledged, stored) as last seen."""
        deadline = time.monotonic() + timeout
        while True:
            acknowledged = self.health()["spans"]
            stored = self.sql("SELECT count() FROM otel_traces")[0][0]
            if stored >= acknowledged or time.monotonic() > deadline:
                return acknowledged, stored
            time.sleep(0.2)

    def quarantined(self) -> list[str]:
        """Spool segments the store refused (kept aside by the inserter)."""
        rejected = self.data_dir / "spool" / "rejected"
        return sorted(p.name for p in rejected.iterdir()) if rejected.exists() else []


def seed_request(service: str = "fuzz-seed", spans: int = 5) -> ExportTraceServiceRequest:
    """Known spans stored before fuzzing, to check they come out unchanged."""
    rng = random.Random(7)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    scope_spans = resource_spans.scope_spans.add()
    trace_id = rng.randbytes(16)
    for index in range(spans):
        span = scope_spans.spans.add(
            trace_id=trace_id,
            span_id=rng.randbytes(8),
            name=f"seed-{index}",
            kind=1,
            start_time_unix_nano=1_700_000_000_000_000_000 + index,
            end_time_unix_nano=1_700_000_001_000_000_000 + index,
        )
        span.attributes.add(key="seed.index").value.int_value = index
        span.attributes.add(key="seed.text").value.string_value = f"unchanged {index}"
    return request


def post_protobuf(endpoint: str, request: ExportTraceServiceRequest) -> int:
    """POST one request as OTLP/HTTP protobuf; returns the HTTP status."""
    body = request.SerializeToString()
    return HttpCase("POST", "/v1/traces", "application/x-protobuf", "", False, {}, body).send(
        endpoint
    )


SEED_QUERY = (
    "SELECT SpanId, SpanName, SpanAttributes, ServiceName FROM otel_traces "
    "WHERE ServiceName = 'fuzz-seed' ORDER BY SpanId"
)
