"""The OTLP trace schema as one self-contained ``.proto`` text, for ClickHouse.

The engine decodes raw OTLP requests itself (``FORMAT Protobuf``) and needs the
message definitions as ``.proto`` source. Rather than copy the upstream files,
the text is generated from the descriptors compiled into ``opentelemetry-proto``,
so it always matches the wire format the receivers validate against.
"""

from __future__ import annotations

from functools import cache

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

ROOT_MESSAGE = "ExportTraceServiceRequest"

_SCALAR_NAMES = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64",
    FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
}


def _is_repeated(field: FieldDescriptor) -> bool:
    # protobuf >= 5 spells it is_repeated; older versions only have label
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    return field.label == FieldDescriptor.LABEL_REPEATED


def _type_name(field: FieldDescriptor) -> str:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return field.message_type.name
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.name
    return _SCALAR_NAMES[field.type]


def _enum(enum: EnumDescriptor, indent: str) -> list[str]:
    lines = [f"{indent}enum {enum.name} {{"]
    lines += [f"{indent}  {value.name} = {value.number};" for value in enum.values]
    return [*lines, f"{indent}}}"]


def _field_line(field: FieldDescriptor, indent: str) -> str:
    prefix = "repeated " if _is_repeated(field) else ""
    return f"{indent}{prefix}{_type_name(field)} {field.name} = {field.number};"


def _message(message: Descriptor, indent: str = "") -> list[str]:
    lines = [f"{indent}message {message.name} {{"]
    inner = indent + "  "
    for enum in message.enum_types:
        lines += _enum(enum, inner)
    for nested in message.nested_types:
        lines += _message(nested, inner)
    oneof_fields = set()
    for oneof in message.oneofs:
        if oneof.name.startswith("_"):  # synthetic oneof of a proto3 `optional`
            continue
        lines.append(f"{inner}oneof {oneof.name} {{")
        lines += [_field_line(field, inner + "  ") for field in oneof.fields]
        lines.append(f"{inner}}}")
        oneof_fields.update(field.name for field in oneof.fields)
    lines += [_field_line(f, inner) for f in message.fields if f.name not in oneof_fields]
    return [*lines, f"{indent}}}"]


def _top_level(message: Descriptor) -> Descriptor:
    while message.containing_type is not None:
        message = message.containing_type
    return message


@cache
def proto_text() -> str:
    """``syntax = "proto3"`` source of every message an ExportTraceServiceRequest uses."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    root = trace_service_pb2.ExportTraceServiceRequest.DESCRIPTOR
    seen: dict[str, Descriptor] = {}
    pending = [root]
    while pending:
        message = _top_level(pending.pop())
        if message.full_name in seen:
            continue
        seen[message.full_name] = message
        for candidate in [message, *message.nested_types]:
            pending += [f.message_type for f in candidate.fields if f.message_type is not None]
    lines = ['syntax = "proto3";', ""]
    for message in sorted(seen.values(), key=lambda m: m.name):
        lines += [*_message(message), ""]
    return "\n".join(lines)
