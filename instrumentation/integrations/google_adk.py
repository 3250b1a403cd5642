"""Google ADK: its own GenAI spans, enriched; a plugin and wrappers for what they lack.

ADK (2.x, telemetry schema 2, the default) traces its work with OpenTelemetry
under the instrumentation scope ``gcp.vertex.agent``: ``invoke_workflow``,
``invoke_agent {name}``, ``generate_content {model}`` (tokens, finish
reasons) and ``execute_tool {name}`` (name, call id, errors). forktrace emits
no duplicates; it adds:

- an :class:`~forktrace.integrations._enrich.Enricher` that gives those spans
  their ``forktrace.kind`` from the span name (the only thing ADK sets when it
  starts them): agent, llm, tool, and handoff for ``transfer_to_agent``; and
  ``forktrace.agent.name``, from the span name for an agent and from the
  parent span for the model calls and tools inside it;
- a :class:`google.adk.plugins.BasePlugin`, registered on every ``Runner``
  (``Runner.__init__`` is wrapped to add it: ADK has no global plugin
  registry), whose tool callbacks run inside ADK's ``execute_tool`` span and
  add the tool's arguments and result, and a handoff's from and to agents;
- a wrapper around ``InferenceScope.record_llm_response``, which hands each
  model response to ADK's ``generate_content`` span while that span is still
  open (ADK ends it on the response carrying a finish reason, before any
  plugin's after-model callback runs): input messages, output text, function
  calls, thought parts as reasoning text, and error responses as errors;
- parallel work as forks (see :mod:`forktrace.integrations._adk_forks`): a
  ``ParallelAgent``'s sub-agents, and the nodes a ``Workflow`` fan-out starts
  at once, each a branch of one fork (strategy ``all``), its spans carrying
  the branch's lineage. A branch ends ``completed`` (or escalated),
  ``failed`` (the error) or ``cancelled`` (a sibling escalated or failed).

Content follows forktrace's capture switch, not ADK's. uninstrument() turns
the enricher and the plugin inert, removes the plugin from the runners it was
added to and unwraps the wrapped functions.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span
from opentelemetry.trace import Status, StatusCode

from forktrace import semconv
from forktrace.integrations._adk_forks import parent_agent, wrap_forks
from forktrace.integrations._enrich import Enricher, enrich_global_spans
from forktrace.integrations._shared import (
    LlmResult,
    field_of,
    mark_error,
    message,
    record_input_messages,
    record_llm_result,
    report,
    set_content,
    text_part,
    tool_call_part,
    tool_result_part,
)
from forktrace.integrations._wrapping import MethodPatches

SCOPE_PREFIX = "gcp.vertex.agent"
PLUGIN_NAME = "forktrace"
TRANSFER_TOOL = "transfer_to_agent"
_TOOL_PREFIX = "execute_tool "
_AGENT_PREFIX = "invoke_agent "
_LLM_PREFIX = "generate_content"


# --- ADK's own spans: kinds and agent lineage ---------------------------------------


def _enrich(span: Span, parent_context: Context | None) -> None:
    name = span.name
    attributes: dict[str, Any] = {}
    if name.startswith(_AGENT_PREFIX):
        agent = name[len(_AGENT_PREFIX) :]
        attributes[semconv.KIND] = semconv.Kind.AGENT.value
        attributes[semconv.AGENT_NAME] = agent
    else:
        if name.startswith(_LLM_PREFIX):
            attributes[semconv.KIND] = semconv.Kind.LLM.value
        elif name.startswith(_TOOL_PREFIX) and not name.endswith("(merged)"):
            tool = name[len(_TOOL_PREFIX) :]
            kind = semconv.Kind.HANDOFF if tool == TRANSFER_TOOL else semconv.Kind.TOOL
            attributes[semconv.KIND] = kind.value
        # ADK passes its contexts by value and they carry no forktrace lineage
        # naming the agent: the agent a span runs in is its parent span's.
        agent = parent_agent(parent_context)
        if agent is not None:
            attributes[semconv.AGENT_NAME] = agent
    if attributes:
        span.set_attributes(attributes)


# --- model calls: what ADK's generate_content span lacks -----------------------------


def _parts(content: Any) -> list[Any]:
    return list(getattr(content, "parts", None) or ())


def _input_messages(llm_request: Any) -> list[dict[str, Any]]:
    messages = []
    for content in getattr(llm_request, "contents", None) or ():
        parts: list[dict[str, Any]] = []
        for part in _parts(content):
            call = getattr(part, "function_call", None)
            response = getattr(part, "function_response", None)
            if call is not None:
                parts.append(tool_call_part(call.id, call.name, call.args))
            elif response is not None:
                parts.append(tool_result_part(response.id, response.response))
            elif getattr(part, "text", None) and not getattr(part, "thought", False):
                parts.append(text_part(part.text))
        if parts:
            messages.append(message(str(getattr(content, "role", None) or "user"), parts))
    return messages


def _add_response(result: LlmResult, response: Any) -> None:
    for part in _parts(getattr(response, "content", None)):
        call = getattr(part, "function_call", None)
        if call is not None:
            result.tool_calls.append({"id": call.id, "name": call.name, "arguments": call.args})
        elif getattr(part, "text", None):
            (result.reasoning if getattr(part, "thought", False) else result.text).append(part.text)


def _record_llm_response(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        _record_on_span(instance, args[1] if len(args) > 1 else kwargs.get("response"))
    except Exception as exc:
        report("google_adk.model_response", exc)
    return wrapped(*args, **kwargs)


def _record_on_span(scope: Any, response: Any) -> None:
    gc_span = getattr(scope, "span", None)
    span = getattr(gc_span, "span", gc_span)  # a GenerateContentSpan, or a plain span
    if span is None or not span.is_recording() or response is None:
        return
    # Streamed chunks arrive one by one; the span shows what they add up to.
    result: LlmResult | None = getattr(scope, "_forktrace_result", None)
    if result is None:
        result = LlmResult()
        scope._forktrace_result = result
        record_input_messages(span, _input_messages(getattr(scope, "llm_request", None)))
    _add_response(result, response)
    record_llm_result(span, result)
    error_code = getattr(response, "error_code", None)
    if error_code:
        mark_error(span, f"{error_code}: {getattr(response, 'error_message', None) or ''}")


# --- tools and handoffs: a plugin, its callbacks inside ADK's execute_tool span -------


def _plugin_class() -> type:
    from google.adk.plugins.base_plugin import BasePlugin

    class ForktracePlugin(BasePlugin):  # type: ignore[misc]
        """Adds tool arguments, results and handoff targets to ADK's ``execute_tool`` spans."""

        def __init__(self) -> None:
            super().__init__(name=PLUGIN_NAME)
            self.active = True

        async def before_tool_callback(
            self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any
        ) -> None:
            if self.active:
                _before_tool(tool, tool_args, tool_context)
            return None

        async def after_tool_callback(
            self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any, result: Any
        ) -> None:
            if self.active:
                _after_tool(result)
            return None

        async def on_tool_error_callback(
            self, *, tool: Any, tool_args: dict[str, Any], tool_context: Any, error: Exception
        ) -> None:
            if self.active:
                _tool_error(error)
            return None

    return ForktracePlugin


def _tool_span() -> Any:
    span = trace.get_current_span()
    return span if span.is_recording() else None


def _before_tool(tool: Any, tool_args: dict[str, Any], tool_context: Any) -> None:
    try:
        span = _tool_span()
        if span is None:
            return
        set_content(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, tool_args)
        if getattr(tool, "name", None) == TRANSFER_TOOL:
            target = field_of(tool_args, "agent_name")
            span.set_attributes(
                {
                    key: str(value)
                    for key, value in (
                        (semconv.HANDOFF_FROM, getattr(tool_context, "agent_name", None)),
                        (semconv.HANDOFF_TO, target),
                    )
                    if value is not None
                }
            )
    except Exception as exc:
        report("google_adk.before_tool", exc)


def _after_tool(result: Any) -> None:
    try:
        span = _tool_span()
        if span is not None:
            set_content(span, semconv.GEN_AI_TOOL_CALL_RESULT, result)
    except Exception as exc:
        report("google_adk.after_tool", exc)


def _tool_error(error: BaseException) -> None:
    # Status and error type only: when no callback recovers, ADK records the
    # exception on this span itself; when one does, the span still shows the failure.
    try:
        span = _tool_span()
        if span is not None:
            span.set_attribute(semconv.ERROR_TYPE, type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:1024]))
    except Exception as exc:
        report("google_adk.tool_error", exc)


# --- registration --------------------------------------------------------------------


class Instrumentor:
    def __init__(self) -> None:
        self._enricher: Enricher | None = None
        self._patches = MethodPatches()
        self._plugin: Any = None
        self._runners: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    def instrument(self, **options: Any) -> None:
        from google.adk import runners
        from google.adk.telemetry import _instrumentation

        self._enricher = enrich_global_spans("google_adk", SCOPE_PREFIX, _enrich)
        self._plugin = _plugin_class()()
        self._patches.wrap(runners.Runner, "__init__", self._runner_init)
        self._patches.wrap(
            _instrumentation.InferenceScope, "record_llm_response", _record_llm_response
        )
        wrap_forks(self._patches)

    def _runner_init(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        try:
            manager = instance.plugin_manager
            plugin = self._plugin
            if plugin is None or any(p.name == PLUGIN_NAME for p in manager.plugins):
                return
            manager.register_plugin(plugin)
            with self._lock:
                self._runners.add(instance)
        except Exception as exc:
            report("google_adk.runner", exc)

    def uninstrument(self) -> None:
        if self._enricher is not None:
            self._enricher.active = False
            self._enricher = None
        self._patches.restore()
        plugin, self._plugin = self._plugin, None
        if plugin is not None:
            plugin.active = False
            with self._lock:
                runners = list(self._runners)
                self._runners = weakref.WeakSet()
            for runner in runners:
                plugins = runner.plugin_manager.plugins
                plugins[:] = [p for p in plugins if p is not plugin]
