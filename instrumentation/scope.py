"""The shared machinery of forktrace's spans: one class that is a context manager
(``with`` and ``async with``) and a decorator (sync and async functions).

A subclass says how to open its span (:meth:`Scope._open`, returning the
context to make current) and what to record when it closes
(:meth:`Scope._close`). The base class handles errors, cancellation, context
attach/detach and forktrace's rule that its own failures are logged once and
swallowed while the user's exceptions pass through untouched.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import functools
import inspect
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode

from forktrace import _guard, semconv, setup
from forktrace.context import Lineage
from forktrace.text import put_content

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound="Scope")

# Exceptions that mean "stopped", not "went wrong": recorded as cancelled, not as errors.
CANCELLATION = (
    asyncio.CancelledError,
    concurrent.futures.CancelledError,
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
)


def enum_value(value: Any, allowed: type[Enum], what: str) -> str:
    """The string value of ``value`` (an enum member or its value); ValueError if not allowed."""
    raw = value.value if isinstance(value, Enum) else value
    if raw not in allowed._value2member_map_:
        choices = ", ".join(member.value for member in allowed)
        raise ValueError(f"{what} must be one of {choices}; got {value!r}")
    return raw


def with_content(
    attributes: dict[str, Any], content: tuple[tuple[str, Any], ...]
) -> dict[str, Any]:
    """``attributes`` plus ``content`` as the capture policy allows *now*.

    Content given to a constructor is applied when the span opens, not when
    the scope is made: a decorator built at import time must not capture a
    run's goal before ``init(capture_content=False)`` ran.
    """
    if not content:
        return attributes
    merged = dict(attributes)
    for key, value in content:
        put_content(merged, key, value)
    return merged


def start_span(
    name: str,
    parent: otel_context.Context,
    attributes: dict[str, Any],
    lineage: Lineage | None,
    links: Any = None,
) -> Span:
    """Start one of forktrace's spans with its lineage stamped in the same call.

    The LineageSpanProcessor skips forktrace's own spans: stamping here lets a
    span state its own lineage (a run its new run id, an agent its name) and
    cleans all attributes in one pass instead of two.
    """
    if lineage is not None:
        attributes = {**lineage.stamp, **attributes}
    return setup.tracer.start_span(name, context=parent, attributes=attributes, links=links)


def span_id_hex(span: Span) -> str:
    return format(span.get_span_context().span_id, "016x")


class Scope:
    """A forktrace span: use it with ``with``/``async with`` or as a decorator."""

    __slots__ = ("_span", "_token")

    def __init__(self) -> None:
        self._span: Span | None = None
        self._token: object | None = None

    @property
    def span(self) -> Span | None:
        """The OpenTelemetry span while the scope is open (None before)."""
        return self._span

    # -- what subclasses provide --------------------------------------------

    def _open(self) -> otel_context.Context:
        """Start the span, store it in ``self._span``, return the context to make current."""
        raise NotImplementedError

    def _close(self, error: BaseException | None) -> None:
        """Record what is known at the end, before the span ends."""

    def _returned(self, value: Any) -> None:
        """A decorated function returned ``value`` (a tool records it as its result)."""

    def _fresh(self: S) -> S:
        """An unopened copy for one call of a decorated function."""
        fresh = copy.copy(self)
        fresh._span = None
        fresh._token = None
        return fresh

    # -- context manager ----------------------------------------------------

    def __enter__(self: S) -> S:
        try:
            self._token = otel_context.attach(self._open())
        except Exception as exc:
            _guard.report(f"opening {type(self).__name__}", exc)
        return self

    def __exit__(self, exc_type: Any, error: BaseException | None, tb: Any) -> None:
        span = self._span
        try:
            if span is not None:
                if error is not None and not isinstance(error, CANCELLATION):
                    record_error(span, error)
                self._close(error)
                span.end()
        except Exception as exc:
            _guard.report(f"closing {type(self).__name__}", exc)
        finally:
            token, self._token = self._token, None
            if token is not None:
                otel_context.detach(token)  # type: ignore[arg-type]

    async def __aenter__(self: S) -> S:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, error: BaseException | None, tb: Any) -> None:
        self.__exit__(exc_type, error, tb)

    # -- decorator ----------------------------------------------------------

    def __call__(self, fn: F) -> F:
        """Open a fresh copy of this scope around every call of ``fn``."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh() as scope:
                    value = await fn(*args, **kwargs)
                    scope._returned(value)
                    return value

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh() as scope:
                value = fn(*args, **kwargs)
                scope._returned(value)
                return value

        return wrapper  # type: ignore[return-value]


def record_error(span: Span, error: BaseException) -> None:
    """Mark ``span`` failed by ``error`` the way OpenTelemetry's instrumentations do."""
    span.record_exception(error, escaped=True)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.set_attribute(semconv.ERROR_TYPE, type(error).__qualname__)
