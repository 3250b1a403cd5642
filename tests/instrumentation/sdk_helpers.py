"""Helpers for the SDK tests: the recorded spans and the lookups assertions need."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from forktrace import semconv


class Recorded:
    """The spans a test recorded, with the lookups the assertions need."""

    def __init__(self, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
        self.provider = provider
        self.exporter = exporter
        # A tracer like any other instrumentation's: not forktrace's own.
        self.plain_tracer: Tracer = provider.get_tracer("tests.plain")

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def kind(self, kind: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if (s.attributes or {}).get(semconv.KIND) == kind]

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"expected one span {name!r}, got {[s.name for s in self.spans()]}"
        return found[0]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def span_id(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")


def parent_id(span: ReadableSpan) -> str | None:
    return format(span.parent.span_id, "016x") if span.parent is not None else None
