"""LlamaIndex: a span handler and an event handler on the root instrumentation dispatcher.

LlamaIndex opens a span of its own for nearly every method it runs
(``_prepare_chat_with_tools``, ``setup_agent``, ``parse_agent_output``, ...);
forktrace follows all of them for parentage and keeps only:

- a workflow agent's run (``FunctionAgent``, ``ReActAgent``, ``CodeActAgent``
  ``.run``): an agent span ``invoke_agent {name}``;
- a multi-agent ``AgentWorkflow.run``: a span ``invoke_workflow {class}``, and
  inside it each agent's turn (``run_agent_step``) as ``invoke_agent {name}``;
- any other workflow's run: ``invoke_workflow {class}``;
- an LLM's ``chat`` / ``complete`` (sync, async, streaming): an llm span
  ``chat {model}``, ended by LlamaIndex's end event (streams end after their
  span does), with messages, text, tool calls, tokens and thinking blocks as
  reasoning text;
- a tool's ``call`` / ``acall``: a tool span with name, call id, arguments,
  result or error; the ``handoff`` tool of an ``AgentWorkflow`` is a handoff
  span from the current agent to the one it names.

Parentage comes from LlamaIndex's own parent span ids (its workflow steps run
as asyncio tasks); only a LlamaIndex root span takes the OpenTelemetry
context current where it started, so workflow runs started in
``forktrace.fork`` branches land in their branch.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

from opentelemetry import context as otel_context

from forktrace import semconv
from forktrace.integrations._shared import (
    LlmResult,
    SpanMap,
    Tracked,
    agent_lineage,
    begin_model_call,
    child_context,
    end_model_call_on,
    end_span,
    field_of,
    llm_attributes,
    mark_error,
    message,
    record_input_messages,
    record_llm_result,
    report,
    set_content,
    start_span,
    text_part,
)

_LLM_METHODS = {
    "chat",
    "achat",
    "stream_chat",
    "astream_chat",
    "complete",
    "acomplete",
    "stream_complete",
    "astream_complete",
}
_TOOL_METHODS = {"call", "acall", "__call__"}
_AGENT_STEP = "run_agent_step"
LLM, TOOL, AGENT = "llm", "tool", "agent"


def _method(id_: str) -> str:
    # LlamaIndex span ids read "Class.method-uuid".
    return id_.rsplit("-", 5)[0].rsplit(".", 1)[-1]


def _classes() -> dict[str, type]:
    from llama_index.core.agent.workflow import AgentWorkflow, BaseWorkflowAgent
    from llama_index.core.base.llms.base import BaseLLM
    from llama_index.core.tools import BaseTool
    from llama_index.core.workflow import Workflow

    return {
        "agent_workflow": AgentWorkflow,
        "agent": BaseWorkflowAgent,
        "workflow": Workflow,
        "llm": BaseLLM,
        "tool": BaseTool,
    }


class _Recorder:
    """LlamaIndex span ids -> forktrace spans (or pass-through contexts)."""

    def __init__(self) -> None:
        self.spans = SpanMap()
        self.classes = _classes()
        self._lock = threading.Lock()
        self._llm_open: dict[str, Tracked] = {}  # llm spans waiting for their end event

    # -- spans --------------------------------------------------------------------------

    def opened(self, id_: str, bound_args: Any, instance: Any, parent_id: str | None) -> None:
        parent = self.spans.get(parent_id)
        context = parent.context if parent is not None else otel_context.get_current()
        parent_kind = parent.data.get("kind") if parent is not None else None
        method = _method(id_)
        arguments = getattr(bound_args, "arguments", {}) or {}
        workflow = parent.data.get("workflow") if parent is not None else None
        tracked = self._classify(method, instance, arguments, context, workflow, parent_kind)
        if tracked is None:
            # Not shown: its children hang from the nearest shown ancestor.
            tracked = Tracked(None, context, {"kind": parent_kind})
            if method == "call_tool":  # a workflow agent's tool step: its event has the call id
                tracked.data["tool_call_id"] = getattr(arguments.get("ev"), "tool_id", None)
        elif tracked.data.get("kind") == TOOL and tracked.span is not None and parent is not None:
            call_id = parent.data.get("tool_call_id")
            if call_id:
                tracked.span.set_attribute(semconv.GEN_AI_TOOL_CALL_ID, str(call_id))
        tracked.data.setdefault("workflow", workflow)
        self.spans.put(id_, tracked)

    def _classify(
        self,
        method: str,
        instance: Any,
        arguments: dict[str, Any],
        context: Any,
        workflow: Tracked | None,
        parent_kind: str | None,
    ) -> Tracked | None:
        classes = self.classes
        if method == "run" and isinstance(instance, classes["workflow"]):
            if isinstance(instance, classes["agent"]) and not isinstance(
                instance, classes["agent_workflow"]
            ):
                return _agent(str(getattr(instance, "name", None) or "agent"), arguments, context)
            name = type(instance).__name__
            span = start_span(
                f"invoke_workflow {name}",
                None,
                operation=semconv.Operation.INVOKE_WORKFLOW,
                context=context,
            )
            tracked = Tracked(span, child_context(span, context), {"kind": "workflow"})
            tracked.data["workflow"] = tracked
            return tracked
        if method == _AGENT_STEP and instance is None and workflow is not None:
            # An AgentWorkflow's turn: the agent whose turn it is, as an agent span;
            # the tool calls that follow (sibling steps) are that agent's too.
            name = getattr(arguments.get("ev"), "current_agent_name", None)
            if name:
                workflow.data["agent"] = str(name)
                return _agent(str(name), {}, context)
        if parent_kind == LLM:
            return None  # an LLM's own helpers and inner calls: one model call
        if method in _LLM_METHODS and isinstance(instance, classes["llm"]):
            model = _model_name(instance)
            span = start_span(
                f"chat {model}",
                semconv.Kind.LLM,
                operation=semconv.Operation.CHAT,
                attributes=llm_attributes(_provider(instance), model),
                context=context,
            )
            messages = arguments.get("messages")
            if messages is None and arguments.get("prompt") is not None:
                messages = [{"role": "user", "content": arguments["prompt"]}]
            record_input_messages(span, _messages(messages))
            # LlamaIndex opens its span in the caller's context just before the call: the
            # provider SDK integration sees this claim and records no second llm span.
            claim = begin_model_call("llama-index")
            return Tracked(span, child_context(span, context), {"kind": LLM, "model_call": claim})
        if method in _TOOL_METHODS and isinstance(instance, classes["tool"]):
            agent = workflow.data.get("agent") if workflow is not None else None
            return _tool(instance, arguments, context, agent)
        return None

    def closed(self, id_: str, result: Any, error: BaseException | None) -> None:
        tracked = self.spans.pop(id_)
        if tracked is None or tracked.span is None:
            return
        kind = tracked.data.get("kind")
        if kind == LLM and error is None:
            if inspect.isgenerator(result) or inspect.isasyncgen(result):
                # A stream: its end event comes after this span closes (the claim stays).
                with self._lock:
                    self._llm_open[id_] = tracked
                return
            record_llm_result(tracked.span, _llm_result(result))
        if kind == LLM:
            _end_model_call(tracked)
        elif kind == TOOL and error is None:
            _tool_result(tracked, result)
        end_span(tracked.span, error)

    # -- events -------------------------------------------------------------------------

    def event(self, event: Any) -> None:
        name = type(event).__name__
        if name not in ("LLMChatEndEvent", "LLMCompletionEndEvent"):
            return
        with self._lock:
            tracked = self._llm_open.pop(event.span_id or "", None)
        if tracked is not None and tracked.span is not None:
            record_llm_result(tracked.span, _llm_result(getattr(event, "response", None)))
            _end_model_call(tracked)
            end_span(tracked.span)


def _end_model_call(tracked: Tracked) -> None:
    claim = tracked.data.pop("model_call", None)
    if claim is not None and tracked.span is not None:
        end_model_call_on(tracked.span, *claim)


def _agent(name: str, arguments: dict[str, Any], context: Any) -> Tracked:
    lineage = agent_lineage(name, context)
    span = start_span(
        f"invoke_agent {name}",
        semconv.Kind.AGENT,
        operation=semconv.Operation.INVOKE_AGENT,
        attributes={semconv.GEN_AI_AGENT_NAME: name},
        context=context,
        lineage=lineage,
    )
    user_msg = arguments.get("user_msg")
    if user_msg is not None:
        set_content(
            span, semconv.GEN_AI_INPUT_MESSAGES, [message("user", [text_part(str(user_msg))])]
        )
    return Tracked(span, child_context(span, context, lineage), {"kind": AGENT, "name": name})


def _tool(instance: Any, arguments: dict[str, Any], context: Any, agent: str | None) -> Tracked:
    metadata = getattr(instance, "metadata", None)
    name = str(getattr(metadata, "name", None) or type(instance).__name__)
    tool_arguments = arguments.get("kwargs") or {
        key: value for key, value in arguments.items() if key not in ("self", "args")
    }
    lineage = agent_lineage(agent, context) if agent is not None else None
    if name == "handoff":
        target = tool_arguments.get("to_agent")
        current = agent or _current_agent(context)
        span = start_span(
            f"handoff {current or '?'} -> {target}",
            semconv.Kind.HANDOFF,
            attributes={
                semconv.HANDOFF_FROM: current,
                semconv.HANDOFF_TO: target,
                semconv.GEN_AI_TOOL_NAME: name,
            },
            context=context,
            lineage=lineage,
        )
    else:
        span = start_span(
            f"execute_tool {name}",
            semconv.Kind.TOOL,
            operation=semconv.Operation.EXECUTE_TOOL,
            attributes={semconv.GEN_AI_TOOL_NAME: name},
            context=context,
            lineage=lineage,
        )
    set_content(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, tool_arguments)
    return Tracked(span, child_context(span, context, lineage), {"kind": TOOL})


def _current_agent(context: Any) -> str | None:
    from forktrace.context import current_lineage

    lineage = current_lineage(context)
    return getattr(lineage, "agent_name", None) if lineage is not None else None


def _tool_result(tracked: Tracked, result: Any) -> None:
    if tracked.span is None:
        return
    content = getattr(result, "content", result)
    set_content(tracked.span, semconv.GEN_AI_TOOL_CALL_RESULT, str(content))
    if getattr(result, "is_error", False):
        mark_error(tracked.span, str(content))


def _model_name(llm: Any) -> str:
    metadata = getattr(llm, "metadata", None)
    name = getattr(llm, "model", None) or getattr(metadata, "model_name", None)
    # LLMMetadata's default model name is "unknown": the class says more.
    return str(name) if name and name != "unknown" else type(llm).__name__


def _provider(llm: Any) -> str | None:
    try:
        return str(llm.class_name())
    except Exception:
        return None


def _messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for item in messages or ():
        role = field_of(item, "role")
        content = field_of(item, "content")
        out.append(message(str(getattr(role, "value", role) or "user"), [text_part(str(content))]))
    return out


def _llm_result(response: Any) -> LlmResult:
    result = LlmResult()
    if response is None:
        return result
    raw = getattr(response, "raw", None)
    result.add_usage(field_of(raw, "usage") if raw is not None else None)
    chat_message = getattr(response, "message", None)
    if chat_message is None:  # a completion
        result.text.append(str(getattr(response, "text", "") or ""))
        return result
    for block in getattr(chat_message, "blocks", None) or ():
        block_type = getattr(block, "block_type", None)
        if block_type == "thinking" and getattr(block, "content", None):
            result.reasoning.append(str(block.content))
        elif block_type == "text" and getattr(block, "text", None):
            result.text.append(str(block.text))
        elif block_type == "tool_call":
            result.tool_calls.append(
                {
                    "id": getattr(block, "tool_call_id", None),
                    "name": getattr(block, "tool_name", None),
                    "arguments": getattr(block, "tool_kwargs", None),
                }
            )
    reasoning = (getattr(chat_message, "additional_kwargs", None) or {}).get("thinking")
    if reasoning and not result.reasoning:
        result.reasoning.append(str(reasoning))
    return result


# --- registration ----------------------------------------------------------------------


def _handlers(recorder: _Recorder) -> tuple[Any, Any]:
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.span import SimpleSpan
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

    class ForktraceSpanHandler(BaseSpanHandler[SimpleSpan]):
        @classmethod
        def class_name(cls) -> str:
            return "ForktraceSpanHandler"

        def new_span(
            self,
            id_: str,
            bound_args: Any,
            instance: Any | None = None,
            parent_span_id: str | None = None,
            tags: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> SimpleSpan:
            try:
                recorder.opened(id_, bound_args, instance, parent_span_id)
            except Exception as exc:
                report("llama_index.new_span", exc)
            return SimpleSpan(id_=id_, parent_id=parent_span_id)

        def prepare_to_exit_span(
            self,
            id_: str,
            bound_args: Any,
            instance: Any | None = None,
            result: Any | None = None,
            **kwargs: Any,
        ) -> SimpleSpan | None:
            try:
                recorder.closed(id_, result, None)
            except Exception as exc:
                report("llama_index.exit_span", exc)
            return None

        def prepare_to_drop_span(
            self,
            id_: str,
            bound_args: Any,
            instance: Any | None = None,
            err: BaseException | None = None,
            **kwargs: Any,
        ) -> SimpleSpan | None:
            try:
                recorder.closed(id_, None, err)
            except Exception as exc:
                report("llama_index.drop_span", exc)
            return None

    class ForktraceEventHandler(BaseEventHandler):
        @classmethod
        def class_name(cls) -> str:
            return "ForktraceEventHandler"

        def handle(self, event: Any, **kwargs: Any) -> None:
            try:
                recorder.event(event)
            except Exception as exc:
                report("llama_index.event", exc)

    return ForktraceSpanHandler(), ForktraceEventHandler()


class Instrumentor:
    def __init__(self) -> None:
        self.recorder: _Recorder | None = None
        self._handlers: tuple[Any, Any] | None = None

    def instrument(self, **options: Any) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        self.recorder = _Recorder()
        span_handler, event_handler = self._handlers = _handlers(self.recorder)
        dispatcher = get_dispatcher()
        dispatcher.add_span_handler(span_handler)
        dispatcher.add_event_handler(event_handler)

    def uninstrument(self) -> None:
        from llama_index.core.instrumentation import get_dispatcher

        if self._handlers is not None:
            dispatcher = get_dispatcher()
            span_handler, event_handler = self._handlers
            dispatcher.span_handlers[:] = [
                h for h in dispatcher.span_handlers if h is not span_handler
            ]
            dispatcher.event_handlers[:] = [
                h for h in dispatcher.event_handlers if h is not event_handler
            ]
        self._handlers = self.recorder = None
