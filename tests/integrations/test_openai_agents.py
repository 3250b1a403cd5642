"""The OpenAI Agents SDK integration with a scripted Model subclass."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from integration_helpers import Spans, require, span_id

require("agents")

from agents import Agent, Model, ModelResponse, Runner, Usage, function_tool  # noqa: E402
from agents.tracing import generation_span, get_trace_provider  # noqa: E402
from openai.types.responses import (  # noqa: E402
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402

Reply = tuple[str, str | None, dict[str, Any] | None]  # (text, tool name, tool arguments)


class ScriptedModel(Model):
    """Answers from a script; records a generation span as custom models do."""

    def __init__(self, script: Callable[[str], Reply], name: str = "scripted-1") -> None:
        self._script = script
        self._name = name

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        last = input if isinstance(input, str) else json.dumps(input[-1], default=str)
        text, tool, arguments = self._script(last)
        await asyncio.sleep(0)  # let parallel runs interleave
        if tool is not None:
            call_id = f"call_{tool}"
            output: list[Any] = [
                ResponseFunctionToolCall(
                    type="function_call",
                    call_id=call_id,
                    name=tool,
                    arguments=json.dumps(arguments or {}),
                )
            ]
            chat_output = [
                {
                    "role": "assistant",
                    "reasoning_content": f"I should call {tool}",
                    "tool_calls": [
                        {
                            "id": call_id,
                            "type": "function",
                            "function": {"name": tool, "arguments": json.dumps(arguments or {})},
                        }
                    ],
                }
            ]
        else:
            output = [
                ResponseOutputMessage(
                    id="msg",
                    type="message",
                    role="assistant",
                    status="completed",
                    content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
                )
            ]
            chat_output = [
                {"role": "assistant", "content": text, "reasoning_content": f"answering {text}"}
            ]
        usage = Usage(requests=1, input_tokens=20, output_tokens=5, total_tokens=25)
        with generation_span(
            input=[{"role": "user", "content": last}],
            output=chat_output,
            model=self._name,
            usage={"input_tokens": 20, "output_tokens": 5},
        ):
            pass
        return ModelResponse(output=output, usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


@function_tool
def lookup_invoice(number: str) -> str:
    """Find an invoice."""
    return f"invoice {number}: paid"


def _billing_script(last: str) -> Reply:
    if "invoice 42: paid" in last:
        return "Your invoice is paid.", None, None
    return "", "lookup_invoice", {"number": "42"}


def _agents() -> Agent:
    billing = Agent(name="billing", model=ScriptedModel(_billing_script), tools=[lookup_invoice])
    support = Agent(name="support", model=ScriptedModel(lambda last: ("support here", None, None)))
    return Agent(
        name="triage",
        model=ScriptedModel(lambda last: ("", "transfer_to_billing", {})),
        handoffs=[billing, support],
    )


async def test_agents_tools_and_a_handoff_recorded_as_a_decision(spans: Spans) -> None:
    forktrace.instrument("openai-agents")
    with forktrace.run("helpdesk") as run:
        result = await Runner.run(_agents(), "was invoice 42 paid?")
    assert result.final_output == "Your invoice is paid."

    agents = {
        span.attributes[semconv.GEN_AI_AGENT_NAME]: span for span in spans.kind(semconv.Kind.AGENT)
    }
    assert set(agents) == {"triage", "billing"}
    for agent in agents.values():
        assert agent.attributes[semconv.RUN_ID] == run.id
        assert spans.parent(agent).name == "run helpdesk"

    (handoff,) = spans.kind(semconv.Kind.HANDOFF)
    assert handoff.attributes[semconv.HANDOFF_FROM] == "triage"
    assert handoff.attributes[semconv.HANDOFF_TO] == "billing"
    assert agents["triage"] in spans.ancestors(handoff)
    (decision,) = spans.kind(semconv.Kind.DECISION)
    assert spans.parent(decision) is handoff
    assert decision.attributes[semconv.DECISION_OPTIONS] == ("billing", "support")
    assert decision.attributes[semconv.DECISION_CHOSEN] == "billing"
    assert decision.attributes[semconv.DECISION_MAKER] == "model"

    (tool,) = spans.kind(semconv.Kind.TOOL)
    assert tool.name == "execute_tool lookup_invoice"
    assert json.loads(tool.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"number": "42"}
    assert tool.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "invoice 42: paid"
    assert tool.attributes[semconv.AGENT_NAME] == "billing"
    assert agents["billing"] in spans.ancestors(tool)

    llms = spans.kind(semconv.Kind.LLM)
    assert len(llms) == 3
    for llm in llms:
        assert llm.name == "chat scripted-1"
        assert llm.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 20
        assert llm.attributes[semconv.LLM_REASONING]
    final = max(llms, key=lambda span: span.start_time)
    assert final.attributes[semconv.LLM_REASONING] == "answering Your invoice is paid."
    assert final.attributes[semconv.AGENT_NAME] == "billing"


async def test_parallel_runs_in_a_fork_are_its_branches(spans: Spans) -> None:
    forktrace.instrument("openai-agents")
    labels = ["terse", "formal", "casual", "pirate", "haiku"]

    def script_for(label: str) -> Callable[[str], Reply]:
        return lambda last: (f"{label} answer", None, None)

    with forktrace.run("styles"), forktrace.fork("style", strategy="best_of") as fork:

        async def attempt(label: str) -> str:
            async with fork.branch(label):
                agent = Agent(name=f"writer-{label}", model=ScriptedModel(script_for(label)))
                return (await Runner.run(agent, "greet")).final_output

        outputs = await asyncio.gather(*(attempt(label) for label in labels))
        fork.choose("pirate", criterion="most fun")
    assert outputs == [f"{label} answer" for label in labels]

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    assert sorted(branches) == sorted(labels)
    for agent in spans.kind(semconv.Kind.AGENT):
        label = agent.attributes[semconv.GEN_AI_AGENT_NAME].removeprefix("writer-")
        branch = branches[label]
        assert spans.parent(agent) is branch
        (llm,) = spans.children(agent)
        assert llm.attributes[semconv.BRANCH_ID] == span_id(branch)
        assert llm.attributes[semconv.BRANCH_PATH] == branch.attributes[semconv.BRANCH_PATH]
        assert llm.attributes[semconv.LLM_REASONING] == f"answering {label} answer"
    (fork_span,) = spans.kind(semconv.Kind.FORK)
    outcomes = {
        e.attributes[semconv.BRANCH_LABEL]: e.attributes[semconv.BRANCH_OUTCOME]
        for e in fork_span.events
    }
    assert outcomes == {label: ("won" if label == "pirate" else "lost") for label in labels}


async def test_a_failing_tool_is_an_error_and_the_run_goes_on(spans: Spans) -> None:
    @function_tool
    def flaky(number: str) -> str:
        """Always fails."""
        raise RuntimeError("database down")

    def script(last: str) -> Reply:
        if "database down" in last or "error" in last.lower():
            return "sorry, try later", None, None
        return "", "flaky", {"number": "1"}

    forktrace.instrument("openai-agents")
    agent = Agent(name="clerk", model=ScriptedModel(script), tools=[flaky])
    result = await Runner.run(agent, "check 1")
    assert result.final_output == "sorry, try later"
    (tool,) = spans.kind(semconv.Kind.TOOL)
    assert tool.status.status_code.name == "ERROR"


async def test_uninstrument_removes_the_processor_and_keeps_the_sdks_own(spans: Spans) -> None:
    multi = get_trace_provider()._multi_processor
    before = multi._processors
    forktrace.instrument("openai-agents")
    assert forktrace.instrument("openai-agents") == []
    assert len(multi._processors) == len(before) + 1
    assert multi._processors[: len(before)] == before  # added beside, never replacing
    forktrace.uninstrument()
    assert multi._processors == before
    await Runner.run(_agents(), "was invoice 42 paid?")
    assert spans.all() == []


async def test_an_internal_error_never_breaks_the_run(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import openai_agents

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("forktrace bug")

    monkeypatch.setattr(openai_agents, "_generation_result", broken)
    monkeypatch.setattr(openai_agents, "start_span", broken)
    forktrace.instrument("openai-agents")
    result = await Runner.run(_agents(), "was invoice 42 paid?")
    assert result.final_output == "Your invoice is paid."


async def test_an_openai_model_call_is_one_llm_span_with_the_openai_integration_on(
    spans: Spans, openai_server: Any
) -> None:
    """The SDK's generation span is the llm span; the openai integration records none beside it."""
    from agents import OpenAIChatCompletionsModel
    from openai import AsyncOpenAI

    assert forktrace.instrument("openai-agents", "openai") == ["openai-agents", "openai"]
    client = AsyncOpenAI(base_url=f"{openai_server.url}/v1", api_key="test", max_retries=0)
    topics = ["tides", "winds", "waves", "currents"]

    with forktrace.run("survey"), forktrace.fork("topics", strategy="map") as fork:

        async def study(topic: str) -> str:
            async with fork.branch(topic):
                model = OpenAIChatCompletionsModel(model="gpt-test", openai_client=client)
                return (await Runner.run(Agent(name=topic, model=model), topic)).final_output

        outputs = await asyncio.gather(*(study(topic) for topic in topics))
    assert outputs == [f"answer: {topic}" for topic in topics]

    llms = spans.kind(semconv.Kind.LLM)
    assert len(llms) == 4  # one per call: tokens count once
    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    for llm in llms:
        agent = spans.parent(llm)
        topic = agent.attributes[semconv.GEN_AI_AGENT_NAME]
        assert llm.attributes[semconv.BRANCH_ID] == span_id(branches[topic])
        assert llm.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
        # The SDK's generation span drops the server's reasoning_content: the integration adds it.
        assert llm.attributes[semconv.LLM_REASONING] == f"thinking about {topic}"
        assert spans.children(llm) == []
