"""The AutoGen AgentChat integration with AutoGen's ReplayChatCompletionClient."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from integration_helpers import Spans, require, span_id

require("autogen_agentchat")

from autogen_agentchat.agents import AssistantAgent, BaseChatAgent  # noqa: E402
from autogen_agentchat.base import Response  # noqa: E402
from autogen_agentchat.conditions import (  # noqa: E402
    MaxMessageTermination,
    TextMentionTermination,
)
from autogen_agentchat.messages import TextMessage  # noqa: E402
from autogen_agentchat.teams import (  # noqa: E402
    DiGraphBuilder,
    GraphFlow,
    RoundRobinGroupChat,
    Swarm,
)
from autogen_agentchat.teams._group_chat._sequential_routed_agent import (  # noqa: E402
    SequentialRoutedAgent,
)
from autogen_core import CancellationToken, FunctionCall  # noqa: E402
from autogen_core.models import ChatCompletionClient, CreateResult, RequestUsage  # noqa: E402
from autogen_ext.models.replay import ReplayChatCompletionClient  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402

TOPICS = ["tides", "winds", "waves", "currents"]
TOOLS_OK = {
    "vision": False,
    "function_calling": True,
    "json_output": False,
    "family": "unknown",
    "structured_output": False,
}


async def look_up(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


async def broken_gauge(topic: str) -> str:
    """A tool that always fails."""
    raise ConnectionError(f"gauge for {topic} offline")


def _tool_call(topic: str, tool: str = "look_up") -> CreateResult:
    return CreateResult(
        finish_reason="function_calls",
        content=[
            FunctionCall(id=f"call_{topic}", name=tool, arguments=json.dumps({"topic": topic}))
        ],
        usage=RequestUsage(prompt_tokens=11, completion_tokens=7),
        cached=False,
        thought=f"I should look up {topic}",
    )


def _researcher(topic: str, tool: Any = look_up, **options: Any) -> AssistantAgent:
    """Thinks, calls a tool, then answers from the tool's result."""
    client = ReplayChatCompletionClient(
        [_tool_call(topic, tool.__name__), f"notes on {topic}"], model_info=TOOLS_OK
    )
    return AssistantAgent(
        topic, model_client=client, tools=[tool], reflect_on_tool_use=True, **options
    )


def _talker(name: str, replies: list[str]) -> AssistantAgent:
    return AssistantAgent(name, model_client=ReplayChatCompletionClient(replies))


def _last_said(result: Any, agent: str) -> Any:
    """What ``agent`` said last (GraphFlow appends its own stop message on some versions)."""
    return [m.content for m in result.messages if m.source == agent][-1]


def _agents(spans: Spans) -> list[Any]:
    """The agent spans of the test's agents (before 0.7, GraphFlow ends with a turn of
    an agent of its own, ``DiGraphStopAgent``)."""
    return [
        span
        for span in spans.kind(semconv.Kind.AGENT)
        if span.attributes[semconv.GEN_AI_AGENT_NAME] != "DiGraphStopAgent"
    ]


def _fan_out(workers: list[AssistantAgent]) -> GraphFlow:
    """planner -> every worker (concurrently) -> editor."""
    planner, editor = _talker("planner", ["plan: split it"]), _talker("editor", ["all merged"])
    builder = DiGraphBuilder()
    builder.add_node(planner).add_node(editor)
    for worker in workers:
        builder.add_node(worker).add_edge(planner, worker).add_edge(worker, editor)
    return GraphFlow(participants=builder.get_participants(), graph=builder.build())


async def test_graph_flow_fan_out_is_a_fork_with_one_branch_per_agent(spans: Spans) -> None:
    forktrace.instrument("autogen")
    with forktrace.run("survey") as run:
        result = await _fan_out([_researcher(topic) for topic in TOPICS]).run(task="survey")
    assert _last_said(result, "editor") == "all merged"

    team = spans.one("invoke_workflow GraphFlow")
    assert spans.parent(team).name == "run survey"
    (fork,) = spans.kind(semconv.Kind.FORK)
    assert team in spans.ancestors(fork)
    assert fork.attributes[semconv.FORK_BRANCH_COUNT] == 4
    assert fork.attributes[semconv.FORK_ID] == span_id(fork)
    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    assert set(branches) == set(TOPICS)
    outcomes = {
        e.attributes[semconv.BRANCH_LABEL]: e.attributes[semconv.BRANCH_OUTCOME]
        for e in fork.events
    }
    assert outcomes == dict.fromkeys(TOPICS, "completed")

    agents = {a.attributes[semconv.GEN_AI_AGENT_NAME]: a for a in _agents(spans)}
    assert set(agents) == {"planner", "editor", *TOPICS}
    for name in ("planner", "editor"):  # before and after the fan-out: outside the fork
        assert fork not in spans.ancestors(agents[name])
        assert team in spans.ancestors(agents[name])
        assert semconv.BRANCH_ID not in agents[name].attributes
    for topic in TOPICS:
        branch, agent = branches[topic], agents[topic]
        assert branch.attributes[semconv.BRANCH_OUTCOME] == "completed"
        assert spans.parent(branch) is fork
        assert spans.parent(agent) is branch  # AutoGen's own agent span, not a copy
        assert agent.attributes[semconv.AGENT_NAME] == topic
        first, second, tool = _work_of(spans, agent)
        assert (first.name, tool.name) == (
            "chat ReplayChatCompletionClient",
            "execute_tool look_up",
        )
        for span in (agent, first, second, tool):
            assert span.attributes[semconv.BRANCH_ID] == span_id(branch)
            assert span.attributes[semconv.FORK_ID] == span_id(fork)
            assert span.attributes[semconv.BRANCH_PATH] == branch.attributes[semconv.BRANCH_PATH]
            assert span.attributes[semconv.AGENT_NAME] == topic
        assert first.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
        assert first.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
        assert first.attributes[semconv.LLM_REASONING] == f"I should look up {topic}"
        (call,) = json.loads(first.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][1:]
        assert call["name"] == "look_up" and call["id"] == f"call_{topic}"
        assert tool.attributes[semconv.GEN_AI_TOOL_CALL_ID] == f"call_{topic}"
        assert json.loads(tool.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"topic": topic}
        assert tool.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == f"facts about {topic}"
        assert f"notes on {topic}" in second.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]
    assert len(spans.kind(semconv.Kind.LLM)) == 2 + 2 * len(TOPICS)  # one per model call
    for span in spans.all():
        if span.attributes.get(semconv.KIND):
            assert span.attributes[semconv.RUN_ID] == run.id


def _work_of(spans: Spans, agent: Any) -> tuple[Any, Any, Any]:
    """An agent's two model calls and its tool call, in time order."""
    children = [s for s in spans.children(agent) if s.attributes.get(semconv.KIND)]
    llms = [s for s in children if s.attributes[semconv.KIND] == "llm"]
    tools = [s for s in children if s.attributes[semconv.KIND] == "tool"]
    assert len(llms) == 2 and len(tools) == 1, [s.name for s in children]
    return llms[0], llms[1], tools[0]


async def test_turn_taking_teams_make_no_fork(spans: Spans) -> None:
    forktrace.instrument("autogen")
    team = RoundRobinGroupChat(
        [_talker("alice", ["hi bob"]), _talker("bob", ["hi alice"])],
        termination_condition=MaxMessageTermination(3),
    )
    with forktrace.run("chat"):
        result = await team.run(task="say hi")
    assert [m.source for m in result.messages] == ["user", "alice", "bob"]
    assert spans.kind(semconv.Kind.FORK) == []
    team_span = spans.one("invoke_workflow RoundRobinGroupChat")
    for agent in spans.kind(semconv.Kind.AGENT):
        assert team_span in spans.ancestors(agent)
        (llm,) = [s for s in spans.children(agent) if s.attributes.get(semconv.KIND) == "llm"]
        assert llm.attributes[semconv.AGENT_NAME] == agent.attributes[semconv.GEN_AI_AGENT_NAME]


async def test_teams_run_in_forktrace_fork_branches_land_in_them(spans: Spans) -> None:
    forktrace.instrument("autogen")

    async def chat(topic: str) -> str:
        team = RoundRobinGroupChat(
            [_talker(f"{topic}_a", [f"{topic} one"]), _talker(f"{topic}_b", [f"{topic} two"])],
            termination_condition=MaxMessageTermination(3),
        )
        return str((await team.run(task=topic)).messages[-1].content)

    with forktrace.run("teams"), forktrace.fork("topics", strategy="map") as fork:
        outputs = await fork.map(chat, TOPICS, labels=TOPICS)
    assert outputs == [f"{topic} two" for topic in TOPICS]

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    teams = spans.named("invoke_workflow RoundRobinGroupChat")
    assert len(teams) == 4
    for agent in spans.kind(semconv.Kind.AGENT) + spans.kind(semconv.Kind.LLM):
        topic = agent.attributes[semconv.AGENT_NAME].split("_")[0]
        branch = branches[topic]
        assert agent.attributes[semconv.BRANCH_ID] == span_id(branch)
        assert branch in spans.ancestors(agent)
    assert len(spans.kind(semconv.Kind.AGENT)) == 8


async def test_a_team_stream_closed_early_ends_the_team_span(spans: Spans) -> None:
    forktrace.instrument("autogen")
    team = RoundRobinGroupChat(
        [_talker("alice", ["hi bob"]), _talker("bob", ["hi alice"])],
        termination_condition=MaxMessageTermination(3),
    )
    with forktrace.run("peek"):
        stream = team.run_stream(task="say hi")
        first = await stream.__anext__()
        await stream.aclose()
    assert first.content == "say hi"
    team_span = spans.one("invoke_workflow RoundRobinGroupChat")
    assert team_span.status.status_code.name == "UNSET"


async def test_a_swarm_handoff_is_a_handoff_span(spans: Spans) -> None:
    forktrace.instrument("autogen")
    transfer = CreateResult(
        finish_reason="function_calls",
        content=[FunctionCall(id="call_h", name="transfer_to_bob", arguments="{}")],
        usage=RequestUsage(prompt_tokens=5, completion_tokens=2),
        cached=False,
    )
    alice = AssistantAgent(
        "alice",
        model_client=ReplayChatCompletionClient([transfer], model_info=TOOLS_OK),
        handoffs=["bob"],
    )
    team = Swarm(
        [alice, _talker("bob", ["done"])], termination_condition=TextMentionTermination("done")
    )
    with forktrace.run("swarm"):
        result = await team.run(task="who answers?")
    assert result.messages[-1].source == "bob"

    (handoff,) = spans.kind(semconv.Kind.HANDOFF)
    assert handoff.attributes[semconv.HANDOFF_FROM] == "alice"
    assert handoff.attributes[semconv.HANDOFF_TO] == "bob"
    assert handoff.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call_h"
    assert spans.parent(handoff).attributes[semconv.GEN_AI_AGENT_NAME] == "alice"
    assert spans.kind(semconv.Kind.TOOL) == []


async def test_a_failing_tool_is_an_error_and_the_agent_goes_on(spans: Spans) -> None:
    forktrace.instrument("autogen")
    with forktrace.run("gauge"):
        result = await _researcher("tides", broken_gauge).run(task="read the gauge")
    assert result.messages[-1].content == "notes on tides"  # the model saw the error, answered
    (tool,) = spans.kind(semconv.Kind.TOOL)
    assert tool.status.status_code.name == "ERROR"
    assert "gauge for tides offline" in tool.status.description
    assert tool.attributes[semconv.AGENT_NAME] == "tides"
    (agent,) = spans.kind(semconv.Kind.AGENT)
    assert spans.parent(tool) is agent
    assert spans.parent(agent).name == "run gauge"


async def test_a_failing_model_fails_its_branch_only(spans: Spans) -> None:
    forktrace.instrument("autogen")
    silent = AssistantAgent("silent", model_client=ReplayChatCompletionClient([]))
    workers = [_talker(topic, [f"notes on {topic}"]) for topic in TOPICS[:3]] + [silent]
    with forktrace.run("survey"), pytest.raises(RuntimeError, match="No more mock responses"):
        await _fan_out(workers).run(task="survey")

    (fork,) = spans.kind(semconv.Kind.FORK)
    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    failed = branches["silent"]
    assert failed.attributes[semconv.BRANCH_OUTCOME] == "failed"
    assert "No more mock responses" in failed.attributes[semconv.BRANCH_OUTCOME_REASON]
    (llm,) = [
        s for s in spans.kind(semconv.Kind.LLM) if s.attributes[semconv.AGENT_NAME] == "silent"
    ]
    assert llm.status.status_code.name == "ERROR"
    assert llm.attributes[semconv.BRANCH_ID] == span_id(failed)
    for topic in TOPICS[:3]:
        assert branches[topic].attributes[semconv.BRANCH_OUTCOME] == "completed"
    events = {
        e.attributes[semconv.BRANCH_LABEL]: e.attributes[semconv.BRANCH_OUTCOME]
        for e in fork.events
    }
    assert events["silent"] == "failed"


class _Slow(BaseChatAgent):
    """An agent whose turn waits until it is cancelled."""

    def __init__(self, name: str, started: list[str], all_started: asyncio.Event) -> None:
        super().__init__(name, "slow")
        self._started, self._all_started = started, all_started

    @property
    def produced_message_types(self) -> tuple[type, ...]:
        return (TextMessage,)

    async def on_messages(self, messages: Any, cancellation_token: CancellationToken) -> Response:
        self._started.append(self.name)
        if len(self._started) == len(TOPICS):
            self._all_started.set()
        wait = asyncio.ensure_future(asyncio.sleep(60))
        cancellation_token.link_future(wait)
        await wait
        return Response(chat_message=TextMessage(content="late", source=self.name))

    async def on_reset(self, cancellation_token: CancellationToken) -> None:
        pass


async def test_a_cancelled_team_cancels_its_branches_and_ends_the_fork(spans: Spans) -> None:
    forktrace.instrument("autogen")
    started: list[str] = []
    all_started = asyncio.Event()
    token = CancellationToken()
    flow = _fan_out([_Slow(topic, started, all_started) for topic in TOPICS])
    with forktrace.run("cancelled"):
        run = asyncio.ensure_future(flow.run(task="go", cancellation_token=token))
        await asyncio.wait_for(all_started.wait(), 30)
        token.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    (fork,) = spans.kind(semconv.Kind.FORK)  # ended, so exported
    branches = spans.kind(semconv.Kind.BRANCH)
    assert sorted(b.attributes[semconv.BRANCH_LABEL] for b in branches) == sorted(TOPICS)
    assert {b.attributes[semconv.BRANCH_OUTCOME] for b in branches} == {"cancelled"}
    assert {e.attributes[semconv.BRANCH_OUTCOME] for e in fork.events} == {"cancelled"}
    assert spans.one("invoke_workflow GraphFlow").status.status_code.name == "ERROR"


async def test_streamed_model_calls_and_clients_defined_after_instrument(spans: Spans) -> None:
    forktrace.instrument("autogen")

    class Cached(ReplayChatCompletionClient):
        """Defined after instrument(); wraps its parent's create_stream like a cache would."""

        async def create_stream(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            async for item in super().create_stream(*args, **kwargs):
                yield item

    agent = AssistantAgent(
        "streamer", model_client=Cached(["streamed answer"]), model_client_stream=True
    )
    with forktrace.run("stream"):
        result = await agent.run(task="go")
    assert result.messages[-1].content == "streamed answer"
    (llm,) = spans.kind(semconv.Kind.LLM)  # the subclass's call, its parent's inside it: one
    assert llm.attributes[semconv.AGENT_NAME] == "streamer"
    assert llm.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 2
    assert "streamed answer" in llm.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]


async def _completion(request: Any) -> Any:
    from aiohttp import web

    return web.json_response(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-4o-2024-08-06",  # what AutoGen expects gpt-4o to resolve to
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "from the server"},
                }
            ],
            "usage": {"prompt_tokens": 13, "completion_tokens": 3, "total_tokens": 16},
        }
    )


@pytest.mark.parametrize("with_openai", [False, True], ids=["autogen", "autogen+openai"])
async def test_an_openai_client_call_is_one_llm_span(spans: Spans, with_openai: bool) -> None:
    """With forktrace's openai integration on, it records AutoGen's OpenAI calls, not both."""
    require("autogen_ext.models.openai")
    from autogen_ext.models.openai import OpenAIChatCompletionClient
    from fake_providers import LocalServer

    forktrace.instrument("autogen", *(["openai"] if with_openai else []))
    with LocalServer({"/v1/chat/completions": _completion}) as server:
        client = OpenAIChatCompletionClient(
            model="gpt-4o", api_key="test", base_url=f"{server.url}/v1", max_retries=0
        )
        with forktrace.run("openai"):
            result = await AssistantAgent("asker", model_client=client).run(task="hello?")
    assert result.messages[-1].content == "from the server"

    (llm,) = spans.kind(semconv.Kind.LLM)
    assert llm.attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-4o"
    assert llm.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 13
    assert llm.attributes[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert spans.parent(llm) is spans.one("invoke_agent asker")
    assert llm.attributes[semconv.AGENT_NAME] == "asker"
    # The SDK integration reads the provider's answer: its model name; AutoGen's result has none.
    has_response_model = semconv.GEN_AI_RESPONSE_MODEL in llm.attributes
    assert has_response_model is with_openai


async def test_uninstrument_restores_autogen(spans: Spans) -> None:
    originals = (
        ReplayChatCompletionClient.__dict__["create"],
        ReplayChatCompletionClient.__dict__["create_stream"],
        SequentialRoutedAgent.__dict__["on_message_impl"],
    )
    hooks = ChatCompletionClient.__dict__.get("__init_subclass__")
    assert forktrace.instrument("autogen") == ["autogen"]
    assert forktrace.instrument("autogen") == []
    assert ReplayChatCompletionClient.__dict__["create"] is not originals[0]
    forktrace.uninstrument()
    assert (
        ReplayChatCompletionClient.__dict__["create"],
        ReplayChatCompletionClient.__dict__["create_stream"],
        SequentialRoutedAgent.__dict__["on_message_impl"],
    ) == originals
    assert ChatCompletionClient.__dict__.get("__init_subclass__") is hooks

    with forktrace.run("plain"):
        await _fan_out([_talker(t, [t]) for t in TOPICS]).run(task="go")
    kinds = {s.attributes.get(semconv.KIND) for s in spans.all()} - {None}
    assert kinds == {"run"}  # AutoGen's own spans flow, without forktrace's kinds or forks
    assert len(spans.all()) > 10


async def test_an_internal_error_never_breaks_the_agents(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import autogen as integration

    def broken(*args: Any) -> Any:
        raise RuntimeError("forktrace bug")

    monkeypatch.setattr(integration, "_llm_result", broken)
    monkeypatch.setattr(integration._FanOuts, "open", broken)
    monkeypatch.setattr(integration, "agent_lineage", broken)
    forktrace.instrument("autogen")
    with forktrace.run("survey"):
        result = await _fan_out([_researcher(topic) for topic in TOPICS]).run(task="survey")
    assert _last_said(result, "editor") == "all merged"
    assert len(_agents(spans)) == 6
    assert spans.kind(semconv.Kind.FORK) == []
