"""CrewAI: a listener on CrewAI's event bus.

forktrace registers handlers on ``crewai_event_bus`` for crews, tasks, agent
executions, LLM calls and tool usage (``off()`` removes them on uninstrument),
and turns them into:

- a crew: a span ``crew {name}`` (``invoke_workflow``);
- a task: a span ``task {name}``; consecutive tasks with
  ``async_execution=True`` run in parallel and become a fork (strategy ``all``)
  with one branch per task, joined by the next task, which waits for them;
  each branch ends ``completed`` or ``failed``;
- an agent execution: an agent span (``forktrace.agent.name`` = its role);
- an LLM call: an llm span with model, tokens, messages, the response, and the
  ReAct ``Thought:`` as reasoning text;
- a tool use: a tool span with name, arguments, result or error.

``call`` and ``acall`` of every ``BaseLLM`` class are wrapped to mark the model
call as CrewAI's: its native OpenAI and Anthropic providers call those SDKs, and
their forktrace integrations then record no second llm span.

CrewAI runs its handlers in a thread pool, out of order (an LLM call's end
may be handled before its start), so parentage comes from the events' own ids
(``parent_event_id``, ``started_event_id``, task ids), never from the span
current on a thread. The handler records events and emits spans, with the
events' own times, once every piece of work it saw start has ended.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context

from forktrace import semconv
from forktrace.integrations._shared import (
    Context,
    ForkSpans,
    LlmResult,
    agent_lineage,
    child_context,
    claiming_wrappers,
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

CREW, TASK, AGENT, LLM, TOOL = "crew", "task", "agent", "llm", "tool"
_THOUGHT = re.compile(r"Thought:\s*(.*?)(?:\n\s*(?:Action|Final Answer)\s*:|\Z)", re.S)


def _ns(moment: Any) -> int:
    return int(moment.timestamp() * 1_000_000_000) if isinstance(moment, datetime) else 0


@dataclass
class _Work:
    """One piece of CrewAI work, from its start event to its end event."""

    kind: str
    name: str
    event_id: str
    parent_event_id: str | None
    task_id: str | None
    start: int
    context: Context
    attributes: dict[str, Any] = field(default_factory=dict)
    is_async: bool = False
    end: int | None = None
    error: str | None = None
    messages: Any = None
    response: Any = None
    usage: Any = None
    finish_reason: str | None = None
    tool_arguments: Any = None
    tool_result: Any = None
    children: list[_Work] = field(default_factory=list)


def _start(kind: str, event: Any) -> _Work:
    """A work record from a start event (read here: events hold live objects)."""
    name = kind
    task_id = getattr(event, "task_id", None)
    work_attributes: dict[str, Any] = {}
    is_async = False
    messages = tool_arguments = None
    if kind == CREW:
        name = event.crew_name or "crew"
    elif kind == TASK:
        task = event.task
        name = getattr(event, "task_name", None) or getattr(task, "name", None) or "task"
        task_id = str(getattr(task, "id", task_id))
        is_async = bool(getattr(task, "async_execution", False))
        work_attributes = {"crewai.task.id": task_id}
    elif kind == AGENT:
        name = getattr(event.agent, "role", None) or "agent"
        task_id = str(getattr(event.task, "id", task_id))
    elif kind == LLM:
        name = event.model or "llm"
        work_attributes = llm_attributes(None, event.model)
        messages = event.messages
    elif kind == TOOL:
        name = event.tool_name
        work_attributes = {semconv.GEN_AI_TOOL_NAME: event.tool_name}
        tool_arguments = event.tool_args
    return _Work(
        kind,
        str(name),
        event.event_id,
        event.parent_event_id,
        task_id,
        _ns(event.timestamp),
        otel_context.get_current(),  # CrewAI copies the emitter's context into its handlers
        work_attributes,
        is_async,
        messages=messages,
        tool_arguments=tool_arguments,
    )


def _finish(work: _Work, event: Any, failed: bool) -> None:
    work.end = _ns(event.timestamp)
    if failed:
        work.error = str(getattr(event, "error", None) or "failed")
        return
    if work.kind == LLM:
        work.response = event.response
        work.usage = event.usage
        work.finish_reason = event.finish_reason
    elif work.kind == TOOL:
        work.tool_result = event.output


class _Recorder:
    """Collects events until all work that started has ended, then emits the spans."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._works: dict[str, _Work] = {}
        self._open = 0
        self._early_ends: dict[str, tuple[Any, bool]] = {}  # ends handled before their start

    def started(self, kind: str, event: Any) -> None:
        work = _start(kind, event)
        with self._lock:
            self._works[work.event_id] = work
            early = self._early_ends.pop(work.event_id, None)
            if early is None:
                self._open += 1
            else:
                _finish(work, *early)
            ready = self._take_if_settled()
        if ready:
            _emit_all(ready)

    def ended(self, event: Any, failed: bool) -> None:
        with self._lock:
            work = self._works.get(event.started_event_id or "")
            if work is None:
                self._early_ends[event.started_event_id or event.event_id] = (event, failed)
                return
            if work.end is None:
                self._open -= 1
            _finish(work, event, failed)
            ready = self._take_if_settled()
        if ready:
            _emit_all(ready)

    def _take_if_settled(self) -> list[_Work] | None:
        if self._open or self._early_ends or not self._works:
            return None
        works, self._works = list(self._works.values()), {}
        return works

    def pending(self) -> int:
        with self._lock:
            return len(self._works) + len(self._early_ends)


# --- emitting -------------------------------------------------------------------------


def _emit_all(works: list[_Work]) -> None:
    try:
        roots = _tree(works)
        for root in roots:
            _emit(root, root.context)
    except Exception as exc:
        report("crewai.emit", exc)


def _tree(works: list[_Work]) -> list[_Work]:
    by_id = {work.event_id: work for work in works}
    agents_by_task: dict[str, list[_Work]] = defaultdict(list)
    tasks_by_id: dict[str, _Work] = {}
    for work in works:
        if work.kind == AGENT and work.task_id:
            agents_by_task[work.task_id].append(work)
        elif work.kind == TASK and work.task_id:
            tasks_by_id[work.task_id] = work
    roots = []
    for work in sorted(works, key=lambda w: w.start):
        parent = by_id.get(work.parent_event_id or "")
        if parent is None and work.kind in (LLM, TOOL) and work.task_id:
            # CrewAI parents model and tool calls on scopes it emits no events
            # for; the agent running their task at that time is the parent.
            parent = next(
                (
                    agent
                    for agent in agents_by_task.get(work.task_id, ())
                    if agent.start <= work.start <= (agent.end or work.start)
                ),
                tasks_by_id.get(work.task_id),
            )
        if parent is None:
            roots.append(work)
        else:
            parent.children.append(work)
    return roots


def _emit(work: _Work, parent: Context) -> None:
    if work.kind == CREW:
        span = start_span(
            f"crew {work.name}",
            None,
            operation=semconv.Operation.INVOKE_WORKFLOW,
            attributes={"crewai.crew.name": work.name},
            context=parent,
            start_time=work.start,
        )
        _emit_tasks(work.children, child_context(span, parent))
    elif work.kind == TASK:
        span = start_span(
            f"task {work.name[:80]}",
            None,
            attributes=work.attributes,
            context=parent,
            start_time=work.start,
        )
        _emit_children(work, child_context(span, parent))
    elif work.kind == AGENT:
        lineage = agent_lineage(work.name, parent)
        span = start_span(
            f"invoke_agent {work.name}",
            semconv.Kind.AGENT,
            operation=semconv.Operation.INVOKE_AGENT,
            attributes={semconv.GEN_AI_AGENT_NAME: work.name},
            context=parent,
            start_time=work.start,
            lineage=lineage,
        )
        _emit_children(work, child_context(span, parent, lineage))
    elif work.kind == LLM:
        span = start_span(
            f"chat {work.name}",
            semconv.Kind.LLM,
            operation=semconv.Operation.CHAT,
            attributes=work.attributes,
            context=parent,
            start_time=work.start,
        )
        record_input_messages(span, _messages(work.messages))
        record_llm_result(span, _llm_result(work))
    else:
        span = start_span(
            f"execute_tool {work.name}",
            semconv.Kind.TOOL,
            operation=semconv.Operation.EXECUTE_TOOL,
            attributes=work.attributes,
            context=parent,
            start_time=work.start,
        )
        set_content(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, work.tool_arguments)
        set_content(span, semconv.GEN_AI_TOOL_CALL_RESULT, work.tool_result)
        _emit_children(work, child_context(span, parent))
    if work.error is not None:
        mark_error(span, work.error)
    end_span(span, end_time=work.end)


def _emit_children(work: _Work, context: Context) -> None:
    for child in work.children:
        _emit(child, context)


def _emit_tasks(children: list[_Work], context: Context) -> None:
    """A crew's tasks in order; a run of async tasks is a fork joined by the next task."""
    position = 0
    while position < len(children):
        child = children[position]
        group = [child]
        if child.kind == TASK and child.is_async:
            while (
                position + len(group) < len(children)
                and children[position + len(group)].kind == TASK
                and children[position + len(group)].is_async
            ):
                group.append(children[position + len(group)])
        position += len(group)
        if len(group) < 2:
            _emit(child, context)
            continue
        join = children[position] if position < len(children) else None
        _emit_fork(group, join, context)


def _emit_fork(tasks: list[_Work], join: _Work | None, context: Context) -> None:
    fork = ForkSpans("async tasks", semconv.ForkStrategy.ALL, context, start_time=tasks[0].start)
    for task in tasks:
        span, branch_context = fork.branch(task.name[:80], start_time=task.start)
        _emit(task, branch_context)
        if task.error is not None:
            fork.end_branch(span, semconv.BranchOutcome.FAILED, task.error, end_time=task.end)
        else:
            fork.end_branch(span, semconv.BranchOutcome.COMPLETED, end_time=task.end)
    end_time = max(task.end or task.start for task in tasks)
    attributes: dict[str, Any] = {}
    if join is not None:
        attributes["crewai.join_task"] = join.name[:80]
        end_time = max(end_time, join.start)
    fork.end(end_time=end_time, attributes=attributes)


def _messages(messages: Any) -> list[dict[str, Any]]:
    if isinstance(messages, str):
        return [message("user", [text_part(messages)])]
    return [
        message(
            str(field_of(item, "role") or "user"), [text_part(str(field_of(item, "content") or ""))]
        )
        for item in messages or ()
    ]


def _llm_result(work: _Work) -> LlmResult:
    result = LlmResult(response_model=work.name)
    result.add_usage(work.usage)
    if work.finish_reason:
        result.finish_reasons.append(work.finish_reason)
    if isinstance(work.response, str):
        result.text.append(work.response)
        thought = _THOUGHT.search(work.response)
        if thought and thought.group(1).strip():
            result.reasoning.append(thought.group(1).strip())
    elif work.response is not None:
        result.text.append(str(work.response))
    return result


# --- registration -------------------------------------------------------------------


def _event_types() -> dict[type, tuple[str, str]]:
    """Event class -> (kind, start | end | failed)."""
    from crewai.events.types import (
        agent_events,
        crew_events,
        llm_events,
        task_events,
        tool_usage_events,
    )

    return {
        crew_events.CrewKickoffStartedEvent: (CREW, "start"),
        crew_events.CrewKickoffCompletedEvent: (CREW, "end"),
        crew_events.CrewKickoffFailedEvent: (CREW, "failed"),
        task_events.TaskStartedEvent: (TASK, "start"),
        task_events.TaskCompletedEvent: (TASK, "end"),
        task_events.TaskFailedEvent: (TASK, "failed"),
        agent_events.AgentExecutionStartedEvent: (AGENT, "start"),
        agent_events.AgentExecutionCompletedEvent: (AGENT, "end"),
        agent_events.AgentExecutionErrorEvent: (AGENT, "failed"),
        llm_events.LLMCallStartedEvent: (LLM, "start"),
        llm_events.LLMCallCompletedEvent: (LLM, "end"),
        llm_events.LLMCallFailedEvent: (LLM, "failed"),
        tool_usage_events.ToolUsageStartedEvent: (TOOL, "start"),
        tool_usage_events.ToolUsageFinishedEvent: (TOOL, "end"),
        tool_usage_events.ToolUsageErrorEvent: (TOOL, "failed"),
    }


def _handler(recorder: _Recorder, kind: str, phase: str) -> Any:
    # Exactly (source, event): CrewAI passes its runtime state to handlers
    # that take a third argument.
    def handle(source: Any, event: Any) -> None:
        try:
            if phase == "start":
                recorder.started(kind, event)
            else:
                recorder.ended(event, phase == "failed")
        except Exception as exc:
            report(f"crewai.{kind}.{phase}", exc)

    return handle


class Instrumentor:
    def __init__(self) -> None:
        self.recorder: _Recorder | None = None
        self._handlers: list[tuple[type, Any]] = []
        self._claims: Any = None

    def instrument(self, **options: Any) -> None:
        from crewai.events import crewai_event_bus

        recorder = self.recorder = _Recorder()
        for event_type, (kind, phase) in _event_types().items():
            handle = _handler(recorder, kind, phase)
            crewai_event_bus.on(event_type)(handle)
            self._handlers.append((event_type, handle))
        self._claim_model_calls()

    def _claim_model_calls(self) -> None:
        """CrewAI's native providers call the openai and anthropic SDKs inside ``call``:
        mark those calls as CrewAI's, so the SDK integrations record no second llm span."""
        from crewai.llms.base_llm import BaseLLM

        from forktrace.integrations._subclasses import SubclassMethods

        sync_wrapper, async_wrapper = claiming_wrappers("crewai")
        self._claims = SubclassMethods(BaseLLM, {"call": sync_wrapper, "acall": async_wrapper})
        self._claims.install()

    def uninstrument(self) -> None:
        from crewai.events import crewai_event_bus

        while self._handlers:
            event_type, handle = self._handlers.pop()
            crewai_event_bus.off(event_type, handle)
        if self._claims is not None:
            self._claims.restore()
            self._claims = None
        self.recorder = None
