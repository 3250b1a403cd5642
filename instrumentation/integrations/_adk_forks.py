"""Google ADK's parallel work as forks: ``ParallelAgent`` runs and ``Workflow`` fan-outs.

ADK has no hook where parallel work starts, so both are wrapped:

- ``parallel_agent._merge_agent_run`` merges a ``ParallelAgent``'s sub-agent
  runs (one asyncio task each): a fork (strategy ``all``) with one branch per
  sub-agent, each run driven with its branch's context attached only while it
  runs (as ADK's own ``stream_in_scope`` does), so its spans carry the
  branch's lineage.
- A ``Workflow`` fans out when a node (or ``START``) triggers several nodes at
  once (ADK marks those triggers ``use_sub_branch``); each runs as an asyncio
  task. ``_seed_start_triggers`` and ``_buffer_downstream_triggers`` are
  wrapped to see the fan-out, ``_start_node_task`` to open a branch when each
  of its nodes starts, and ``node_tracing.start_as_current_node_span`` to
  start that node's span in its branch (ADK passes the parent context by
  value, on the workflow's ``Context``: the node gets a shallow copy carrying
  the branch's context) and end the branch with the node. The fork ends with
  its last branch, or when the workflow cleans up after an error (nodes that
  never started have no branch; one cancelled before it ran ends ``cancelled``).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from forktrace import semconv
from forktrace.context import current_lineage, with_lineage
from forktrace.integrations._shared import ForkSpans, iterate_in_context, report
from forktrace.integrations._wrapping import MethodPatches


def parent_agent(parent_context: Context | None) -> str | None:
    """``forktrace.agent.name`` of the span current in ``parent_context``, if it has one."""
    parent = trace.get_current_span(parent_context)
    attributes = getattr(parent, "attributes", None)
    if not attributes:
        return None
    agent = attributes.get(semconv.AGENT_NAME)
    return agent if isinstance(agent, str) and agent else None


def _open_fork(name: str, parent: Context, attributes: dict[str, Any] | None = None) -> ForkSpans:
    # The fork and its branches belong to the agent whose span they open in.
    agent = parent_agent(parent)
    lineage = current_lineage(parent)
    if agent is not None and lineage is not None:
        parent = with_lineage(lineage.in_agent(agent), parent)
    return ForkSpans(name, semconv.ForkStrategy.ALL, parent, attributes=attributes)


def _end_branch(
    fork: ForkSpans, span: Any, outcome: semconv.BranchOutcome, reason: str | None, error: Any
) -> None:
    try:
        fork.end_branch(span, outcome, reason, error=error)
    except Exception as exc:
        report("google_adk.end_branch", exc)


def _end_fork(fork: ForkSpans) -> None:
    try:
        fork.end()
    except Exception as exc:
        report("google_adk.end_fork", exc)


def _failure(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# --- ParallelAgent -------------------------------------------------------------------


def _label(run: Any, index: int) -> str:
    # A sub-agent's run is its run_async generator, not yet started: its
    # frame holds the agent.
    frame = getattr(run, "ag_frame", None)
    agent = frame.f_locals.get("self") if frame is not None else None
    name = getattr(agent, "name", None)
    return str(name) if name else f"sub_agent[{index}]"


async def _in_branch(fork: ForkSpans, run: AsyncGenerator[Any, None], label: str) -> Any:
    """Drive one sub-agent's run in its branch's context, attached only while it runs."""
    span, context = fork.branch(label)
    outcome, reason, error = semconv.BranchOutcome.CANCELLED, "cancelled", None
    steps = iterate_in_context(run, context)
    try:
        async for event in steps:
            if getattr(getattr(event, "actions", None), "escalate", False):
                # The ParallelAgent stops every branch on this event, this one too.
                outcome, reason = semconv.BranchOutcome.COMPLETED, "escalated"
            yield event
        outcome, reason = semconv.BranchOutcome.COMPLETED, None
    except Exception as exc:
        outcome, reason, error = semconv.BranchOutcome.FAILED, _failure(exc), exc
        raise
    finally:
        try:
            await steps.aclose()  # closes the sub-agent's run too
        finally:
            _end_branch(fork, span, outcome, reason, error)


async def _forked_merge(
    merge: Callable[..., AsyncGenerator[Any, None]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    runs = list(args[0] if args else kwargs.pop("agent_runs"))
    fork: ForkSpans | None = None
    try:
        labels = [_label(run, index) for index, run in enumerate(runs)]
        parent = otel_context.get_current()  # the ParallelAgent's span
        fork = _open_fork(parent_agent(parent) or "parallel", parent)
        runs = [_in_branch(fork, run, label) for run, label in zip(runs, labels, strict=True)]
    except Exception as exc:
        report("google_adk.fork", exc)
    merged = merge(runs, *args[1:], **kwargs)
    try:
        async for event in merged:
            yield event
    finally:
        try:
            await merged.aclose()
        finally:
            if fork is not None:
                _end_fork(fork)


def _merge_wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return _forked_merge(wrapped, tuple(args), dict(kwargs))


# --- Workflow fan-outs ---------------------------------------------------------------


class _FanOut:
    """One fan-out: the nodes it triggers, and its fork once the first of them starts."""

    def __init__(self, source: str, targets: list[str]) -> None:
        self.source = source
        self.unstarted = list(targets)
        self.running = 0
        self.fork: ForkSpans | None = None
        self.ended = False


class _Workflows:
    """Fan-outs in flight, per workflow run (its loop state) and per started node."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # id(loop state) -> fan-outs whose nodes have not all started or ended
        self._fanouts: dict[int, list[_FanOut]] = {}
        # (id(workflow Context), node name) -> the branch its next start runs in
        self._starting: dict[tuple[int, str], tuple[_FanOut, Any, Context]] = {}

    def _triggered(self, loop_state: Any, before: dict[str, int], source: str) -> None:
        """Record a fan-out: the nodes that just got a sub-branch trigger, if several."""
        targets = [
            name
            for name, triggers in loop_state.trigger_buffer.items()
            if len(triggers) > before.get(name, 0) and triggers[-1].use_sub_branch
        ]
        if len(targets) > 1:
            with self._lock:
                self._fanouts.setdefault(id(loop_state), []).append(_FanOut(source, targets))

    def buffered(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """``_buffer_downstream_triggers(loop_state, node_name, ...)`` / ``_seed_start_triggers``."""
        loop_state = args[0] if args else kwargs.get("loop_state")
        try:
            before = {name: len(t) for name, t in loop_state.trigger_buffer.items()}
        except Exception as exc:
            report("google_adk.fan_out", exc)
            return wrapped(*args, **kwargs)
        result = wrapped(*args, **kwargs)
        try:
            source = args[1] if wrapped.__name__ == "_buffer_downstream_triggers" else "START"
            self._triggered(loop_state, before, str(kwargs.get("node_name", source)))
        except Exception as exc:
            report("google_adk.fan_out", exc)
        return result

    def starting(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """``_start_node_task(loop_state, ctx, node_name, trigger)``: open the node's branch."""
        try:
            self._open_branch(instance, *args[:4])
        except Exception as exc:
            report("google_adk.branch", exc)
        return wrapped(*args, **kwargs)

    def _open_branch(
        self, workflow: Any, loop_state: Any, ctx: Any, name: str, trigger: Any
    ) -> None:
        if not trigger.use_sub_branch:
            return
        with self._lock:
            fanout = next(
                (f for f in self._fanouts.get(id(loop_state), ()) if name in f.unstarted), None
            )
            if fanout is None:
                return
            fanout.unstarted.remove(name)
            fanout.running += 1
        if fanout.fork is None:
            fanout.fork = _open_fork(
                fanout.source,
                ctx.telemetry_context.otel_context,
                {"adk.workflow.name": str(getattr(workflow, "name", ""))},
            )
        span, context = fanout.fork.branch(name)
        with self._lock:
            self._starting[(id(ctx), name)] = (fanout, span, context)

    def node_span(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """``start_as_current_node_span(context, node, node_context)``: in the node's branch."""
        try:
            context, node = args[0], args[1]
            with self._lock:
                started = self._starting.pop((id(context), node.name), None)
        except Exception as exc:
            report("google_adk.node_span", exc)
            started = None
        if started is None:
            return wrapped(*args, **kwargs)
        return self._in_branch(wrapped, args, kwargs, *started)

    @contextlib.asynccontextmanager
    async def _in_branch(
        self,
        wrapped: Any,
        args: Any,
        kwargs: Any,
        fanout: _FanOut,
        span: Any,
        branch_context: Context,
    ) -> AsyncIterator[Any]:
        node_args = list(args)
        try:
            parent = copy.copy(args[0])  # the workflow's Context, shared by its nodes
            parent._telemetry_context = dataclasses.replace(
                parent.telemetry_context, otel_context=branch_context
            )
            node_args[0] = parent
        except Exception as exc:
            report("google_adk.node_span", exc)
        outcome, reason, error = semconv.BranchOutcome.CANCELLED, "cancelled", None
        node_context = node_args[2] if len(node_args) > 2 else kwargs.get("node_context")
        try:
            async with wrapped(*node_args, **kwargs) as telemetry_context:
                yield telemetry_context
            # A workflow node reports a failure on its Context rather than raising.
            failed = getattr(node_context, "error", None)
            if failed is not None:
                outcome, reason, error = semconv.BranchOutcome.FAILED, _failure(failed), failed
            else:
                outcome, reason = semconv.BranchOutcome.COMPLETED, None
        except Exception as exc:
            outcome, reason, error = semconv.BranchOutcome.FAILED, _failure(exc), exc
            raise
        finally:
            assert fanout.fork is not None
            _end_branch(fanout.fork, span, outcome, reason, error)
            self._branch_ended(fanout)

    def _branch_ended(self, fanout: _FanOut) -> None:
        with self._lock:
            fanout.running -= 1
            done = not fanout.unstarted and fanout.running == 0 and not fanout.ended
            if done:
                fanout.ended = True
                for fanouts in self._fanouts.values():
                    if fanout in fanouts:
                        fanouts.remove(fanout)
        if done and fanout.fork is not None:
            _end_fork(fanout.fork)

    async def cleaned_up(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """``_cleanup_all_tasks(loop_state)``: end the forks of a workflow run that stops."""
        try:
            return await wrapped(*args, **kwargs)
        finally:
            try:
                loop_state = args[0] if args else kwargs.get("loop_state")
                with self._lock:
                    left = self._fanouts.pop(id(loop_state), [])
                    for fanout in left:
                        fanout.ended = True
                    # Branches opened for node tasks cancelled before they started.
                    unstarted = [key for key, v in self._starting.items() if v[0] in left]
                    stale = [self._starting.pop(key) for key in unstarted]
                for fanout, span, _ in stale:
                    if fanout.fork is not None:
                        _end_branch(
                            fanout.fork, span, semconv.BranchOutcome.CANCELLED, "not started", None
                        )
                for fanout in left:
                    if fanout.fork is not None:
                        _end_fork(fanout.fork)
            except Exception as exc:
                report("google_adk.cleanup", exc)


def wrap_forks(patches: MethodPatches) -> None:
    """Wrap where ADK starts parallel work; ``patches.restore()`` unwraps it."""
    from google.adk.agents import parallel_agent
    from google.adk.telemetry import node_tracing
    from google.adk.workflow._workflow import Workflow

    patches.wrap(parallel_agent, "_merge_agent_run", _merge_wrapper)
    workflows = _Workflows()
    patches.wrap(Workflow, "_seed_start_triggers", workflows.buffered)
    patches.wrap(Workflow, "_buffer_downstream_triggers", workflows.buffered)
    patches.wrap(Workflow, "_start_node_task", workflows.starting)
    patches.wrap(Workflow, "_cleanup_all_tasks", workflows.cleaned_up)
    patches.wrap(node_tracing, "start_as_current_node_span", workflows.node_span)
