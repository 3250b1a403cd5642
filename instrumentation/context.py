"""Lineage (session, run, agent, fork, branch) carried in OpenTelemetry context.

The current lineage is one immutable :class:`Lineage` stored under one context
key. Each lineage precomputes its ``stamp``, the attribute dict that
:class:`LineageSpanProcessor` copies onto every span started under it, so
stamping a span costs one ``set_attributes`` call and no per-span work.

OpenTelemetry context lives in contextvars, so lineage follows asyncio tasks
(``gather``, ``TaskGroup``) by itself. Threads do not inherit contextvars:
``fork.map`` copies the context into its pool; for your own pools wrap the
function with :func:`wrap`.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from forktrace import _guard, semconv

P = ParamSpec("P")
R = TypeVar("R")

LINEAGE_KEY = otel_context.create_key("forktrace.lineage")
# forktrace's own spans come from a tracer of this name and stamp their lineage
# together with their other attributes, in the one call that starts them.
INSTRUMENTATION_SCOPE = "forktrace"


@dataclasses.dataclass(frozen=True)
class Lineage:
    """Where in the work a span runs: its session, run, agent, fork and branch."""

    session_id: str
    run_id: str
    agent_name: str | None = None
    fork_id: str | None = None
    branch_id: str | None = None
    branch_path: str = ""
    # The attributes stamped on every span under this lineage; precomputed, read-only.
    stamp: dict[str, str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        stamp = {
            semconv.SESSION_ID: self.session_id,
            semconv.RUN_ID: self.run_id,
            semconv.BRANCH_PATH: self.branch_path,
        }
        if self.agent_name is not None:
            stamp[semconv.AGENT_NAME] = self.agent_name
        if self.fork_id is not None:
            stamp[semconv.FORK_ID] = self.fork_id
        if self.branch_id is not None:
            stamp[semconv.BRANCH_ID] = self.branch_id
        object.__setattr__(self, "stamp", stamp)

    # Constructors for the lineage one level down; spelled out rather than
    # dataclasses.replace, which costs microseconds on the span hot path.
    def in_agent(self, name: str) -> Lineage:
        return Lineage(
            self.session_id, self.run_id, name, self.fork_id, self.branch_id, self.branch_path
        )

    def in_fork(self, fork_id: str) -> Lineage:
        return Lineage(
            self.session_id, self.run_id, self.agent_name, fork_id, self.branch_id, self.branch_path
        )

    def in_branch(self, branch_id: str, branch_path: str) -> Lineage:
        return Lineage(
            self.session_id, self.run_id, self.agent_name, self.fork_id, branch_id, branch_path
        )

    def child_path(self, index: int) -> str:
        """The branch path of this lineage's branch number ``index``."""
        return f"{self.branch_path}.{index}" if self.branch_path else str(index)


def current_lineage(context: otel_context.Context | None = None) -> Lineage | None:
    """The lineage in ``context`` (default: the current context), or None outside any run."""
    return otel_context.get_value(LINEAGE_KEY, context)  # type: ignore[return-value]


def with_lineage(lineage: Lineage, context: otel_context.Context) -> otel_context.Context:
    return otel_context.set_value(LINEAGE_KEY, lineage, context)


class LineageSpanProcessor(SpanProcessor):
    """Stamps the current lineage on every span started inside a run.

    That includes plain OpenTelemetry spans and other instrumentations' spans.
    ``forktrace.init()`` adds it; add it yourself when you build the tracer
    provider and do not call ``init()``::

        provider.add_span_processor(forktrace.LineageSpanProcessor())
    """

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        # The SDK does not guard processors: anything raised here would reach
        # the code that started the span.
        try:
            lineage = otel_context.get_value(LINEAGE_KEY, parent_context)
            if lineage is None:
                return
            scope = span.instrumentation_scope
            if scope is None or scope.name != INSTRUMENTATION_SCOPE:
                span.set_attributes(lineage.stamp)  # type: ignore[attr-defined]
        except Exception as exc:
            _guard.report("LineageSpanProcessor.on_start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` bound to the caller's current context, for running in another thread.

    Threads do not inherit contextvars, so work submitted to a thread pool loses
    the run, fork and branch it belongs to. Wrap it where you submit it::

        pool.submit(forktrace.wrap(work), item)

    Each call runs in its own copy of the captured context, so the wrapped
    function may run in many threads at once.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def in_captured_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return in_captured_context
