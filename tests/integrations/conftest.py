"""Fixtures for the framework integration tests.

Each test module needs one framework; the main test run skips a module whose
framework is missing, and the nox session of that framework sets
FORKTRACE_REQUIRE_FRAMEWORK=1 so that a missing framework fails instead.

Spans are read from an in-memory exporter on a tracer provider that is also
the global one, so frameworks that emit OpenTelemetry spans of their own
(the Anthropic SDK) go through forktrace's lineage processor too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from integration_helpers import Spans
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import forktrace

_exporter = InMemorySpanExporter()


@pytest.fixture(scope="session")
def tracer_provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(provider)
    forktrace.init(tracer_provider=provider, export=False)
    return provider


@pytest.fixture
def spans(tracer_provider: TracerProvider) -> Iterator[Spans]:
    _exporter.clear()
    yield Spans(_exporter)
    forktrace.uninstrument()
    _exporter.clear()
