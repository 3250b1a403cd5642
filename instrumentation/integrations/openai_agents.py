"""OpenAI Agents SDK: a tracing processor beside the SDK's own.

forktrace adds a ``TracingProcessor`` with ``add_trace_processor`` (the SDK's
own processors, exporting to OpenAI or elsewhere, keep working) and turns the
SDK's spans into OpenTelemetry spans as they start and end:

- agent -> agent span (children carry ``forktrace.agent.name``);
- generation and response -> llm span (model, tokens, reasoning, messages);
- function -> tool span (name, arguments, result, error);
- handoff -> handoff span (from and to agent) holding a decision span whose
  options are the handoffs the agent had and whose chosen option is the target;
- guardrail and custom spans -> plain spans.

Parentage comes from the SDK's own parent ids; a trace's top spans go under
the OpenTelemetry context current when the trace started, so several
``Runner.run`` calls under ``asyncio.gather`` inside ``forktrace.fork``
branches each land in their own branch.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import context as otel_context

from forktrace import semconv
from forktrace.integrations._openai_format import (
    chat_messages,
    responses_messages,
    responses_result,
)
from forktrace.integrations._shared import (
    Context,
    LlmResult,
    SpanMap,
    Tracked,
    agent_lineage,
    begin_model_call,
    child_context,
    end_model_call,
    end_model_call_on,
    field_of,
    guarded,
    llm_attributes,
    mark_error,
    record_input_messages,
    record_llm_result,
    set_content,
    set_text,
    start_span,
)

PROVIDER = "openai"
# Spans the SDK uses to group work that forktrace's tree shows through their children.
_TRANSPARENT = frozenset({"task", "turn"})


def _generation_result(data: Any) -> LlmResult:
    result = LlmResult(response_model=data.model)
    result.add_usage(data.usage)
    for item in data.output or ():
        content = field_of(item, "content")
        if isinstance(content, str) and content:
            result.text.append(content)
        reasoning = field_of(item, "reasoning_content", "reasoning")
        if isinstance(reasoning, str):
            result.reasoning.append(reasoning)
        for call in field_of(item, "tool_calls") or ():
            function = field_of(call, "function")
            result.tool_calls.append(
                {
                    "id": field_of(call, "id"),
                    "name": field_of(function, "name"),
                    "arguments": field_of(function, "arguments"),
                }
            )
    return result


def _processor_class() -> type:
    """Built on first use, so that this module imports without the Agents SDK."""
    from agents.tracing import TracingProcessor

    class Processor(TracingProcessor):
        def __init__(self) -> None:
            self.active = True
            self._spans = SpanMap()
            self._traces: dict[str, Context] = {}
            self._lock = threading.Lock()

        # -- traces: remember where their spans go -------------------------------

        @guarded("openai_agents.on_trace_start")
        def on_trace_start(self, trace: Any) -> None:
            if self.active:
                with self._lock:
                    self._traces[trace.trace_id] = otel_context.get_current()

        @guarded("openai_agents.on_trace_end")
        def on_trace_end(self, trace: Any) -> None:
            with self._lock:
                self._traces.pop(trace.trace_id, None)

        def _parent(self, span: Any) -> tuple[Context, Tracked | None]:
            parent = self._spans.get(span.parent_id)
            if parent is not None:
                return parent.context, parent
            with self._lock:
                context = self._traces.get(span.trace_id)
            return (context if context is not None else otel_context.get_current()), None

        # -- spans ----------------------------------------------------------------

        @guarded("openai_agents.on_span_start")
        def on_span_start(self, span: Any) -> None:
            if not self.active:
                return
            data = span.span_data
            kind = data.type
            parent_context, parent = self._parent(span)
            if kind in _TRANSPARENT:
                # No span of its own: its children attach where it would have.
                inherited = parent.data if parent is not None else {}
                self._spans.put(span.span_id, Tracked(None, parent_context, inherited))
                return
            extra: dict[str, Any] = {}
            if kind == "agent":
                lineage = agent_lineage(data.name, parent_context)
                otel_span = start_span(
                    f"invoke_agent {data.name}",
                    semconv.Kind.AGENT,
                    operation=semconv.Operation.INVOKE_AGENT,
                    attributes={semconv.GEN_AI_AGENT_NAME: data.name},
                    context=parent_context,
                    lineage=lineage,
                )
                self._spans.put(
                    span.span_id,
                    Tracked(
                        otel_span,
                        child_context(otel_span, parent_context, lineage),
                        {"agent": data},  # its handoffs may be filled in after it starts
                    ),
                )
                return
            if kind in ("generation", "response"):
                otel_span = start_span(
                    "chat",
                    semconv.Kind.LLM,
                    operation=semconv.Operation.CHAT,
                    attributes=llm_attributes(PROVIDER, getattr(data, "model", None)),
                    context=parent_context,
                )
                # Called inline before the model call, in its context: the openai
                # integration sees this and records no second llm span.
                extra["model_call"] = begin_model_call("openai-agents")
            elif kind == "function":
                otel_span = start_span(
                    f"execute_tool {data.name}",
                    semconv.Kind.TOOL,
                    operation=semconv.Operation.EXECUTE_TOOL,
                    attributes={semconv.GEN_AI_TOOL_NAME: data.name},
                    context=parent_context,
                )
            elif kind == "handoff":
                otel_span = start_span(
                    f"handoff {data.from_agent}",
                    semconv.Kind.HANDOFF,
                    attributes={semconv.HANDOFF_FROM: data.from_agent},
                    context=parent_context,
                )
                agent = parent.data.get("agent") if parent is not None else None
                extra["options"] = list(getattr(agent, "handoffs", None) or ())
            else:
                name = getattr(data, "name", None) or kind
                otel_span = start_span(
                    f"{kind} {name}" if name != kind else kind,
                    None,
                    attributes={"openai_agents.span.type": kind},
                    context=parent_context,
                )
            self._spans.put(
                span.span_id, Tracked(otel_span, child_context(otel_span, parent_context), extra)
            )

        @guarded("openai_agents.on_span_end")
        def on_span_end(self, span: Any) -> None:
            tracked = self._spans.pop(span.span_id)
            data = span.span_data
            otel_span = tracked.span if tracked is not None else None
            if tracked is None or otel_span is None or data.type in _TRANSPARENT:
                return
            claim = tracked.data.get("model_call")
            try:
                self._record(otel_span, data, tracked)
                if claim is not None:
                    end_model_call_on(otel_span, *claim)
            finally:
                if claim is not None:
                    end_model_call(*claim)  # again, if recording failed: never left open
                error = span.error
                if error:
                    mark_error(otel_span, str(error.get("message") or "error"))
                otel_span.end()

        def _record(self, otel_span: Any, data: Any, tracked: Tracked) -> None:
            kind = data.type
            if kind == "generation":
                otel_span.update_name(f"chat {data.model}")
                otel_span.set_attribute(semconv.GEN_AI_REQUEST_MODEL, data.model or "")
                record_input_messages(otel_span, chat_messages(data.input))
                record_llm_result(otel_span, _generation_result(data))
            elif kind == "response":
                response = data.response
                if response is not None:
                    otel_span.update_name(f"chat {response.model}")
                    otel_span.set_attribute(semconv.GEN_AI_REQUEST_MODEL, response.model)
                    if data.input is not None:
                        record_input_messages(otel_span, responses_messages({"input": data.input}))
                    record_llm_result(otel_span, responses_result(response))
            elif kind == "function":
                set_content(otel_span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, data.input)
                set_content(otel_span, semconv.GEN_AI_TOOL_CALL_RESULT, data.output)
            elif kind == "handoff":
                self._handoff(otel_span, data, tracked)
            elif kind == "guardrail":
                otel_span.set_attribute("openai_agents.guardrail.triggered", bool(data.triggered))

        def _handoff(self, otel_span: Any, data: Any, tracked: Tracked) -> None:
            target = data.to_agent
            if not target:
                return
            otel_span.update_name(f"handoff {data.from_agent} -> {target}")
            otel_span.set_attribute(semconv.HANDOFF_TO, target)
            # The model chose where control goes: record that as a decision too.
            options = tracked.data.get("options") or [target]
            decision = start_span(
                "decision",
                semconv.Kind.DECISION,
                attributes={
                    semconv.DECISION_OPTIONS: [str(option) for option in options],
                    semconv.DECISION_CHOSEN: target,
                    semconv.DECISION_MAKER: semconv.DecisionMaker.MODEL.value,
                },
                context=tracked.context,
            )
            set_text(
                decision,
                semconv.DECISION_QUESTION,
                f"which agent takes over from {data.from_agent}?",
            )
            decision.end()

        def shutdown(self) -> None:
            pass

        def force_flush(self) -> None:
            pass

    Processor.__name__ = Processor.__qualname__ = "ForktraceTracingProcessor"
    return Processor


class Instrumentor:
    def __init__(self) -> None:
        self.processor: Any = None

    def instrument(self, **options: Any) -> None:
        from agents.tracing import add_trace_processor

        self.processor = _processor_class()()
        add_trace_processor(self.processor)

    def uninstrument(self) -> None:
        from agents.tracing import get_trace_provider

        processor, self.processor = self.processor, None
        if processor is None:
            return
        processor.active = False
        # The SDK has no call that removes one processor (set_trace_processors
        # would replace the user's); drop ours from its list, or stay inert.
        multi = getattr(get_trace_provider(), "_multi_processor", None)
        lock = getattr(multi, "_lock", None)
        if multi is not None and lock is not None and hasattr(multi, "_processors"):
            with lock:
                multi._processors = tuple(p for p in multi._processors if p is not processor)
