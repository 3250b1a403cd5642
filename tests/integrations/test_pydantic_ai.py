"""The Pydantic AI integration with Pydantic AI's own FunctionModel and TestModel."""

from __future__ import annotations

import json
from typing import Any

import pytest
from integration_helpers import Spans, require, span_id

require("pydantic_ai")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import ModelResponse, TextPart, ThinkingPart, ToolCallPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402
from pydantic_ai.models.test import TestModel  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402


def _researcher() -> Agent:
    return Agent(TestModel(custom_output_text="notes on tides"), name="researcher")


def _writer() -> Agent:
    """Thinks, delegates research to another agent through a tool, then answers."""
    researcher = _researcher()

    def model(messages: list[Any], info: AgentInfo) -> ModelResponse:
        if len(messages) == 1:
            return ModelResponse(
                parts=[
                    ThinkingPart(content="I need research first"),
                    ToolCallPart(
                        tool_name="research", args={"topic": "tides"}, tool_call_id="call_1"
                    ),
                ]
            )
        return ModelResponse(parts=[TextPart("An essay on tides.")])

    writer = Agent(FunctionModel(model), name="writer")

    @writer.tool_plain
    async def research(topic: str) -> str:
        """Ask the researcher."""
        return (await researcher.run(f"research {topic}")).output

    return writer


async def test_agent_model_calls_tools_and_delegation(spans: Spans) -> None:
    forktrace.instrument("pydantic-ai")
    with forktrace.run("essay") as run:
        result = await _writer().run("write about tides")
    assert result.output == "An essay on tides."

    agents = {s.attributes[semconv.GEN_AI_AGENT_NAME]: s for s in spans.kind(semconv.Kind.AGENT)}
    assert set(agents) == {"writer", "researcher"}
    writer, researcher = agents["writer"], agents["researcher"]
    assert spans.parent(writer).name == "run essay"
    assert writer.attributes[semconv.RUN_ID] == run.id

    (tool,) = spans.kind(semconv.Kind.TOOL)
    assert tool.attributes[semconv.GEN_AI_TOOL_NAME] == "research"
    assert tool.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call_1"
    assert tool.attributes[semconv.AGENT_NAME] == "writer"
    assert spans.parent(tool) is writer
    # Delegation: the researcher runs inside the writer's tool call.
    assert spans.parent(researcher) is tool

    llms = spans.kind(semconv.Kind.LLM)
    assert len(llms) == 3  # Pydantic AI's own spans, no duplicates
    by_agent = sorted(llm.attributes[semconv.AGENT_NAME] for llm in llms)
    assert by_agent == ["researcher", "writer", "writer"]
    first = min(
        (llm for llm in llms if llm.attributes[semconv.AGENT_NAME] == "writer"),
        key=lambda s: s.start_time,
    )
    parts = json.loads(first.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["parts"]
    assert {"type": "thinking", "content": "I need research first"} in parts
    for span in spans.all():
        assert span.attributes[semconv.RUN_ID] == run.id


async def test_parallel_agent_runs_in_a_fork_are_its_branches(spans: Spans) -> None:
    forktrace.instrument()
    topics = ["tides", "winds", "waves", "currents"]

    async def study(topic: str) -> str:
        agent = Agent(TestModel(custom_output_text=f"notes on {topic}"), name=f"study-{topic}")
        return (await agent.run(topic)).output

    with forktrace.run("survey"), forktrace.fork("topics", strategy="map") as fork:
        outputs = await fork.map(study, topics, labels=topics)
    assert outputs == [f"notes on {topic}" for topic in topics]

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    for agent in spans.kind(semconv.Kind.AGENT):
        topic = agent.attributes[semconv.GEN_AI_AGENT_NAME].removeprefix("study-")
        branch = branches[topic]
        assert spans.parent(agent) is branch
        for llm in spans.children(agent):
            assert llm.attributes[semconv.KIND] == "llm"
            assert llm.attributes[semconv.BRANCH_ID] == span_id(branch)
            assert llm.attributes[semconv.AGENT_NAME] == f"study-{topic}"
    assert len(spans.kind(semconv.Kind.AGENT)) == 4


def test_uninstrument_restores_the_instrumentation_default(spans: Spans) -> None:
    before = Agent._instrument_default
    forktrace.instrument("pydantic-ai")
    assert forktrace.instrument("pydantic-ai") == []
    assert Agent._instrument_default is not before
    forktrace.uninstrument()
    assert Agent._instrument_default is before
    _researcher().run_sync("anything")
    assert spans.all() == []


def test_an_internal_error_never_breaks_the_agent(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import pydantic_ai as integration

    class Broken(dict):
        def get(self, *args: Any) -> Any:
            raise RuntimeError("forktrace bug")

    monkeypatch.setattr(integration, "_KINDS", Broken())
    forktrace.instrument("pydantic-ai")
    assert _researcher().run_sync("anything").output == "notes on tides"
    assert spans.kind(semconv.Kind.AGENT) == []
    assert len(spans.all()) >= 2  # Pydantic AI's spans still flow


async def test_an_openai_model_call_is_one_llm_span_with_the_openai_integration_on(
    spans: Spans, openai_server: Any
) -> None:
    """Pydantic AI's chat span is the llm span; the openai integration adds to it, once."""
    require("openai")
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    assert forktrace.instrument("pydantic-ai", "openai") == ["pydantic-ai", "openai"]
    provider = OpenAIProvider(base_url=f"{openai_server.url}/v1", api_key="test")
    topics = ["tides", "winds", "waves", "currents"]

    async def study(topic: str) -> str:
        agent = Agent(OpenAIChatModel("gpt-test", provider=provider), name=f"study-{topic}")
        return (await agent.run(topic)).output

    with forktrace.run("survey"), forktrace.fork("topics", strategy="map") as fork:
        outputs = await fork.map(study, topics, labels=topics)
    assert outputs == [f"answer: {topic}" for topic in topics]

    llms = spans.kind(semconv.Kind.LLM)
    assert len(llms) == 4  # one per call: tokens count once
    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    for llm in llms:
        topic = llm.attributes[semconv.AGENT_NAME].removeprefix("study-")
        assert spans.parent(llm).attributes[semconv.GEN_AI_AGENT_NAME] == f"study-{topic}"
        assert llm.attributes[semconv.BRANCH_ID] == span_id(branches[topic])
        assert llm.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
        assert llm.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
        assert llm.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-test-2026"
        assert spans.children(llm) == []  # no span of the openai integration inside it
