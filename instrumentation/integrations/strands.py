"""Strands Agents: its own GenAI spans, enriched; hooks and a fork for what they lack.

Strands traces its work with OpenTelemetry through the global tracer provider:
``invoke_agent {name}``, ``execute_event_loop_cycle``, ``chat`` (a model call),
``execute_tool {name}``, ``invoke_graph`` and ``invoke_swarm``. forktrace
emits no duplicates of these; it:

- adds an :class:`~forktrace.integrations._enrich.Enricher` on the global
  tracer provider that marks them agent, llm and tool spans (a Swarm's
  ``handoff_to_agent`` tool: a handoff span from the agent calling it) and
  stamps ``forktrace.agent.name`` on each, from the agent span it runs under
  (Strands' spans carry their attributes only after they start, so kinds come
  from the span names Strands gives them);
- wraps three methods of Strands' ``Tracer`` where the data exists only while
  Strands ends or starts a span (no hook runs while the span is open):
  ``end_model_invoke_span`` (reasoning text, output message, finish reason),
  ``start_tool_call_span`` (arguments; a handoff's target) and
  ``end_tool_call_span`` (result);
- adds a ``HookProvider`` to every ``Agent`` and ``Graph`` made while
  instrumented (Strands' hooks are per instance, with no global registry, so
  ``Agent.__init__`` and ``Graph.__init__`` are wrapped to add it): an agent
  invocation runs under its agent lineage, so spans that other code starts
  inside it (a tool's own spans, a provider SDK's) carry
  ``forktrace.agent.name``; a graph node of a parallel batch runs in its branch;
- wraps ``Graph._execute_nodes_parallel`` (no hook sees a batch): a batch of
  two or more ready nodes, which Strands runs as concurrent tasks, is a fork
  (strategy ``all``) and each node a branch, ``completed``, ``failed`` (the
  error as reason), ``abandoned`` (interrupted) or ``cancelled`` (stopped when
  another node failed).

Lineage (run, fork, branch) is stamped by forktrace's lineage processor from
the OpenTelemetry context, which Strands passes along to its tool tasks and
graph node tasks.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Iterable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span
from opentelemetry.trace import Span as ApiSpan

from forktrace import semconv
from forktrace.context import current_lineage, with_lineage
from forktrace.integrations._enrich import Enricher, enrich_global_spans
from forktrace.integrations._shared import (
    ForkSpans,
    LlmResult,
    field_of,
    guarded,
    mark_error,
    record_llm_result,
    report,
    set_content,
)
from forktrace.integrations._wrapping import MethodPatches

SCOPE_PREFIX = "strands.telemetry"
HANDOFF_TOOL = "handoff_to_agent"  # the tool a Swarm gives its agents
_AGENT_PREFIX = "invoke_agent "
_TOOL_PREFIX = "execute_tool "


# --- Strands' own spans ------------------------------------------------------------------


def _agent_of(parent_context: Context | None) -> str | None:
    """``forktrace.agent.name`` of the span a new span starts under (Strands' parent)."""
    attributes = getattr(trace.get_current_span(parent_context), "attributes", None)
    agent = attributes.get(semconv.AGENT_NAME) if attributes else None
    return agent if isinstance(agent, str) else None


def _enrich(span: Span, parent_context: Context | None) -> None:
    name = span.name
    if name.startswith(_AGENT_PREFIX):
        agent = name[len(_AGENT_PREFIX) :]
        span.set_attributes({semconv.KIND: semconv.Kind.AGENT.value, semconv.AGENT_NAME: agent})
        return
    attributes: dict[str, Any] = {}
    agent = _agent_of(parent_context)
    if agent is not None:
        attributes[semconv.AGENT_NAME] = agent
    if name == "chat":
        attributes[semconv.KIND] = semconv.Kind.LLM.value
    elif name == _TOOL_PREFIX + HANDOFF_TOOL:
        attributes[semconv.KIND] = semconv.Kind.HANDOFF.value
        if agent is not None:
            attributes[semconv.HANDOFF_FROM] = agent
    elif name.startswith(_TOOL_PREFIX):
        attributes[semconv.KIND] = semconv.Kind.TOOL.value
    if attributes:
        span.set_attributes(attributes)


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return kwargs[name] if name in kwargs else args[index] if len(args) > index else None


def _llm_result(message: Any, stop_reason: Any) -> LlmResult:
    """A Strands message (Bedrock Converse content blocks) as an :class:`LlmResult`."""
    result = LlmResult()
    if stop_reason:
        result.finish_reasons.append(str(stop_reason))
    for block in field_of(message, "content") or ():
        if not isinstance(block, dict):
            continue
        if "text" in block:
            result.text.append(str(block["text"]))
        elif "reasoningContent" in block:
            reasoning = field_of(block["reasoningContent"], "reasoningText") or {}
            if field_of(reasoning, "text"):
                result.reasoning.append(str(reasoning["text"]))
        elif "toolUse" in block:
            call = block["toolUse"]
            result.tool_calls.append(
                {
                    "id": field_of(call, "toolUseId"),
                    "name": field_of(call, "name"),
                    "arguments": field_of(call, "input"),
                }
            )
    return result


def _end_model_invoke_span(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        span = _arg(args, kwargs, 0, "span")
        if span is not None and span.is_recording():
            message = _arg(args, kwargs, 1, "message")
            record_llm_result(span, _llm_result(message, _arg(args, kwargs, 4, "stop_reason")))
    except Exception as exc:
        report("strands.model_end", exc)
    return wrapped(*args, **kwargs)


def _start_tool_call_span(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    span = wrapped(*args, **kwargs)
    try:
        _tool_started(span, _arg(args, kwargs, 0, "tool"))
    except Exception as exc:
        report("strands.tool_start", exc)
    return span


def _tool_started(span: ApiSpan, tool: Any) -> None:
    if not span.is_recording() or not isinstance(tool, dict):
        return
    arguments = tool.get("input")
    attributes = getattr(span, "attributes", None) or {}
    if tool.get("name") == HANDOFF_TOOL:
        target = field_of(arguments, "agent_name") if isinstance(arguments, dict) else None
        if target is not None:
            source = attributes.get(semconv.HANDOFF_FROM) or "?"
            span.set_attribute(semconv.HANDOFF_TO, str(target))
            span.update_name(f"handoff {source} -> {target}")
    # Strands records arguments as an attribute only under its latest conventions.
    if semconv.GEN_AI_TOOL_CALL_ARGUMENTS not in attributes:
        set_content(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)


def _end_tool_call_span(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        span = _arg(args, kwargs, 0, "span")
        result = _arg(args, kwargs, 1, "tool_result")
        if span is not None and span.is_recording() and isinstance(result, dict):
            output = _tool_output(result)
            set_content(span, semconv.GEN_AI_TOOL_CALL_RESULT, output)
            if result.get("status") == "error":
                # Recent Strands set the same status; 1.2x releases end such a span OK
                # (overriding this status), and then error.type still tells.
                mark_error(span, output if isinstance(output, str) else "tool error")
    except Exception as exc:
        report("strands.tool_end", exc)
    return wrapped(*args, **kwargs)


def _tool_output(result: dict[str, Any]) -> Any:
    """A tool result's content: its text when it is only text, else the blocks."""
    content = result.get("content") or []
    texts = [block["text"] for block in content if isinstance(block, dict) and "text" in block]
    return "\n".join(str(text) for text in texts) if len(texts) == len(content) else content


# --- hooks ---------------------------------------------------------------------------------


def _event_classes() -> dict[str, type]:
    from strands.hooks import AfterInvocationEvent, BeforeInvocationEvent

    try:  # Strands 1.2x-1.3x kept the multi-agent events under experimental
        from strands.hooks import AfterNodeCallEvent, BeforeNodeCallEvent
    except ImportError:
        from strands.experimental.hooks.multiagent import AfterNodeCallEvent, BeforeNodeCallEvent
    return {
        "before_invocation": BeforeInvocationEvent,
        "after_invocation": AfterInvocationEvent,
        "before_node": BeforeNodeCallEvent,
        "after_node": AfterNodeCallEvent,
    }


class _Batch:
    """One batch of graph nodes Strands runs concurrently: a fork, a branch per node started."""

    def __init__(self, graph: Any, node_ids: list[str], parent: Context) -> None:
        graph_id = str(getattr(graph, "id", None) or "graph")
        self.fork = ForkSpans(
            f"graph {graph_id}",
            semconv.ForkStrategy.ALL,
            parent,
            attributes={"strands.graph.id": graph_id},
        )
        self._waiting = list(node_ids)
        self._open: dict[str, ApiSpan] = {}
        self._lock = threading.Lock()

    def start(self, node_id: str) -> Context | None:
        with self._lock:
            if node_id not in self._waiting:
                return None
            self._waiting.remove(node_id)
        span, context = self.fork.branch(node_id)
        with self._lock:
            self._open[node_id] = span
        return context

    def finish(
        self,
        node_id: str,
        outcome: semconv.BranchOutcome,
        reason: str | None,
        error: BaseException | None = None,
    ) -> None:
        with self._lock:
            span = self._open.pop(node_id, None)
        if span is not None:
            self.fork.end_branch(span, outcome, reason, error=error)

    def end(self) -> None:
        with self._lock:
            still_open = list(self._open)
        for node_id in still_open:
            self.finish(
                node_id, semconv.BranchOutcome.CANCELLED, "the graph stopped before this node ended"
            )
        self.fork.end()


def _node_outcome(
    graph: Any, node_id: str
) -> tuple[semconv.BranchOutcome, str | None, BaseException | None]:
    node = (getattr(graph, "nodes", None) or {}).get(node_id)
    status = getattr(getattr(node, "execution_status", None), "value", None)
    if status == "completed":
        return semconv.BranchOutcome.COMPLETED, None, None
    if status == "failed":
        result = getattr(getattr(node, "result", None), "result", None)
        error = result if isinstance(result, BaseException) else None
        return semconv.BranchOutcome.FAILED, str(result) if error else "node failed", error
    if status == "interrupted":
        return semconv.BranchOutcome.ABANDONED, "interrupted", None
    return semconv.BranchOutcome.CANCELLED, "the node stopped before it ended", None


class _Provider:
    """A Strands ``HookProvider``: the given callbacks, by event, added to a registry."""

    def __init__(self, events: dict[str, type], callbacks: dict[str, Any]) -> None:
        self.callbacks = [(events[key], callback) for key, callback in callbacks.items()]

    def register_hooks(self, registry: Any, **kwargs: Any) -> None:
        for event, callback in self.callbacks:
            registry.add_callback(event, callback)


class _Hooks:
    """forktrace's hook callbacks, the wrappers that add them, the open batches; inert once off.

    On an agent: each invocation runs under the agent's lineage. On a graph: a node
    of a parallel batch runs in its branch, attached in the node's own task.
    """

    def __init__(self) -> None:
        events = _event_classes()
        self.active = True
        self.agent_hooks = _Provider(
            events,
            {
                "before_invocation": self.before_invocation,
                "after_invocation": self.after_invocation,
            },
        )
        self.graph_hooks = _Provider(
            events, {"before_node": self.before_node, "after_node": self.after_node}
        )
        self.attached: dict[Any, tuple[Context, object]] = {}
        self.batches: dict[int, _Batch] = {}
        self._registries: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    @guarded("strands.before_invocation")
    def before_invocation(self, event: Any) -> None:
        lineage = current_lineage()
        if not self.active or lineage is None:
            return
        name = str(getattr(event.agent, "name", None) or "agent")
        context = with_lineage(lineage.in_agent(name), otel_context.get_current())
        # An agent runs one invocation at a time (Strands refuses a second): one slot each.
        self.attached[id(event.agent)] = (context, otel_context.attach(context))

    @guarded("strands.after_invocation")
    def after_invocation(self, event: Any) -> None:
        self.detach(self.attached.pop(id(event.agent), None))

    @guarded("strands.before_node")
    def before_node(self, event: Any) -> None:
        batch = self.batches.get(id(event.source))
        if not self.active or batch is None:
            return
        context = batch.start(event.node_id)
        if context is not None:
            key = (id(event.source), event.node_id)
            self.attached[key] = (context, otel_context.attach(context))

    @guarded("strands.after_node")
    def after_node(self, event: Any) -> None:
        self.detach(self.attached.pop((id(event.source), event.node_id), None))
        batch = self.batches.get(id(event.source))
        if batch is not None:
            batch.finish(event.node_id, *_node_outcome(event.source, event.node_id))

    @staticmethod
    def detach(entry: tuple[Context, object] | None) -> None:
        # Only while ours is still the current context: Strands' own context managers may
        # have unwound past it already (an invocation that raised), and detaching then
        # would bring a finished context back.
        if entry is not None and otel_context.get_current() is entry[0]:
            otel_context.detach(entry[1])  # type: ignore[arg-type]

    def _add(self, instance: Any, provider: Any) -> None:
        try:
            if self.active:
                instance.hooks.add_hook(provider)
                with self._lock:
                    self._registries.add(instance.hooks)
        except Exception as exc:
            report("strands.add_hooks", exc)

    def agent_init(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        self._add(instance, self.agent_hooks)

    def graph_init(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
        wrapped(*args, **kwargs)
        self._add(instance, self.graph_hooks)

    def parallel(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        stream = wrapped(*args, **kwargs)
        try:
            nodes: Iterable[Any] = _arg(args, kwargs, 0, "nodes") or ()
            node_ids = [str(node.node_id) for node in nodes]
            # Without forktrace's hooks (a graph made before instrument()) no node
            # could enter its branch: no fork then.
            if not self.active or len(node_ids) < 2 or instance.hooks not in self._registries:
                return stream
            batch = _Batch(instance, node_ids, otel_context.get_current())
        except Exception as exc:
            report("strands.parallel", exc)
            return stream
        return self._forked(stream, id(instance), batch)

    async def _forked(self, stream: Any, key: int, batch: _Batch) -> AsyncIterator[Any]:
        with self._lock:
            outer = self.batches.get(key)
            self.batches[key] = batch
        try:
            async for event in stream:
                yield event
        finally:
            try:
                # Closed early, Strands cancels the node tasks and awaits them here: their
                # branches end (as cancelled) before the fork does.
                await stream.aclose()
            finally:
                with self._lock:
                    if outer is None:
                        self.batches.pop(key, None)
                    else:
                        self.batches[key] = outer
                try:
                    batch.end()
                except Exception as exc:
                    report("strands.fork_end", exc)

    def remove(self) -> None:
        """Turn inert and take the providers out of the registries they were added to."""
        self.active = False
        with self._lock:
            registries = list(self._registries)
            self._registries = weakref.WeakSet()
        for registry in registries:
            try:
                # HookRegistry has no remove; its callbacks live in one dict of lists
                # (of entries with a .callback since Strands 1.3x, of callbacks before).
                for callbacks in registry._registered_callbacks.values():
                    callbacks[:] = [
                        entry
                        for entry in callbacks
                        if getattr(getattr(entry, "callback", entry), "__self__", None) is not self
                    ]
            except Exception as exc:  # left inert instead
                report("strands.remove_hooks", exc)


# --- registration --------------------------------------------------------------------------


class Instrumentor:
    def __init__(self) -> None:
        self._enricher: Enricher | None = None
        self._patches = MethodPatches()
        self._hooks: _Hooks | None = None

    def instrument(self, **options: Any) -> None:
        from strands.agent.agent import Agent
        from strands.multiagent.graph import Graph
        from strands.telemetry.tracer import Tracer

        self._hooks = hooks = _Hooks()
        self._enricher = enrich_global_spans("strands", SCOPE_PREFIX, _enrich)
        self._patches.wrap(Tracer, "end_model_invoke_span", _end_model_invoke_span)
        self._patches.wrap(Tracer, "start_tool_call_span", _start_tool_call_span)
        self._patches.wrap(Tracer, "end_tool_call_span", _end_tool_call_span)
        self._patches.wrap(Agent, "__init__", hooks.agent_init)
        self._patches.wrap(Graph, "__init__", hooks.graph_init)
        self._patches.wrap(Graph, "_execute_nodes_parallel", hooks.parallel)

    def uninstrument(self) -> None:
        if self._enricher is not None:
            self._enricher.active = False
            self._enricher = None
        self._patches.restore()
        if self._hooks is not None:
            self._hooks.remove()
            self._hooks = None
