"""The LlamaIndex integration with LlamaIndex's MockFunctionCallingLLM."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from integration_helpers import Spans, assert_one_llm_span_in_each_branch, require, span_id

require("llama_index.core")

from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent  # noqa: E402
from llama_index.core.base.llms.types import (  # noqa: E402
    ChatMessage,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.llms.mock import MockFunctionCallingLLM  # noqa: E402
from llama_index.core.tools import FunctionTool  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402

TOPICS = ["tides", "winds", "waves", "currents"]


def look_up(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


def _researcher_llm() -> MockFunctionCallingLLM:
    def answer(messages: Any, **kwargs: Any) -> ChatMessage:
        observed = [m for m in messages if m.role == MessageRole.TOOL and "facts" in str(m.content)]
        if observed:
            return ChatMessage(role="assistant", content=f"notes: {observed[-1].content}")
        topic = next(t for t in TOPICS if any(t in str(m.content) for m in messages))
        return ChatMessage(
            role="assistant",
            blocks=[
                ThinkingBlock(content=f"I should look up {topic}"),
                TextBlock(text="Looking it up."),
                ToolCallBlock(
                    tool_call_id=f"c_{topic}", tool_name="look_up", tool_kwargs={"topic": topic}
                ),
            ],
        )

    return MockFunctionCallingLLM(response_generator=answer, is_chat_model=True)


def _researcher(name: str = "researcher") -> FunctionAgent:
    return FunctionAgent(
        name=name,
        description="researches a topic",
        tools=[FunctionTool.from_defaults(look_up)],
        llm=_researcher_llm(),
    )


def _run(workflow: Any, task: str) -> Any:
    async def go() -> Any:  # LlamaIndex workflows start inside a running loop
        return await workflow.run(task)

    return asyncio.run(go())


def test_an_agent_with_a_tool_call_and_thinking(spans: Spans) -> None:
    forktrace.instrument("llama-index")
    with forktrace.run("survey") as run:
        result = _run(_researcher(), "research tides")
    assert "facts about tides" in str(result)

    agent = spans.one("invoke_agent researcher")
    assert spans.parent(agent).name == "run survey"
    assert agent.attributes[semconv.KIND] == "agent"
    # Only agents, model calls and tools: LlamaIndex's many internal spans are gone.
    assert [s.name for s in spans.children(agent)] == [
        "chat MockFunctionCallingLLM",
        "execute_tool look_up",
        "chat MockFunctionCallingLLM",
    ]
    first = spans.children(agent)[0]
    assert first.attributes[semconv.KIND] == "llm"
    assert first.attributes[semconv.LLM_REASONING] == "I should look up tides"
    assert '"look_up"' in first.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]
    tool_span = spans.one("execute_tool look_up")
    assert tool_span.attributes[semconv.KIND] == "tool"
    assert tool_span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "facts about tides"
    assert tool_span.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "c_tides"
    assert '"tides"' in tool_span.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]
    for span in spans.children(agent):
        assert span.attributes[semconv.AGENT_NAME] == "researcher"
        assert span.attributes[semconv.RUN_ID] == run.id


def test_a_handoff_between_workflow_agents(spans: Spans) -> None:
    def plan(messages: Any, **kwargs: Any) -> ChatMessage:
        return ChatMessage(
            role="assistant",
            blocks=[
                ToolCallBlock(
                    tool_call_id="h1",
                    tool_name="handoff",
                    tool_kwargs={"to_agent": "researcher", "reason": "research tides"},
                )
            ],
        )

    planner = FunctionAgent(
        name="planner",
        description="plans",
        tools=[],
        llm=MockFunctionCallingLLM(response_generator=plan, is_chat_model=True),
        can_handoff_to=["researcher"],
    )
    workflow = AgentWorkflow(agents=[planner, _researcher()], root_agent="planner")
    forktrace.instrument("llama-index")
    with forktrace.run("survey"):
        result = _run(workflow, "research tides")
    assert "facts about tides" in str(result)

    root = spans.one("invoke_workflow AgentWorkflow")
    assert spans.parent(root).name == "run survey"
    handoff = spans.one("handoff planner -> researcher")
    assert handoff.attributes[semconv.KIND] == "handoff"
    assert handoff.attributes[semconv.HANDOFF_FROM] == "planner"
    assert handoff.attributes[semconv.HANDOFF_TO] == "researcher"
    assert handoff.attributes[semconv.AGENT_NAME] == "planner"
    turns = [s.attributes[semconv.GEN_AI_AGENT_NAME] for s in spans.kind(semconv.Kind.AGENT)]
    assert turns[0] == "planner" and set(turns[1:]) == {"researcher"}
    tool_span = spans.one("execute_tool look_up")
    assert tool_span.attributes[semconv.AGENT_NAME] == "researcher"


def test_workflow_runs_under_forktrace_fork_are_its_branches(spans: Spans) -> None:
    forktrace.instrument("llama-index")

    async def survey() -> list[Any]:
        with forktrace.fork("topics") as fork:
            return await fork.map(
                lambda_run,
                TOPICS,
                labels=TOPICS,
            )

    async def lambda_run(topic: str) -> Any:
        return await _researcher(f"{topic}_researcher").run(f"research {topic}")

    with forktrace.run("survey") as run:
        results = asyncio.run(survey())
    assert all(f"facts about {t}" in str(r) for t, r in zip(TOPICS, results, strict=True))

    (fork,) = spans.kind(semconv.Kind.FORK)
    branches = spans.kind(semconv.Kind.BRANCH)
    assert len(branches) == 4
    for branch in branches:
        assert spans.parent(branch) is fork
        topic = branch.attributes[semconv.BRANCH_LABEL]
        (agent,) = spans.children(branch)
        assert agent.name == f"invoke_agent {topic}_researcher"
        inside = [s for s in spans.all() if agent in spans.ancestors(s)]
        assert len(inside) == 3
        for span in [agent, *inside]:
            assert span.attributes[semconv.BRANCH_ID] == span_id(branch)
            assert span.attributes[semconv.RUN_ID] == run.id
        tool_span = next(s for s in inside if s.attributes[semconv.KIND] == "tool")
        assert tool_span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == f"facts about {topic}"
    outcomes = [e.attributes[semconv.BRANCH_OUTCOME] for e in fork.events]
    assert len(outcomes) == 4 and "failed" not in outcomes


def test_uninstrument_removes_the_handlers(spans: Spans) -> None:
    dispatcher = get_dispatcher()
    before = (list(dispatcher.span_handlers), list(dispatcher.event_handlers))
    forktrace.instrument("llama-index")
    assert forktrace.instrument("llama-index") == []
    forktrace.uninstrument()
    assert (list(dispatcher.span_handlers), list(dispatcher.event_handlers)) == before
    _run(_researcher(), "research tides")
    assert spans.all() == []


def test_an_internal_error_never_breaks_the_agent(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import llama_index as integration

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("forktrace bug")

    monkeypatch.setattr(integration, "_agent", broken)
    monkeypatch.setattr(integration, "_llm_result", broken)
    forktrace.instrument("llama-index")
    assert "facts about tides" in str(_run(_researcher(), "research tides"))


def test_nothing_is_left_behind(spans: Spans) -> None:
    from forktrace.integrations import _active

    forktrace.instrument("llama-index")
    _run(_researcher(), "research tides")
    recorder = _active["llama-index"].recorder
    assert len(recorder.spans) == 0 and not recorder._llm_open


@pytest.mark.parametrize("method", ["chat", "stream_chat", "achat"])
def test_an_openai_llm_call_is_one_llm_span_with_the_openai_integration_on(
    spans: Spans, openai_server: Any, method: str
) -> None:
    """LlamaIndex's llm span is the one; the openai integration records none beside it."""
    require("llama_index.llms.openai")
    from llama_index.llms.openai import OpenAI

    assert forktrace.instrument("llama-index", "openai") == ["llama-index", "openai"]
    llm = OpenAI(
        model="gpt-4o-mini", api_base=f"{openai_server.url}/v1", api_key="test", max_retries=0
    )

    def ask(topic: str) -> str:
        messages = [ChatMessage(role="user", content=topic)]
        if method == "stream_chat":
            return [chunk for chunk in llm.stream_chat(messages)][-1].message.content
        if method == "achat":
            return asyncio.run(llm.achat(messages)).message.content
        return llm.chat(messages).message.content

    with forktrace.run("survey"), forktrace.fork("topics") as fork:
        answers = fork.map(ask, TOPICS, labels=TOPICS)
    assert answers == [f"answer: {topic}" for topic in TOPICS]

    streamed = method == "stream_chat"  # a stream reports no usage here
    llms = assert_one_llm_span_in_each_branch(
        spans, branches=4, input_tokens=None if streamed else 11
    )
    if not streamed:
        for span in llms:
            assert span.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-test-2026"
