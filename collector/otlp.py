"""Accepting an OTLP trace request: validate it cheaply, keep the bytes.

The receivers parse each request once (upb, the fast protobuf backend) to
reject malformed input before it reaches the spool: a bad request gets its own
error and never spoils the batch it would have joined. A valid protobuf body is
spooled byte for byte; a JSON body (the OTLP/JSON mapping: camelCase keys,
hex ids, enums as integers) is converted to protobuf once, here.

Spans whose trace or span id is not a valid OTLP id are dropped and reported
as a partial success, as the OTLP specification describes.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


class InvalidRequestError(ValueError):
    """The request body is not a valid OTLP ExportTraceServiceRequest."""


@dataclass(frozen=True)
class Accepted:
    payload: bytes  # protobuf ExportTraceServiceRequest to spool (empty: nothing to store)
    spans: int
    rejected_spans: int = 0
    error_message: str = ""

    def response(self) -> ExportTraceServiceResponse:
        response = ExportTraceServiceResponse()
        if self.rejected_spans:
            response.partial_success.rejected_spans = self.rejected_spans
            response.partial_success.error_message = self.error_message
        return response


def _valid_ids(span: Any) -> bool:
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    return (
        len(trace_id) == 16
        and trace_id != _ZERO_TRACE_ID
        and len(span_id) == 8
        and span_id != _ZERO_SPAN_ID
        and (not parent or len(parent) == 8)
    )


def _check(request: ExportTraceServiceRequest, body: bytes | None) -> Accepted:
    spans = rejected = 0
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            batch = scope_spans.spans
            valid = [span for span in batch if _valid_ids(span)]
            spans += len(valid)
            if len(valid) != len(batch):
                rejected += len(batch) - len(valid)
                kept = [span.SerializeToString() for span in valid]
                del batch[:]
                for raw in kept:
                    batch.add().ParseFromString(raw)
    if rejected:
        body = None
    payload = b"" if spans == 0 else (body if body is not None else request.SerializeToString())
    message = (
        f"{rejected} span(s) dropped: trace ids must be 16 non-zero bytes, span ids 8 non-zero bytes"
        if rejected
        else ""
    )
    return Accepted(payload, spans, rejected, message)


def accept_protobuf(body: bytes) -> Accepted:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidRequestError(
            f"the body is not a valid OTLP protobuf ExportTraceServiceRequest: {exc}"
        ) from None
    return _check(request, body)


# OTLP/JSON differs from the canonical protobuf JSON mapping in one way that
# matters here: trace and span ids are hex, not base64.
_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(spans_or_links: list[Any]) -> None:
    for item in spans_or_links:
        if not isinstance(item, dict):
            raise InvalidRequestError("spans and links must be JSON objects")
        for key in _ID_KEYS:
            value = item.get(key)
            if isinstance(value, str) and value:
                try:
                    item[key] = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise InvalidRequestError(f"{key} {value!r} is not hex") from None
        links = item.get("links")
        if isinstance(links, list):
            _hex_ids_to_base64(links)


def _each_list(parent: Any, *keys: str) -> list[Any]:
    if not isinstance(parent, dict):
        raise InvalidRequestError("the OTLP/JSON structure is wrong: expected an object")
    for key in keys:
        value = parent.get(key)
        if value is not None:
            if not isinstance(value, list):
                raise InvalidRequestError(f"{key} must be a JSON array")
            return value
    return []


def accept_json(body: bytes) -> Accepted:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"the body is not valid JSON: {exc}") from None
    for resource_spans in _each_list(document, "resourceSpans", "resource_spans"):
        for scope_spans in _each_list(resource_spans, "scopeSpans", "scope_spans"):
            _hex_ids_to_base64(_each_list(scope_spans, "spans"))
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, binascii.Error, ValueError, TypeError) as exc:
        raise InvalidRequestError(
            f"the body is not a valid OTLP/JSON trace request: {exc}"
        ) from None
    return _check(request, None)


def response_json(response: Any) -> bytes:
    """A protobuf message in OTLP/JSON (camelCase keys, defaults left out)."""
    return json.dumps(json_format.MessageToDict(response)).encode()
