"""Fixtures for the SDK: a fresh tracer provider with an in-memory exporter per test.

OpenTelemetry's global tracer provider can be set once per process, so the
tests never set it: they hand forktrace a provider of their own with
``forktrace.init(tracer_provider=..., export=False)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sdk_helpers import Recorded

import forktrace


@pytest.fixture
def record() -> Iterator[Callable[..., Recorded]]:
    """``record(**init_options)`` initialises forktrace on a fresh in-memory provider."""
    started = False

    def start(**options: Any) -> Recorded:
        nonlocal started
        exporter = InMemorySpanExporter()
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        forktrace.init(tracer_provider=provider, export=False, **options)
        started = True
        return Recorded(provider, exporter)

    yield start
    if started:
        forktrace.shutdown()


@pytest.fixture
def recorded(record: Callable[..., Recorded]) -> Recorded:
    return record()
