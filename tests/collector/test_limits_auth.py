"""Limits, tokens and the exposure warning, on the functions the receivers call."""

from __future__ import annotations

import gzip
import os
import re
import zlib
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from forktrace.collector import limits
from forktrace.collector.auth import Access, Tokens, Verdict
from forktrace.collector.otlp import InvalidRequestError, accept_json, accept_protobuf
from forktrace.collector.settings import CollectorSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_the_operations_doc_shows_the_limits_as_the_code_has_them():
    text = DOCS.read_text()
    table = re.search(r"<!-- limits table:.*?-->\n(.*?)\n<!-- end of limits table -->", text, re.S)
    assert table is not None, "docs/operations.md lost its limits table markers"
    assert table[1] == limits.markdown_table()


def test_tokens_by_kind():
    tokens = Tokens.resolve(token=None, write="w", read="r")
    assert tokens.check("Bearer w", Access.WRITE) is Verdict.ALLOWED
    assert tokens.check("bearer  w ", Access.WRITE) is Verdict.ALLOWED
    assert tokens.check("Bearer r", Access.WRITE) is Verdict.PERMISSION_DENIED
    assert tokens.check("Bearer w", Access.READ) is Verdict.PERMISSION_DENIED
    assert tokens.check("Bearer x", Access.READ) is Verdict.UNAUTHENTICATED
    assert tokens.check(None, Access.READ) is Verdict.UNAUTHENTICATED
    assert tokens.check("Basic r", Access.READ) is Verdict.UNAUTHENTICATED
    both = Tokens.resolve(token="t")
    assert both.check("Bearer t", Access.WRITE) is both.check("Bearer t", Access.READ)
    assert Tokens.resolve(token="t", read="r").check("Bearer t", Access.READ) is (
        Verdict.PERMISSION_DENIED
    )
    assert Tokens().check(None, Access.WRITE) is Verdict.ALLOWED


def test_a_warning_line_for_an_exposed_collector_without_tokens(tmp_path):
    def warning(**values):
        return CollectorSettings.build(tmp_path, **values).exposure_warning()

    assert warning() is None
    assert warning(host="127.0.0.2") is None
    assert warning(host="0.0.0.0", token="t") is None
    line = warning(host="0.0.0.0")
    assert line and "\n" not in line and "write traces and read traces" in line
    read_only_open = warning(host="::", write_token="w")
    assert "read traces" in read_only_open and "write traces" not in read_only_open


def test_tls_needs_both_files(tmp_path):
    with pytest.raises(ValueError, match="go together"):
        CollectorSettings.build(tmp_path, tls_cert=tmp_path / "c.pem")


def test_decompression_stops_at_the_limit():
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(limits.LimitExceededError) as raised:
        limits.decompress(bomb, "gzip", 1024 * 1024)
    assert raised.value.reason == "decompressed_bytes" and raised.value.too_large
    assert limits.decompress(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 10) == b"abcd"
    assert limits.decompress(zlib.compress(b"x" * 100), "deflate", 100) == b"x" * 100
    with pytest.raises(ValueError, match="truncated"):
        limits.decompress(gzip.compress(b"x" * 1000)[:-12], "gzip", 10_000)
    with pytest.raises(ValueError, match="unsupported"):
        limits.decompress(b"x", "br", 10)


def request(spans: int = 1) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    scope_spans = message.resource_spans.add().scope_spans.add()
    for _ in range(spans):
        scope_spans.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="s")
    return message


def nest(value, depth: int, kind: str = "kvlist") -> None:  # type: ignore[no-untyped-def]
    for _ in range(depth):
        if kind == "kvlist":
            value = value.kvlist_value.values.add(key="k").value
        else:
            value = value.array_value.values.add()
    value.int_value = 1


@pytest.mark.parametrize("where", ["resource", "scope", "span", "event", "link"])
@pytest.mark.parametrize("kind", ["kvlist", "array"])
def test_nesting_depth_is_exact_wherever_the_value_is(where, kind):
    strict = limits.Limits(max_attribute_depth=3)
    for depth, allowed in [(0, True), (3, True), (4, False), (12, False)]:
        message = request()
        span = message.resource_spans[0].scope_spans[0].spans[0]
        holder = {
            "resource": lambda m=message: m.resource_spans[0].resource,
            "scope": lambda m=message: m.resource_spans[0].scope_spans[0].scope,
            "span": lambda s=span: s,
            "event": lambda s=span: s.events.add(name="e"),
            "link": lambda s=span: s.links.add(trace_id=os.urandom(16), span_id=os.urandom(8)),
        }[where]()
        nest(holder.attributes.add(key="v").value, depth, kind)
        body = message.SerializeToString()
        if where in ("resource", "scope") and not allowed:
            with pytest.raises(InvalidRequestError, match="nested more than 3"):
                accept_protobuf(body, strict)
            continue
        accepted = accept_protobuf(body, strict)
        assert (accepted.spans, accepted.rejected) == (
            (1, {}) if allowed else (0, {"attribute_depth": 1})
        ), (where, kind, depth)
        if allowed:
            assert accepted.payload is body  # kept byte for byte


def test_long_values_are_truncated_everywhere_and_short_ones_kept():
    small = limits.Limits(max_attribute_value_bytes=10)
    message = request(2)
    spans = message.resource_spans[0].scope_spans[0].spans
    spans[0].attributes.add(key="s").value.string_value = "€" * 5  # 15 bytes
    spans[0].events.add(name="e").attributes.add(key="b").value.bytes_value = b"x" * 11
    nest_in = spans[1].attributes.add(key="list").value.array_value.values.add()
    nest_in.string_value = "y" * 30
    spans[1].attributes.add(key="ok").value.string_value = "short"
    accepted = accept_protobuf(message.SerializeToString(), small)
    assert accepted.truncated_values == 3 and accepted.spans == 2
    stored = ExportTraceServiceRequest.FromString(accepted.payload)
    first, second = stored.resource_spans[0].scope_spans[0].spans
    assert first.attributes[0].value.string_value == "€€€…[truncated 6 bytes]"
    assert first.events[0].attributes[0].value.bytes_value == b"x" * 10 + (
        "…[truncated 1 bytes]".encode()
    )
    assert second.attributes[0].value.array_value.values[0].string_value == (
        "y" * 10 + "…[truncated 20 bytes]"
    )
    assert second.attributes[1].value.string_value == "short"


def test_counts_per_request_and_per_span():
    few = limits.Limits(max_spans_per_request=2, max_attributes_per_span=1)
    with pytest.raises(limits.LimitExceededError) as raised:
        accept_protobuf(request(3).SerializeToString(), few)
    assert raised.value.reason == "spans_per_request" and raised.value.too_large
    message = request(2)
    crowded = message.resource_spans[0].scope_spans[0].spans[0]
    crowded.attributes.add(key="a").value.int_value = 1
    crowded.attributes.add(key="b").value.int_value = 2
    accepted = accept_protobuf(message.SerializeToString(), few)
    assert (accepted.spans, accepted.rejected) == (1, {"attributes_per_span": 1})
    assert (
        "1 span(s) dropped: more than 1 attributes"
        in accepted.response().partial_success.error_message
    )


def test_json_requests_get_the_same_limits():
    deep = {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "1"}}]}}
    for _ in range(3):
        deep = {"kvlistValue": {"values": [{"key": "k", "value": deep}]}}
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "x", "attributes": [{"key": "d", "value": deep}]}  # fmt: skip
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    import json

    accepted = accept_json(json.dumps(document).encode(), limits.Limits(max_attribute_depth=3))
    assert accepted.rejected == {"attribute_depth": 1}
