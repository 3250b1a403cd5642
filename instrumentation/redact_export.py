"""Redaction in the SDK: an exporter wrapper that redacts spans on their way out.

Why a wrapping exporter rather than a span processor: it runs on the batch
processor's export thread, so the agent's own threads pay nothing for it, and
it sees every span the provider exports to forktrace, other instrumentations'
spans included. A span processor's ``on_end`` would run on the agent's thread.

What is redacted: the span's name, every string (or string array) attribute,
every event's string attributes (exception messages and stack traces
included) and the status description. A span with nothing to redact is passed
on as it is; only a span that changes is copied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from forktrace.redaction import Redactor

# Never part of a hint, so the joined text matches a hint only where one value does.
_SEPARATOR = "\x00"


def _append_strings(parts: list[str], attributes: Mapping[str, Any] | None) -> None:
    if not attributes:
        return
    for value in attributes.values():
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, tuple | list):
            parts.extend(item for item in value if isinstance(item, str))


def _redacted_value(redactor: Redactor, value: Any) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, tuple | list) and any(isinstance(item, str) for item in value):
        return tuple(redactor.redact(item) if isinstance(item, str) else item for item in value)
    return value


def _redacted_attributes(
    redactor: Redactor, attributes: Mapping[str, Any] | None, dropped: int
) -> Mapping[str, Any] | None:
    if not attributes:
        return attributes
    redacted = {key: _redacted_value(redactor, value) for key, value in attributes.items()}
    if redacted == dict(attributes):
        return attributes
    bounded = BoundedAttributes(maxlen=None, attributes=redacted, immutable=True)
    bounded.dropped = dropped  # the exporter reports how many the SDK dropped
    return bounded


def redact_span(redactor: Redactor, span: ReadableSpan) -> ReadableSpan:
    """``span`` with the rules applied; ``span`` itself when no rule matched."""
    # each property read builds a new view or tuple: read once, compare by identity
    original_attributes, original_events = span.attributes, span.events
    original_name, original_status = span.name, span.status
    parts = [original_name]
    _append_strings(parts, original_attributes)
    for event in original_events:
        _append_strings(parts, event.attributes)
    if original_status.description:
        parts.append(original_status.description)
    if not redactor.may_match(_SEPARATOR.join(parts)):
        return span

    attributes = _redacted_attributes(redactor, original_attributes, span.dropped_attributes)
    redacted_events = [
        Event(
            event.name,
            _redacted_attributes(redactor, event.attributes, event.dropped_attributes),
            event.timestamp,
        )
        for event in original_events
    ]
    events_changed = any(
        new.attributes is not old.attributes
        for new, old in zip(redacted_events, original_events, strict=True)
    )
    name = redactor.redact(original_name)
    status = original_status
    if status.description:
        description = redactor.redact(status.description)
        if description is not status.description:
            status = Status(status.status_code, description)
    if (
        attributes is original_attributes
        and not events_changed
        and name is original_name
        and status is original_status
    ):
        return span  # a hint, but no match
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=redacted_events if events_changed else original_events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingSpanExporter(SpanExporter):
    """Redacts each span, then hands the batch to ``exporter``."""

    def __init__(self, exporter: SpanExporter, redactor: Redactor) -> None:
        self._exporter = exporter
        self._redactor = redactor

    @property
    def exporter(self) -> SpanExporter:
        return self._exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        redactor = self._redactor
        return self._exporter.export([redact_span(redactor, span) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)
