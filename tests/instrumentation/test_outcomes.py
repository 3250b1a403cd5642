"""Branch outcomes, winners, failures, cancellation, decisions and the other span kinds."""

# Nested with-blocks mirror the span trees the tests build.
# ruff: noqa: SIM117

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.trace import StatusCode
from sdk_helpers import Recorded, attrs, parent_id, span_id

import forktrace
from forktrace import semconv


def outcome_events(recorded: Recorded, fork_name: str) -> dict[str, dict]:
    """The fork's ``forktrace.branch.outcome`` events by branch label."""
    fork = recorded.one(f"fork {fork_name}")
    events = [dict(e.attributes) for e in fork.events if e.name == semconv.BRANCH_OUTCOME_EVENT]
    return {event[semconv.BRANCH_LABEL]: event for event in events}


@pytest.mark.parametrize("pick", ["object", "index", "label"])
def test_choose_marks_the_winner_and_the_others_lost(recorded: Recorded, pick: str) -> None:
    with forktrace.run("r"), forktrace.fork("approach", strategy="best_of") as fork:
        branches = [fork.branch(label) for label in ("bfs", "dfs", "astar", "greedy")]
        for branch in branches:
            with branch:
                pass
        branches[3].outcome("merged", reason="kept its heuristic")
        winner = {"object": branches[2], "index": 2, "label": "astar"}[pick]
        chosen = fork.choose(winner, criterion="fewest steps")
    assert chosen is branches[2]

    fork_attrs = attrs(recorded.one("fork approach"))
    assert fork_attrs[semconv.FORK_WINNER] == branches[2].id
    assert fork_attrs[semconv.FORK_CRITERION] == "fewest steps"
    assert fork_attrs[semconv.FORK_BRANCH_COUNT] == 4
    assert fork_attrs[semconv.FORK_STRATEGY] == "best_of"
    events = outcome_events(recorded, "approach")
    assert {label: e[semconv.BRANCH_OUTCOME] for label, e in events.items()} == {
        "bfs": "lost",
        "dfs": "lost",
        "astar": "won",
        "greedy": "merged",
    }
    assert events["greedy"][semconv.BRANCH_OUTCOME_REASON] == "kept its heuristic"
    assert events["astar"][semconv.BRANCH_ID] == branches[2].id


def test_without_a_winner_finished_branches_are_completed(recorded: Recorded) -> None:
    with forktrace.run("r"), forktrace.fork("all") as fork:
        with fork.branch("one"):
            pass
        fork.branch("never opened")  # not run: not counted
    assert attrs(recorded.one("fork all"))[semconv.FORK_BRANCH_COUNT] == 1
    assert outcome_events(recorded, "all")["one"][semconv.BRANCH_OUTCOME] == "completed"
    assert semconv.BRANCH_OUTCOME not in attrs(recorded.one("branch one"))


def test_winner_known_while_the_branch_runs_is_on_the_branch_span(recorded: Recorded) -> None:
    with forktrace.run("r"), forktrace.fork("race", strategy="race") as fork:
        with fork.branch("fast") as fast:
            fork.choose(fast, criterion="first to finish")
    assert attrs(recorded.one("branch fast"))[semconv.BRANCH_OUTCOME] == "won"


def test_exception_fails_the_branch_and_passes_through(recorded: Recorded) -> None:
    with forktrace.run("r"), forktrace.fork("f") as fork:
        with fork.branch("ok"):
            pass
        with pytest.raises(ZeroDivisionError), fork.branch("broken"):
            1 / 0  # noqa: B018
        fork.choose("ok")

    broken = recorded.one("branch broken")
    assert broken.status.status_code is StatusCode.ERROR
    assert attrs(broken)[semconv.BRANCH_OUTCOME] == "failed"
    assert "ZeroDivisionError" in attrs(broken)[semconv.BRANCH_OUTCOME_REASON]
    assert attrs(broken)[semconv.ERROR_TYPE] == "ZeroDivisionError"
    assert [e.name for e in broken.events] == ["exception"]
    events = outcome_events(recorded, "f")
    assert events["broken"][semconv.BRANCH_OUTCOME] == "failed"  # failed, not "lost"
    assert events["ok"][semconv.BRANCH_OUTCOME] == "won"


def test_run_outcome_follows_exceptions(recorded: Recorded) -> None:
    with forktrace.run("good"):
        pass
    with pytest.raises(RuntimeError), forktrace.run("bad"):
        raise RuntimeError("boom")
    assert attrs(recorded.one("run good"))[semconv.RUN_OUTCOME] == "succeeded"
    bad = recorded.one("run bad")
    assert attrs(bad)[semconv.RUN_OUTCOME] == "failed"
    assert bad.status.status_code is StatusCode.ERROR


async def test_cancelled_branch_is_recorded_cancelled_and_reraised(recorded: Recorded) -> None:
    started = asyncio.Event()

    async def slow(fork: forktrace.Fork) -> None:
        async with fork.branch("slow"):
            started.set()
            await asyncio.sleep(30)

    async def fast(fork: forktrace.Fork) -> None:
        async with fork.branch("fast"):
            await started.wait()

    with forktrace.run("r"):
        async with forktrace.fork("race", strategy="race") as fork:
            loser = asyncio.ensure_future(slow(fork))
            await fast(fork)
            fork.choose("fast")
            loser.cancel()
            with pytest.raises(asyncio.CancelledError):
                await loser

    slow_span = recorded.one("branch slow")
    assert attrs(slow_span)[semconv.BRANCH_OUTCOME] == "cancelled"
    assert slow_span.status.status_code is not StatusCode.ERROR
    events = outcome_events(recorded, "race")
    assert events["slow"][semconv.BRANCH_OUTCOME] == "cancelled"
    assert events["fast"][semconv.BRANCH_OUTCOME] == "won"


def test_fork_map_runs_every_item_then_raises_the_first_error(recorded: Recorded) -> None:
    def work(i: int) -> int:
        if i in (1, 3):
            raise ValueError(f"bad {i}")
        return i

    with forktrace.run("r"), forktrace.fork("m") as fork:
        with pytest.raises(ValueError, match="bad 1"):
            fork.map(work, range(5))
        results = fork.map(work, range(5, 7))
        mixed = fork.map(work, [0, 1], return_exceptions=True)

    assert results == [5, 6]
    assert mixed[0] == 0 and isinstance(mixed[1], ValueError)
    outcomes = {
        attrs(s)[semconv.BRANCH_INDEX]: attrs(s).get(semconv.BRANCH_OUTCOME)
        for s in recorded.kind("branch")
    }
    assert outcomes == {0: None, 1: "failed", 2: None, 3: "failed", 4: None, 5: None, 6: None,
                        7: None, 8: "failed"}  # fmt: skip


def test_decorators_sync_and_async(recorded: Recorded) -> None:
    @forktrace.tool("lookup")
    def lookup(key: str) -> dict:
        return {"key": key, "found": True}

    @forktrace.agent("worker")
    async def worker(n: int) -> int:
        await asyncio.sleep(0)
        return lookup(str(n))["found"] + n

    @forktrace.run("decorated")
    def main() -> list[int]:
        return [asyncio.run(worker(n)) for n in range(2)]

    assert main() == [1, 2]
    assert main() == [1, 2]
    runs = recorded.named("run decorated")
    assert len(runs) == 2
    assert attrs(runs[0])[semconv.RUN_ID] != attrs(runs[1])[semconv.RUN_ID]
    agents = recorded.named("invoke_agent worker")
    assert len(agents) == 4
    tools = recorded.named("execute_tool lookup")
    assert len(tools) == 4
    assert attrs(tools[0])[semconv.GEN_AI_TOOL_CALL_RESULT] == '{"key": "0", "found": true}'
    assert attrs(tools[0])[semconv.AGENT_NAME] == "worker"
    assert parent_id(tools[0]) == span_id(agents[0])


async def test_decorated_branches_are_new_branches_of_the_fork(recorded: Recorded) -> None:
    with forktrace.run("r"):
        async with forktrace.fork("f") as fork:

            @fork.branch("attempt")
            async def attempt(i: int) -> int:
                await asyncio.sleep(0)
                return i

            assert await asyncio.gather(attempt(0), attempt(1), attempt(2)) == [0, 1, 2]
    branches = recorded.named("branch attempt")
    assert len(branches) == 3
    assert len({attrs(b)[semconv.BRANCH_ID] for b in branches}) == 3
    assert attrs(recorded.one("fork f"))[semconv.FORK_BRANCH_COUNT] == 3


def test_decision_records_question_options_and_choice(recorded: Recorded) -> None:
    with forktrace.run("r"):
        with forktrace.decision("which library?", options=["httpx", "requests"]) as decision:
            decision.choose("httpx", reasoning="async support", confidence=0.8, maker="model")
    span = recorded.one("decision")
    a = attrs(span)
    assert a[semconv.KIND] == "decision"
    assert a[semconv.DECISION_QUESTION] == "which library?"
    assert a[semconv.DECISION_OPTIONS] == ("httpx", "requests")
    assert a[semconv.DECISION_CHOSEN] == "httpx"
    assert a[semconv.DECISION_REASONING] == "async support"
    assert a[semconv.DECISION_CONFIDENCE] == 0.8
    assert a[semconv.DECISION_MAKER] == "model"


def test_bad_arguments_are_clear_errors(recorded: Recorded) -> None:
    with forktrace.decision("q", options=["a"]) as decision:
        with pytest.raises(ValueError, match="between 0 and 1"):
            decision.choose("a", confidence=1.5)
        with pytest.raises(ValueError, match="maker must be one of"):
            decision.choose("a", maker="oracle")
    with pytest.raises(ValueError, match="fork strategy must be one of"):
        forktrace.fork("f", strategy="random")
    with forktrace.fork("f") as fork, pytest.raises(ValueError, match="no branch 'zzz'"):
        fork.choose("zzz")
    with pytest.raises(ValueError, match="intervention kind"):
        forktrace.intervene("shout")


def test_llm_tool_handoff_and_intervention(recorded: Recorded) -> None:
    with forktrace.run("r"), forktrace.agent("planner"):
        with forktrace.llm("gpt-x", provider="openai") as call:
            call.record(
                input_tokens=120,
                output_tokens=30,
                reasoning_tokens=12,
                reasoning="think first",
                finish_reasons="stop",
                output_messages=[
                    {"role": "assistant", "parts": [{"type": "text", "content": "hi"}]}
                ],
            )
        with forktrace.tool("search", arguments={"q": "otel"}, call_id="c1") as t:
            t.result("3 hits")
        with forktrace.handoff("planner", "coder"):
            forktrace.intervene("redirect", author="ana", message="try the cache first")

    llm = attrs(recorded.one("chat gpt-x"))
    assert llm[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert llm[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert llm[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert llm[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 30
    assert llm[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 12
    assert llm[semconv.LLM_REASONING] == "think first"
    assert llm[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert '"role": "assistant"' in llm[semconv.GEN_AI_OUTPUT_MESSAGES]
    tool = attrs(recorded.one("execute_tool search"))
    assert tool[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"q": "otel"}'
    assert tool[semconv.GEN_AI_TOOL_CALL_RESULT] == "3 hits"
    assert tool[semconv.GEN_AI_TOOL_CALL_ID] == "c1"
    handoff = recorded.one("handoff planner -> coder")
    assert attrs(handoff)[semconv.HANDOFF_TO] == "coder"
    (event,) = handoff.events
    assert event.name == semconv.INTERVENTION_EVENT
    assert dict(event.attributes) == {
        "kind": "redirect",
        "author": "ana",
        "message": "try the cache first",
    }


def test_internal_errors_never_reach_the_program(recorded: Recorded, caplog) -> None:
    """A failure inside forktrace is logged once and the program's code runs on."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    ran = []
    with caplog.at_level("WARNING", logger="forktrace"):
        for _ in range(2):
            with forktrace.tool("weird", arguments=Unprintable()):
                ran.append(True)
    assert ran == [True, True]
    assert len(recorded.named("execute_tool weird")) == 2
    internal = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(internal) == 1


def test_choosing_after_the_fork_ended_warns(recorded: Recorded, caplog) -> None:
    with forktrace.run("r"):
        with forktrace.fork("late") as fork, fork.branch("a"):
            pass
        with caplog.at_level("WARNING", logger="forktrace"):
            fork.choose("a")
    assert "after it ended" in caplog.text
    assert semconv.FORK_WINNER not in attrs(recorded.one("fork late"))
