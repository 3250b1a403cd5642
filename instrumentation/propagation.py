"""Branches in another process: a fork hands out a carrier, the other process opens the branch.

In the forking process::

    with forktrace.fork("solve") as f:
        headers = f.carrier("remote-approach")   # send with the job

In the worker process::

    with forktrace.branch_from(headers) as b:
        ...                                         # spans here carry the fork's lineage

The carrier is W3C trace context (``traceparent``) plus baggage holding the
lineage and the branch's index. The remote branch span is a child of the fork
span and also links to it, so the relation survives when ``new_trace=True``
starts a trace of its own. Its outcome is on the branch span itself; the fork
process cannot know it, so the fork's outcome events cover local branches only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from forktrace import semconv
from forktrace.context import Lineage

if TYPE_CHECKING:
    from forktrace.fork import Branch, Fork

_propagator = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
_LINEAGE_BAGGAGE = (
    semconv.SESSION_ID,
    semconv.RUN_ID,
    semconv.AGENT_NAME,
    semconv.FORK_ID,
    semconv.BRANCH_PATH,  # the path of the branch the fork is in
)


def fork_carrier(fork: Fork, branch: Branch) -> dict[str, str]:
    if fork._context is None or fork.id is None:
        raise RuntimeError("fork.carrier() must be called inside the fork's with-block")
    context = fork._context
    lineage = fork._lineage
    if lineage is not None:
        for key in _LINEAGE_BAGGAGE:
            value = lineage.stamp.get(key)
            if value is not None:
                context = baggage.set_baggage(key, value, context)
    else:
        context = baggage.set_baggage(semconv.FORK_ID, fork.id, context)
    context = baggage.set_baggage(semconv.BRANCH_INDEX, str(branch.index), context)
    context = baggage.set_baggage(semconv.BRANCH_LABEL, branch.label, context)
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=context)
    return carrier


class _RemoteFork:
    """Stands in for a fork that lives in another process."""

    def __init__(self, carrier: Mapping[str, str], new_trace: bool) -> None:
        extracted = _propagator.extract(carrier)
        values: Mapping[str, Any] = baggage.get_all(extracted)
        fork_span = trace.get_current_span(extracted).get_span_context()
        if not fork_span.is_valid or semconv.FORK_ID not in values:
            raise ValueError("not a forktrace fork carrier (no traceparent or fork id)")
        self.id: str = str(values[semconv.FORK_ID])
        self.index = int(values.get(semconv.BRANCH_INDEX, 0))
        self.label: str | None = values.get(semconv.BRANCH_LABEL)
        self.links = [Link(fork_span, {semconv.KIND: "fork"})]
        # The remote branch does not leak the carrier's baggage into its own outgoing calls.
        parent = (
            otel_context.Context()
            if new_trace
            else trace.set_span_in_context(
                trace.NonRecordingSpan(fork_span), otel_context.Context()
            )
        )
        self._context = parent
        self._lineage: Lineage | None = None
        if semconv.RUN_ID in values:
            self._lineage = Lineage(
                session_id=str(values.get(semconv.SESSION_ID, "")),
                run_id=str(values[semconv.RUN_ID]),
                agent_name=values.get(semconv.AGENT_NAME),
                fork_id=self.id,
                branch_path=str(values.get(semconv.BRANCH_PATH, "")),
            )

    def branch(self, label: str | None) -> Branch:
        from forktrace.fork import Branch

        return Branch(self, self.index, label)


def branch_from(
    carrier: Mapping[str, str], label: str | None = None, *, new_trace: bool = False
) -> Branch:
    """Open, in this process, the branch that ``fork.carrier()`` handed out in another one."""
    from forktrace.fork import Branch

    remote = _RemoteFork(carrier, new_trace)
    return Branch(remote, remote.index, label if label is not None else remote.label)
