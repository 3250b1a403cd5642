"""Wrapping provider SDK methods that have no hooks of their own (wrapt).

- :func:`llm_wrappers`: one provider method -> llm spans, given an
  :class:`LlmCallSpec` that says how to read its request and response.
- :class:`TracedStream` / :class:`TracedAsyncStream`: a streamed response that
  ends its span when the stream is exhausted, closed, dropped or fails.
- :class:`MethodPatches`: the methods wrapped, restored exactly on uninstrument.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import wrapt
from opentelemetry.trace import Span

from forktrace import semconv
from forktrace.integrations._shared import (
    FrameworkModelCall,
    LlmResult,
    end_span,
    hand_over,
    record_input_messages,
    record_llm_result,
    recording_model_call,
    report,
    start_span,
)

# --- streamed model responses ---------------------------------------------


class StreamAccumulator:
    """Folds a provider's stream events into an :class:`LlmResult`."""

    def __init__(self) -> None:
        self.result = LlmResult()

    def add(self, event: Any) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class _StreamSpan:
    """Ends a streamed call's span exactly once, whatever way the stream stops."""

    __slots__ = ("_accumulator", "_ended", "_lock", "_span", "_where")

    def __init__(self, span: Span, accumulator: StreamAccumulator, where: str) -> None:
        self._span = span
        self._accumulator = accumulator
        self._where = where
        self._ended = False
        self._lock = threading.Lock()

    def add(self, event: Any) -> None:
        try:
            self._accumulator.add(event)
        except Exception as exc:
            report(self._where, exc)

    def end(self, error: BaseException | None = None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
        try:
            record_llm_result(self._span, self._accumulator.result)
        except Exception as exc:
            report(self._where, exc)
        end_span(self._span, error)


class TracedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """A synchronous stream that records each event and ends the span when it stops."""

    def __init__(self, wrapped: Any, span: Span, accumulator: StreamAccumulator, where: str):
        super().__init__(wrapped)
        self._self_traced = _StreamSpan(span, accumulator, where)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            event = self.__wrapped__.__next__()
        except StopIteration:
            self._self_traced.end()
            raise
        except BaseException as exc:
            self._self_traced.end(exc if isinstance(exc, Exception) else None)
            raise
        self._self_traced.add(event)
        return event

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_traced.end(exc)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_traced.end()

    def __del__(self) -> None:
        # A stream dropped half-read still ends its span, with what it saw.
        self._self_traced.end()


class TracedAsyncStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """An asynchronous stream that records each event and ends the span when it stops."""

    def __init__(self, wrapped: Any, span: Span, accumulator: StreamAccumulator, where: str):
        super().__init__(wrapped)
        self._self_traced = _StreamSpan(span, accumulator, where)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_traced.end()
            raise
        except BaseException as exc:
            self._self_traced.end(exc if isinstance(exc, Exception) else None)
            raise
        self._self_traced.add(event)
        return event

    async def __aenter__(self) -> TracedAsyncStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_traced.end(exc)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_traced.end()

    def __del__(self) -> None:
        self._self_traced.end()


@dataclass(frozen=True)
class LlmCallSpec:
    """How one provider method maps onto an llm span; the wrapping is shared."""

    where: str
    provider: str
    request: Callable[[Mapping[str, Any]], tuple[str, dict[str, Any], list[dict[str, Any]] | None]]
    result: Callable[[Any], LlmResult]
    accumulator: Callable[[], StreamAccumulator]
    is_stream: Callable[[Any, Mapping[str, Any]], bool]


def _start_llm_span(spec: LlmCallSpec, kwargs: Mapping[str, Any]) -> Span | None:
    try:
        name, attributes, messages = spec.request(kwargs)
        span = start_span(
            name, semconv.Kind.LLM, operation=semconv.Operation.CHAT, attributes=attributes
        )
        record_input_messages(span, messages)
        return span
    except Exception as exc:
        report(spec.where, exc)
        return None


def _finish_llm_span(
    spec: LlmCallSpec, span: Span, response: Any, kwargs: Mapping[str, Any]
) -> Any:
    try:
        if spec.is_stream(response, kwargs):
            stream_class = TracedAsyncStream if hasattr(response, "__anext__") else TracedStream
            return stream_class(response, span, spec.accumulator(), spec.where)
        record_llm_result(span, spec.result(response))
    except Exception as exc:
        report(spec.where, exc)
    end_span(span)
    return response


def _hand_over(
    spec: LlmCallSpec, owner: FrameworkModelCall | Span, response: Any, kwargs: Mapping[str, Any]
) -> None:
    """A framework records this call: give it what the provider answered, record no span.

    Streams are passed through untouched (reading them here would mean wrapping
    the framework's stream for a few fields it mostly has).
    """
    try:
        if not spec.is_stream(response, kwargs):
            hand_over(owner, spec.result(response))
    except Exception as exc:
        report(spec.where, exc)


def _owner() -> FrameworkModelCall | Span | None:
    try:
        return recording_model_call()
    except Exception as exc:
        report("recording_model_call", exc)
        return None


def llm_wrappers(spec: LlmCallSpec) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """wrapt wrappers (sync, async) that record a provider method's calls as llm spans.

    A call made while a framework records it (see ``recording_model_call``) gets
    no span of its own: the framework's llm span is the one, so tokens count once.
    """

    def sync_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        owner = _owner()
        if owner is not None:
            response = wrapped(*args, **kwargs)
            _hand_over(spec, owner, response, kwargs)
            return response
        span = _start_llm_span(spec, kwargs)
        if span is None:
            return wrapped(*args, **kwargs)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            end_span(span, exc)
            raise
        return _finish_llm_span(spec, span, response, kwargs)

    async def async_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        owner = _owner()
        if owner is not None:
            response = await wrapped(*args, **kwargs)
            _hand_over(spec, owner, response, kwargs)
            return response
        span = _start_llm_span(spec, kwargs)
        if span is None:
            return await wrapped(*args, **kwargs)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            end_span(span, exc)
            raise
        return _finish_llm_span(spec, span, response, kwargs)

    return sync_wrapper, async_wrapper


class MethodPatches:
    """Wrapped methods of a framework's classes, restored exactly on uninstrument."""

    def __init__(self) -> None:
        self._patched: list[tuple[Any, str, Any, Any]] = []

    def wrap(self, owner: Any, attribute: str, wrapper: Callable[..., Any]) -> None:
        original = owner.__dict__[attribute]
        wrapt.wrap_function_wrapper(owner, attribute, wrapper)
        self._patched.append((owner, attribute, original, owner.__dict__[attribute]))

    def restore(self) -> None:
        while self._patched:
            owner, attribute, original, installed = self._patched.pop()
            # Leave a method alone that someone else re-wrapped since.
            if owner.__dict__.get(attribute) is installed:
                setattr(owner, attribute, original)
