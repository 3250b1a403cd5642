"""Accepting an OTLP trace request: validate it cheaply, keep the bytes.

The receivers parse each request once (upb, the fast protobuf backend) to
reject malformed input before it reaches the spool: a bad request gets its own
error and never spoils the batch it would have joined. A valid protobuf body is
spooled byte for byte; a JSON body (the OTLP/JSON mapping: camelCase keys,
hex ids, enums as integers) is converted to protobuf once, here.

Spans whose trace or span id is not a valid OTLP id, or that break a
per-span limit (attribute count, nesting depth), are dropped and reported as a
partial success, as the OTLP specification describes; a limit of the whole
request (spans per request) rejects it. Over-long attribute values are
truncated. The body is re-serialised only when something was dropped or
truncated, so the common request is spooled byte for byte. See limits.py.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from forktrace.collector.limits import (
    DEFAULT_LIMITS,
    InvalidRequestError,
    LimitExceededError,
    Limits,
    parse_within_depth,
    span_too_deep,
    too_deep,
    truncate_long_values,
    wrapper_levels,
)

__all__ = ["Accepted", "InvalidRequestError", "accept_json", "accept_protobuf", "response_json"]

_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


@dataclass(frozen=True)
class Accepted:
    payload: bytes  # protobuf ExportTraceServiceRequest to spool (empty: nothing to store)
    spans: int
    rejected: dict[str, int] = field(default_factory=dict)  # spans dropped, by reason
    truncated_values: int = 0
    error_message: str = ""

    @property
    def rejected_spans(self) -> int:
        return sum(self.rejected.values())

    def response(self) -> ExportTraceServiceResponse:
        response = ExportTraceServiceResponse()
        if self.rejected:
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


def _rejection(span: Any, limits: Limits, check_depth: bool) -> str | None:
    """Why ``span`` is dropped, or None to keep it."""
    if not _valid_ids(span):
        return "invalid_id"
    if len(span.attributes) > limits.max_attributes_per_span:
        return "attributes_per_span"
    if check_depth and span_too_deep(span, limits.max_attribute_depth):
        return "attribute_depth"
    return None


def _reasons(limits: Limits) -> dict[str, str]:
    return {
        "invalid_id": "trace ids must be 16 non-zero bytes, span ids 8 non-zero bytes",
        "attributes_per_span": f"more than {limits.max_attributes_per_span} attributes",
        "attribute_depth": (
            f"an attribute value nested more than {limits.max_attribute_depth} levels deep"
        ),
    }


def _check_resource_depth(request: ExportTraceServiceRequest, limit: int) -> None:
    for resource_spans in request.resource_spans:
        if too_deep(resource_spans.resource.attributes, limit) or any(
            too_deep(scope_spans.scope.attributes, limit)
            for scope_spans in resource_spans.scope_spans
        ):
            raise LimitExceededError(
                "attribute_depth",
                f"a resource or scope attribute value is nested more than {limit} levels deep "
                "(--max-attribute-depth)",
            )


def _check(
    request: ExportTraceServiceRequest,
    body: bytes | None,
    limits: Limits,
    *,
    check_depth: bool,
) -> Accepted:
    """Apply the limits and the id checks to a parsed request. ``body`` is the
    request as received, spooled as it is unless something had to change;
    ``check_depth`` walks attributes for nesting (when the depth gate failed)."""
    total = sum(
        len(scope_spans.spans)
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
    )
    if total > limits.max_spans_per_request:
        raise LimitExceededError(
            "spans_per_request",
            f"the request holds {total} spans, more than {limits.max_spans_per_request} "
            "(--max-spans-per-request); send smaller batches",
            too_large=True,
        )
    if check_depth:
        _check_resource_depth(request, limits.max_attribute_depth)
    size = len(body) if body is not None else request.ByteSize()
    truncated = 0
    if size > limits.max_attribute_value_bytes:  # only then can one value be longer
        truncated = truncate_long_values(request, limits.max_attribute_value_bytes)
    rejected: Counter[str] = Counter()
    max_attributes = limits.max_attributes_per_span
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            batch = scope_spans.spans
            if not check_depth and all(
                [_valid_ids(span) and len(span.attributes) <= max_attributes for span in batch]
            ):
                continue  # the common case, without a call per span for the reason
            reasons = [_rejection(span, limits, check_depth) for span in batch]
            if not any(reasons):
                continue
            rejected.update(reason for reason in reasons if reason)
            kept = [
                span.SerializeToString() for span, r in zip(batch, reasons, strict=True) if not r
            ]
            del batch[:]
            for raw in kept:
                batch.add().ParseFromString(raw)
    spans = total - sum(rejected.values())
    if rejected or truncated:
        body = None
    payload = b"" if spans == 0 else (body if body is not None else request.SerializeToString())
    explained = _reasons(limits)
    message = "; ".join(
        f"{count} span(s) dropped: {explained[reason]}" for reason, count in rejected.items()
    )
    return Accepted(payload, spans, dict(rejected), truncated, message)


def accept_protobuf(body: bytes, limits: Limits = DEFAULT_LIMITS) -> Accepted:
    request = parse_within_depth(
        body, wrapper_levels(limits.max_attribute_depth), ExportTraceServiceRequest
    )
    if request is not None:
        return _check(request, body, limits, check_depth=False)
    # not within the depth gate: malformed, or nested deep enough to need a look
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidRequestError(
            f"the body is not a valid OTLP protobuf ExportTraceServiceRequest: {exc}"
        ) from None
    return _check(request, body, limits, check_depth=True)


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


def accept_json(body: bytes, limits: Limits = DEFAULT_LIMITS) -> Accepted:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequestError(f"the body is not valid JSON: {exc}") from None
    for resource_spans in _each_list(document, "resourceSpans", "resource_spans"):
        for scope_spans in _each_list(resource_spans, "scopeSpans", "scope_spans"):
            _hex_ids_to_base64(_each_list(scope_spans, "spans"))
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    # SystemError: upb's field lookup fails that way on a key holding a lone
    # UTF-16 surrogate ("\udaf9"), which JSON allows and UTF-8 cannot encode
    except (
        json_format.ParseError,
        binascii.Error,
        ValueError,
        TypeError,
        RecursionError,
        SystemError,
    ) as exc:
        raise InvalidRequestError(
            f"the body is not a valid OTLP/JSON trace request: {exc}"
        ) from None
    return _check(request, None, limits, check_depth=True)


def response_json(response: Any) -> bytes:
    """A protobuf message in OTLP/JSON (camelCase keys, defaults left out)."""
    return json.dumps(json_format.MessageToDict(response)).encode()
