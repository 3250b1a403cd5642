"""Pydantic AI: its own GenAI spans, with forktrace kinds and agent lineage.

Pydantic AI traces agents, model requests and tool calls with OpenTelemetry
when instrumentation is on (``Agent(instrument=True)`` or
``Agent.instrument_all()``). forktrace does not emit duplicates; it:

- turns instrumentation on for every agent that does not choose for itself,
  when it is off (``Agent.instrument_all``), with content capture following
  forktrace's setting; uninstrument() puts the previous default back;
- adds an :class:`~forktrace.integrations._enrich.Enricher` on the global
  tracer provider that marks ``invoke_agent``, ``chat`` and ``execute_tool``
  spans as agent, llm and tool spans, and stamps ``forktrace.agent.name``
  with the Pydantic AI agent a span runs in (Pydantic AI puts
  ``gen_ai.agent.name`` on every span of a run).

Lineage (run, fork, branch) is stamped by forktrace's lineage processor: an
agent run inside a ``forktrace.fork`` branch is a child of that branch.
Thinking parts stay where Pydantic AI records them, as ``thinking`` parts of
``gen_ai.output.messages``.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span

from forktrace import semconv
from forktrace.integrations._enrich import Enricher, enrich_global_spans
from forktrace.integrations._shared import capture_content

SCOPE_PREFIX = "pydantic-ai"
_KINDS = {
    semconv.Operation.INVOKE_AGENT.value: semconv.Kind.AGENT.value,
    semconv.Operation.CHAT.value: semconv.Kind.LLM.value,
    semconv.Operation.EXECUTE_TOOL.value: semconv.Kind.TOOL.value,
}
_UNSET = object()


def _add_kind_and_agent(span: Span, parent_context: Context | None) -> None:
    attributes = span.attributes or {}
    kind = _KINDS.get(attributes.get(semconv.GEN_AI_OPERATION_NAME))  # type: ignore[arg-type]
    agent = attributes.get(semconv.GEN_AI_AGENT_NAME)
    enriched: dict[str, Any] = {}
    if kind is not None:
        enriched[semconv.KIND] = kind
    if isinstance(agent, str) and agent:
        enriched[semconv.AGENT_NAME] = agent
    if enriched:
        span.set_attributes(enriched)


class Instrumentor:
    def __init__(self) -> None:
        self._enricher: Enricher | None = None
        self._previous_default: Any = _UNSET

    def instrument(self, **options: Any) -> None:
        from pydantic_ai import Agent
        from pydantic_ai.models.instrumented import InstrumentationSettings

        self._enricher = enrich_global_spans("pydantic_ai", SCOPE_PREFIX, _add_kind_and_agent)
        current = getattr(Agent, "_instrument_default", False)
        if not current:
            self._previous_default = current
            Agent.instrument_all(InstrumentationSettings(include_content=capture_content()))

    def uninstrument(self) -> None:
        from pydantic_ai import Agent

        if self._enricher is not None:
            self._enricher.active = False
            self._enricher = None
        if self._previous_default is not _UNSET:
            Agent.instrument_all(self._previous_default)
            self._previous_default = _UNSET
