"""smolagents: wrapped agent runs, model generation and tool execution.

smolagents has step callbacks, but only per agent instance and only after a
step is over; forktrace needs the model call and each tool call as they
happen, so it wraps (with ``wrapt``, restored on uninstrument):

- ``MultiStepAgent.run``: an agent span ``invoke_agent {name}`` (name: the
  agent's ``name``, else its class), ``forktrace.agent.name`` on everything
  inside, the task and the final answer; streamed runs keep the span open
  until the stream ends;
- ``generate`` / ``generate_stream`` of every ``Model`` subclass (subclasses
  defined later are wrapped when an agent first runs with them): an llm span
  ``chat {model_id}`` with messages, tokens, text, tool calls, and the text a
  model wrote beside its tool calls (CodeAgent's ``Thought:``, a tool-calling
  model's preamble) as reasoning;
- ``ToolCallingAgent.execute_tool_call``: a tool span with name, arguments,
  result or error; a call to a managed agent is a ``delegate {name}`` span
  (kind handoff, from the manager to the managed agent) holding the managed
  agent's own run: delegation;
- ``ToolCallingAgent.process_tool_calls``: when a model asks for several tool
  calls at once, smolagents runs them on ``max_tool_threads`` threads; they
  become a fork (strategy ``all``) with one branch per call, ``completed`` or
  ``failed``. smolagents copies the context into its threads, and each call
  finds its branch by its name and arguments.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from forktrace import semconv
from forktrace.context import current_lineage
from forktrace.integrations._shared import (
    ForkSpans,
    LlmResult,
    agent_lineage,
    child_context,
    end_span,
    field_of,
    llm_attributes,
    message,
    record_input_messages,
    record_llm_result,
    report,
    set_content,
    start_span,
    text_part,
)
from forktrace.integrations._wrapping import MethodPatches

_THOUGHT = re.compile(r"Thought:\s*(.*?)(?:\n\s*(?:Code|Action)\s*:|<code>|```|\Z)", re.S)
# Set while a model call is being traced: a subclass's generate() calling
# super().generate() is one model call, not two.
_IN_MODEL_CALL: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "forktrace_smolagents_model_call", default=False
)
# The branches of the parallel tool calls of the current step, by (name, arguments).
_BRANCHES: contextvars.ContextVar[_PendingBranches | None] = contextvars.ContextVar(
    "forktrace_smolagents_branches", default=None
)


def _agent_name(agent: Any) -> str:
    name = getattr(agent, "name", None)
    return name if isinstance(name, str) and name else type(agent).__name__


def _call_key(name: Any, arguments: Any) -> str:
    try:
        return f"{name}:{json.dumps(arguments, sort_keys=True, default=str)}"
    except (TypeError, ValueError):
        return f"{name}:{arguments!r}"


# --- agent runs --------------------------------------------------------------------


def _run(wrapped: Callable[..., Any], agent: Any, args: Any, kwargs: Any) -> Any:
    try:
        span, context = _start_agent(agent, args, kwargs)
        _Models.instance.wrap_class(type(getattr(agent, "model", None)))
    except Exception as exc:
        report("smolagents.run", exc)
        return wrapped(*args, **kwargs)
    token = otel_context.attach(context)
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        otel_context.detach(token)
        end_span(span, error)
        raise
    otel_context.detach(token)
    if isinstance(result, Iterator):
        return _traced_stream(result, span, context)
    _end_agent(span, result)
    return result


def _start_agent(agent: Any, args: Any, kwargs: Any) -> tuple[trace.Span, Any]:
    parent = otel_context.get_current()
    name = _agent_name(agent)
    lineage = agent_lineage(name, parent)
    span = start_span(
        f"invoke_agent {name}",
        semconv.Kind.AGENT,
        operation=semconv.Operation.INVOKE_AGENT,
        attributes={
            semconv.GEN_AI_AGENT_NAME: name,
            semconv.GEN_AI_AGENT_DESCRIPTION: getattr(agent, "description", None),
            "smolagents.agent.class": type(agent).__name__,
        },
        context=parent,
        lineage=lineage,
    )
    task = args[0] if args else kwargs.get("task")
    if task is not None:
        set_content(span, semconv.GEN_AI_INPUT_MESSAGES, [message("user", [text_part(str(task))])])
    return span, child_context(span, parent, lineage)


def _end_agent(span: trace.Span, result: Any) -> None:
    try:
        output = getattr(result, "output", result)  # RunResult when return_full_result
        if output is not None:
            set_content(
                span,
                semconv.GEN_AI_OUTPUT_MESSAGES,
                [message("assistant", [text_part(str(output))])],
            )
    except Exception as exc:
        report("smolagents.run.end", exc)
    end_span(span)


def _traced_stream(stream: Iterator[Any], span: trace.Span, context: Any) -> Iterator[Any]:
    """A streamed run: the agent span stays open, and current while the agent works."""
    last = None
    try:
        while True:
            token = otel_context.attach(context)
            try:
                last = next(stream)
            except StopIteration:
                break
            finally:
                otel_context.detach(token)
            yield last
    except BaseException as error:
        end_span(span, error)
        raise
    _end_agent(span, getattr(last, "output", None))


# --- model calls -----------------------------------------------------------------------


class _Models:
    """``generate`` / ``generate_stream`` wrapped on every Model subclass that defines them."""

    instance: _Models

    def __init__(self, patches: MethodPatches) -> None:
        self._patches = patches
        self._done: set[type] = set()
        self._lock = threading.Lock()

    def wrap_all(self) -> None:
        from smolagents.models import Model

        pending = [Model]
        while pending:
            cls = pending.pop()
            self.wrap_class(cls)
            pending.extend(cls.__subclasses__())

    def wrap_class(self, cls: type | None) -> None:
        if cls is None:
            return
        with self._lock:
            if cls in self._done:
                return
            self._done.add(cls)
            if "generate" in cls.__dict__:
                self._patches.wrap(cls, "generate", _generate)
            if "generate_stream" in cls.__dict__:
                self._patches.wrap(cls, "generate_stream", _generate_stream)


def _start_llm(model: Any, args: Any, kwargs: Any) -> trace.Span:
    model_id = str(getattr(model, "model_id", None) or type(model).__name__)
    span = start_span(
        f"chat {model_id}",
        semconv.Kind.LLM,
        operation=semconv.Operation.CHAT,
        attributes=llm_attributes(getattr(model, "provider", None), model_id),
    )
    messages = args[0] if args else kwargs.get("messages")
    record_input_messages(span, _messages(messages))
    return span


def _generate(wrapped: Callable[..., Any], model: Any, args: Any, kwargs: Any) -> Any:
    if _IN_MODEL_CALL.get():
        return wrapped(*args, **kwargs)
    try:
        span = _start_llm(model, args, kwargs)
    except Exception as exc:
        report("smolagents.generate", exc)
        return wrapped(*args, **kwargs)
    token = _IN_MODEL_CALL.set(True)
    # Current during the call: the provider SDK integration (OpenAIServerModel calls the
    # openai SDK) sees this llm span and records none of its own.
    current = otel_context.attach(trace.set_span_in_context(span))
    try:
        response = wrapped(*args, **kwargs)
    except BaseException as error:
        end_span(span, error)
        raise
    finally:
        otel_context.detach(current)
        _IN_MODEL_CALL.reset(token)
    try:
        record_llm_result(span, _llm_result(response))
    except Exception as exc:
        report("smolagents.generate.result", exc)
    end_span(span)
    return response


def _generate_stream(wrapped: Callable[..., Any], model: Any, args: Any, kwargs: Any) -> Any:
    try:
        span = _start_llm(model, args, kwargs)
    except Exception as exc:
        report("smolagents.generate_stream", exc)
        return wrapped(*args, **kwargs)
    return _traced_deltas(wrapped(*args, **kwargs), span)


def _traced_deltas(deltas: Iterator[Any], span: trace.Span) -> Iterator[Any]:
    result = LlmResult()
    text: list[str] = []
    try:
        for delta in _in_span(deltas, span):
            try:
                text.append(str(getattr(delta, "content", None) or ""))
                result.add_usage(getattr(delta, "token_usage", None))
            except Exception as exc:
                report("smolagents.generate_stream.delta", exc)
            yield delta
    except BaseException as error:
        end_span(span, error)
        raise
    _add_text(result, "".join(text))
    record_llm_result(span, result)
    end_span(span)


def _in_span(deltas: Iterator[Any], span: trace.Span) -> Iterator[Any]:
    """``deltas`` with ``span`` current while each is made (never across a ``yield``),
    so the provider SDK call inside a streamed generate sees its llm span."""
    context = trace.set_span_in_context(span)
    iterator = iter(deltas)
    while True:
        token = otel_context.attach(context)
        try:
            delta = next(iterator)
        except StopIteration:
            return
        finally:
            otel_context.detach(token)
        yield delta


def _llm_result(response: Any) -> LlmResult:
    result = LlmResult()
    result.add_usage(getattr(response, "token_usage", None))
    raw_content = getattr(response, "content", None)
    content = (
        raw_content
        if isinstance(raw_content, str)
        else " ".join(str(field_of(part, "text") or "") for part in raw_content or ())
    )
    calls = getattr(response, "tool_calls", None) or []
    for call in calls:
        function = getattr(call, "function", None)
        result.tool_calls.append(
            {
                "id": getattr(call, "id", None),
                "name": getattr(function, "name", None),
                "arguments": getattr(function, "arguments", None),
            }
        )
    if calls and content.strip():
        # Text a model writes beside its tool calls is its reasoning for them.
        result.reasoning.append(content.strip())
        result.text.append(content)
    else:
        _add_text(result, content)
    return result


def _add_text(result: LlmResult, content: str) -> None:
    if content:
        result.text.append(content)
        thought = _THOUGHT.search(content)
        if thought and thought.group(1).strip():
            result.reasoning.append(thought.group(1).strip())


def _messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for item in messages or ():
        role = field_of(item, "role")
        content = field_of(item, "content")
        if isinstance(content, list):
            content = "\n".join(str(field_of(part, "text") or "") for part in content)
        out.append(message(str(getattr(role, "value", role) or "user"), [text_part(str(content))]))
    return out


# --- tool calls, delegation, parallel tool calls ---------------------------------------


class _PendingBranches:
    """The branches of one step's parallel tool calls, claimed by the calls themselves."""

    def __init__(self, fork: ForkSpans) -> None:
        self.fork = fork
        self._lock = threading.Lock()
        self._open: dict[str, list[tuple[trace.Span, Any]]] = defaultdict(list)

    def add(self, key: str, branch: tuple[trace.Span, Any]) -> None:
        self._open[key].append(branch)

    def claim(self, key: str) -> tuple[trace.Span, Any] | None:
        with self._lock:
            found = self._open.get(key)
            return found.pop(0) if found else None

    def unclaimed(self) -> list[trace.Span]:
        with self._lock:
            left = [span for branches in self._open.values() for span, _ in branches]
            self._open.clear()
            return left


def _process_tool_calls(wrapped: Callable[..., Any], agent: Any, args: Any, kwargs: Any) -> Any:
    chat_message = args[0] if args else kwargs.get("chat_message")
    calls = list(getattr(chat_message, "tool_calls", None) or ())
    if len(calls) < 2:
        return wrapped(*args, **kwargs)
    return _traced_tool_calls(wrapped(*args, **kwargs), calls)


def _traced_tool_calls(steps: Iterator[Any], calls: list[Any]) -> Iterator[Any]:
    pending = token = None
    try:
        fork = ForkSpans(
            "parallel tool calls", semconv.ForkStrategy.ALL, otel_context.get_current()
        )
        pending = _PendingBranches(fork)
        for call in calls:
            function = call.function
            pending.add(_call_key(function.name, function.arguments), fork.branch(function.name))
    except Exception as exc:
        report("smolagents.process_tool_calls", exc)
        pending = None
    try:
        # Set before the tool threads are submitted: smolagents copies this
        # context into each of them.
        if pending is not None:
            token = _BRANCHES.set(pending)
        yield from steps
    finally:
        if token is not None:
            # Resumed in another context (nothing to reset there): ignore.
            with contextlib.suppress(ValueError):
                _BRANCHES.reset(token)
        if pending is not None:
            for span in pending.unclaimed():
                pending.fork.end_branch(span, semconv.BranchOutcome.ABANDONED, "never ran")
            pending.fork.end()


def _execute_tool_call(wrapped: Callable[..., Any], agent: Any, args: Any, kwargs: Any) -> Any:
    name = args[0] if args else kwargs.get("tool_name")
    arguments = args[1] if len(args) > 1 else kwargs.get("arguments")
    pending = _BRANCHES.get()
    branch = pending.claim(_call_key(name, arguments)) if pending is not None else None
    try:
        parent = branch[1] if branch is not None else otel_context.get_current()
        span = _start_tool(agent, name, arguments, parent)
    except Exception as exc:
        report("smolagents.execute_tool_call", exc)
        return wrapped(*args, **kwargs)
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as error:
        otel_context.detach(token)
        end_span(span, error)
        if branch is not None and pending is not None:
            pending.fork.end_branch(branch[0], semconv.BranchOutcome.FAILED, str(error)[:200])
        raise
    otel_context.detach(token)
    set_content(span, semconv.GEN_AI_TOOL_CALL_RESULT, _result_text(result))
    end_span(span)
    if branch is not None and pending is not None:
        pending.fork.end_branch(branch[0], semconv.BranchOutcome.COMPLETED)
    return result


def _start_tool(agent: Any, name: Any, arguments: Any, parent: Any) -> trace.Span:
    managed = name in (getattr(agent, "managed_agents", None) or {})
    if managed:
        manager = _agent_name(agent)
        span = start_span(
            f"delegate {name}",
            semconv.Kind.HANDOFF,
            attributes={
                semconv.HANDOFF_FROM: manager,
                semconv.HANDOFF_TO: str(name),
                semconv.GEN_AI_TOOL_NAME: str(name),
            },
            context=parent,
            lineage=current_lineage(parent),
        )
    else:
        span = start_span(
            f"execute_tool {name}",
            semconv.Kind.TOOL,
            operation=semconv.Operation.EXECUTE_TOOL,
            attributes={semconv.GEN_AI_TOOL_NAME: str(name)},
            context=parent,
        )
    set_content(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, arguments)
    return span


def _result_text(result: Any) -> Any:
    return result if isinstance(result, (str, int, float, bool, dict, list)) else str(result)


_Models.instance = _Models(MethodPatches())


# --- registration ----------------------------------------------------------------------


class Instrumentor:
    def __init__(self) -> None:
        self._patches = MethodPatches()

    def instrument(self, **options: Any) -> None:
        from smolagents.agents import MultiStepAgent, ToolCallingAgent

        self._patches.wrap(MultiStepAgent, "run", _run)
        self._patches.wrap(ToolCallingAgent, "execute_tool_call", _execute_tool_call)
        self._patches.wrap(ToolCallingAgent, "process_tool_calls", _process_tool_calls)
        _Models.instance = _Models(self._patches)
        _Models.instance.wrap_all()

    def uninstrument(self) -> None:
        self._patches.restore()
        _Models.instance = _Models(MethodPatches())
