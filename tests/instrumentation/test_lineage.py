"""Lineage is stamped on every span inside a run, across tasks, threads and nested forks."""

# Nested with-blocks mirror the span trees the tests build.
# ruff: noqa: SIM117

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from sdk_helpers import Recorded, attrs, parent_id, span_id

import forktrace
from forktrace import semconv

BRANCHES = 8


def assert_inside(span_attrs: dict, branch_span) -> None:
    """``span_attrs`` carry the lineage of ``branch_span``."""
    branch = attrs(branch_span)
    assert span_attrs[semconv.BRANCH_ID] == span_id(branch_span)
    assert span_attrs[semconv.BRANCH_PATH] == branch[semconv.BRANCH_PATH]
    assert span_attrs[semconv.FORK_ID] == branch[semconv.FORK_ID]
    assert span_attrs[semconv.RUN_ID] == branch[semconv.RUN_ID]


def check_fan_out(recorded: Recorded, run_id: str) -> None:
    """Eight branches of fork "fan", each holding one plain span and one tool span."""
    fork = recorded.one("fork fan")
    fork_id = span_id(fork)
    assert attrs(fork)[semconv.FORK_ID] == fork_id
    branches = {attrs(b)[semconv.BRANCH_LABEL]: b for b in recorded.kind("branch")}
    assert sorted(branches) == [f"b{i}" for i in range(BRANCHES)]
    for i in range(BRANCHES):
        branch = branches[f"b{i}"]
        assert parent_id(branch) == fork_id
        assert attrs(branch)[semconv.BRANCH_PATH] == str(i)
        assert attrs(branch)[semconv.BRANCH_ID] == span_id(branch)
        assert attrs(branch)[semconv.FORK_ID] == fork_id
        assert attrs(branch)[semconv.RUN_ID] == run_id
        for name in (f"plain {i}", f"execute_tool tool{i}"):
            inner = recorded.one(name)
            assert parent_id(inner) == span_id(branch)
            assert_inside(attrs(inner), branch)
            assert attrs(inner)[semconv.AGENT_NAME] == "solver"


async def branch_work(fork: forktrace.Fork, i: int, recorded: Recorded) -> int:
    async with fork.branch(f"b{i}"):
        # Yield between spans so the eight branches interleave.
        await asyncio.sleep(0)
        with recorded.plain_tracer.start_as_current_span(f"plain {i}"):
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        with forktrace.tool(f"tool{i}"):
            await asyncio.sleep(0)
        return i


async def test_eight_branches_under_gather(recorded: Recorded) -> None:
    with forktrace.run("r") as run, forktrace.agent("solver"):
        async with forktrace.fork("fan") as fork:
            results = await asyncio.gather(
                *(branch_work(fork, i, recorded) for i in range(BRANCHES))
            )
    assert results == list(range(BRANCHES))
    check_fan_out(recorded, run.id)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is Python 3.11+")
async def test_eight_branches_under_task_group(recorded: Recorded) -> None:
    with forktrace.run("r") as run, forktrace.agent("solver"):
        async with forktrace.fork("fan") as fork, asyncio.TaskGroup() as group:
            for i in range(BRANCHES):
                group.create_task(branch_work(fork, i, recorded))
    check_fan_out(recorded, run.id)


def test_fork_map_in_a_thread_pool_keeps_lineage(recorded: Recorded) -> None:
    def work(i: int) -> int:
        with recorded.plain_tracer.start_as_current_span(f"plain {i}"):
            pass
        with forktrace.tool(f"tool{i}"):
            return i * i

    with forktrace.run("r") as run, forktrace.agent("solver"):
        with forktrace.fork("fan", strategy="map") as fork:
            squares = fork.map(work, range(BRANCHES), labels=[f"b{i}" for i in range(BRANCHES)])
    assert squares == [i * i for i in range(BRANCHES)]
    check_fan_out(recorded, run.id)


async def test_fork_map_with_async_function(recorded: Recorded) -> None:
    async def work(i: int) -> int:
        await asyncio.sleep(0)
        with recorded.plain_tracer.start_as_current_span(f"plain {i}"):
            await asyncio.sleep(0)
        with forktrace.tool(f"tool{i}"):
            return -i

    with forktrace.run("r") as run, forktrace.agent("solver"):
        with forktrace.fork("fan") as fork:
            results = await fork.map(work, range(BRANCHES), labels=lambda i: f"b{i}")
    assert results == [-i for i in range(BRANCHES)]
    check_fan_out(recorded, run.id)


def test_own_thread_pool_needs_wrap(recorded: Recorded) -> None:
    """contextvars do not cross into pool threads; forktrace.wrap carries them."""

    def work(name: str) -> None:
        with recorded.plain_tracer.start_as_current_span(name):
            pass

    with forktrace.run("r"), forktrace.fork("f") as fork, fork.branch("only") as branch:
        with ThreadPoolExecutor(max_workers=2) as pool:
            pool.submit(forktrace.wrap(work), "wrapped").result()
            pool.submit(work, "unwrapped").result()

    wrapped = recorded.one("wrapped")
    assert attrs(wrapped)[semconv.BRANCH_ID] == branch.id
    assert parent_id(wrapped) == branch.id
    unwrapped = recorded.one("unwrapped")
    assert semconv.BRANCH_ID not in attrs(unwrapped)
    assert semconv.RUN_ID not in attrs(unwrapped)


def test_fork_inside_branches_builds_the_path(recorded: Recorded) -> None:
    with forktrace.run("r"):
        with forktrace.fork("top") as top:
            top.branch("a").__enter__().__exit__(None, None, None)
            with top.branch("b"):  # index 1
                with forktrace.fork("middle") as middle:
                    with middle.branch("c"):  # index 0
                        with forktrace.fork("bottom") as bottom:
                            for label in ("d", "e"):
                                with bottom.branch(label):
                                    pass
                            with bottom.branch("f"):  # index 2
                                with recorded.plain_tracer.start_as_current_span("deep"):
                                    pass

    deep = attrs(recorded.one("deep"))
    assert deep[semconv.BRANCH_PATH] == "1.0.2"
    f_branch = recorded.one("branch f")
    assert deep[semconv.BRANCH_ID] == span_id(f_branch)
    bottom_fork = recorded.one("fork bottom")
    assert deep[semconv.FORK_ID] == span_id(bottom_fork)
    # A fork span carries its own id and the lineage of the branch it was opened in.
    assert attrs(bottom_fork)[semconv.BRANCH_PATH] == "1.0"
    assert attrs(bottom_fork)[semconv.BRANCH_ID] == span_id(recorded.one("branch c"))
    assert attrs(bottom_fork)[semconv.FORK_ID] == span_id(bottom_fork)
    paths = {s.name: attrs(s)[semconv.BRANCH_PATH] for s in recorded.kind("branch")}
    assert paths == {
        "branch a": "0",
        "branch b": "1",
        "branch c": "1.0",
        "branch d": "1.0.0",
        "branch e": "1.0.1",
        "branch f": "1.0.2",
    }


def test_spans_outside_branches_carry_run_and_empty_path(recorded: Recorded) -> None:
    with forktrace.run("r", session="s-1", run_id="run-1"):
        with recorded.plain_tracer.start_as_current_span("plain"):
            pass
    with recorded.plain_tracer.start_as_current_span("outside"):
        pass
    plain = attrs(recorded.one("plain"))
    assert plain[semconv.RUN_ID] == "run-1"
    assert plain[semconv.SESSION_ID] == "s-1"
    assert plain[semconv.BRANCH_PATH] == ""
    assert semconv.FORK_ID not in plain
    assert not any(key.startswith("forktrace.") for key in attrs(recorded.one("outside")))
    run = attrs(recorded.one("run r"))
    assert run[semconv.RUN_ID] == "run-1"
    assert run[semconv.KIND] == "run"


def test_session_comes_from_init(record) -> None:
    recorded = record(session="launch-7")
    with forktrace.run("one"), forktrace.agent("a"):
        pass
    with forktrace.run("two"):
        pass
    runs = recorded.kind("run")
    assert {attrs(r)[semconv.SESSION_ID] for r in runs} == {"launch-7"}
    assert len({attrs(r)[semconv.RUN_ID] for r in runs}) == 2
    assert attrs(recorded.one("invoke_agent a"))[semconv.SESSION_ID] == "launch-7"


def test_branch_in_another_process_links_back_to_its_fork(recorded: Recorded) -> None:
    with forktrace.run("r") as run, forktrace.fork("f") as fork:
        local = fork.branch("local")
        with local:
            pass
        carrier = fork.carrier("remote")

    # What the other process does with the carrier it received (here in a clean context).
    with forktrace.branch_from(carrier) as remote:
        with recorded.plain_tracer.start_as_current_span("remote work"):
            pass
        remote.outcome("merged", reason="partial fix kept")

    fork_span = recorded.one("fork f")
    remote_span = recorded.one("branch remote")
    assert parent_id(remote_span) == span_id(fork_span)
    assert remote_span.context.trace_id == fork_span.context.trace_id
    assert [link.context.span_id for link in remote_span.links] == [fork_span.context.span_id]
    remote_attrs = attrs(remote_span)
    assert remote_attrs[semconv.BRANCH_INDEX] == 1
    assert remote_attrs[semconv.BRANCH_PATH] == "1"
    assert remote_attrs[semconv.FORK_ID] == span_id(fork_span)
    assert remote_attrs[semconv.RUN_ID] == run.id
    assert remote_attrs[semconv.BRANCH_OUTCOME] == "merged"
    assert_inside(attrs(recorded.one("remote work")), remote_span)


def test_lineage_processor_on_a_provider_of_your_own(recorded: Recorded) -> None:
    """A user who builds their own provider adds the processor and gets lineage stamped."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    theirs = TracerProvider(shutdown_on_exit=False)
    theirs.add_span_processor(forktrace.LineageSpanProcessor())
    theirs.add_span_processor(SimpleSpanProcessor(exporter))
    with forktrace.run("r") as run:
        with theirs.get_tracer("theirs").start_as_current_span("their span"):
            pass
    (span,) = exporter.get_finished_spans()
    assert attrs(span)[semconv.RUN_ID] == run.id


def test_branch_of_the_innermost_open_fork(recorded: Recorded) -> None:
    def helper(label: str) -> None:
        with forktrace.branch(label), recorded.plain_tracer.start_as_current_span(f"in {label}"):
            pass

    with forktrace.run("r"), forktrace.fork("outer") as outer:
        helper("x")
        with forktrace.fork("inner") as inner:
            assert forktrace.current_fork() is inner
            helper("nested")
        assert forktrace.current_fork() is outer
        helper("y")
    assert forktrace.current_fork() is None
    with pytest.raises(RuntimeError, match="outside any fork"):
        forktrace.branch("z")

    paths = {s.name: attrs(s)[semconv.BRANCH_PATH] for s in recorded.spans() if s.name[:3] == "in "}
    assert paths == {"in x": "0", "in nested": "0", "in y": "1"}
    assert parent_id(recorded.one("branch nested")) == span_id(recorded.one("fork inner"))
