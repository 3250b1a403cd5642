"""Forks and branches: one point of work split into parallel branches, each with an outcome.

A fork's id is its span's SpanId and a branch's id is its span's SpanId. A
branch span is always the child of its fork span, whichever task or thread
opens it, and its path extends the enclosing branch's path with its index
("1.0.2"). When the fork ends it records one ``forktrace.branch.outcome`` event
per branch that ran, so outcomes known only late (the losers of a race) are
data too.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace

from forktrace import _guard, semconv
from forktrace.context import Lineage, current_lineage, with_lineage
from forktrace.scope import CANCELLATION, Scope, enum_value, span_id_hex, start_span
from forktrace.semconv import BranchOutcome, ForkStrategy, Kind
from forktrace.text import clip, put_text

T = TypeVar("T")
R = TypeVar("R")

_FORK = Kind.FORK.value
_BRANCH = Kind.BRANCH.value
_WON = BranchOutcome.WON.value
_LOST = BranchOutcome.LOST.value
_ABANDONED = BranchOutcome.ABANDONED.value
_COMPLETED = BranchOutcome.COMPLETED.value
_MAX_LABEL = 100


_FORK_KEY = otel_context.create_key("forktrace.fork")


def current_fork() -> Fork | None:
    """The innermost fork whose block (or one of whose branches) is running, or None."""
    return otel_context.get_value(_FORK_KEY)  # type: ignore[return-value]


def branch(label: str | None = None) -> Branch:
    """A new branch of the innermost open fork: ``with forktrace.branch("retry"):``.

    Handy where the fork object is out of reach (a helper called inside the
    fork); ``fork.branch(label)`` is the same when you hold the fork.
    """
    fork = current_fork()
    if fork is None:
        raise RuntimeError("forktrace.branch() was called outside any fork's with-block")
    return fork.branch(label)


class Fork(Scope):
    """One point of work split into branches: ``with forktrace.fork("approach") as f:``."""

    __slots__ = (
        "_attributes",
        "_branches",
        "_context",
        "_counter",
        "_criterion",
        "_lineage",
        "_lock",
        "_name",
        "_winner",
        "id",
    )

    def __init__(self, name: str, *, strategy: ForkStrategy | str = ForkStrategy.ALL) -> None:
        super().__init__()
        self._name = name
        self._attributes = {
            semconv.KIND: _FORK,
            semconv.FORK_NAME: clip(name),
            semconv.FORK_STRATEGY: enum_value(strategy, ForkStrategy, "fork strategy"),
        }
        self._reset()

    def _reset(self) -> None:
        self.id: str | None = None
        self._context: otel_context.Context | None = None
        self._lineage: Lineage | None = None
        self._branches: list[Branch] = []
        self._counter = itertools.count()  # guarded by _lock
        self._lock = threading.Lock()
        self._winner: Branch | None = None
        self._criterion: str | None = None

    def _fresh(self) -> Fork:
        fresh = super()._fresh()
        fresh._reset()
        return fresh

    # -- branches -----------------------------------------------------------

    def branch(self, label: str | None = None) -> Branch:
        """A new branch of this fork; open it with ``with``/``async with`` (in any task or thread)."""
        with self._lock:
            branch = Branch(self, next(self._counter), label)
            self._branches.append(branch)
        return branch

    def choose(self, winner: Branch | int | str, *, criterion: str | None = None) -> Branch:
        """Record the winning branch (the object, its index or its label).

        Branches whose outcome was not set otherwise are recorded as lost.
        """
        branch = self._find(winner)
        if self._span is not None and not self._span.is_recording():
            _guard.logger.warning(
                "forktrace: fork %r chose a winner after it ended; call choose() inside "
                "the fork's with-block so the outcomes are recorded",
                self._name,
            )
        previous, self._winner = self._winner, branch
        if previous is not None and previous is not branch and previous._outcome == _WON:
            previous._outcome = None  # chosen again: the earlier pick is no longer the winner
        branch._outcome = _WON
        if criterion is not None:
            self._criterion = criterion
        return branch

    def map(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        labels: Sequence[str] | Callable[[T], str] | None = None,
        max_workers: int | None = None,
        return_exceptions: bool = False,
    ) -> Any:
        """Run ``fn(item)`` for every item, each in a branch of its own; return the results in order.

        A plain function runs in a thread pool (each call in a copy of the
        caller's context, so lineage holds); an ``async def`` function runs as
        asyncio tasks and ``map`` returns an awaitable. Every item runs to the
        end; then the first exception is raised, or with ``return_exceptions``
        exceptions are returned in place of results.
        """
        items = list(items)
        branches = [self.branch(self._label(fn, i, item, labels)) for i, item in enumerate(items)]
        if inspect.iscoroutinefunction(fn):
            return _map_tasks(fn, items, branches, return_exceptions)
        return _map_threads(fn, items, branches, max_workers, return_exceptions)

    def carrier(self, label: str | None = None) -> dict[str, str]:
        """Headers that let another process run one of this fork's branches.

        Pass them to ``forktrace.branch_from(carrier)`` in that process; they
        hold W3C trace context and, as baggage, the lineage and this branch's
        index.
        """
        from forktrace.propagation import fork_carrier

        return fork_carrier(self, self.branch(label))

    def _find(self, winner: Branch | int | str) -> Branch:
        with self._lock:
            branches = list(self._branches)
        for branch in branches:
            if (
                branch is winner
                or (isinstance(winner, int) and branch.index == winner)
                or (isinstance(winner, str) and branch.label == winner)
            ):
                return branch
        raise ValueError(f"fork {self._name!r} has no branch {winner!r}")

    @staticmethod
    def _label(
        fn: Callable[..., Any],
        index: int,
        item: Any,
        labels: Sequence[str] | Callable[[Any], str] | None,
    ) -> str:
        if callable(labels):
            return labels(item)
        if labels is not None:
            return labels[index]
        if isinstance(item, str | int | float):
            return str(item)[:_MAX_LABEL]
        return f"{getattr(fn, '__name__', 'branch')}[{index}]"

    # -- span ---------------------------------------------------------------

    def _open(self) -> otel_context.Context:
        parent = otel_context.get_current()
        outer = current_lineage(parent)
        span = self._span = start_span(f"fork {self._name}", parent, self._attributes, outer)
        # The fork's id is its SpanId, known only now.
        fork_id = self.id = span_id_hex(span)
        context = trace.set_span_in_context(span, parent)
        if outer is not None:
            span.set_attribute(semconv.FORK_ID, fork_id)
            self._lineage = outer.in_fork(fork_id)
            context = with_lineage(self._lineage, context)
        self._context = context
        # Only the code inside the fork's block sees it as the current fork.
        return otel_context.set_value(_FORK_KEY, self, context)

    def _close(self, error: BaseException | None) -> None:
        span = self._span
        assert span is not None
        with self._lock:
            ran = [branch for branch in self._branches if branch.id is not None]
        winner = self._winner
        attributes: dict[str, Any] = {semconv.FORK_BRANCH_COUNT: len(ran)}
        if winner is not None and winner.id is not None:
            attributes[semconv.FORK_WINNER] = winner.id
        put_text(attributes, semconv.FORK_CRITERION, self._criterion)
        span.set_attributes(attributes)
        for branch in ran:
            event = {
                semconv.BRANCH_ID: branch.id,
                semconv.BRANCH_INDEX: branch.index,
                semconv.BRANCH_LABEL: branch.label,
                semconv.BRANCH_OUTCOME: _final_outcome(branch, winner),
            }
            put_text(event, semconv.BRANCH_OUTCOME_REASON, branch._reason)
            span.add_event(semconv.BRANCH_OUTCOME_EVENT, event)


def _final_outcome(branch: Branch, winner: Branch | None) -> str:
    if branch._outcome is not None:
        return branch._outcome
    if winner is not None:
        return _LOST
    return _COMPLETED if branch._ended else _ABANDONED


class Branch(Scope):
    """One of a fork's branches; its span is a child of the fork span."""

    __slots__ = ("_ended", "_fork", "_outcome", "_reason", "id", "index", "label")

    def __init__(self, fork: Fork | Any, index: int, label: str | None) -> None:
        super().__init__()
        self._fork = fork
        self.index = index
        self.label = clip(label) if label is not None else str(index)
        self.id: str | None = None
        self._outcome: str | None = None
        self._reason: str | None = None
        self._ended = False

    def outcome(self, outcome: BranchOutcome | str, *, reason: str | None = None) -> Branch:
        """Set this branch's outcome (won, lost, abandoned, failed, merged, cancelled, completed)."""
        self._outcome = enum_value(outcome, BranchOutcome, "branch outcome")
        if reason is not None:
            self._reason = reason
        return self

    def _fresh(self) -> Branch:
        # Each call of a decorated branch is a new branch of the same fork.
        return self._fork.branch(self.label)

    def _open(self) -> otel_context.Context:
        fork = self._fork
        if fork._context is None:
            raise RuntimeError("a branch was opened outside its fork's with-block")
        outer = fork._lineage
        attributes = {
            semconv.KIND: _BRANCH,
            semconv.BRANCH_INDEX: self.index,
            semconv.BRANCH_LABEL: self.label,
        }
        if outer is not None:
            path = attributes[semconv.BRANCH_PATH] = outer.child_path(self.index)
        span = self._span = start_span(
            f"branch {self.label}",
            fork._context,
            attributes,
            outer,
            links=getattr(fork, "links", None),
        )
        # The branch's id is its SpanId, known only now.
        branch_id = self.id = span_id_hex(span)
        # The current context, not the fork's: keep what the task or thread set since.
        context = trace.set_span_in_context(span)
        if outer is None:
            return context
        span.set_attribute(semconv.BRANCH_ID, branch_id)
        return with_lineage(outer.in_branch(branch_id, path), context)

    def _close(self, error: BaseException | None) -> None:
        self._ended = True
        if error is not None:
            failed = not isinstance(error, CANCELLATION)
            self._outcome = BranchOutcome.FAILED.value if failed else BranchOutcome.CANCELLED.value
            if self._reason is None:
                self._reason = (
                    f"{type(error).__name__}: {error}" if failed else type(error).__name__
                )
        if self._outcome is not None:
            attributes: dict[str, Any] = {semconv.BRANCH_OUTCOME: self._outcome}
            put_text(attributes, semconv.BRANCH_OUTCOME_REASON, self._reason)
            self._span.set_attributes(attributes)  # type: ignore[union-attr]


def _gathered(outcomes: list[Any], errors: list[BaseException | None], keep: bool) -> list[Any]:
    if not keep:
        for error in errors:
            if error is not None:
                raise error
    return outcomes


def _map_threads(
    fn: Callable[[T], R],
    items: list[T],
    branches: list[Branch],
    max_workers: int | None,
    return_exceptions: bool,
) -> list[Any]:
    if not items:
        return []

    def run_one(branch: Branch, item: T) -> R:
        with branch:
            return fn(item)

    with ThreadPoolExecutor(
        max_workers=max_workers or min(32, len(items)), thread_name_prefix="forktrace-branch"
    ) as pool:
        # Threads do not inherit contextvars: each branch runs in a copy of ours.
        futures = [
            pool.submit(contextvars.copy_context().run, run_one, branch, item)
            for branch, item in zip(branches, items, strict=True)
        ]
        errors = [future.exception() for future in futures]
    outcomes = [
        error if error is not None else f.result() for f, error in zip(futures, errors, strict=True)
    ]
    return _gathered(outcomes, errors, return_exceptions)


async def _map_tasks(
    fn: Callable[[T], Any],
    items: list[T],
    branches: list[Branch],
    return_exceptions: bool,
) -> list[Any]:
    async def run_one(branch: Branch, item: T) -> Any:
        async with branch:
            return await fn(item)  # type: ignore[misc]

    outcomes = await asyncio.gather(
        *(run_one(branch, item) for branch, item in zip(branches, items, strict=True)),
        return_exceptions=True,
    )
    errors = [o if isinstance(o, BaseException) else None for o in outcomes]
    return _gathered(list(outcomes), errors, return_exceptions)
