"""The LangGraph / LangChain integration with LangChain's own fake chat models."""

from __future__ import annotations

import json
import operator
import warnings
from typing import Annotated, Any, TypedDict

import pytest
from integration_helpers import Spans, require, span_id

require("langgraph")

from langchain_core.callbacks import CallbackManager  # noqa: E402
from langchain_core.language_models.fake_chat_models import (  # noqa: E402
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langchain_core.tracers import context as tracer_context  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402
from langgraph.types import Send  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402


def _thinking_reply(thought: str, answer: str, **extra: Any) -> AIMessage:
    return AIMessage(
        content=[{"type": "reasoning", "reasoning": thought}, {"type": "text", "text": answer}],
        usage_metadata={
            "input_tokens": 10,
            "output_tokens": 6,
            "total_tokens": 16,
            "output_token_details": {"reasoning": 2},
        },
        **extra,
    )


class ToolCallingFake(GenericFakeChatModel):
    """LangChain's fake chat model, accepting tools as a real one does."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


class Research(TypedDict, total=False):
    topic: str
    item: int
    notes: Annotated[list, operator.add]


def _model() -> FakeMessagesListChatModel:
    return FakeMessagesListChatModel(responses=[_thinking_reply("weigh it", "a note")])


def _parallel_graph(fail: str | None = None) -> Any:
    """plan -> four researchers in one superstep -> decide."""
    model = _model()
    graph = StateGraph(Research)
    graph.add_node("plan", lambda state: {})

    def researcher(name: str) -> Any:
        def run(state: Research) -> Research:
            if name == fail:
                raise ValueError(f"{name} could not finish")
            reply = model.invoke(f"research {state['topic']} as {name}")
            return {"notes": [f"{name}: {reply.text}"]}

        return run

    names = ["alpha", "beta", "gamma", "delta"]
    for name in names:
        graph.add_node(name, researcher(name))
        graph.add_edge("plan", name)
    graph.add_node("decide", lambda state: {"notes": ["decided"]})
    graph.add_edge(START, "plan")
    graph.add_edge(names, "decide")
    graph.add_edge("decide", END)
    return graph.compile(name="researchers")


def test_parallel_nodes_of_a_superstep_are_a_fork_joined_by_the_next_node(spans: Spans) -> None:
    forktrace.instrument("langgraph")
    with forktrace.run("research") as run:
        result = _parallel_graph().invoke({"topic": "tides", "notes": []})
    assert len(result["notes"]) == 5

    (agent,) = spans.kind(semconv.Kind.AGENT)
    assert agent.name == "invoke_agent researchers"
    assert agent.attributes[semconv.RUN_ID] == run.id
    assert spans.parent(agent).name == "run research"

    (fork,) = spans.kind(semconv.Kind.FORK)
    assert spans.parent(fork) is agent
    assert fork.attributes[semconv.FORK_STRATEGY] == "all"
    assert fork.attributes[semconv.FORK_BRANCH_COUNT] == 4
    assert fork.attributes["langgraph.join_node"] == "decide"
    decide = spans.one("node decide")
    assert spans.parent(decide) is agent  # the join is after the fork, not in it
    assert fork.end_time <= decide.start_time + 1

    branches = spans.kind(semconv.Kind.BRANCH)
    assert sorted(b.attributes[semconv.BRANCH_LABEL] for b in branches) == [
        "alpha",
        "beta",
        "delta",
        "gamma",
    ]
    assert sorted(b.attributes[semconv.BRANCH_PATH] for b in branches) == ["0", "1", "2", "3"]
    for branch in branches:
        assert spans.parent(branch) is fork
        assert branch.attributes[semconv.FORK_ID] == span_id(fork)
        (node,) = spans.children(branch)
        assert node.name == f"node {branch.attributes[semconv.BRANCH_LABEL]}"
        (llm,) = spans.children(node)
        # Each model call sits in its own branch: not in a sibling's, not detached.
        assert llm.attributes[semconv.KIND] == "llm"
        assert (
            branch.attributes[semconv.BRANCH_LABEL] in llm.attributes[semconv.GEN_AI_INPUT_MESSAGES]
        )
        assert llm.attributes[semconv.BRANCH_ID] == span_id(branch)
        assert llm.attributes[semconv.AGENT_NAME] == "researchers"
        assert llm.attributes[semconv.LLM_REASONING] == "weigh it"
        assert llm.attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 2
    outcomes = [e.attributes[semconv.BRANCH_OUTCOME] for e in fork.events]
    assert outcomes == ["completed"] * 4


def test_a_failed_branch_is_recorded_failed_and_the_error_reaches_the_caller(spans: Spans) -> None:
    forktrace.instrument("langgraph")
    with pytest.raises(ValueError, match="gamma could not finish"), forktrace.run("research"):
        _parallel_graph(fail="gamma").invoke({"topic": "tides", "notes": []})
    (fork,) = spans.kind(semconv.Kind.FORK)
    outcomes = {
        e.attributes[semconv.BRANCH_LABEL]: e.attributes[semconv.BRANCH_OUTCOME]
        for e in fork.events
    }
    assert outcomes["gamma"] == "failed"
    gamma = next(
        b for b in spans.kind(semconv.Kind.BRANCH) if b.attributes[semconv.BRANCH_LABEL] == "gamma"
    )
    assert "ValueError" in gamma.attributes[semconv.BRANCH_OUTCOME_REASON]
    (agent,) = spans.kind(semconv.Kind.AGENT)
    assert agent.status.status_code.name == "ERROR"


def _send_graph(count: int) -> Any:
    model = _model()
    graph = StateGraph(Research)
    graph.add_node("split", lambda state: {})
    graph.add_node(
        "worker",
        lambda state: {"notes": [model.invoke(f"item {state['item']}").text]},
    )
    graph.add_node("merge", lambda state: {})
    graph.add_edge(START, "split")
    graph.add_conditional_edges(
        "split", lambda state: [Send("worker", {"item": i}) for i in range(count)]
    )
    graph.add_edge("worker", "merge")
    graph.add_edge("merge", END)
    return graph.compile(name="fanout")


async def test_send_fan_out_is_a_map_fork_async(spans: Spans) -> None:
    forktrace.instrument("langgraph")
    with forktrace.run("fan"):
        result = await _send_graph(5).ainvoke({"notes": []})
    assert len(result["notes"]) == 5
    (fork,) = spans.kind(semconv.Kind.FORK)
    assert fork.attributes[semconv.FORK_STRATEGY] == "map"
    assert fork.attributes["langgraph.join_node"] == "merge"
    branches = spans.kind(semconv.Kind.BRANCH)
    assert sorted(b.attributes[semconv.BRANCH_LABEL] for b in branches) == [
        f"worker[{i}]" for i in range(5)
    ]
    items = set()
    for branch in branches:
        (node,) = spans.children(branch)
        (llm,) = spans.children(node)
        items.add(
            json.loads(llm.attributes[semconv.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"]
        )
    assert items == {f"item {i}" for i in range(5)}


def test_a_tool_calling_agent_records_model_calls_and_tools(spans: Spans) -> None:
    from langgraph.prebuilt import create_react_agent

    model = ToolCallingFake(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[{"id": "call_7", "name": "get_weather", "args": {"city": "Oslo"}}],
                ),
                _thinking_reply("the tool said sunny", "It is sunny in Oslo."),
            ]
        )
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(model, [get_weather], name="weather_agent")
    forktrace.instrument()
    with forktrace.run("ask"):
        agent.invoke({"messages": [("user", "weather in Oslo?")]})

    (agent_span,) = spans.kind(semconv.Kind.AGENT)
    assert agent_span.attributes[semconv.GEN_AI_AGENT_NAME] == "weather_agent"
    (tool_span,) = spans.kind(semconv.Kind.TOOL)
    attrs = tool_span.attributes
    assert attrs[semconv.GEN_AI_TOOL_NAME] == "get_weather"
    assert attrs[semconv.GEN_AI_TOOL_CALL_ID] == "call_7"
    assert json.loads(attrs[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) == {"city": "Oslo"}
    assert attrs[semconv.GEN_AI_TOOL_CALL_RESULT] == "sunny in Oslo"
    assert attrs[semconv.AGENT_NAME] == "weather_agent"
    assert agent_span in spans.ancestors(tool_span)
    first, second = sorted(spans.kind(semconv.Kind.LLM), key=lambda s: s.start_time)
    assert '"name": "get_weather"' in first.attributes[semconv.GEN_AI_OUTPUT_MESSAGES]
    assert second.attributes[semconv.LLM_REASONING] == "the tool said sunny"
    assert first.start_time < tool_span.start_time < second.start_time


def test_graphs_run_in_parallel_branches_stay_in_their_branch(spans: Spans) -> None:
    forktrace.instrument("langgraph")
    app = _send_graph(2)
    with forktrace.run("compare"), forktrace.fork("attempts") as fork:
        fork.map(
            lambda i: app.invoke({"notes": []}), range(4), labels=[f"try{i}" for i in range(4)]
        )

    outer = {
        span_id(b): b
        for b in spans.kind(semconv.Kind.BRANCH)
        if b.attributes[semconv.BRANCH_LABEL].startswith("try")
    }
    agents = spans.kind(semconv.Kind.AGENT)
    assert len(agents) == 4
    assert {span_id(spans.parent(agent)) for agent in agents} == set(outer)
    for agent in agents:
        branch = spans.parent(agent)
        (inner_fork,) = [
            s for s in spans.children(agent) if s.attributes.get(semconv.KIND) == "fork"
        ]
        for inner in spans.children(inner_fork):
            # Nested branch paths extend the outer branch's path.
            assert inner.attributes[semconv.BRANCH_PATH].startswith(
                branch.attributes[semconv.BRANCH_PATH] + "."
            )
            for llm in spans.children(spans.children(inner)[0]):
                assert llm.attributes[semconv.BRANCH_ID] == span_id(inner)


def test_uninstrument_removes_the_handler(spans: Spans) -> None:
    hooks_before = list(tracer_context._configure_hooks)
    forktrace.instrument("langgraph")
    assert forktrace.instrument("langgraph") == []
    assert any(
        type(h).__name__ == "ForktraceCallbackHandler" for h in CallbackManager.configure().handlers
    )
    forktrace.uninstrument("langgraph")
    assert tracer_context._configure_hooks == hooks_before
    assert not any(
        type(h).__name__ == "ForktraceCallbackHandler" for h in CallbackManager.configure().handlers
    )
    _parallel_graph().invoke({"topic": "x", "notes": []})
    assert spans.all() == []


def test_an_internal_error_never_breaks_the_graph(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import langchain

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("forktrace bug")

    monkeypatch.setattr(langchain, "_llm_result", broken)
    monkeypatch.setattr(langchain, "_emit_fork", broken)
    forktrace.instrument("langgraph")
    result = _parallel_graph().invoke({"topic": "tides", "notes": []})
    assert len(result["notes"]) == 5


def test_nothing_is_left_behind_after_runs(spans: Spans) -> None:
    from forktrace.integrations import _active

    forktrace.instrument("langgraph")
    _parallel_graph().invoke({"topic": "tides", "notes": []})
    with pytest.raises(ValueError):
        _parallel_graph(fail="beta").invoke({"topic": "tides", "notes": []})
    assert _active["langgraph"].handler.pending() == 0


# --- a model call seen by LangChain and by the provider SDK integration: recorded once ---


def _chat_openai(server: Any) -> Any:
    require("langchain_openai")
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model="gpt-test",
        api_key="test",
        base_url=f"{server.url}/v1",
        max_retries=0,
        stream_usage=True,
    )


def _openai_graph(model: Any, mode: str) -> Any:
    """plan -> four researchers asking ChatOpenAI in one superstep (sync, async or streamed)."""
    graph = StateGraph(Research)
    graph.add_node("plan", lambda state: {})

    def researcher(name: str) -> Any:
        def prompt(state: Research) -> str:
            return f"research {state['topic']} as {name}"

        def run(state: Research) -> Research:
            if mode == "stream":
                chunks = list(model.stream(prompt(state)))
                return {"notes": ["".join(chunk.text for chunk in chunks)]}
            return {"notes": [model.invoke(prompt(state)).text]}

        async def arun(state: Research) -> Research:
            return {"notes": [(await model.ainvoke(prompt(state))).text]}

        return arun if mode == "async" else run

    names = ["alpha", "beta", "gamma", "delta"]
    for name in names:
        graph.add_node(name, researcher(name))
        graph.add_edge("plan", name)
    graph.add_edge(START, "plan")
    graph.add_edge(names, END)
    return graph.compile(name="researchers")


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
async def test_a_chat_openai_call_is_one_llm_span_with_the_openai_integration_on(
    spans: Spans, openai_server: Any, mode: str
) -> None:
    assert forktrace.instrument("langgraph", "openai") == ["langgraph", "openai"]
    graph = _openai_graph(_chat_openai(openai_server), mode)
    with forktrace.run("research"):
        state = {"topic": "tides", "notes": []}
        result = await graph.ainvoke(state) if mode == "async" else graph.invoke(state)
    assert sorted(result["notes"])[0] == "answer: research tides as alpha"

    branches = spans.kind(semconv.Kind.BRANCH)
    assert len(branches) == 4
    assert len(spans.kind(semconv.Kind.LLM)) == 4  # one per call: tokens count once
    for branch in branches:
        name = branch.attributes[semconv.BRANCH_LABEL]
        (node,) = spans.children(branch)
        (llm,) = spans.children(node)  # LangChain's span, in its branch, nothing beside it
        attributes = llm.attributes
        assert attributes[semconv.KIND] == "llm"
        assert attributes[semconv.BRANCH_ID] == span_id(branch)
        assert attributes[semconv.AGENT_NAME] == "researchers"
        assert attributes[semconv.GEN_AI_REQUEST_MODEL] == "gpt-test"
        assert attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-test-2026"
        assert attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
        assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
        assert attributes[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
        assert f"as {name}" in attributes[semconv.GEN_AI_INPUT_MESSAGES]
        if mode != "stream":
            # ChatOpenAI drops the server's reasoning_content: the openai integration adds it.
            assert attributes[semconv.LLM_REASONING] == f"thinking about research tides as {name}"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
async def test_after_a_chat_openai_call_the_openai_integration_records_direct_calls(
    spans: Spans, openai_server: Any, use_async: bool
) -> None:
    """The marker LangChain's callbacks set ends with the call, even where they end elsewhere."""
    import openai

    forktrace.instrument("langgraph", "openai")
    model = _chat_openai(openai_server)
    options = {"base_url": f"{openai_server.url}/v1", "api_key": "test", "max_retries": 0}
    request = {"model": "direct", "messages": [{"role": "user", "content": "hi"}]}
    with forktrace.run("mixed"):
        if use_async:
            await model.ainvoke("through langchain")
            await openai.AsyncOpenAI(**options).chat.completions.create(**request)
        else:
            model.invoke("through langchain")
            openai.OpenAI(**options).chat.completions.create(**request)
    by_model = {
        llm.attributes[semconv.GEN_AI_REQUEST_MODEL]: llm for llm in spans.kind(semconv.Kind.LLM)
    }
    assert set(by_model) == {"gpt-test", "direct"}
    assert by_model["direct"].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert spans.parent(by_model["direct"]).name == "run mixed"
