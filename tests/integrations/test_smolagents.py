"""The smolagents integration with a scripted Model subclass."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from integration_helpers import Spans, assert_one_llm_span_in_each_branch, require, span_id

require("smolagents")

from smolagents import ToolCallingAgent, tool  # noqa: E402
from smolagents.agents import MultiStepAgent  # noqa: E402
from smolagents.models import (  # noqa: E402
    ChatMessage,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    MessageRole,
    Model,
)
from smolagents.monitoring import TokenUsage  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402

TOPICS = ["tides", "winds", "waves", "currents"]


def _call(name: str, arguments: dict[str, Any], call_id: str) -> ChatMessageToolCall:
    return ChatMessageToolCall(
        function=ChatMessageToolCallFunction(name=name, arguments=arguments),
        id=call_id,
        type="function",
    )


class ScriptedModel(Model):
    """Answers with the next scripted turn: text (reasoning) and tool calls."""

    def __init__(self, turns: list[tuple[str, list[ChatMessageToolCall]]]) -> None:
        super().__init__(model_id="scripted-1")
        self._turns = iter(turns)
        self._lock = threading.Lock()

    def generate(self, messages: Any, **kwargs: Any) -> ChatMessage:
        with self._lock:
            content, calls = next(self._turns)
        return ChatMessage(
            role=MessageRole.ASSISTANT,
            content=content,
            tool_calls=calls,
            token_usage=TokenUsage(input_tokens=40, output_tokens=7),
        )


@tool
def look_up(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: what to look up.
    """
    if topic == "storms":
        raise ValueError("no data on storms")
    return f"facts about {topic}"


def _researcher(topics: list[str], name: str = "researcher") -> ToolCallingAgent:
    turns = [
        (
            f"I should look up {', '.join(topics)}",
            [_call("look_up", {"topic": t}, f"call_{t}") for t in topics],
        ),
        ("", [_call("final_answer", {"answer": f"notes on {' '.join(topics)}"}, "call_final")]),
    ]
    return ToolCallingAgent(
        tools=[look_up],
        model=ScriptedModel(turns),
        name=name,
        description="researches topics",
        max_steps=4,
        max_tool_threads=4,
        verbosity_level=0,
    )


def test_an_agent_with_a_tool_call_and_its_reasoning(spans: Spans) -> None:
    forktrace.instrument("smolagents")
    with forktrace.run("survey") as run:
        answer = _researcher(["tides"]).run("research tides")
    assert answer == "notes on tides"

    agent = spans.one("invoke_agent researcher")
    assert spans.parent(agent).name == "run survey"
    assert agent.attributes[semconv.KIND] == "agent"
    assert [s.name for s in spans.children(agent)] == [
        "chat scripted-1",
        "execute_tool look_up",
        "chat scripted-1",
        "execute_tool final_answer",
    ]
    first = spans.children(agent)[0]
    assert first.attributes[semconv.KIND] == "llm"
    assert first.attributes[semconv.LLM_REASONING] == "I should look up tides"
    assert first.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 40
    assert '"look_up"' in first.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]
    tool_span = spans.one("execute_tool look_up")
    assert tool_span.attributes[semconv.KIND] == "tool"
    assert tool_span.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"topic": "tides"}'
    assert tool_span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "facts about tides"
    for span in spans.children(agent):
        assert span.attributes[semconv.AGENT_NAME] == "researcher"
        assert span.attributes[semconv.RUN_ID] == run.id
    assert not spans.kind(semconv.Kind.FORK)  # one call at a time is no fork


def test_parallel_tool_calls_are_branches_of_one_fork(spans: Spans) -> None:
    forktrace.instrument("smolagents")
    with forktrace.run("survey") as run:
        answer = _researcher([*TOPICS, "storms"]).run("research everything")
    assert answer.startswith("notes on tides")

    (fork,) = spans.kind(semconv.Kind.FORK)
    agent = spans.one("invoke_agent researcher")
    assert spans.parent(fork) is agent
    assert fork.attributes[semconv.FORK_BRANCH_COUNT] == 5
    branches = spans.kind(semconv.Kind.BRANCH)
    assert len(branches) == 5
    topics = set()
    for branch in branches:
        assert spans.parent(branch) is fork  # none nested in another, none detached
        (tool_span,) = spans.children(branch)
        assert tool_span.name == "execute_tool look_up"
        assert tool_span.attributes[semconv.BRANCH_ID] == span_id(branch)
        assert tool_span.attributes[semconv.AGENT_NAME] == "researcher"
        assert tool_span.attributes[semconv.RUN_ID] == run.id
        topic = tool_span.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS].split('"')[-2]
        topics.add(topic)
        if topic != "storms":
            assert tool_span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == f"facts about {topic}"
    assert topics == {*TOPICS, "storms"}
    outcomes = sorted(e.attributes[semconv.BRANCH_OUTCOME] for e in fork.events)
    assert outcomes == ["completed"] * 4 + ["failed"]
    assert sorted(b.attributes[semconv.BRANCH_PATH] for b in branches) == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]


def test_a_managed_agent_is_a_delegation(spans: Spans) -> None:
    forktrace.instrument("smolagents")
    researcher = _researcher(["tides"])
    manager = ToolCallingAgent(
        tools=[],
        managed_agents=[researcher],
        model=ScriptedModel(
            [
                ("The researcher knows", [_call("researcher", {"task": "research tides"}, "c1")]),
                ("", [_call("final_answer", {"answer": "summary"}, "c2")]),
            ]
        ),
        name="manager",
        verbosity_level=0,
    )
    with forktrace.run("survey"):
        assert manager.run("survey tides") == "summary"

    manager_span = spans.one("invoke_agent manager")
    delegate = spans.one("delegate researcher")
    assert spans.parent(delegate) is manager_span
    assert delegate.attributes[semconv.KIND] == "handoff"
    assert delegate.attributes[semconv.HANDOFF_FROM] == "manager"
    assert delegate.attributes[semconv.HANDOFF_TO] == "researcher"
    assert delegate.attributes[semconv.AGENT_NAME] == "manager"
    (inner,) = spans.children(delegate)
    assert inner.name == "invoke_agent researcher"
    for span in spans.all():
        if inner in spans.ancestors(span):
            assert span.attributes[semconv.AGENT_NAME] == "researcher"


def test_several_agents_under_forktrace_fork_stay_in_their_branches(spans: Spans) -> None:
    forktrace.instrument("smolagents")
    with forktrace.run("survey"), forktrace.fork("topics") as fork:
        answers = fork.map(
            lambda topic: _researcher([topic], f"{topic}_researcher").run(f"research {topic}"),
            TOPICS,
            labels=TOPICS,
        )
    assert answers == [f"notes on {t}" for t in TOPICS]
    for branch in spans.kind(semconv.Kind.BRANCH):
        (agent,) = spans.children(branch)
        assert agent.name == f"invoke_agent {branch.attributes[semconv.BRANCH_LABEL]}_researcher"
        for span in spans.children(agent):
            assert span.attributes[semconv.BRANCH_ID] == span_id(branch)


def test_uninstrument_restores_smolagents(spans: Spans) -> None:
    run = MultiStepAgent.run
    execute = ToolCallingAgent.execute_tool_call
    generate = ScriptedModel.generate
    forktrace.instrument("smolagents")
    _researcher(["tides"]).run("research tides")
    assert ScriptedModel.generate is not generate
    forktrace.uninstrument()
    assert MultiStepAgent.run is run
    assert ToolCallingAgent.execute_tool_call is execute
    assert ScriptedModel.generate is generate
    spans.clear()
    _researcher(TOPICS).run("research")
    assert spans.all() == []


def test_an_internal_error_never_breaks_the_agent(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import smolagents as integration

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("forktrace bug")

    monkeypatch.setattr(integration, "_start_agent", broken)
    monkeypatch.setattr(integration, "_start_tool", broken)
    monkeypatch.setattr(integration, "ForkSpans", broken)
    forktrace.instrument("smolagents")
    assert _researcher(TOPICS).run("research").startswith("notes on tides")


@pytest.mark.parametrize("streamed", [False, True], ids=["generate", "generate_stream"])
def test_an_openai_server_model_call_is_one_llm_span_with_the_openai_integration_on(
    spans: Spans, openai_server: Any, streamed: bool
) -> None:
    """smolagents' llm span is the one; the openai integration records none inside it."""
    require("openai")
    from smolagents import OpenAIServerModel

    assert forktrace.instrument("smolagents", "openai") == ["smolagents", "openai"]
    model = OpenAIServerModel("gpt-test", api_base=f"{openai_server.url}/v1", api_key="test")

    def ask(topic: str) -> str:
        messages = [ChatMessage(role=MessageRole.USER, content=[{"type": "text", "text": topic}])]
        if streamed:
            return "".join(delta.content or "" for delta in model.generate_stream(messages))
        return model.generate(messages).content

    with forktrace.run("survey"), forktrace.fork("topics") as fork:
        answers = fork.map(ask, TOPICS, labels=TOPICS)
    assert answers == [f"answer: {topic}" for topic in TOPICS]

    assert_one_llm_span_in_each_branch(spans, branches=4)
