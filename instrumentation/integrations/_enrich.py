"""Enriching the OpenTelemetry spans a framework emits itself, instead of duplicating them.

Some frameworks (the Anthropic SDK, Pydantic AI) trace their own work with
OpenTelemetry, through the global tracer provider. forktrace's lineage
processor already stamps those spans; an :class:`Enricher` adds what only
forktrace knows: the ``forktrace.kind`` of each span, and anything else the
integration reads from the span's start attributes.

A tracer provider cannot drop a processor, so each provider gets one
:class:`Enricher` per integration for the life of the process, and
uninstrument() turns it inert; instrumenting again turns it back on.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from forktrace.integrations._shared import report

OnStart = Callable[[Span, "Context | None"], None]


class Enricher(SpanProcessor):
    """Calls ``on_start`` for spans of the instrumentation scopes starting with ``scope_prefix``."""

    def __init__(self, name: str, scope_prefix: str, on_start: OnStart) -> None:
        self.name = name
        self.scope_prefix = scope_prefix
        self.enrich = on_start
        self.active = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self.active:
            return
        scope = span.instrumentation_scope
        if scope is None or not scope.name.startswith(self.scope_prefix):
            return
        try:
            self.enrich(span, parent_context)
        except Exception as exc:
            report(f"{self.name}.on_start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_installed: weakref.WeakKeyDictionary[TracerProvider, dict[str, Enricher]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def enrich_global_spans(name: str, scope_prefix: str, on_start: OnStart) -> Enricher | None:
    """Activate integration ``name``'s enricher on the global tracer provider.

    Returns None (and logs once) when the global provider is not an SDK
    provider: then the framework's spans go nowhere forktrace can see.
    """
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        report(
            f"{name}.instrument",
            RuntimeError(
                "the global tracer provider is not an OpenTelemetry SDK provider (call "
                f"forktrace.init() first); {name} spans will not get forktrace kinds"
            ),
        )
        return None
    with _lock:
        enrichers = _installed.setdefault(provider, {})
        enricher = enrichers.get(name)
        if enricher is None:
            enricher = enrichers[name] = Enricher(name, scope_prefix, on_start)
            provider.add_span_processor(enricher)
        enricher.enrich = on_start
        enricher.active = True
    return enricher
