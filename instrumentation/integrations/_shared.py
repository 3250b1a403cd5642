"""What every integration needs, written once.

- :func:`guarded`: a callback that fails logs once and returns None, so an
  error inside forktrace never breaks the agent it observes.
- :func:`start_span` / :func:`end_span`: spans with a forktrace kind and the
  GenAI operation, started under an explicit parent context when the framework
  calls back from other threads or out of order.
- :class:`LlmResult` and :func:`record_llm_result`: a model call's model,
  tokens (input, output, reasoning), finish reasons, reasoning text and output
  messages, with content capture and truncation from the SDK's settings.
- :class:`SpanMap`: framework run ids -> (span, context), thread-safe.
- :class:`ForkSpans`: a fork with its branch spans, for integrations that
  discover parallel work from framework events rather than ``forktrace.fork``.
- :func:`iterate_in_context`: drive a framework's async stream under a context.
- :func:`recording_model_call` and friends: one llm span per model call when a
  framework and a provider SDK integration both see it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from forktrace import _guard, semconv, setup, text
from forktrace.context import Lineage, current_lineage, with_lineage

F = TypeVar("F", bound=Callable[..., Any])
Context = otel_context.Context


# --- never break the agent ------------------------------------------------


def report(where: str, exc: BaseException) -> None:
    """Log an integration's own failure, once per place."""
    _guard.report(f"integrations.{where}", exc)


def guarded(where: str) -> Callable[[F], F]:
    """Decorate a framework callback: forktrace's exceptions are logged once and swallowed."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                report(where, exc)
                return None

        return call  # type: ignore[return-value]

    return decorate


# --- spans ----------------------------------------------------------------


def tracer() -> trace.Tracer:
    # Read on every call: forktrace.init() replaces the tracer.
    return setup.tracer


def start_span(
    name: str,
    kind: semconv.Kind | None,
    *,
    operation: semconv.Operation | None = None,
    attributes: Mapping[str, Any] | None = None,
    context: Context | None = None,
    start_time: int | None = None,
    lineage: Lineage | None = None,
) -> Span:
    """Start (but do not activate) a span under ``context`` (default: the current one).

    The span is stamped with ``lineage``, default the lineage in ``context``:
    forktrace's own tracer is skipped by the stamping span processor, because
    its spans state their lineage themselves, as here.
    """
    parent = otel_context.get_current() if context is None else context
    attrs: dict[str, Any] = {}
    if kind is not None:
        attrs[semconv.KIND] = kind.value
    if operation is not None:
        attrs[semconv.GEN_AI_OPERATION_NAME] = operation.value
    if attributes:
        attrs.update((key, value) for key, value in attributes.items() if value is not None)
    if lineage is None:
        lineage = current_lineage(parent)
    if lineage is not None:
        attrs = {**lineage.stamp, **attrs}
    return tracer().start_span(name, context=parent, attributes=attrs, start_time=start_time)


def end_span(span: Span, error: BaseException | None = None, end_time: int | None = None) -> None:
    if error is not None:
        mark_error(span, error)
    span.end(end_time=end_time)


def mark_error(span: Span, error: BaseException | str) -> None:
    if isinstance(error, BaseException):
        span.record_exception(error)
        span.set_attribute(semconv.ERROR_TYPE, type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(error)[:1024]))
    else:
        span.set_attribute(semconv.ERROR_TYPE, "error")
        span.set_status(Status(StatusCode.ERROR, error[:1024]))


def child_context(
    span: Span, parent: Context | None = None, lineage: Lineage | None = None
) -> Context:
    """The context to start ``span``'s children in: ``span`` current, ``lineage`` if given."""
    ctx = trace.set_span_in_context(span, parent)
    if lineage is not None:
        ctx = with_lineage(lineage, ctx)
    return ctx


async def iterate_in_context(stream: Any, ctx: Context) -> AsyncIterator[Any]:
    """Iterate ``stream`` with ``ctx`` attached during each step only.

    Attaching across a ``yield`` would leak the context into the consumer (and
    detach in another context when the consumer moves on). Closing this
    iterator closes ``stream``.
    """
    try:
        while True:
            token = otel_context.attach(ctx)
            try:
                item = await stream.__anext__()
            except StopAsyncIteration:
                return
            finally:
                otel_context.detach(token)
            yield item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()  # a no-op once exhausted; closes the framework's stream otherwise


def agent_lineage(agent_name: str, parent: Context | None) -> Lineage | None:
    """The lineage of an agent span and its children: ``forktrace.agent.name`` = that agent."""
    lineage = current_lineage(parent)
    return lineage.in_agent(agent_name) if lineage is not None else None


def set_text(span: Span, key: str, value: Any) -> None:
    """Structural text (names, reasons), truncated past the SDK's limit."""
    attributes: dict[str, Any] = {}
    text.put_text(attributes, key, value)
    span.set_attributes(attributes)


def set_content(span: Span, key: str, value: Any) -> None:
    """Content (messages, reasoning, tool I/O): dropped when capture is off, else truncated."""
    if value is None or not text.policy.capture_content:
        return
    attributes: dict[str, Any] = {}
    text.put_content(attributes, key, value)
    span.set_attributes(attributes)


def capture_content() -> bool:
    return text.policy.capture_content


# --- model calls ------------------------------------------------------------


def text_part(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def reasoning_part(content: str) -> dict[str, Any]:
    return {"type": "reasoning", "content": content}


def tool_call_part(call_id: str | None, name: str | None, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def tool_result_part(call_id: str | None, result: Any) -> dict[str, Any]:
    return {"type": "tool_call_response", "id": call_id, "response": result}


def message(role: str, parts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """One message in the GenAI conventions' ``gen_ai.*.messages`` form."""
    return {"role": role, "parts": parts, **{k: v for k, v in extra.items() if v is not None}}


@dataclass
class LlmResult:
    """What a model call returned, in provider-neutral form."""

    response_model: str | None = None
    response_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    finish_reasons: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)

    def add_usage(self, usage: Any) -> None:
        input_tokens, output_tokens, reasoning_tokens = usage_tokens(usage)
        # Streams report usage in pieces (Anthropic: input at start, output at
        # the end); keep the latest non-empty value of each.
        self.input_tokens = input_tokens if input_tokens is not None else self.input_tokens
        self.output_tokens = output_tokens if output_tokens is not None else self.output_tokens
        self.reasoning_tokens = (
            reasoning_tokens if reasoning_tokens is not None else self.reasoning_tokens
        )

    def output_message(self) -> dict[str, Any]:
        parts = [reasoning_part(item) for item in self.reasoning if item]
        parts += [text_part(item) for item in self.text if item]
        parts += [
            tool_call_part(call.get("id"), call.get("name"), call.get("arguments"))
            for call in self.tool_calls
        ]
        finish = self.finish_reasons[0] if self.finish_reasons else None
        return message("assistant", parts, finish_reason=finish)


def llm_attributes(provider: str | None, model: str | None) -> dict[str, Any]:
    return {semconv.GEN_AI_PROVIDER_NAME: provider, semconv.GEN_AI_REQUEST_MODEL: model}


def record_llm_result(span: Span, result: LlmResult) -> None:
    span.set_attributes(llm_result_attributes(result))


def llm_result_attributes(result: LlmResult) -> dict[str, Any]:
    """The span attributes of a model call's result (content only when captured)."""
    attributes: dict[str, Any] = {
        semconv.GEN_AI_RESPONSE_MODEL: result.response_model,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: result.input_tokens,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: result.output_tokens,
        semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: result.reasoning_tokens,
    }
    if result.finish_reasons:
        attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] = list(result.finish_reasons)
    attributes = {key: value for key, value in attributes.items() if value is not None}
    if text.policy.capture_content:
        reasoning = "\n\n".join(item for item in result.reasoning if item)
        if reasoning:
            text.put_content(attributes, semconv.LLM_REASONING, reasoning)
        if result.text or result.reasoning or result.tool_calls:
            text.put_content(attributes, semconv.GEN_AI_OUTPUT_MESSAGES, [result.output_message()])
    return attributes


def record_input_messages(span: Span, messages: list[dict[str, Any]] | None) -> None:
    if messages:
        set_content(span, semconv.GEN_AI_INPUT_MESSAGES, messages)


def field_of(obj: Any, *names: str) -> Any:
    """The first present field of an object or mapping."""
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def usage_tokens(usage: Any) -> tuple[int | None, int | None, int | None]:
    """(input, output, reasoning) tokens from any provider's or framework's usage record.

    Reads the OpenAI (prompt/completion, input/output with *_details), Anthropic
    and LangChain (``usage_metadata`` with ``output_token_details``) shapes.
    """
    if usage is None:
        return None, None, None
    input_tokens = field_of(usage, "input_tokens", "prompt_tokens")
    output_tokens = field_of(usage, "output_tokens", "completion_tokens")
    details = field_of(
        usage, "output_tokens_details", "completion_tokens_details", "output_token_details"
    )
    reasoning = field_of(details, "reasoning_tokens", "reasoning") if details is not None else None
    return _int(input_tokens), _int(output_tokens), _int(reasoning)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- one llm span per model call ----------------------------------------------
#
# A model call made through a framework (LangChain's ChatOpenAI, Strands'
# OpenAIModel, ...) reaches a provider SDK (openai, anthropic) that forktrace
# also instruments. Both would record it, and tokens and cost would count
# twice. The rule: the framework's span is the llm span (it sits where the
# agent's work is, with the framework's view of the messages); the provider
# SDK integration records no llm span of its own and hands what only it reads
# (the provider's response model, reasoning tokens and text) to the
# framework's span where that lacks them.
#
# A framework says it is recording a model call in one of two ways:
# - its own OpenTelemetry span, current during the provider call and marked
#   kind llm (Strands' and Pydantic AI's ``chat`` spans, forktrace's own);
# - a marker, :func:`framework_model_call` around the provider call (or
#   :func:`begin_model_call` / :func:`end_model_call` from start and end
#   callbacks), for frameworks whose span is not current then (LangChain emits
#   its spans when the graph ends; CrewAI handles its events on other threads).


@dataclass
class FrameworkModelCall:
    """A model call a framework records; provider integrations add what they read."""

    framework: str
    provider_results: list[LlmResult] = field(default_factory=list)
    # Cleared when the call ends: a context copied while it was open (a task
    # LangChain gathers) may still hold the marker, and must not skip later calls.
    open: bool = True

    def merged_into(self, result: LlmResult | None) -> LlmResult | None:
        """``result`` with the fields it lacks taken from the provider's answers."""
        for provided in self.provider_results:
            result = fill_missing(result, provided)
        return result


_model_call: ContextVar[FrameworkModelCall | None] = ContextVar(
    "forktrace_framework_model_call", default=None
)


def set_model_call(call: FrameworkModelCall | None) -> FrameworkModelCall | None:
    """Mark (or unmark, with None) the current context's model call; returns the previous one.

    For callback-style frameworks whose start and end callbacks run in the
    caller's context but not as one ``with`` block; restore the previous value
    at the end (a plain set, not a token reset, so it works from any context).
    """
    previous = _model_call.get()
    _model_call.set(call)
    return previous


def begin_model_call(framework: str) -> tuple[FrameworkModelCall, FrameworkModelCall | None]:
    """For a start callback: mark the context; returns the call and the marker it hid."""
    call = FrameworkModelCall(framework)
    return call, set_model_call(call)


def end_model_call_on(
    span: Span, call: FrameworkModelCall, outer: FrameworkModelCall | None
) -> None:
    """For an end callback whose span is still open: end the call, add the provider's detail."""
    end_model_call(call, outer)
    for result in call.provider_results:
        hand_over(span, result)


def end_model_call(call: FrameworkModelCall, outer: FrameworkModelCall | None) -> None:
    """Close ``call``; where it is still the current context's marker, put ``outer`` back.

    The end callback may run in another context (a task the framework
    gathered): there only closing it matters.
    """
    call.open = False
    if _model_call.get() is call:
        _model_call.set(outer)


@contextmanager
def framework_model_call(framework: str) -> Iterator[FrameworkModelCall]:
    """Around a provider call a framework records itself: the SDK integration steps aside."""
    call = FrameworkModelCall(framework)
    token = _model_call.set(call)
    try:
        yield call
    finally:
        call.open = False
        _model_call.reset(token)


def claiming_wrappers(framework: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """wrapt wrappers (sync, async) that run a framework's model method inside
    :func:`framework_model_call`, for frameworks that record the call from events
    handled elsewhere (CrewAI's event bus runs its handlers in a thread pool)."""

    def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        with framework_model_call(framework):
            return wrapped(*args, **kwargs)

    async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        with framework_model_call(framework):
            return await wrapped(*args, **kwargs)

    return sync_wrapper, async_wrapper


def recording_model_call() -> FrameworkModelCall | Span | None:
    """Who records the model call about to be made, if a framework does: its marker or span."""
    call = _model_call.get()
    if call is not None and call.open:
        return call
    span = trace.get_current_span()
    attributes = getattr(span, "attributes", None)  # SDK spans only; others have none
    if span.is_recording() and attributes and attributes.get(semconv.KIND) == _LLM_KIND:
        return span
    return None


def hand_over(owner: FrameworkModelCall | Span, result: LlmResult) -> None:
    """Give a provider integration's reading of a call to the framework that records it."""
    if isinstance(owner, FrameworkModelCall):
        owner.provider_results.append(result)
        return
    # A span of the framework's own: add only what it lacks (its messages are its own).
    present = getattr(owner, "attributes", None) or {}
    extra = LlmResult(**{**vars(result), "text": [], "tool_calls": []})
    attributes = llm_result_attributes(extra)
    attributes.pop(semconv.GEN_AI_OUTPUT_MESSAGES, None)
    owner.set_attributes({key: value for key, value in attributes.items() if key not in present})


def fill_missing(result: LlmResult | None, provided: LlmResult) -> LlmResult:
    """``result`` with each empty field taken from ``provided`` (the provider's reading)."""
    if result is None:
        return provided
    for name, value in vars(provided).items():
        if getattr(result, name) in (None, []) and value not in (None, []):
            setattr(result, name, value)
    return result


_LLM_KIND = semconv.Kind.LLM.value


# --- framework runs called back from anywhere --------------------------------


@dataclass
class Tracked:
    """A framework run, its span (None for work forktrace shows only through its
    children), and the context its children start in."""

    span: Span | None
    context: Context
    data: dict[str, Any] = field(default_factory=dict)


class SpanMap:
    """Framework run ids -> spans, for frameworks that call back on other threads.

    Parentage comes from the framework's own parent ids, never from whatever
    span happens to be current on the calling thread.
    """

    def __init__(self) -> None:
        self._runs: dict[Any, Tracked] = {}
        self._lock = threading.Lock()

    def put(self, key: Any, tracked: Tracked) -> None:
        with self._lock:
            self._runs[key] = tracked

    def get(self, key: Any) -> Tracked | None:
        if key is None:
            return None
        with self._lock:
            return self._runs.get(key)

    def pop(self, key: Any) -> Tracked | None:
        with self._lock:
            return self._runs.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)


# --- forks discovered from framework events ----------------------------------


def span_id(span: Span) -> str:
    return format(span.get_span_context().span_id, "016x")


class ForkSpans:
    """A fork span and one branch span per parallel path, with their lineage.

    For parallel work a framework reveals through its own events (a LangGraph
    superstep, a Send fan-out); ``forktrace.fork`` is the API for users' own
    code, and this class records the same attributes and outcome events. As
    there, ids are span ids, branch paths extend the enclosing branch's path,
    and outside ``forktrace.run()`` the spans carry their kinds but no lineage.
    """

    def __init__(
        self,
        name: str,
        strategy: semconv.ForkStrategy,
        parent: Context,
        *,
        start_time: int | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self.span = start_span(
            f"fork {name}",
            semconv.Kind.FORK,
            attributes={semconv.FORK_STRATEGY: strategy.value, semconv.FORK_NAME: name}
            | dict(attributes or {}),
            context=parent,
            start_time=start_time,
        )
        self.id = span_id(self.span)
        outer = current_lineage(parent)
        self._lineage = outer.in_fork(self.id) if outer is not None else None
        if self._lineage is not None:
            self.span.set_attribute(semconv.FORK_ID, self.id)
        self.context = child_context(self.span, parent, self._lineage)
        self._branches: list[tuple[str, int, str]] = []
        self._outcomes: dict[str, tuple[semconv.BranchOutcome, str | None]] = {}
        self._lock = threading.Lock()

    def branch(self, label: str, *, start_time: int | None = None) -> tuple[Span, Context]:
        """Open the next branch; returns its span and the context its work runs in."""
        with self._lock:
            index = len(self._branches)
            self._branches.append(("", index, label))
        attributes: dict[str, Any] = {semconv.BRANCH_INDEX: index}
        text.put_text(attributes, semconv.BRANCH_LABEL, label)
        outer = self._lineage
        if outer is not None:
            path = attributes[semconv.BRANCH_PATH] = outer.child_path(index)
        span = start_span(
            f"branch {label}",
            semconv.Kind.BRANCH,
            attributes=attributes,
            context=self.context,
            start_time=start_time,
        )
        branch_id = span_id(span)
        with self._lock:
            self._branches[index] = (branch_id, index, label)
        lineage = None
        if outer is not None:
            span.set_attribute(semconv.BRANCH_ID, branch_id)
            lineage = outer.in_branch(branch_id, path)
        return span, child_context(span, self.context, lineage)

    def end_branch(
        self,
        span: Span,
        outcome: semconv.BranchOutcome,
        reason: str | None = None,
        *,
        error: BaseException | None = None,
        end_time: int | None = None,
    ) -> None:
        attributes: dict[str, Any] = {semconv.BRANCH_OUTCOME: outcome.value}
        text.put_text(attributes, semconv.BRANCH_OUTCOME_REASON, reason)
        span.set_attributes(attributes)
        with self._lock:
            self._outcomes[span_id(span)] = (outcome, reason)
        end_span(span, error, end_time)

    def end(
        self, *, end_time: int | None = None, attributes: Mapping[str, Any] | None = None
    ) -> None:
        """End the fork with one outcome event per branch, as ``forktrace.fork`` does."""
        with self._lock:
            outcomes = dict(self._outcomes)
            branches = list(self._branches)
        self.span.set_attributes({semconv.FORK_BRANCH_COUNT: len(branches), **(attributes or {})})
        for branch_id, index, label in branches:
            outcome, reason = outcomes.get(branch_id, (semconv.BranchOutcome.ABANDONED, None))
            event: dict[str, Any] = {
                semconv.BRANCH_ID: branch_id,
                semconv.BRANCH_INDEX: index,
                semconv.BRANCH_LABEL: label,
                semconv.BRANCH_OUTCOME: outcome.value,
            }
            text.put_text(event, semconv.BRANCH_OUTCOME_REASON, reason)
            self.span.add_event(semconv.BRANCH_OUTCOME_EVENT, event)
        end_span(self.span, end_time=end_time)
