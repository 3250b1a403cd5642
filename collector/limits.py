"""What one OTLP request may contain, and the cheap checks that enforce it.

The limits protect the collector and the store from hostile or broken
exporters without slowing down the common request:

- sizes (body on the wire, after decompression) are checked before anything
  is parsed; a compressed body is inflated in bounded steps, so a gzip bomb
  stops at the limit instead of filling memory;
- spans per request and attributes per span are counts upb already knows;
- attribute values are only walked in the rare resource, scope or span whose
  serialised size exceeds the value limit (a smaller one cannot hold a longer
  value), and long values are truncated with a marker, not rejected;
- nesting depth is bounded by the protobuf parser itself: the body is parsed
  inside a stack of wrapper messages, so a request nested deeper than the
  limit could allow fails the parse (upb stops at a fixed message depth), and
  only then are attributes walked to find the culprits. See ``depth_wrapped``.
"""

from __future__ import annotations

import dataclasses
import threading
import zlib
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from forktrace.collector.spool import _varint

KIB = 1024
MIB = 1024 * 1024
TRUNCATION_MARKER = "…[truncated {} bytes]"


class InvalidRequestError(ValueError):
    """The request body is not a valid OTLP ExportTraceServiceRequest, or breaks a limit."""

    reason = "malformed"  # the metrics label of this rejection
    too_large = False  # answered 413 over HTTP


class LimitExceededError(InvalidRequestError):
    def __init__(self, reason: str, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.too_large = too_large


def _limit(default: int, flag: str, unit: str, meaning: str, answer: str) -> Any:
    return field(
        default=default,
        metadata={"flag": flag, "unit": unit, "meaning": meaning, "answer": answer},
    )


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int = _limit(
        16 * MIB,
        "--max-request-mb",
        "MiB",
        "request body as received (compressed, if it is)",
        "HTTP 413; gRPC RESOURCE_EXHAUSTED (gRPC applies the decompressed limit to both)",
    )
    max_decompressed_bytes: int = _limit(
        32 * MIB,
        "--max-decompressed-mb",
        "MiB",
        "request body after gzip/deflate decompression (gzip bombs stop here)",
        "HTTP 413; gRPC RESOURCE_EXHAUSTED",
    )
    max_spans_per_request: int = _limit(
        10_000,
        "--max-spans-per-request",
        "spans",
        "spans in one request",
        "HTTP 413; gRPC INVALID_ARGUMENT (not retryable: send smaller batches)",
    )
    max_attributes_per_span: int = _limit(
        512,
        "--max-attributes-per-span",
        "attributes",
        "attributes of one span",
        "the span is dropped: partial success with the count and reason",
    )
    max_attribute_value_bytes: int = _limit(
        256 * KIB,
        "--max-attribute-value-kb",
        "KiB",
        "one string or bytes attribute value (spans, events, links, resource, scope)",
        'truncated, not rejected: the value ends in "…[truncated N bytes]"',
    )
    max_attribute_depth: int = _limit(
        8,
        "--max-attribute-depth",
        "levels",
        "nesting of array and key-value list values (a plain value is 0)",
        "span, event or link attribute: the span is dropped (partial success); "
        "resource or scope attribute: HTTP 400 / INVALID_ARGUMENT",
    )

    def validate(self) -> list[str]:
        errors = [
            f"{f.metadata['flag']} must be at least 1"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) < 1
        ]
        if self.max_decompressed_bytes < self.max_request_bytes:
            errors.append("--max-decompressed-mb must be at least --max-request-mb")
        if self.max_attribute_depth > MAX_DEPTH:
            errors.append(f"--max-attribute-depth must be at most {MAX_DEPTH}")
        return errors


DEFAULT_LIMITS = Limits()


def markdown_table(limits: Limits | None = None) -> str:
    """The limits as the table docs/operations.md shows (a test keeps them equal)."""
    limits = limits or DEFAULT_LIMITS
    rows = ["| option | default | limits | when exceeded |", "|---|---|---|---|"]
    for f in dataclasses.fields(limits):
        meta, value = f.metadata, getattr(limits, f.name)
        scale = {"MiB": MIB, "KiB": KIB}.get(meta["unit"], 1)
        shown = f"{value // scale:,} {meta['unit']}"
        rows.append(f"| `{meta['flag']}` | {shown} | {meta['meaning']} | {meta['answer']} |")
    return "\n".join(rows)


# --- decompression -------------------------------------------------------------

_WBITS = {"gzip": 31, "x-gzip": 31, "deflate": 15}


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Inflate ``body`` in steps of at most ``limit`` bytes; raise past ``limit``.
    Raises ValueError for an unknown encoding or a corrupt stream."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in _WBITS:
        raise ValueError(f"unsupported Content-Encoding {encoding!r}; use gzip or deflate")
    out = bytearray()
    pending = body
    try:
        while pending:  # a gzip body may hold several members
            inflater = zlib.decompressobj(_WBITS[encoding])
            while pending and not inflater.eof:
                out += inflater.decompress(pending, limit - len(out) + 1)
                if len(out) > limit:
                    raise LimitExceededError(
                        "decompressed_bytes",
                        f"the body inflates to more than {limit} bytes (--max-decompressed-mb)",
                        too_large=True,
                    )
                pending = inflater.unconsumed_tail
            if not inflater.eof:
                raise ValueError(f"the {encoding} stream is truncated")
            pending = inflater.unused_data
    except zlib.error as exc:
        raise ValueError(f"the {encoding} stream is corrupt: {exc}") from None
    return bytes(out)


# --- attribute values ----------------------------------------------------------


def _truncate_value(value: Any, limit: int) -> int:
    """Truncate string and bytes values longer than ``limit`` bytes in an AnyValue
    (recursively); returns how many were truncated."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
        if len(text) * 4 <= limit:  # cannot be longer than limit bytes in UTF-8
            return 0
        raw = text.encode()
        if len(raw) <= limit:
            return 0
        kept = raw[:limit].decode("utf-8", "ignore")
        dropped = len(raw) - len(kept.encode())
        value.string_value = kept + TRUNCATION_MARKER.format(dropped)
        return 1
    if kind == "bytes_value":
        raw = value.bytes_value
        if len(raw) <= limit:
            return 0
        value.bytes_value = raw[:limit] + TRUNCATION_MARKER.format(len(raw) - limit).encode()
        return 1
    if kind == "array_value":
        return sum(_truncate_value(v, limit) for v in value.array_value.values)
    if kind == "kvlist_value":
        return sum(_truncate_value(kv.value, limit) for kv in value.kvlist_value.values)
    return 0


def _truncate_attributes(attributes: Any, limit: int) -> int:
    return sum(_truncate_value(kv.value, limit) for kv in attributes)


def truncate_long_values(request: Any, limit: int) -> int:
    """Truncate every attribute value longer than ``limit`` bytes; returns how many.
    Only messages serialised larger than ``limit`` are walked."""
    truncated = 0
    for resource_spans in request.resource_spans:
        if resource_spans.resource.ByteSize() > limit:
            truncated += _truncate_attributes(resource_spans.resource.attributes, limit)
        for scope_spans in resource_spans.scope_spans:
            if scope_spans.scope.ByteSize() > limit:
                truncated += _truncate_attributes(scope_spans.scope.attributes, limit)
            if scope_spans.ByteSize() <= limit:
                continue
            for span in scope_spans.spans:
                if span.ByteSize() <= limit:
                    continue
                truncated += _truncate_attributes(span.attributes, limit)
                for item in (*span.events, *span.links):
                    truncated += _truncate_attributes(item.attributes, limit)
    return truncated


# --- nesting depth ---------------------------------------------------------------


def value_depth(value: Any, stop: int) -> int:
    """Nesting levels of array and key-value list values in an AnyValue (a plain
    value is 0); counting stops just past ``stop``."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        children = value.array_value.values
    elif kind == "kvlist_value":
        children = [kv.value for kv in value.kvlist_value.values]
    else:
        return 0
    if stop <= 0:
        return 1
    return 1 + max((value_depth(child, stop - 1) for child in children), default=0)


def too_deep(attributes: Any, limit: int) -> bool:
    return any(value_depth(kv.value, limit) > limit for kv in attributes)


def span_too_deep(span: Any, limit: int) -> bool:
    return too_deep(span.attributes, limit) or any(
        too_deep(item.attributes, limit) for item in (*span.events, *span.links)
    )


# The depth gate. upb refuses messages nested deeper than a fixed number of
# levels. A request parsed as the innermost field of K wrapper messages fails
# that check as soon as its own nesting exceeds (parser limit - K). An attribute
# value nested d levels deep needs at least 3 + 2d message levels below the
# request (resource > key-value > value > array > value ...), so with
# K = parser limit - 4 - 2 * max_depth, every request that parses has no value
# deeper than max_depth. Most valid requests parse at once; one that fails is
# parsed again without wrappers and walked (slow, rare, exact).

MAX_DEPTH = 30  # upb's own limit allows about this many key-value list levels


@cache
def _wrapper_class() -> Any:
    """``DepthWrapper { group inner = 1 (a DepthWrapper); Request request = 2 }``.
    The nesting is group-encoded (start and end tags, no lengths), so the
    wrappers are the same bytes for every request: a cached prefix and suffix."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    pool = descriptor_pool.Default()
    name = "forktrace.collector.limits.DepthWrapper"
    try:
        return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
    except KeyError:
        pass
    kinds = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="forktrace/collector/limits_depth_wrapper.proto",
        package="forktrace.collector.limits",
        syntax="proto2",
        dependency=[trace_service_pb2.DESCRIPTOR.name],
    )
    message = file.message_type.add(name="DepthWrapper")
    message.field.add(
        name="inner", number=1, type=kinds.TYPE_GROUP, label=kinds.LABEL_OPTIONAL,
        type_name=f".{name}",
    )  # fmt: skip
    message.field.add(
        name="request", number=2, type=kinds.TYPE_MESSAGE, label=kinds.LABEL_OPTIONAL,
        type_name=".opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
    )  # fmt: skip
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


_START_GROUP, _END_GROUP, _REQUEST_TAG = b"\x0b", b"\x0c", b"\x12"  # fields 1 and 2


_REUSED_BUFFER_MAX = 4 * MIB
_buffers = threading.local()


def _wrapped(body: bytes, levels: int) -> memoryview:
    """``body`` as the request of ``levels`` nested wrappers.

    Written into a per-thread buffer that is reused: a fresh ~200 KB object per
    request would be a fresh mmap, and its page faults cost more than the copy.
    The protobuf parser copies what it keeps, so the buffer may be overwritten
    once the request is parsed."""
    prefix = _START_GROUP * (levels - 1) + _REQUEST_TAG + _varint(len(body))
    suffix = _END_GROUP * (levels - 1)
    size = len(prefix) + len(body) + len(suffix)
    if size > _REUSED_BUFFER_MAX:
        return memoryview(b"".join((prefix, body, suffix)))
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _buffers.buffer = bytearray(max(size, 256 * KIB))
    start, end = len(prefix), len(prefix) + len(body)
    buffer[:start] = prefix
    buffer[start:end] = body
    buffer[end:size] = suffix
    return memoryview(buffer)[:size]


@cache
def _parser_depth_limit() -> int:
    """How many wrapper levels upb accepts around an empty request (measured once)."""
    from google.protobuf.message import DecodeError

    wrapper, low, high = _wrapper_class(), 1, 400
    while low < high:  # the largest level count that still parses
        middle = (low + high + 1) // 2
        try:
            wrapper.FromString(_wrapped(b"", middle))
            low = middle
        except DecodeError:
            high = middle - 1
    return low


def wrapper_levels(max_depth: int) -> int:
    """Wrappers around a request such that it parses only if no attribute value
    can be nested deeper than ``max_depth`` (0: the parser's own limit applies)."""
    return max(0, _parser_depth_limit() - 4 - 2 * max_depth)


def parse_within_depth(body: bytes, levels: int, request_class: Any) -> Any | None:
    """The parsed request if it parses inside ``levels`` wrappers, else None."""
    from google.protobuf.message import DecodeError

    if levels == 0:
        return None
    try:
        message = _wrapper_class().FromString(_wrapped(body, levels))
    except DecodeError:
        return None
    for _ in range(levels - 1):
        message = message.inner
    request = message.request
    return request if isinstance(request, request_class) else None
