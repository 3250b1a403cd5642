"""LangGraph and LangChain: one callback handler, registered globally.

forktrace registers a ``langchain_core`` callback handler through LangChain's
own configure hook, so every runnable (a LangGraph graph, a chat model, a tool)
reports to it without being passed ``callbacks=`` and without patching
LangGraph. uninstrument() removes the hook.

What becomes which span:

- the outermost run (a graph, or a model or tool called on its own): an agent
  span for a graph, with its nodes, model calls and tools inside;
- a graph node: a span ``node {name}``;
- parallel nodes of one superstep (several edges out of one node, or ``Send``
  fan-outs): a fork (strategy ``all``, or ``map`` for ``Send``) with one branch
  per node task; the node of a later superstep that runs after them joins
  them and ends the fork; each branch ends ``completed`` or ``failed``;
- a chat model or LLM call: an llm span with model, provider, tokens
  (input, output, reasoning), finish reason, reasoning content blocks and the
  messages; a tool: a tool span with name, call id, arguments and result.

Parallelism in LangGraph is known only when a superstep's tasks have started,
which its callbacks report one at a time, from several threads, in no fixed
order. So the handler records a run's events and emits its spans, with their
real start and end times, when the outermost run ends: parentage comes from
LangChain's run ids, never from whatever span is current on a thread.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from opentelemetry import context as otel_context

from forktrace import semconv
from forktrace.integrations._shared import (
    Context,
    ForkSpans,
    FrameworkModelCall,
    LlmResult,
    agent_lineage,
    begin_model_call,
    child_context,
    end_model_call,
    end_span,
    field_of,
    guarded,
    llm_attributes,
    message,
    record_input_messages,
    record_llm_result,
    report,
    set_content,
    start_span,
    text_part,
    tool_call_part,
    tool_result_part,
)

# LangGraph's control flow travels as exceptions; they are not failures.
_CONTROL_FLOW = frozenset({"GraphInterrupt", "NodeInterrupt", "ParentCommand", "GraphBubbleUp"})
_HIDDEN_TAG = "langsmith:hidden"
_PUSH = "__pregel_push"

CHAIN, LLM, TOOL = "chain", "llm", "tool"


@dataclass
class _Run:
    """One LangChain run, recorded until its outermost run ends."""

    kind: str
    name: str
    parent: UUID | None
    start: int
    metadata: dict[str, Any]
    hidden: bool = False
    end: int | None = None
    error: BaseException | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] | None = None
    result: LlmResult | None = None
    tool_arguments: Any = None
    tool_result: Any = None
    children: list[_Run] = field(default_factory=list)
    context: Context | None = None  # the outermost run's: where its spans go
    # A model call's marker (the provider SDK integrations step aside) and the one it hid.
    model_call: FrameworkModelCall | None = None
    outer_call: FrameworkModelCall | None = None

    @property
    def step(self) -> int | None:
        step = self.metadata.get("langgraph_step")
        return step if isinstance(step, int) else None

    @property
    def is_node(self) -> bool:
        return self.kind == CHAIN and self.name == self.metadata.get("langgraph_node")

    @property
    def pushed(self) -> bool:
        return _PUSH in (self.metadata.get("langgraph_triggers") or ())


def _handler_class() -> type:
    """The handler class, built on first use so that this module imports without LangChain."""
    from langchain_core.callbacks import BaseCallbackHandler

    class Handler(BaseCallbackHandler):
        # Run in the caller's thread and context, never through an executor.
        run_inline = True
        raise_error = False

        def __init__(self) -> None:
            super().__init__()
            self._runs: dict[UUID, _Run] = {}
            self._lock = threading.Lock()

        # -- recording ----------------------------------------------------------

        def _begin(self, run_id: UUID, parent: UUID | None, run: _Run, tags: Any) -> None:
            run.hidden = bool(tags and _HIDDEN_TAG in tags)
            with self._lock:
                parent_run = self._runs.get(parent) if parent is not None else None
                if parent_run is None:
                    # An outermost run: its spans go under whatever is current now.
                    run.parent = None
                    run.context = otel_context.get_current()
                else:
                    parent_run.children.append(run)
                self._runs[run_id] = run

        def _finish(self, run_id: UUID, error: BaseException | None = None) -> _Run | None:
            with self._lock:
                run = self._runs.pop(run_id, None)
            if run is None:
                return None
            run.end = time.time_ns()
            if error is not None and type(error).__name__ not in _CONTROL_FLOW:
                run.error = error
            if run.context is not None:
                _emit_root(run)
            return run

        # -- chains (graphs and nodes) -----------------------------------------

        @guarded("langchain.on_chain_start")
        def on_chain_start(
            self,
            serialized: Any,
            inputs: Any,
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            name = kwargs.get("name") or field_of(serialized or {}, "name") or "chain"
            self._begin(
                run_id,
                parent_run_id,
                _Run(CHAIN, str(name), parent_run_id, time.time_ns(), dict(metadata or {})),
                tags,
            )

        @guarded("langchain.on_chain_end")
        def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
            self._finish(run_id)

        @guarded("langchain.on_chain_error")
        def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
            self._finish(run_id, error)

        # -- model calls --------------------------------------------------------

        def _begin_llm(
            self,
            serialized: Any,
            messages: list[dict[str, Any]],
            run_id: UUID,
            parent_run_id: UUID | None,
            tags: Any,
            metadata: dict[str, Any] | None,
            kwargs: dict[str, Any],
        ) -> None:
            metadata = dict(metadata or {})
            params = kwargs.get("invocation_params") or {}
            model = (
                metadata.get("ls_model_name")
                or field_of(params, "model", "model_name", "model_id")
                or kwargs.get("name")
                or field_of(serialized or {}, "name")
                or params.get("_type")
            )
            run = _Run(LLM, f"chat {model}", parent_run_id, time.time_ns(), metadata)
            run.attributes = llm_attributes(metadata.get("ls_provider"), model)
            run.messages = messages
            self._begin(run_id, parent_run_id, run, tags)
            if not run.hidden:
                # The callbacks run inline in the caller's context, so the provider SDK
                # call made between start and end sees this: one llm span, this one.
                run.model_call, run.outer_call = begin_model_call("langchain")

        @guarded("langchain.on_chat_model_start")
        def on_chat_model_start(
            self,
            serialized: Any,
            messages: list[list[Any]],
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            converted = [_message(item) for batch in messages for item in batch]
            self._begin_llm(serialized, converted, run_id, parent_run_id, tags, metadata, kwargs)

        @guarded("langchain.on_llm_start")
        def on_llm_start(
            self,
            serialized: Any,
            prompts: list[str],
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            converted = [message("user", [text_part(prompt)]) for prompt in prompts]
            self._begin_llm(serialized, converted, run_id, parent_run_id, tags, metadata, kwargs)

        @guarded("langchain.on_llm_end")
        def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
            with self._lock:
                run = self._runs.get(run_id)
            if run is not None:
                _end_model_call(run)  # first: a failure below must not leave it open
                try:
                    run.result = _with_provider_result(run, _llm_result(response))
                except Exception as exc:
                    report("langchain.on_llm_end", exc)
            self._finish(run_id)

        @guarded("langchain.on_llm_error")
        def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
            with self._lock:
                run = self._runs.get(run_id)
            if run is not None:
                _end_model_call(run)
            self._finish(run_id, error)

        # -- tools ----------------------------------------------------------------

        @guarded("langchain.on_tool_start")
        def on_tool_start(
            self,
            serialized: Any,
            input_str: str,
            *,
            run_id: UUID,
            parent_run_id: UUID | None = None,
            tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None,
            inputs: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            name = kwargs.get("name") or field_of(serialized or {}, "name") or "tool"
            run = _Run(TOOL, str(name), parent_run_id, time.time_ns(), dict(metadata or {}))
            run.attributes = {
                semconv.GEN_AI_TOOL_NAME: name,
                semconv.GEN_AI_TOOL_CALL_ID: kwargs.get("tool_call_id"),
                semconv.GEN_AI_TOOL_DESCRIPTION: field_of(serialized or {}, "description"),
            }
            run.tool_arguments = inputs if inputs is not None else input_str
            self._begin(run_id, parent_run_id, run, tags)

        @guarded("langchain.on_tool_end")
        def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
            with self._lock:
                run = self._runs.get(run_id)
            if run is not None:
                run.tool_result = (
                    field_of(output, "content") if hasattr(output, "content") else output
                )
                call_id = getattr(output, "tool_call_id", None)
                if call_id and not run.attributes.get(semconv.GEN_AI_TOOL_CALL_ID):
                    run.attributes[semconv.GEN_AI_TOOL_CALL_ID] = call_id
            self._finish(run_id)

        @guarded("langchain.on_tool_error")
        def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
            self._finish(run_id, error)

        def pending(self) -> int:
            """Runs started and not yet ended (for tests: nothing leaks)."""
            with self._lock:
                return len(self._runs)

    Handler.__name__ = Handler.__qualname__ = "ForktraceCallbackHandler"
    return Handler


def _end_model_call(run: _Run) -> None:
    if run.model_call is not None:
        end_model_call(run.model_call, run.outer_call)


def _with_provider_result(run: _Run, result: LlmResult) -> LlmResult | None:
    """LangChain's reading of a model call, with what only the provider SDK integration read."""
    call = run.model_call
    if call is None or len(call.provider_results) != 1:
        return result  # none, or a batch's answers, which cannot be told apart
    return call.merged_into(result)


# --- turning recorded runs into spans ------------------------------------------


def _emit_root(root: _Run) -> None:
    try:
        _emit(root, root.context or otel_context.get_current(), outermost=True)
    except Exception as exc:
        report("langchain.emit", exc)


def _emit(run: _Run, parent: Context, *, outermost: bool = False) -> None:
    if run.hidden:
        _emit_children(run, parent)
        return
    if run.kind == LLM:
        span = start_span(
            run.name,
            semconv.Kind.LLM,
            operation=semconv.Operation.CHAT,
            attributes=run.attributes,
            context=parent,
            start_time=run.start,
        )
        record_input_messages(span, run.messages)
        if run.result is not None:
            record_llm_result(span, run.result)
        end_span(span, run.error, run.end)
        return
    if run.kind == TOOL:
        span = start_span(
            f"execute_tool {run.name}",
            semconv.Kind.TOOL,
            operation=semconv.Operation.EXECUTE_TOOL,
            attributes=run.attributes,
            context=parent,
            start_time=run.start,
        )
        set_content(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, run.tool_arguments)
        set_content(span, semconv.GEN_AI_TOOL_CALL_RESULT, run.tool_result)
        _emit_children(run, child_context(span, parent))
        end_span(span, run.error, run.end)
        return
    graph = any(child.is_node for child in run.children)
    if graph:
        # A graph, outermost or as a subgraph node: an agent, like LangGraph's prebuilt ones.
        lineage = agent_lineage(run.name, parent)
        span = start_span(
            f"invoke_agent {run.name}",
            semconv.Kind.AGENT,
            operation=semconv.Operation.INVOKE_AGENT,
            attributes={semconv.GEN_AI_AGENT_NAME: run.name},
            context=parent,
            start_time=run.start,
            lineage=lineage,
        )
        context = child_context(span, parent, lineage)
    elif run.is_node or outermost:
        span = start_span(
            f"node {run.name}" if run.is_node else run.name,
            None,
            attributes={"langgraph.node": run.name, "langgraph.step": run.step}
            if run.is_node
            else None,
            context=parent,
            start_time=run.start,
        )
        context = child_context(span, parent)
    elif _has_work(run):
        # A plain runnable inside a node (a chain, a prebuilt agent) that called a model or tool.
        span = start_span(run.name, None, context=parent, start_time=run.start)
        context = child_context(span, parent)
    else:
        return  # routing functions, channel writes: no span
    _emit_children(run, context)
    end_span(span, run.error, run.end)


def _has_work(run: _Run) -> bool:
    return any(child.kind != CHAIN or _has_work(child) for child in run.children)


def _emit_children(run: _Run, context: Context) -> None:
    """Emit children in start order; parallel nodes of one superstep become a fork."""
    steps: dict[int, list[_Run]] = defaultdict(list)
    others: list[_Run] = []
    for child in run.children:
        if child.is_node and child.step is not None:
            steps[child.step].append(child)
        else:
            others.append(child)
    for child in others:
        _emit(child, context)
    ordered = sorted(steps)
    for position, step in enumerate(ordered):
        nodes = sorted(steps[step], key=lambda node: node.start)
        if len(nodes) == 1:
            _emit(nodes[0], context)
            continue
        join = steps[ordered[position + 1]] if position + 1 < len(ordered) else None
        _emit_fork(nodes, join, context)


def _emit_fork(nodes: list[_Run], join: list[_Run] | None, context: Context) -> None:
    pushed = all(node.pushed for node in nodes)
    names = sorted({node.name for node in nodes})
    fork = ForkSpans(
        "+".join(names),
        semconv.ForkStrategy.MAP if pushed else semconv.ForkStrategy.ALL,
        context,
        start_time=nodes[0].start,
        attributes={"langgraph.step": nodes[0].step},
    )
    counts: dict[str, int] = defaultdict(int)
    for node in nodes:
        label = node.name
        if sum(1 for other in nodes if other.name == node.name) > 1:
            label = f"{node.name}[{counts[node.name]}]"
            counts[node.name] += 1
        span, branch_context = fork.branch(label, start_time=node.start)
        _emit(node, branch_context)
        if node.error is not None:
            reason = f"{type(node.error).__name__}: {node.error}"
            fork.end_branch(span, semconv.BranchOutcome.FAILED, reason, end_time=node.end)
        else:
            fork.end_branch(span, semconv.BranchOutcome.COMPLETED, end_time=node.end)
    ends = [node.end or node.start for node in nodes]
    attributes: dict[str, Any] = {}
    end_time = max(ends)
    if join:
        first = min(join, key=lambda node: node.start)
        attributes["langgraph.join_node"] = first.name
        end_time = max(end_time, first.start)
    fork.end(end_time=end_time, attributes=attributes)


# --- reading LangChain's messages and results ------------------------------------


_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def _blocks(msg: Any) -> list[Any]:
    """A message's standard content blocks (langchain-core >= 1), else its raw content."""
    try:
        blocks = msg.content_blocks
    except Exception:
        blocks = None
    if blocks is None:
        content = getattr(msg, "content", None)
        blocks = [content] if isinstance(content, str) else list(content or ())
    return blocks


def _reasoning_of(block: Any) -> str | None:
    if isinstance(block, dict) and block.get("type") in ("reasoning", "thinking"):
        value = block.get("reasoning") or block.get("thinking")
        return value if isinstance(value, str) else None
    return None


def _message(msg: Any) -> dict[str, Any]:
    role = _ROLES.get(getattr(msg, "type", ""), getattr(msg, "type", "user"))
    if role == "tool":
        return message("tool", [tool_result_part(getattr(msg, "tool_call_id", None), msg.content)])
    parts: list[dict[str, Any]] = []
    for block in _blocks(msg):
        if isinstance(block, str):
            parts.append(text_part(block))
        elif _reasoning_of(block) is not None:
            parts.append({"type": "reasoning", "content": _reasoning_of(block)})
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(text_part(block.get("text", "")))
    for call in getattr(msg, "tool_calls", None) or ():
        parts.append(tool_call_part(call.get("id"), call.get("name"), call.get("args")))
    return message(role, parts)


def _llm_result(response: Any) -> LlmResult:
    result = LlmResult()
    llm_output = getattr(response, "llm_output", None) or {}
    result.response_model = llm_output.get("model_name") or llm_output.get("model")
    if llm_output.get("token_usage"):
        result.add_usage(llm_output["token_usage"])
    for generations in getattr(response, "generations", None) or ():
        for generation in generations:
            info = getattr(generation, "generation_info", None) or {}
            msg = getattr(generation, "message", None)
            if msg is None:
                result.text.append(getattr(generation, "text", ""))
            else:
                usage = getattr(msg, "usage_metadata", None)
                if usage:
                    result.add_usage(usage)
                metadata = getattr(msg, "response_metadata", None) or {}
                result.response_model = metadata.get("model_name") or result.response_model
                finish = metadata.get("finish_reason") or metadata.get("stop_reason")
                if finish:
                    result.finish_reasons.append(finish)
                for block in _blocks(msg):
                    reasoning = _reasoning_of(block)
                    if isinstance(block, str):
                        result.text.append(block)
                    elif reasoning is not None:
                        result.reasoning.append(reasoning)
                    elif isinstance(block, dict) and block.get("type") == "text":
                        result.text.append(block.get("text", ""))
                extra = getattr(msg, "additional_kwargs", None) or {}
                if isinstance(extra.get("reasoning_content"), str):
                    result.reasoning.append(extra["reasoning_content"])
                for call in getattr(msg, "tool_calls", None) or ():
                    result.tool_calls.append(
                        {
                            "id": call.get("id"),
                            "name": call.get("name"),
                            "arguments": call.get("args"),
                        }
                    )
            if info.get("finish_reason"):
                result.finish_reasons.append(info["finish_reason"])
    return result


# --- registration ------------------------------------------------------------------


class _GlobalHandler:
    """Stands where LangChain's configure hook expects a ContextVar.

    The hook only calls ``.get()``. A real ContextVar set in one thread is
    unset in every other (LangGraph runs nodes in a thread pool), while this
    one answers the same everywhere until uninstrument() clears it.
    """

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    def get(self) -> Any:
        return self.handler


class Instrumentor:
    def __init__(self) -> None:
        self._hook: tuple[Any, ...] | None = None
        self.handler: Any = None

    def instrument(self, **options: Any) -> None:
        from langchain_core.tracers import context as tracer_context

        self.handler = _handler_class()()
        holder = _GlobalHandler(self.handler)
        tracer_context.register_configure_hook(holder, inheritable=True)  # type: ignore[arg-type]
        self._hook = tracer_context._configure_hooks[-1]

    def uninstrument(self) -> None:
        from langchain_core.tracers import context as tracer_context

        if self._hook is not None:
            self._hook[0].handler = None
            hooks = tracer_context._configure_hooks
            if self._hook in hooks:
                hooks.remove(self._hook)
            self._hook = None
        self.handler = None
