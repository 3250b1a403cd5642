"""Anthropic SDK: its own OpenTelemetry spans, made forktrace llm spans.

The Anthropic SDK traces every API call itself: one ``anthropic.messages.create``
span per call (sync, async, streamed, and the ``messages.stream`` helper) with
the GenAI attributes, tokens (input, output, thinking) and, in its ``content``
mode, the messages with thinking blocks as ``reasoning`` parts. forktrace does
not duplicate those spans. Instead it:

- adds a span processor to the global tracer provider (where the SDK sends its
  spans) that marks each model call ``forktrace.kind = llm``; lineage is
  stamped by forktrace's lineage processor like on any span inside a run. A
  call a framework records as its own llm span (LangChain, Strands' ``chat``
  span) is left unmarked, so its tokens count once;
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
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span

from forktrace import semconv
from forktrace.integrations._enrich import Enricher, enrich_global_spans
from forktrace.integrations._shared import capture_content, recording_model_call

SCOPE_PREFIX = "com.anthropic.sdk"
CONTENT_MODE_VARIABLE = "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"
_LLM = semconv.Kind.LLM.value
_MODEL_OPERATIONS = frozenset({"chat", "text_completion"})


def _mark_model_calls(span: Span, parent_context: Context | None) -> None:
    attributes = span.attributes or {}
    if attributes.get(semconv.GEN_AI_OPERATION_NAME) not in _MODEL_OPERATIONS:
        return
    if recording_model_call() is not None:
        # A framework records this call as its llm span (LangChain, Strands' chat span):
        # the SDK's span stays, kindless, so its tokens are not counted a second time.
        return
    span.set_attribute(semconv.KIND, _LLM)


class Instrumentor:
    def __init__(self) -> None:
        self._enricher: Enricher | None = None
        self._set_variable = False

    def instrument(self, **options: Any) -> None:
        import anthropic

        if not hasattr(anthropic, "_tracing"):
            raise RuntimeError(
                "this anthropic SDK has no OpenTelemetry tracing of its own; "
                'install a newer one: pip install "forktrace[anthropic]"'
            )
        self._enricher = enrich_global_spans("anthropic", SCOPE_PREFIX, _mark_model_calls)
        if capture_content() and CONTENT_MODE_VARIABLE not in os.environ:
            os.environ[CONTENT_MODE_VARIABLE] = "content"
            self._set_variable = True

    def uninstrument(self) -> None:
        if self._enricher is not None:
            self._enricher.active = False
            self._enricher = None
        if self._set_variable:
            os.environ.pop(CONTENT_MODE_VARIABLE, None)
            self._set_variable = False
