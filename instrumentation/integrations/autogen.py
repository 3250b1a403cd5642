"""AutoGen AgentChat: its own GenAI spans enriched, model calls added, fan-outs as forks.

AutoGen (autogen-core) traces agent invocations (``invoke_agent {name}``) and
tool executions (``execute_tool {name}``) with OpenTelemetry, through the
global tracer provider. forktrace does not duplicate them; it:

- adds an :class:`~forktrace.integrations._enrich.Enricher` that marks them as
  agent and tool spans and stamps ``forktrace.agent.name`` (a tool span takes
  the agent of the span it runs in);
- records each tool's arguments and result on AutoGen's tool span, from a
  wrapper around the tools' ``run`` (AutoGen records errors itself); the tool
  of an AgentChat ``Handoff`` (``transfer_to_<agent>``, as in a ``Swarm``)
  becomes a handoff span from the calling agent to the target;
- adds the model-call span AutoGen lacks: an llm span around every
  ``ChatCompletionClient.create`` / ``create_stream`` (model, messages, text,
  tool calls, tokens from ``RequestUsage``, ``CreateResult.thought`` as
  reasoning). Clients that call the OpenAI or Anthropic SDK get none while
  forktrace's ``openai`` / ``anthropic`` integration is on: that one records
  the call, with the provider's own model name and token details, and the
  agent's lineage. A client that wraps another (``ChatCompletionCache``) is one
  model call;
- records a team's run (``BaseGroupChat.run`` / ``run_stream``) as an
  ``invoke_workflow {team}`` span;
- turns a group chat turn that hands the floor to several speakers at once (a
  ``GraphFlow`` fan-out, any custom manager returning several names) into a
  fork with one branch per speaker: AutoGen runs those agents concurrently.
  Each branch ends when its agent's turn does (completed, failed with the
  error, or cancelled); branches still open when the team's run ends are
  ended then (cancelled, or abandoned if their speaker never ran), so the fork
  always ends, with its last branch.

Parentage: AutoGen's runtime runs each message handler in a task copied from
the context the team started in, so agents of a team hang from the team's
span; a fan-out's agents run in their branch's context, attached by a wrapper
around the participant container's ``on_message_impl`` (the runtime keeps no
trace context per message). The runtime's own messaging spans (``create``,
``publish``, ``process``) are left as AutoGen emits them.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span as SdkSpan

from forktrace import semconv
from forktrace.context import current_lineage, with_lineage
from forktrace.integrations._enrich import Enricher, enrich_global_spans
from forktrace.integrations._shared import (
    ForkSpans,
    LlmResult,
    agent_lineage,
    capture_content,
    child_context,
    end_span,
    iterate_in_context,
    llm_attributes,
    message,
    reasoning_part,
    record_input_messages,
    record_llm_result,
    report,
    set_content,
    set_text,
    start_span,
    text_part,
    tool_call_part,
    tool_result_part,
)
from forktrace.integrations._subclasses import SubclassMethods
from forktrace.integrations._wrapping import MethodPatches

# The scope of AutoGen's GenAI spans (its runtime's messaging spans are "autogen <runtime>").
SCOPE_PREFIX = "autogen-core"
# Clients whose provider SDK has a forktrace integration of its own.
_SDK_INTEGRATIONS = {"openai": "openai", "anthropic": "anthropic"}


# --- AutoGen's own spans ----------------------------------------------------------------


def _agent_of(span: Any) -> str | None:
    attributes = getattr(span, "attributes", None) or {}
    name = attributes.get(semconv.AGENT_NAME)
    if name is None and attributes.get(semconv.KIND) == semconv.Kind.AGENT.value:
        name = attributes.get(semconv.GEN_AI_AGENT_NAME)
    return name if isinstance(name, str) and name else None


def _enrich(span: SdkSpan, parent_context: Context | None) -> None:
    attributes = span.attributes or {}
    operation = attributes.get(semconv.GEN_AI_OPERATION_NAME)
    if operation == semconv.Operation.INVOKE_AGENT.value:
        enriched: dict[str, Any] = {semconv.KIND: semconv.Kind.AGENT.value}
        agent = attributes.get(semconv.GEN_AI_AGENT_NAME)
        if isinstance(agent, str) and agent:
            enriched[semconv.AGENT_NAME] = agent
        span.set_attributes(enriched)
    elif operation == semconv.Operation.EXECUTE_TOOL.value:
        span.set_attribute(semconv.KIND, semconv.Kind.TOOL.value)
        agent = _agent_of(trace.get_current_span(parent_context))
        if agent is not None:
            span.set_attribute(semconv.AGENT_NAME, agent)


# --- model calls --------------------------------------------------------------------------


def _provider(client: Any) -> str:
    # autogen_ext.models.<provider>._client -> <provider>
    parts = type(client).__module__.split(".")
    if len(parts) > 2 and parts[0] == "autogen_ext" and parts[1] == "models":
        return parts[2]
    return parts[0]


def _model(client: Any) -> str:
    for attribute in ("_create_args", "_raw_config"):
        config = getattr(client, attribute, None)
        if isinstance(config, Mapping) and config.get("model"):
            return str(config["model"])
    inner = getattr(client, "client", None)  # ChatCompletionCache
    if inner is not None and inner is not client and hasattr(inner, "create"):
        return _model(inner)
    return type(client).__name__


def _messages(messages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in messages or ():
        kind = type(item).__name__
        content = getattr(item, "content", None)
        if kind == "SystemMessage":
            out.append(message("system", [text_part(str(content))]))
        elif kind == "UserMessage":
            out.append(message("user", [text_part(str(content))]))
        elif kind == "AssistantMessage":
            parts = []
            if getattr(item, "thought", None):
                parts.append(reasoning_part(str(item.thought)))
            if isinstance(content, list):
                parts += [
                    tool_call_part(getattr(c, "id", None), getattr(c, "name", None), c.arguments)
                    for c in content
                ]
            else:
                parts.append(text_part(str(content)))
            out.append(message("assistant", parts))
        elif kind == "FunctionExecutionResultMessage":
            parts = [tool_result_part(r.call_id, r.content) for r in content or ()]
            out.append(message("tool", parts))
    return out


def _llm_result(result: Any) -> LlmResult:
    out = LlmResult()
    out.add_usage(getattr(result, "usage", None))
    finish = getattr(result, "finish_reason", None)
    if finish:
        out.finish_reasons.append(str(finish))
    if getattr(result, "thought", None):
        out.reasoning.append(str(result.thought))
    content = getattr(result, "content", None)
    if isinstance(content, list):
        out.tool_calls = [
            {"id": call.id, "name": call.name, "arguments": call.arguments} for call in content
        ]
    elif content is not None:
        out.text.append(str(content))
    return out


@dataclass
class _Call:
    """A model call: our llm span (None when another span records it) and the context
    attached while it runs (the span current, the agent's lineage)."""

    span: SdkSpan | None
    context: Context


def _start_call(client: Any, args: Any, kwargs: Mapping[str, Any]) -> _Call | None:
    try:
        parent = otel_context.get_current()
        current = trace.get_current_span(parent)
        if (getattr(current, "attributes", None) or {}).get(semconv.KIND) == "llm":
            return None  # a client wrapping another (ChatCompletionCache): one model call
        agent = _agent_of(current)
        lineage = agent_lineage(agent, parent) if agent is not None else None
        provider = _provider(client)
        sdk = _SDK_INTEGRATIONS.get(provider)
        if sdk is not None:
            from forktrace.integrations import instrumented

            if sdk in instrumented():
                # That integration records the call; its span gets the agent's lineage.
                return _Call(None, with_lineage(lineage, parent)) if lineage else None
        model = _model(client)
        span = start_span(
            f"chat {model}",
            semconv.Kind.LLM,
            operation=semconv.Operation.CHAT,
            attributes=llm_attributes(provider, model),
            context=parent,
            lineage=lineage,
        )
        if capture_content():
            messages = kwargs.get("messages", args[0] if args else None)
            record_input_messages(span, _messages(messages))
        return _Call(span, child_context(span, parent, lineage))  # type: ignore[arg-type]
    except Exception as exc:
        report("autogen.llm_start", exc)
        return None


def _finish_llm_span(span: Any, result: Any) -> None:
    try:
        record_llm_result(span, _llm_result(result))
    except Exception as exc:
        report("autogen.llm_result", exc)
    end_span(span)


async def _create(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    call = _start_call(instance, args, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    token = otel_context.attach(call.context)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        if call.span is not None:
            end_span(call.span, exc)
        raise
    finally:
        otel_context.detach(token)
    if call.span is not None:
        _finish_llm_span(call.span, result)
    return result


def _create_stream(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    call = _start_call(instance, args, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    try:
        stream = wrapped(*args, **kwargs)
    except BaseException as exc:
        if call.span is not None:
            end_span(call.span, exc)
        raise
    if call.span is None:
        return iterate_in_context(stream, call.context)
    return _traced_stream(iterate_in_context(stream, call.context), call.span)


async def _traced_stream(stream: Any, span: Any) -> AsyncIterator[Any]:
    result = None
    error: BaseException | None = None
    try:
        async for item in stream:
            if not isinstance(item, str):
                result = item  # the final CreateResult
            yield item
    except GeneratorExit:
        raise  # closed early by the consumer: not an error
    except BaseException as exc:
        error = exc
        raise
    finally:
        if error is not None:
            end_span(span, error)
        elif result is not None:
            _finish_llm_span(span, result)
        else:
            end_span(span)  # closed before its result: what it saw is all there is
        await stream.aclose()


# --- tools ---------------------------------------------------------------------------------


def _tool_span(tool: Any) -> Any:
    span = trace.get_current_span()
    attributes = getattr(span, "attributes", None) or {}
    if attributes.get(semconv.GEN_AI_OPERATION_NAME) != semconv.Operation.EXECUTE_TOOL.value:
        return None
    if attributes.get(semconv.GEN_AI_TOOL_NAME) != getattr(tool, "name", None):
        return None
    return span


def _handoff_target(tool: Any) -> str | None:
    """The target agent when ``tool`` is an AgentChat ``Handoff``'s tool.

    ``Handoff.handoff_tool`` builds a FunctionTool around a closure over the
    Handoff; reading the closure works for agents built before instrument() too.
    """
    if _state.classes is None:
        return None
    function = getattr(tool, "_func", None)
    for cell in getattr(function, "__closure__", None) or ():
        contents = cell.cell_contents
        if isinstance(contents, _state.classes.handoff):
            return str(contents.target)
    return None


def _mark_handoff(span: Any, target: str) -> None:
    source = (getattr(span, "attributes", None) or {}).get(semconv.AGENT_NAME)
    span.set_attributes(
        {
            semconv.KIND: semconv.Kind.HANDOFF.value,
            semconv.HANDOFF_TO: target,
            **({semconv.HANDOFF_FROM: source} if source else {}),
        }
    )


async def _tool_run(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    span = None
    try:
        span = _tool_span(instance)
        target = _handoff_target(instance) if span is not None else None
        if target is not None:
            _mark_handoff(span, target)
        if span is not None and args and capture_content():
            arguments = args[0]
            dump = getattr(arguments, "model_dump", None)
            set_content(span, semconv.GEN_AI_TOOL_CALL_ARGUMENTS, dump() if dump else arguments)
    except Exception as exc:
        report("autogen.tool_start", exc)
    result = await wrapped(*args, **kwargs)
    if span is not None:
        try:
            if capture_content():
                as_string = getattr(instance, "return_value_as_string", None)
                value = as_string(result) if as_string is not None else str(result)
                set_content(span, semconv.GEN_AI_TOOL_CALL_RESULT, value)
        except Exception as exc:
            report("autogen.tool_result", exc)
    return result


# --- teams ---------------------------------------------------------------------------------


def _team_run_stream(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    stream = wrapped(*args, **kwargs)
    try:
        team = str(getattr(instance, "_team_id", ""))
        name = str(getattr(instance, "name", None) or type(instance).__name__)
        span = start_span(
            f"invoke_workflow {name}",
            None,
            operation=semconv.Operation.INVOKE_WORKFLOW,
            attributes={"autogen.team.class": type(instance).__name__},
        )
    except Exception as exc:
        report("autogen.team_start", exc)
        return stream
    return _traced_team(stream, span, team)


async def _traced_team(stream: Any, span: Any, team: str) -> AsyncIterator[Any]:
    # The team's embedded runtime starts in the first step, in the team span's
    # context: every message handler of this run inherits it.
    error: BaseException | None = None
    steps = iterate_in_context(stream, trace.set_span_in_context(span))
    try:
        async for item in steps:
            stop_reason = getattr(item, "stop_reason", None)
            if stop_reason:
                set_text(span, "autogen.team.stop_reason", stop_reason)
            yield item
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            await steps.aclose()  # the team's own clean-up, when the consumer stopped early
        finally:
            _end_team(span, team, error)


def _end_team(span: Any, team: str, error: BaseException | None) -> None:
    fan_outs = _state.fan_outs
    if fan_outs is not None:
        try:
            fan_outs.close_team(team)
        except Exception as exc:
            report("autogen.team_end", exc)
    end_span(span, error)


# --- group chat fan-out as a fork --------------------------------------------------------


@dataclass
class _Fork:
    spans: ForkSpans
    remaining: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(eq=False)
class _Branch:
    fork: _Fork
    span: Any
    context: Context
    team: str
    started: bool = False
    ended: bool = False

    def end(self, outcome: semconv.BranchOutcome, reason: str | None, error: Any = None) -> None:
        """End this branch once (its turn, or its team stopping first), the fork with its last."""
        fork = self.fork
        with fork.lock:
            if self.ended:
                return
            self.ended = True
            fork.remaining -= 1
            last = fork.remaining == 0
        fork.spans.end_branch(self.span, outcome, reason, error=error)
        if last:
            fork.spans.end()


class _FanOuts:
    """Open branches: waiting for their speaker's container by (team id, participant
    topic), and all of a team's, to close what its run leaves behind."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], _Branch] = {}
        self._by_team: dict[str, list[_Branch]] = {}
        self._lock = threading.Lock()

    def open(self, manager: Any, speakers: list[str]) -> None:
        topics = manager._participant_name_to_topic_type
        team = str(manager.id.key)  # the team id: the key of all the team's agents
        spans = ForkSpans(str(manager._name), semconv.ForkStrategy.ALL, otel_context.get_current())
        spans.span.set_attribute("autogen.speakers", list(speakers))
        fork = _Fork(spans, remaining=len(speakers))
        for speaker in speakers:
            span, ctx = spans.branch(speaker)
            branch = _Branch(fork, span, ctx, team)
            with self._lock:
                self._pending[(team, topics[speaker])] = branch
                self._by_team.setdefault(team, []).append(branch)

    def take(self, container: Any) -> _Branch | None:
        with self._lock:
            branch = self._pending.pop((str(container.id.key), str(container.id.type)), None)
        if branch is not None:
            branch.started = True
        return branch

    def done(self, branch: _Branch) -> None:
        with self._lock:
            branches = self._by_team.get(branch.team)
            if branches is not None and branch in branches:
                branches.remove(branch)

    def close_team(self, team: str) -> None:
        """The team's run ended: its branches still open were cancelled or never ran."""
        with self._lock:
            branches = self._by_team.pop(team, [])
            for key in [key for key in self._pending if key[0] == team]:
                del self._pending[key]
        for branch in branches:
            if branch.started:
                branch.end(semconv.BranchOutcome.CANCELLED, "the team run ended first")
            else:
                branch.end(semconv.BranchOutcome.ABANDONED, "the team run ended before it ran")


async def _log_speaker_selection(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    speakers = kwargs.get("speaker_names", args[0] if args else None)
    fan_outs = _state.fan_outs
    if isinstance(speakers, list) and len(set(speakers)) > 1 and fan_outs is not None:
        try:
            fan_outs.open(instance, speakers)
        except Exception as exc:
            report("autogen.fork", exc)
    return await wrapped(*args, **kwargs)


async def _container_message(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """A participant's turn: in its branch when the manager fanned out, as its agent always."""
    classes = _state.classes
    fan_outs = _state.fan_outs
    message_ = args[0] if args else kwargs.get("message")
    if (
        classes is None
        or fan_outs is None
        or not isinstance(instance, classes.container)
        or not isinstance(message_, classes.request)
    ):
        return await wrapped(*args, **kwargs)
    branch = token = None
    try:
        branch = fan_outs.take(instance)
        parent = branch.context if branch is not None else otel_context.get_current()
        name = getattr(instance._agent, "name", None)
        lineage = agent_lineage(str(name), parent) if name else current_lineage(parent)
        token = otel_context.attach(with_lineage(lineage, parent) if lineage else parent)
    except Exception as exc:
        report("autogen.turn_start", exc)
    try:
        result = await wrapped(*args, **kwargs)
    except BaseException as exc:
        if branch is not None:
            _end_branch(fan_outs, branch, exc)
        raise
    finally:
        if token is not None:
            otel_context.detach(token)
    if branch is not None:
        _end_branch(fan_outs, branch, None)
    return result


def _end_branch(fan_outs: _FanOuts, branch: _Branch, error: BaseException | None) -> None:
    try:
        fan_outs.done(branch)
        if error is None:
            branch.end(semconv.BranchOutcome.COMPLETED, None)
        elif isinstance(error, Exception):
            branch.end(semconv.BranchOutcome.FAILED, f"{type(error).__name__}: {error}", error)
        else:  # cancelled
            branch.end(semconv.BranchOutcome.CANCELLED, type(error).__name__)
    except Exception as exc:
        report("autogen.branch_end", exc)


# --- registration --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Classes:
    container: type
    request: type
    handoff: type


class _State:
    """What the wrappers read; None when uninstrumented (wrappers already bound stay inert)."""

    classes: _Classes | None = None
    fan_outs: _FanOuts | None = None


_state = _State()


class Instrumentor:
    def __init__(self) -> None:
        self._enricher: Enricher | None = None
        self._patches = MethodPatches()
        self._subclass_methods: list[SubclassMethods] = []

    def instrument(self, **options: Any) -> None:
        from autogen_agentchat.base import Handoff as HandoffBase
        from autogen_agentchat.teams import BaseGroupChat
        from autogen_agentchat.teams._group_chat._base_group_chat_manager import (
            BaseGroupChatManager,
        )
        from autogen_agentchat.teams._group_chat._chat_agent_container import ChatAgentContainer
        from autogen_agentchat.teams._group_chat._events import GroupChatRequestPublish
        from autogen_agentchat.teams._group_chat._sequential_routed_agent import (
            SequentialRoutedAgent,
        )
        from autogen_core.models import ChatCompletionClient
        from autogen_core.tools import BaseTool

        if _state.classes is not None:
            return
        self._enricher = enrich_global_spans("autogen", SCOPE_PREFIX, _enrich)
        self._subclass_methods = [
            SubclassMethods(
                ChatCompletionClient, {"create": _create, "create_stream": _create_stream}
            ),
            SubclassMethods(BaseTool, {"run": _tool_run}),
        ]
        for methods in self._subclass_methods:
            methods.install()
        self._patches.wrap(BaseGroupChat, "run_stream", _team_run_stream)
        self._patches.wrap(BaseGroupChatManager, "_log_speaker_selection", _log_speaker_selection)
        self._patches.wrap(SequentialRoutedAgent, "on_message_impl", _container_message)
        _state.fan_outs = _FanOuts()
        _state.classes = _Classes(ChatAgentContainer, GroupChatRequestPublish, HandoffBase)

    def uninstrument(self) -> None:
        _state.classes = _state.fan_outs = None
        self._patches.restore()
        for methods in self._subclass_methods:
            methods.restore()
        self._subclass_methods = []
        if self._enricher is not None:
            self._enricher.active = False
            self._enricher = None
