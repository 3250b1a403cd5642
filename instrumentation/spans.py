"""forktrace's span kinds other than forks: run, agent, tool, llm, decision, handoff,
and the ``intervene`` event.

Span names and ``gen_ai.*`` attributes follow the OpenTelemetry GenAI
conventions ("invoke_agent {name}", "execute_tool {name}", "chat {model}");
forktrace's own kinds get readable names ("run {name}", "decision"). Every
span carries ``forktrace.kind``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from forktrace import _guard, semconv, setup
from forktrace.context import Lineage, current_lineage, with_lineage
from forktrace.scope import CANCELLATION, Scope, enum_value, start_span, with_content
from forktrace.semconv import DecisionMaker, InterventionKind, Kind, Operation, RunOutcome
from forktrace.text import clip, put_content, put_text, to_text

_RUN = Kind.RUN.value
_AGENT = Kind.AGENT.value
_TOOL = Kind.TOOL.value
_LLM = Kind.LLM.value
_DECISION = Kind.DECISION.value
_HANDOFF = Kind.HANDOFF.value


def _session_id() -> str:
    config = setup.current_config()
    if config is not None:
        return config.session.value
    from forktrace.config import PROCESS_SESSION_ID, resolve

    try:
        return resolve().session.value
    except Exception:  # an invalid environment is reported by init(); do not fail a span
        return PROCESS_SESSION_ID


class Run(Scope):
    """One task given to one or many agents; the root of its trace and of its lineage."""

    __slots__ = ("_attributes", "_content", "_name", "_outcome", "_run_id", "_session")

    def __init__(
        self,
        name: str,
        *,
        goal: Any = None,
        session: str | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__()
        self._name = name
        self._session = session
        self._run_id = run_id
        self._outcome: str | None = None
        attributes: dict[str, Any] = {
            semconv.KIND: _RUN,
            semconv.GEN_AI_OPERATION_NAME: Operation.INVOKE_WORKFLOW.value,
            semconv.RUN_NAME: clip(name),
        }
        self._attributes = attributes
        self._content = ((semconv.RUN_GOAL, goal),)

    @property
    def id(self) -> str | None:
        return self._run_id

    def outcome(self, outcome: RunOutcome | str) -> Run:
        """Set the run's outcome (default: succeeded, or failed/cancelled by an exception)."""
        self._outcome = enum_value(outcome, RunOutcome, "run outcome")
        return self

    def _fresh(self) -> Run:
        fresh = super()._fresh()
        fresh._outcome = None
        return fresh

    def _open(self) -> otel_context.Context:
        parent = otel_context.get_current()
        outer = current_lineage(parent)
        session = self._session or (outer.session_id if outer is not None else _session_id())
        # A decorated run gets a new id on every call unless one was given.
        run_id = self._run_id or uuid.uuid4().hex
        self._run_id = run_id
        lineage = Lineage(session, run_id)
        attributes = with_content(self._attributes, self._content)
        span = self._span = start_span(f"run {self._name}", parent, attributes, lineage)
        return with_lineage(lineage, trace.set_span_in_context(span, parent))

    def _close(self, error: BaseException | None) -> None:
        outcome = self._outcome
        if outcome is None:
            if error is None:
                outcome = RunOutcome.SUCCEEDED.value
            elif isinstance(error, CANCELLATION):
                outcome = RunOutcome.CANCELLED.value
            else:
                outcome = RunOutcome.FAILED.value
        self._span.set_attribute(semconv.RUN_OUTCOME, outcome)  # type: ignore[union-attr]


class Agent(Scope):
    """An agent invocation (``invoke_agent``); spans inside carry its name as lineage."""

    __slots__ = ("_attributes", "_name")

    def __init__(
        self, name: str, *, agent_id: str | None = None, description: str | None = None
    ) -> None:
        super().__init__()
        self._name = name
        attributes: dict[str, Any] = {
            semconv.KIND: _AGENT,
            semconv.GEN_AI_OPERATION_NAME: Operation.INVOKE_AGENT.value,
            semconv.GEN_AI_AGENT_NAME: name,
        }
        if agent_id is not None:
            attributes[semconv.GEN_AI_AGENT_ID] = agent_id
        put_text(attributes, semconv.GEN_AI_AGENT_DESCRIPTION, description)
        self._attributes = attributes

    def _open(self) -> otel_context.Context:
        parent = otel_context.get_current()
        outer = current_lineage(parent)
        lineage = outer.in_agent(self._name) if outer is not None else None
        span = self._span = start_span(
            f"invoke_agent {self._name}", parent, self._attributes, lineage
        )
        context = trace.set_span_in_context(span, parent)
        return context if lineage is None else with_lineage(lineage, context)


class _Leaf(Scope):
    """A span that changes no lineage: it opens under the current span and context."""

    __slots__ = ("_attributes", "_content", "_name")

    def __init__(self) -> None:
        super().__init__()
        self._content: tuple[tuple[str, Any], ...] = ()

    def _open(self) -> otel_context.Context:
        parent = otel_context.get_current()
        attributes = with_content(self._attributes, self._content)
        span = self._span = start_span(self._name, parent, attributes, current_lineage(parent))
        return trace.set_span_in_context(span, parent)

    def _fresh(self) -> Any:
        fresh = super()._fresh()
        fresh._attributes = dict(self._attributes)
        return fresh

    def _set(self, attributes: dict[str, Any]) -> None:
        if self._span is not None:
            self._span.set_attributes(attributes)
        else:  # recorded before the span opened: it starts with them
            self._attributes.update(attributes)


class Tool(_Leaf):
    """A tool call (``execute_tool``); as a decorator it records the return value as the result."""

    __slots__ = ("_has_result",)

    def __init__(
        self,
        name: str,
        *,
        arguments: Any = None,
        call_id: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__()
        self._name = f"execute_tool {name}"
        self._has_result = False
        attributes: dict[str, Any] = {
            semconv.KIND: _TOOL,
            semconv.GEN_AI_OPERATION_NAME: Operation.EXECUTE_TOOL.value,
            semconv.GEN_AI_TOOL_NAME: name,
        }
        if call_id is not None:
            attributes[semconv.GEN_AI_TOOL_CALL_ID] = call_id
        put_text(attributes, semconv.GEN_AI_TOOL_DESCRIPTION, description)
        self._attributes = attributes
        if arguments is not None:
            self._content = ((semconv.GEN_AI_TOOL_CALL_ARGUMENTS, arguments),)

    def result(self, value: Any) -> Tool:
        """Record the tool's result (text as is, anything else as JSON)."""
        self._has_result = True
        attributes: dict[str, Any] = {}
        put_content(attributes, semconv.GEN_AI_TOOL_CALL_RESULT, value)
        if attributes:
            self._set(attributes)
        return self

    def _fresh(self) -> Tool:
        fresh = super()._fresh()
        fresh._has_result = False
        return fresh

    def _returned(self, value: Any) -> None:
        if not self._has_result:
            self.result(value)


class LLM(_Leaf):
    """A model call (``chat`` by default): model, tokens, reasoning text, finish reasons, messages."""

    __slots__ = ()

    def __init__(
        self,
        model: str,
        *,
        provider: str | None = None,
        operation: str = Operation.CHAT.value,
        conversation_id: str | None = None,
        input_messages: Any = None,
    ) -> None:
        super().__init__()
        self._name = f"{operation} {model}"
        attributes: dict[str, Any] = {
            semconv.KIND: _LLM,
            semconv.GEN_AI_OPERATION_NAME: operation,
            semconv.GEN_AI_REQUEST_MODEL: model,
        }
        if provider is not None:
            attributes[semconv.GEN_AI_PROVIDER_NAME] = provider
        if conversation_id is not None:
            attributes[semconv.GEN_AI_CONVERSATION_ID] = conversation_id
        self._attributes = attributes
        if input_messages is not None:
            self._content = ((semconv.GEN_AI_INPUT_MESSAGES, input_messages),)

    def record(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        reasoning: str | None = None,
        finish_reasons: str | Sequence[str] | None = None,
        input_messages: Any = None,
        output_messages: Any = None,
        response_model: str | None = None,
    ) -> LLM:
        """Record what the call used and produced; call it as often as convenient.

        Messages follow the GenAI conventions' structure (a list of
        ``{"role": ..., "parts": [...]}``) and are stored as JSON.
        """
        attributes: dict[str, Any] = {}
        for key, count in (
            (semconv.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
            (semconv.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens),
            (semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning_tokens),
        ):
            if count is not None:
                if isinstance(count, bool) or not isinstance(count, int):
                    raise TypeError(f"{key} must be an int, got {type(count).__name__}")
                attributes[key] = count
        if finish_reasons is not None:
            reasons = [finish_reasons] if isinstance(finish_reasons, str) else finish_reasons
            attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = tuple(map(str, reasons))
        if response_model is not None:
            attributes[semconv.GEN_AI_RESPONSE_MODEL] = response_model
        put_content(attributes, semconv.LLM_REASONING, reasoning)
        put_content(attributes, semconv.GEN_AI_INPUT_MESSAGES, input_messages)
        put_content(attributes, semconv.GEN_AI_OUTPUT_MESSAGES, output_messages)
        if attributes:
            self._set(attributes)
        return self


class Decision(_Leaf):
    """A choice among options: the question, the options, the choice, why, and who made it.

    The question, options and chosen option are the decision's structure and
    are kept with content capture off; the reasoning is content and is not.
    """

    __slots__ = ()

    def __init__(self, question: str, options: Sequence[Any] | None = None) -> None:
        super().__init__()
        self._name = "decision"
        attributes: dict[str, Any] = {semconv.KIND: _DECISION}
        put_text(attributes, semconv.DECISION_QUESTION, question)
        if options is not None:
            if isinstance(options, str):
                raise TypeError("options must be a sequence of options, not one string")
            attributes[semconv.DECISION_OPTIONS] = tuple(clip(to_text(o)) for o in options)
        self._attributes = attributes

    def choose(
        self,
        option: Any,
        *,
        reasoning: str | None = None,
        confidence: float | None = None,
        maker: DecisionMaker | str | None = None,
    ) -> Decision:
        """Record the chosen option; ``confidence`` in [0, 1]; ``maker``: agent, model, human or policy."""
        attributes: dict[str, Any] = {semconv.DECISION_CHOSEN: clip(to_text(option))}
        if confidence is not None:
            if isinstance(confidence, bool) or not isinstance(confidence, int | float):
                raise TypeError(f"confidence must be a number, got {type(confidence).__name__}")
            if not 0.0 <= confidence <= 1.0:
                raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
            attributes[semconv.DECISION_CONFIDENCE] = float(confidence)
        if maker is not None:
            attributes[semconv.DECISION_MAKER] = enum_value(maker, DecisionMaker, "maker")
        put_content(attributes, semconv.DECISION_REASONING, reasoning)
        self._set(attributes)
        return self


class Handoff(_Leaf):
    """Control passing from one agent to another."""

    __slots__ = ()

    def __init__(self, source: str, target: str) -> None:
        super().__init__()
        self._name = f"handoff {source} -> {target}"
        self._attributes = {
            semconv.KIND: _HANDOFF,
            semconv.HANDOFF_FROM: source,
            semconv.HANDOFF_TO: target,
        }


def intervene(
    kind: InterventionKind | str, *, author: str | None = None, message: str | None = None
) -> None:
    """Record a human intervention (approve, reject, redirect, edit, abort) on the current span."""
    value = enum_value(kind, InterventionKind, "intervention kind")
    try:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        attributes: dict[str, Any] = {semconv.INTERVENTION_KIND: value}
        if author is not None:
            attributes[semconv.INTERVENTION_AUTHOR] = author
        put_content(attributes, semconv.INTERVENTION_MESSAGE, message)
        span.add_event(semconv.INTERVENTION_EVENT, attributes)
    except Exception as exc:
        _guard.report("intervene", exc)
