"""What the receivers accept, reject and answer, before anything is spooled."""

from __future__ import annotations

import base64
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from forktrace.collector.otlp import InvalidRequestError, accept_json, accept_protobuf

TRACE_HEX = "5b8efff798038103d269b633813fc60c"


def request_with(
    *span_ids: bytes, trace_id: bytes = bytes.fromhex(TRACE_HEX)
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for span_id in span_ids:
        spans.add(trace_id=trace_id, span_id=span_id, name="s")
    return request


def test_a_valid_protobuf_body_is_kept_byte_for_byte():
    body = request_with(b"\x01" * 8, b"\x02" * 8).SerializeToString()
    accepted = accept_protobuf(body)
    assert (accepted.payload, accepted.spans, accepted.rejected_spans) == (body, 2, 0)
    assert not accepted.response().HasField("partial_success")


def test_spans_with_invalid_ids_are_dropped_as_a_partial_success():
    body = request_with(b"\x01" * 8, b"\x00" * 8, b"\x03" * 4).SerializeToString()
    accepted = accept_protobuf(body)
    assert (accepted.spans, accepted.rejected_spans) == (1, 2)
    kept = ExportTraceServiceRequest.FromString(accepted.payload)
    assert [s.span_id for s in kept.resource_spans[0].scope_spans[0].spans] == [b"\x01" * 8]
    response = accepted.response()
    assert response.partial_success.rejected_spans == 2
    assert "span ids 8 non-zero bytes" in response.partial_success.error_message


def test_nothing_to_store_when_every_span_is_invalid():
    accepted = accept_protobuf(request_with(b"\x01" * 8, trace_id=bytes(16)).SerializeToString())
    assert (accepted.payload, accepted.spans, accepted.rejected_spans) == (b"", 0, 1)


@pytest.mark.parametrize(
    "body", [b"\xff\xff\xff", request_with(b"\x01" * 8).SerializeToString()[:-3]]
)
def test_malformed_protobuf_is_rejected(body):
    with pytest.raises(InvalidRequestError, match="not a valid OTLP protobuf"):
        accept_protobuf(body)


def test_otlp_json_ids_are_hex_and_enums_integers():
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": TRACE_HEX,
                                "spanId": "0102030405060708",
                                "parentSpanId": "",
                                "kind": 2,
                                "name": "s",
                                "links": [{"traceId": TRACE_HEX, "spanId": "0807060504030201"}],
                                "futureField": {"ignored": True},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    accepted = accept_json(json.dumps(document).encode())
    span = (
        ExportTraceServiceRequest.FromString(accepted.payload)
        .resource_spans[0]
        .scope_spans[0]
        .spans[0]
    )
    assert span.trace_id.hex() == TRACE_HEX and span.span_id.hex() == "0102030405060708"
    assert span.kind == 2 and span.links[0].span_id.hex() == "0807060504030201"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "expected an object"),
        (b'{"resourceSpans": {}}', "must be a JSON array"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}', "is not hex"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
            "not a valid OTLP/JSON",
        ),
        # a base64 id (the canonical proto JSON form) is not OTLP/JSON
        (
            json.dumps(
                {
                    "resourceSpans": [
                        {
                            "scopeSpans": [
                                {"spans": [{"spanId": base64.b64encode(b"12345678").decode()}]}
                            ]
                        }
                    ]
                }
            ).encode(),
            "is not hex",
        ),
    ],
)
def test_malformed_json_is_rejected_with_the_reason(body, message):
    with pytest.raises(InvalidRequestError, match=message):
        accept_json(body)
