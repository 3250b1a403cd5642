"""Fixtures for the framework integration tests.

Each test module ``test_<framework>.py`` needs one framework. The main test run
does not collect the modules whose framework is missing (frameworks pin
conflicting versions, so each has its own nox session, ``nox -s integration``),
and says so in its header; the nox session sets FORKTRACE_REQUIRE_FRAMEWORK=1,
which collects the module whatever is installed, so a broken install fails.

Spans are read from an in-memory exporter on a tracer provider that is also
the global one, so frameworks that emit OpenTelemetry spans of their own
(the Anthropic SDK) go through forktrace's lineage processor too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration_helpers import Spans
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import forktrace
from forktrace.integrations import SUPPORTED

_exporter = InMemorySpanExporter()

_MISSING = {
    f"test_{name.replace('-', '_')}.py": name
    for name, integration in SUPPORTED.items()
    if not integration.installed()
}


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if os.environ.get("FORKTRACE_REQUIRE_FRAMEWORK") == "1":
        return None
    return True if collection_path.name in _MISSING else None


def pytest_report_header() -> str | None:
    if not _MISSING or os.environ.get("FORKTRACE_REQUIRE_FRAMEWORK") == "1":
        return None
    names = ", ".join(sorted(_MISSING.values()))
    return f"framework suites not installed here, run by `nox -s integration`: {names}"


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


@pytest.fixture
def openai_server() -> Iterator[Any]:
    """A local server speaking OpenAI's chat completions (``fake_providers.openai_chat``)."""
    from fake_providers import LocalServer, openai_chat

    with LocalServer({"/v1/chat/completions": openai_chat}) as server:
        yield server
