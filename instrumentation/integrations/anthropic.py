"""Anthropic SDK: its own OpenTelemetry spans, made forktrace llm spans.

The Anthropic SDK traces every API call itself: one ``anthropic.messages.create``
span per call (sync, async, streamed, and the ``messages.stream`` helper) with
the GenAI attributes, tokens (input, output, thinking) and, in its ``content``
mode, the messages with thinking blocks as ``reasoning`` parts. forktrace does
not duplicate those spans. Instead it:

- adds a span processor to the global tracer provider (where the SDK sends its
  spans) that marks each model call ``forktrace.kind = llm``; lineage is
  stamped by forktrace's lineage processor like on any span inside a run;
- turns the SDK's content mode on (``ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE``)
  when forktrace captures content and the variable is not set, so thinking
  text is recorded. Clients read it when they are created: create them after
  ``forktrace.instrument()``, or pass ``open_telemetry={"traces": {"content_mode":
  "content"}}`` yourself.

uninstrument() turns the processor inert (OpenTelemetry cannot remove one) and
restores the variable.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from forktrace import semconv
from forktrace.integrations._shared import capture_content, report

SCOPE_PREFIX = "com.anthropic.sdk"
CONTENT_MODE_VARIABLE = "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"
_LLM = semconv.Kind.LLM.value
_MODEL_OPERATIONS = frozenset({"chat", "text_completion"})


class ModelCallKinds(SpanProcessor):
    """Marks the Anthropic SDK's model-call spans as forktrace llm spans."""

    def __init__(self) -> None:
        self.active = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not self.active:
            return
        try:
            scope = span.instrumentation_scope
            if scope is None or not scope.name.startswith(SCOPE_PREFIX):
                return
            attributes = span.attributes or {}
            if attributes.get(semconv.GEN_AI_OPERATION_NAME) in _MODEL_OPERATIONS:
                span.set_attribute(semconv.KIND, _LLM)
        except Exception as exc:
            report("anthropic.on_start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# One processor per provider for the whole process: a provider cannot drop a
# processor, so re-instrumenting re-activates the one it already has.
_processors: dict[int, ModelCallKinds] = {}
_processors_lock = threading.Lock()


class Instrumentor:
    def __init__(self) -> None:
        self._processor: ModelCallKinds | None = None
        self._set_variable = False

    def instrument(self, **options: Any) -> None:
        import anthropic

        if not hasattr(anthropic, "_tracing"):
            raise RuntimeError(
                "this anthropic SDK has no OpenTelemetry tracing of its own; "
                'install a newer one: pip install "forktrace[anthropic]"'
            )
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            report(
                "anthropic.instrument",
                RuntimeError(
                    "the global tracer provider is not an SDK provider (call forktrace.init() "
                    "first); Anthropic spans will not be marked as llm spans"
                ),
            )
        else:
            with _processors_lock:
                processor = _processors.get(id(provider))
                if processor is None:
                    processor = _processors[id(provider)] = ModelCallKinds()
                    provider.add_span_processor(processor)
                processor.active = True
            self._processor = processor
        if capture_content() and CONTENT_MODE_VARIABLE not in os.environ:
            os.environ[CONTENT_MODE_VARIABLE] = "content"
            self._set_variable = True

    def uninstrument(self) -> None:
        if self._processor is not None:
            self._processor.active = False
            self._processor = None
        if self._set_variable:
            os.environ.pop(CONTENT_MODE_VARIABLE, None)
            self._set_variable = False
