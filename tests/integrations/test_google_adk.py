"""The Google ADK integration, offline, with a scripted ``BaseLlm`` of this test's own."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from integration_helpers import Spans, require, span_id

require("google.adk")

from google.adk.agents import LlmAgent, ParallelAgent  # noqa: E402
from google.adk.agents import parallel_agent as parallel_module  # noqa: E402
from google.adk.models.base_llm import BaseLlm  # noqa: E402
from google.adk.models.llm_response import LlmResponse  # noqa: E402
from google.adk.runners import InMemoryRunner, Runner  # noqa: E402
from google.adk.telemetry import node_tracing  # noqa: E402
from google.adk.telemetry._instrumentation import InferenceScope  # noqa: E402
from google.adk.tools.tool_context import ToolContext  # noqa: E402
from google.adk.workflow import JoinNode, Workflow  # noqa: E402
from google.genai import types  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # ParallelAgent
WORKFLOW_METHODS = (
    "_seed_start_triggers",
    "_buffer_downstream_triggers",
    "_start_node_task",
    "_cleanup_all_tasks",
)


class Gate:
    """Holds every first model call until ``size`` of them are in flight at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_flight = 0
        self.peak = 0
        self._all_in = asyncio.Event()

    async def enter(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= self.size:
            self._all_in.set()
        # On a timeout the peak assertion says what went wrong.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._all_in.wait(), timeout=5)
        self.in_flight -= 1


class Scripted(BaseLlm):
    """Answers the n-th model call of an agent's conversation with ``script[n]``."""

    model: str = "scripted-model"
    script: list[LlmResponse]
    gate: Any = None

    async def generate_content_async(self, llm_request: Any, stream: bool = False) -> Any:
        turn = sum(1 for content in llm_request.contents if content.role == "model")
        if turn == 0 and self.gate is not None:
            await self.gate.enter()
        yield self.script[min(turn, len(self.script) - 1)]


def call(name: str, args: dict[str, Any], call_id: str, thought: str | None = None) -> LlmResponse:
    parts = [types.Part(text=thought, thought=True)] if thought else []
    parts.append(types.Part(function_call=types.FunctionCall(name=name, args=args, id=call_id)))
    return LlmResponse(
        content=types.Content(role="model", parts=parts),
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=12, candidates_token_count=5, thoughts_token_count=3
        ),
    )


def say(text: str) -> LlmResponse:
    return LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))


def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b


def lookup(city: str) -> str:
    """Looks a city up."""
    if city == "Atlantis":
        raise LookupError("no such city")
    return f"{city}: sunny"


def weather_agents(cities: list[str], gate: Gate | None = None) -> list[Any]:
    """One agent per city: it looks its city up, then says it is done."""
    return [
        LlmAgent(
            name=f"weather_{city.lower()}",
            model=Scripted(
                script=[call("lookup", {"city": city}, f"call_{city}"), say(f"{city} done")],
                gate=gate,
            ),
            tools=[lookup],
        )
        for city in cities
    ]


async def run_agent(agent: Any, prompt: str = "go") -> list[str]:
    """Runs ``agent`` to the end; returns the texts it answered with."""
    runner = InMemoryRunner(agent=agent, app_name="tests")
    session = await runner.session_service.create_session(app_name="tests", user_id="u")
    texts = []
    async for event in runner.run_async(
        user_id="u",
        session_id=session.id,
        new_message=types.Content(role="user", parts=[types.Part(text=prompt)]),
    ):
        for part in (event.content.parts if event.content else None) or ():
            if part.text and not part.thought:
                texts.append(part.text)
    return texts


def _descendants(spans: Spans, span: Any) -> list[Any]:
    found = []
    for child in spans.children(span):
        found.append(child)
        found.extend(_descendants(spans, child))
    return found


async def test_agent_model_calls_tools_thinking_and_a_handoff(spans: Spans) -> None:
    forktrace.instrument("google-adk")
    assert forktrace.instrument("google-adk") == []
    helper = LlmAgent(name="helper", model=Scripted(script=[say("helped")]), description="helps")
    root = LlmAgent(
        name="root",
        model=Scripted(
            script=[
                call("add", {"a": 1, "b": 2}, "call_add", thought="first add, then hand off"),
                call("transfer_to_agent", {"agent_name": "helper"}, "call_transfer"),
                say("never reached"),
            ]
        ),
        tools=[add],
        sub_agents=[helper],
    )
    with forktrace.run("sums") as run:
        texts = await run_agent(root)
    assert texts == ["helped"]

    agents = {s.attributes[semconv.GEN_AI_AGENT_NAME]: s for s in spans.kind(semconv.Kind.AGENT)}
    assert set(agents) == {"root", "helper"}

    (tool,) = spans.kind(semconv.Kind.TOOL)
    assert tool.name == "execute_tool add"
    assert spans.parent(tool) is agents["root"]
    assert tool.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call_add"
    assert json.loads(tool.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"a": 1, "b": 2}
    assert tool.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "3"
    assert tool.attributes[semconv.AGENT_NAME] == "root"

    (handoff,) = spans.kind(semconv.Kind.HANDOFF)
    assert handoff.name == "execute_tool transfer_to_agent"
    assert handoff.attributes[semconv.HANDOFF_FROM] == "root"
    assert handoff.attributes[semconv.HANDOFF_TO] == "helper"
    assert spans.parent(handoff) is agents["root"]

    llms = spans.kind(semconv.Kind.LLM)
    assert len(llms) == 3  # ADK's own generate_content spans, no duplicates
    assert sorted(llm.attributes[semconv.AGENT_NAME] for llm in llms) == [
        "helper",
        "root",
        "root",
    ]
    first = min(
        (llm for llm in llms if llm.attributes[semconv.AGENT_NAME] == "root"),
        key=lambda s: s.start_time,
    )
    assert spans.parent(first) is agents["root"]
    assert first.attributes[semconv.LLM_REASONING] == "first add, then hand off"
    assert first.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert first.attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
    output = json.loads(first.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["parts"]
    assert {"type": "reasoning", "content": "first add, then hand off"} in output
    assert {
        "type": "tool_call",
        "id": "call_add",
        "name": "add",
        "arguments": {"a": 1, "b": 2},
    } in output
    inputs = json.loads(first.attributes[semconv.GEN_AI_INPUT_MESSAGES])
    assert inputs == [{"role": "user", "parts": [{"type": "text", "content": "go"}]}]

    for span in spans.all():
        assert span.attributes[semconv.RUN_ID] == run.id


async def test_a_parallel_agent_is_a_fork_with_one_branch_per_sub_agent(spans: Spans) -> None:
    forktrace.instrument()
    cities = ["Oslo", "Lima", "Pune", "Kobe"]
    gate = Gate(len(cities))
    workers = weather_agents(cities, gate)
    survey = ParallelAgent(name="survey", sub_agents=workers)
    with forktrace.run("weather"):
        texts = await run_agent(survey)
    assert sorted(texts) == sorted(f"{city} done" for city in cities)
    assert gate.peak == len(cities)  # all four model calls were in flight at once

    survey_span = next(
        s for s in spans.kind(semconv.Kind.AGENT) if s.attributes[semconv.AGENT_NAME] == "survey"
    )
    (fork,) = spans.kind(semconv.Kind.FORK)
    assert spans.parent(fork) is survey_span
    assert fork.attributes[semconv.FORK_STRATEGY] == "all"
    assert fork.attributes[semconv.FORK_BRANCH_COUNT] == 4
    outcomes = [dict(event.attributes) for event in fork.events]
    assert sorted(o[semconv.BRANCH_OUTCOME] for o in outcomes) == ["completed"] * 4

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    assert set(branches) == {worker.name for worker in workers}
    paths = sorted(b.attributes[semconv.BRANCH_PATH] for b in branches.values())
    assert paths == ["0", "1", "2", "3"]
    for name, branch in branches.items():
        assert spans.parent(branch) is fork
        assert branch.attributes[semconv.BRANCH_OUTCOME] == "completed"
        (agent,) = spans.children(branch)
        assert agent.name == f"invoke_agent {name}"
        below = _descendants(spans, agent)
        assert sorted(s.attributes[semconv.KIND] for s in below) == ["llm", "llm", "tool"]
        for span in [agent, *below]:
            assert span.attributes[semconv.BRANCH_ID] == span_id(branch)
            assert span.attributes[semconv.FORK_ID] == span_id(fork)
            assert span.attributes[semconv.BRANCH_PATH] == branch.attributes[semconv.BRANCH_PATH]
            assert span.attributes[semconv.AGENT_NAME] == name
        (tool,) = [s for s in below if s.attributes[semconv.KIND] == "tool"]
        city = name.removeprefix("weather_").title()
        assert tool.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == f"{city}: sunny"


async def test_a_failing_branch_is_failed_and_the_error_reaches_the_caller(spans: Spans) -> None:
    forktrace.instrument("google-adk")
    cities = ["Oslo", "Atlantis", "Pune", "Kobe"]
    workers = weather_agents(cities)
    with forktrace.run("weather"), pytest.raises(LookupError, match="no such city"):
        await run_agent(ParallelAgent(name="survey", sub_agents=workers))

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    failed = branches.pop("weather_atlantis")
    assert failed.attributes[semconv.BRANCH_OUTCOME] == "failed"
    assert "no such city" in failed.attributes[semconv.BRANCH_OUTCOME_REASON]
    assert failed.status.status_code is StatusCode.ERROR
    # The others finished first or were cancelled when the failure ended the fork.
    for branch in branches.values():
        assert branch.attributes[semconv.BRANCH_OUTCOME] in ("completed", "cancelled")
    (tool,) = [
        s
        for s in spans.kind(semconv.Kind.TOOL)
        if s.attributes[semconv.AGENT_NAME] == "weather_atlantis"
    ]
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes[semconv.BRANCH_ID] == span_id(failed)
    (fork,) = spans.kind(semconv.Kind.FORK)
    assert fork.end_time is not None


async def test_recovered_tool_errors_and_model_errors_are_errors_in_a_run_that_goes_on(
    spans: Spans,
) -> None:
    forktrace.instrument("google-adk")

    async def recover(tool: Any, args: dict[str, Any], tool_context: Any, error: Exception) -> Any:
        return {"weather": "unknown"}  # recovered: not an error the model sees

    traveller = LlmAgent(
        name="traveller",
        model=Scripted(script=[call("lookup", {"city": "Atlantis"}, "call_1"), say("no luck")]),
        tools=[lookup],
        on_tool_error_callback=recover,
    )
    overloaded = LlmAgent(
        name="overloaded",
        model=Scripted(
            script=[LlmResponse(error_code="RESOURCE_EXHAUSTED", error_message="quota")]
        ),
    )
    with forktrace.run("errors"):
        assert await run_agent(traveller) == ["no luck"]
        await run_agent(overloaded)

    (tool,) = spans.kind(semconv.Kind.TOOL)
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes[semconv.ERROR_TYPE] == "LookupError"
    assert "no such city" in tool.status.description
    assert json.loads(tool.attributes[semconv.GEN_AI_TOOL_CALL_RESULT]) == {"weather": "unknown"}
    (failed_call,) = [
        s for s in spans.kind(semconv.Kind.LLM) if s.attributes[semconv.AGENT_NAME] == "overloaded"
    ]
    assert failed_call.status.status_code is StatusCode.ERROR
    assert "RESOURCE_EXHAUSTED" in failed_call.status.description


async def test_uninstrument_restores_adk(spans: Spans) -> None:
    wrapped = [
        (Runner, "__init__"),
        (InferenceScope, "record_llm_response"),
        (parallel_module, "_merge_agent_run"),
        (node_tracing, "start_as_current_node_span"),
        *((Workflow, name) for name in WORKFLOW_METHODS),
    ]
    originals = [owner.__dict__[name] for owner, name in wrapped]
    forktrace.instrument("google-adk")
    agent = LlmAgent(name="solo", model=Scripted(script=[say("hi")]))
    runner = InMemoryRunner(agent=agent, app_name="tests")
    assert [p.name for p in runner.plugin_manager.plugins] == ["forktrace"]
    assert all(
        owner.__dict__[name] is not o for (owner, name), o in zip(wrapped, originals, strict=True)
    )
    forktrace.uninstrument()

    assert runner.plugin_manager.plugins == []
    assert all(
        owner.__dict__[name] is o for (owner, name), o in zip(wrapped, originals, strict=True)
    )
    spans.clear()
    await run_agent(ParallelAgent(name="pair", sub_agents=[agent.clone()]))
    assert spans.all(), "ADK still traces itself"
    assert all(semconv.KIND not in s.attributes for s in spans.all())


async def test_an_internal_error_never_breaks_the_agent(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import _adk_forks, google_adk

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("forktrace bug")

    for name in ("parent_agent", "_add_response", "set_content"):
        monkeypatch.setattr(google_adk, name, broken)
    monkeypatch.setattr(_adk_forks, "_label", broken)
    forktrace.instrument("google-adk")
    workers = [
        LlmAgent(
            name=f"w{i}",
            model=Scripted(script=[call("add", {"a": i, "b": 1}, f"c{i}"), say(f"w{i} ok")]),
            tools=[add],
        )
        for i in range(4)
    ]
    with forktrace.run("broken"):
        texts = await run_agent(ParallelAgent(name="all", sub_agents=workers))
    assert sorted(texts) == [f"w{i} ok" for i in range(4)]
    assert len(spans.named("execute_tool add")) == 4  # ADK's own spans still flow


async def test_runs_in_forktrace_fork_branches_land_in_their_branch(spans: Spans) -> None:
    forktrace.instrument("google-adk")
    topics = ["tides", "winds", "waves", "currents"]

    async def study(topic: str) -> list[str]:
        agent = LlmAgent(name=f"study_{topic}", model=Scripted(script=[say(f"notes on {topic}")]))
        return await run_agent(agent, topic)

    with forktrace.run("survey"), forktrace.fork("topics", strategy="map") as fork:
        outputs = await fork.map(study, topics, labels=topics)
    assert outputs == [[f"notes on {topic}"] for topic in topics]

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    for agent in spans.kind(semconv.Kind.AGENT):
        branch = branches[agent.attributes[semconv.AGENT_NAME].removeprefix("study_")]
        assert spans.parent(spans.parent(agent)) is branch  # under ADK's invoke_workflow
        (llm,) = spans.children(agent)
        assert llm.attributes[semconv.BRANCH_ID] == span_id(branch)
    assert len(spans.kind(semconv.Kind.AGENT)) == 4


class Never:
    """A gate that stays shut: the model call waits until it is cancelled (or 10 s pass)."""

    async def enter(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.Event().wait(), timeout=10)


def give_up(tool_context: ToolContext) -> str:
    """Stops the whole survey."""
    tool_context.actions.escalate = True
    return "stopping"


async def test_an_escalating_branch_cancels_its_siblings(spans: Spans) -> None:
    forktrace.instrument("google-adk")
    quitter = LlmAgent(
        name="quitter",
        model=Scripted(script=[call("give_up", {}, "call_quit"), say("quit")]),
        tools=[give_up],
    )
    waiters = [
        LlmAgent(name=f"waiter_{i}", model=Scripted(script=[say("late")], gate=Never()))
        for i in range(3)
    ]
    with forktrace.run("escalation"):
        texts = await run_agent(ParallelAgent(name="survey", sub_agents=[quitter, *waiters]))
    assert "late" not in texts

    outcomes = {
        b.attributes[semconv.BRANCH_LABEL]: b.attributes[semconv.BRANCH_OUTCOME]
        for b in spans.kind(semconv.Kind.BRANCH)
    }
    assert outcomes == {
        "quitter": "completed",
        "waiter_0": "cancelled",
        "waiter_1": "cancelled",
        "waiter_2": "cancelled",
    }
    (quitter_branch,) = [
        b
        for b in spans.kind(semconv.Kind.BRANCH)
        if b.attributes[semconv.BRANCH_LABEL] == "quitter"
    ]
    assert quitter_branch.attributes[semconv.BRANCH_OUTCOME_REASON] == "escalated"


def plan(node_input: str) -> str:
    return f"plan for {node_input}"


def edit(node_input: dict[str, Any]) -> str:
    return "edited " + ", ".join(sorted(node_input))


async def test_a_workflow_fan_out_is_a_fork_with_one_branch_per_node(spans: Spans) -> None:
    forktrace.instrument("google-adk")
    cities = ["Oslo", "Lima", "Pune", "Kobe"]
    gate = Gate(len(cities))
    workers = tuple(weather_agents(cities, gate))
    flow = Workflow(name="survey", edges=[("START", plan, workers, JoinNode(name="join"), edit)])
    with forktrace.run("weather"):
        texts = await run_agent(flow)
    assert sorted(f"{city} done" for city in cities) == sorted(t for t in texts if "done" in t)
    assert gate.peak == len(cities)

    (fork,) = spans.kind(semconv.Kind.FORK)
    assert spans.parent(fork) is spans.one("invoke_workflow survey")
    assert fork.attributes[semconv.FORK_NAME] == "plan"
    assert fork.attributes[semconv.FORK_BRANCH_COUNT] == 4
    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    assert set(branches) == {worker.name for worker in workers}
    for name, branch in branches.items():
        assert spans.parent(branch) is fork
        assert branch.attributes[semconv.BRANCH_OUTCOME] == "completed"
        (agent,) = spans.children(branch)
        assert agent.name == f"invoke_agent {name}"
        for span in [agent, *_descendants(spans, agent)]:
            assert span.attributes[semconv.BRANCH_ID] == span_id(branch)
            assert span.attributes[semconv.AGENT_NAME] == name
    # The join and what follows it run after the fork, outside its branches.
    join = spans.one("invoke_node join")
    assert fork.end_time <= join.start_time
    assert semconv.BRANCH_ID not in join.attributes
    assert semconv.BRANCH_ID not in spans.one("invoke_node edit").attributes


async def test_a_failing_workflow_node_fails_its_branch(spans: Spans) -> None:
    forktrace.instrument("google-adk")

    def fine(node_input: str) -> str:
        return "fine"

    def broken(node_input: str) -> str:
        raise ValueError("node broke")

    flow = Workflow(name="flow", edges=[("START", plan, (fine, broken), JoinNode(name="join"))])
    with forktrace.run("failing"), pytest.raises(ValueError, match="node broke"):
        await run_agent(flow)  # ADK's own error, passed through untouched

    (fork,) = spans.kind(semconv.Kind.FORK)
    assert fork.end_time is not None
    outcomes = {
        b.attributes[semconv.BRANCH_LABEL]: b.attributes[semconv.BRANCH_OUTCOME]
        for b in spans.kind(semconv.Kind.BRANCH)
    }
    assert outcomes["broken"] == "failed"
    assert outcomes["fine"] in ("completed", "cancelled")
    (failed,) = [b for b in spans.kind(semconv.Kind.BRANCH) if b.name == "branch broken"]
    assert "node broke" in failed.attributes[semconv.BRANCH_OUTCOME_REASON]


async def test_a_fan_out_stopped_by_a_failure_still_ends_its_fork(spans: Spans) -> None:
    forktrace.instrument("google-adk")

    def broken(node_input: str) -> str:
        raise ValueError("node broke")

    def never(node_input: str) -> str:
        return "never runs"

    # One node at a time: the failure stops the workflow before the others start.
    flow = Workflow(
        name="flow",
        edges=[("START", plan, (broken, never), JoinNode(name="join"))],
        max_concurrency=1,
    )
    with forktrace.run("stopped"), pytest.raises(ValueError, match="node broke"):
        await run_agent(flow)

    (fork,) = spans.kind(semconv.Kind.FORK)
    (branch,) = spans.kind(semconv.Kind.BRANCH)
    assert branch.attributes[semconv.BRANCH_LABEL] == "broken"
    assert branch.attributes[semconv.BRANCH_OUTCOME] == "failed"
    assert spans.named("invoke_node never") == []
    assert fork.attributes[semconv.FORK_BRANCH_COUNT] == 1
