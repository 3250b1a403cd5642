"""The Strands Agents integration, offline, with a scripted ``strands.models.Model`` of our own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from integration_helpers import Spans, require, span_id

require("strands")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402
from strands import Agent, tool  # noqa: E402
from strands.models import Model  # noqa: E402
from strands.multiagent import GraphBuilder, Swarm  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402

# One model turn: ("reasoning", text), ("text", text), ("tool", (name, call id, input)).
Turn = Sequence[tuple[str, Any]]


class Scripted(Model):
    """Streams scripted turns as Strands' stream events, one turn per model call;
    an exception in the script is raised by that call."""

    def __init__(self, *turns: Turn | Exception, model_id: str = "scripted") -> None:
        self.turns = list(turns)
        self.config = {"model_id": model_id}
        self.calls = 0

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> Any:
        return self.config

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError
        yield  # an async generator, as the base class declares

    async def stream(self, messages: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        turn = self.turns[min(self.calls, len(self.turns) - 1)]
        self.calls += 1
        if isinstance(turn, Exception):
            raise turn
        yield {"messageStart": {"role": "assistant"}}
        stop = "end_turn"
        for kind, value in turn:
            if kind == "tool":
                name, call_id, arguments = value
                start = {"toolUse": {"name": name, "toolUseId": call_id}}
                delta: dict[str, Any] = {"toolUse": {"input": json.dumps(arguments)}}
                stop = "tool_use"
            elif kind == "reasoning":
                start, delta = {}, {"reasoningContent": {"text": value}}
            else:
                start, delta = {}, {"text": value}
            yield {"contentBlockStart": {"start": start}}
            yield {"contentBlockDelta": {"delta": delta}}
            if kind == "reasoning":
                yield {"contentBlockDelta": {"delta": {"reasoningContent": {"signature": "sig"}}}}
            yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": stop}}
        usage = {"inputTokens": 11, "outputTokens": 7, "totalTokens": 18}
        yield {"metadata": {"usage": usage, "metrics": {"latencyMs": 1}}}


@tool
def look_up(topic: str) -> str:
    """Look a topic up."""
    # A span of the user's own, to show what other code inside a tool is stamped with.
    with trace.get_tracer("user-code").start_as_current_span(f"read {topic}"):
        if topic == "storms":
            raise RuntimeError("no data on storms")
        return f"facts about {topic}"


def researcher(topic: str, *, failing_model: bool = False) -> Agent:
    """Thinks, looks its topic up, then answers."""
    first: Turn | Exception = (
        RuntimeError(f"model down for {topic}")
        if failing_model
        else [
            ("reasoning", f"I should look {topic} up"),
            ("tool", ("look_up", f"call-{topic}", {"topic": topic})),
        ]
    )
    model = Scripted(first, [("text", f"notes on {topic}")])
    return Agent(name=topic, model=model, tools=[look_up], callback_handler=None)


def talker(name: str) -> Agent:
    return Agent(name=name, model=Scripted([("text", f"{name} done")]), callback_handler=None)


TOPICS = ["tides", "winds", "waves", "currents"]


def survey_graph(topics: list[str] = TOPICS, failing: str | None = None) -> Any:
    """A planner fans out to one researcher per topic (run concurrently), joined by an editor."""
    builder = GraphBuilder()
    builder.add_node(talker("planner"), "planner")
    builder.add_node(talker("editor"), "editor")
    for topic in topics:
        builder.add_node(researcher(topic, failing_model=topic == failing), topic)
        builder.add_edge("planner", topic)
        builder.add_edge(topic, "editor")
    builder.set_max_node_executions(10)
    return builder.build()


def agent_span(spans: Spans, name: str) -> ReadableSpan:
    return spans.one(f"invoke_agent {name}")


def descendants(spans: Spans, span: ReadableSpan) -> list[ReadableSpan]:
    found = []
    for child in spans.children(span):
        found += [child, *descendants(spans, child)]
    return found


def test_agent_cycles_model_calls_reasoning_and_tools(spans: Spans) -> None:
    forktrace.instrument("strands")
    with forktrace.run("tides") as run:
        result = researcher("tides")("research tides")
    assert str(result).strip() == "notes on tides"

    agent = agent_span(spans, "tides")
    assert agent.attributes[semconv.KIND] == "agent"
    assert agent.attributes[semconv.AGENT_NAME] == "tides"
    assert spans.parent(agent).name == "run tides"

    # Strands' own spans, enriched, no duplicates: two cycles, each with its model call.
    cycles = spans.children(agent)
    assert [c.name for c in cycles] == ["execute_event_loop_cycle"] * 2
    llms = spans.kind(semconv.Kind.LLM)
    assert [spans.parent(llm) for llm in llms] == cycles
    first, second = llms
    assert first.attributes[semconv.LLM_REASONING] == "I should look tides up"
    assert first.attributes[semconv.GEN_AI_REQUEST_MODEL] == "scripted"
    assert first.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert first.attributes[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_use",)
    (output,) = json.loads(first.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])
    assert output["parts"][0] == {"type": "reasoning", "content": "I should look tides up"}
    assert output["parts"][1]["name"] == "look_up"
    assert semconv.LLM_REASONING not in second.attributes
    assert json.loads(second.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["parts"] == [
        {"type": "text", "content": "notes on tides"}
    ]

    (tool_span,) = spans.kind(semconv.Kind.TOOL)
    assert spans.parent(tool_span) is cycles[0]
    assert tool_span.attributes[semconv.GEN_AI_TOOL_NAME] == "look_up"
    assert tool_span.attributes[semconv.GEN_AI_TOOL_CALL_ID] == "call-tides"
    assert json.loads(tool_span.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS]) == {
        "topic": "tides"
    }
    assert tool_span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "facts about tides"

    # The tool's own span (not Strands') runs under the agent's lineage, through the hook.
    (own,) = spans.children(tool_span)
    assert own.name == "read tides"
    for span in [agent, *descendants(spans, agent)]:
        assert span.attributes[semconv.RUN_ID] == run.id
        assert span.attributes[semconv.AGENT_NAME] == "tides", span.name


def test_graph_fan_out_is_a_fork_with_a_branch_per_node(spans: Spans) -> None:
    forktrace.instrument()
    with forktrace.run("survey") as run:
        result = survey_graph()("survey the sea")
    assert result.status.value == "completed"

    graph = spans.one("invoke_graph")
    (fork,) = spans.kind(semconv.Kind.FORK)
    assert spans.parent(fork) is graph
    assert fork.attributes[semconv.FORK_STRATEGY] == "all"
    assert fork.attributes[semconv.FORK_BRANCH_COUNT] == 4
    outcomes = {
        e.attributes[semconv.BRANCH_LABEL]: e.attributes[semconv.BRANCH_OUTCOME]
        for e in fork.events
    }
    assert outcomes == {topic: "completed" for topic in TOPICS}

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    assert set(branches) == set(TOPICS)
    assert sorted(b.attributes[semconv.BRANCH_PATH] for b in branches.values()) == [
        "0",
        "1",
        "2",
        "3",
    ]
    for topic, branch in branches.items():
        assert spans.parent(branch) is fork
        assert branch.attributes[semconv.BRANCH_OUTCOME] == "completed"
        agent = agent_span(spans, topic)
        assert spans.parent(agent) is branch
        inside = [agent, *descendants(spans, agent)]
        # agent, 2 cycles, 2 model calls, the tool and the tool's own span
        assert len(inside) == 7
        for span in inside:
            assert span.attributes[semconv.BRANCH_ID] == span_id(branch), span.name
            assert span.attributes[semconv.FORK_ID] == span_id(fork)
            assert span.attributes[semconv.AGENT_NAME] == topic, span.name
            assert span.attributes[semconv.RUN_ID] == run.id

    # The nodes before and after the fan-out run alone: in the graph, in no branch.
    for name in ("planner", "editor"):
        agent = agent_span(spans, name)
        assert spans.parent(agent) is graph
        assert semconv.BRANCH_ID not in agent.attributes
    assert agent_span(spans, "planner").end_time <= fork.start_time
    assert agent_span(spans, "editor").start_time >= fork.end_time


def test_a_nested_graph_forks_inside_its_branch(spans: Spans) -> None:
    forktrace.instrument("strands")
    builder = GraphBuilder()
    builder.add_node(survey_graph(), "survey")  # a graph as a node: its fan-out nests
    builder.add_node(talker("critic"), "critic")
    builder.set_entry_point("survey").set_entry_point("critic").set_max_node_executions(4)
    with forktrace.run("nested"):
        assert builder.build()("survey the sea").status.value == "completed"

    outer, inner = sorted(spans.kind(semconv.Kind.FORK), key=lambda f: f.start_time)
    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    survey = branches["survey"]
    assert spans.parent(survey) is outer and spans.parent(branches["critic"]) is outer
    assert spans.parent(spans.parent(inner)) is survey  # the inner invoke_graph in between
    assert inner.attributes[semconv.BRANCH_ID] == span_id(survey)
    prefix = survey.attributes[semconv.BRANCH_PATH] + "."
    for topic in TOPICS:
        assert spans.parent(branches[topic]) is inner
        assert branches[topic].attributes[semconv.BRANCH_PATH].startswith(prefix)
        assert spans.parent(agent_span(spans, topic)) is branches[topic]


async def test_agents_run_in_forktrace_fork_branches_land_in_their_branch(spans: Spans) -> None:
    forktrace.instrument("strands")

    async def study(topic: str) -> str:
        return str(await researcher(topic).invoke_async(f"research {topic}")).strip()

    with forktrace.run("survey"), forktrace.fork("topics", strategy="map") as fork:
        outputs = await fork.map(study, TOPICS, labels=TOPICS)
    assert outputs == [f"notes on {topic}" for topic in TOPICS]

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    for topic in TOPICS:
        agent = agent_span(spans, topic)
        assert spans.parent(agent) is branches[topic]
        for span in [agent, *descendants(spans, agent)]:
            assert span.attributes[semconv.BRANCH_ID] == span_id(branches[topic])
            assert span.attributes[semconv.AGENT_NAME] == topic


def test_a_graph_made_before_instrument_gets_kinds_but_no_fork(spans: Spans) -> None:
    graph = survey_graph()
    forktrace.instrument("strands")
    with forktrace.run("survey"):
        graph("survey the sea")
    assert len(spans.kind(semconv.Kind.AGENT)) == 6
    assert len(spans.kind(semconv.Kind.LLM)) == 10
    assert spans.kind(semconv.Kind.FORK) == []
    for topic in TOPICS:
        assert spans.parent(agent_span(spans, topic)).name == "invoke_graph"


def test_a_failing_tool_is_an_error_and_the_agent_goes_on(spans: Spans) -> None:
    forktrace.instrument("strands")
    with forktrace.run("storms"):
        result = researcher("storms")("research storms")
    assert str(result).strip() == "notes on storms"  # Strands hands the error to the model

    (tool_span,) = spans.kind(semconv.Kind.TOOL)
    assert tool_span.status.status_code is StatusCode.ERROR
    assert "no data on storms" in tool_span.status.description
    assert tool_span.attributes[semconv.ERROR_TYPE] == "error"
    assert "no data on storms" in tool_span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT]
    assert agent_span(spans, "storms").status.status_code is not StatusCode.ERROR


def test_a_failing_model_fails_its_branch_and_the_graph_as_strands_does(spans: Spans) -> None:
    forktrace.instrument("strands")
    with pytest.raises(Exception, match="model down for winds"), forktrace.run("survey"):
        survey_graph(failing="winds")("survey the sea")

    (fork,) = spans.kind(semconv.Kind.FORK)
    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    failed = branches["winds"]
    assert failed.attributes[semconv.BRANCH_OUTCOME] == "failed"
    assert "model down for winds" in failed.attributes[semconv.BRANCH_OUTCOME_REASON]
    assert failed.status.status_code is StatusCode.ERROR
    (llm,) = [
        s for s in spans.kind(semconv.Kind.LLM) if s.attributes[semconv.AGENT_NAME] == "winds"
    ]
    assert llm.status.status_code is StatusCode.ERROR
    assert llm.attributes[semconv.BRANCH_ID] == span_id(failed)
    # Strands stops the graph at the first failure: the other branches either finished
    # first or were cancelled, and each says which.
    for topic in ("tides", "waves", "currents"):
        assert branches[topic].attributes[semconv.BRANCH_OUTCOME] in ("completed", "cancelled")
    assert len(fork.events) == 4
    assert not spans.named("invoke_agent editor")


def test_swarm_handoff_is_a_handoff(spans: Spans) -> None:
    forktrace.instrument("strands")
    call = {"agent_name": "writer", "message": "write it up"}
    scout = Agent(
        name="scout",
        model=Scripted([("tool", ("handoff_to_agent", "call-h", call))], [("text", "handed")]),
        callback_handler=None,
    )
    swarm = Swarm([scout, talker("writer")], max_handoffs=3)
    with forktrace.run("handoff"):
        result = swarm("find and write")
    assert [node.node_id for node in result.node_history] == ["scout", "writer"]

    (handoff,) = spans.kind(semconv.Kind.HANDOFF)
    assert handoff.name == "handoff scout -> writer"
    assert handoff.attributes[semconv.HANDOFF_FROM] == "scout"
    assert handoff.attributes[semconv.HANDOFF_TO] == "writer"
    assert handoff.attributes[semconv.AGENT_NAME] == "scout"
    assert spans.ancestors(handoff)[1] is agent_span(spans, "scout")
    assert spans.kind(semconv.Kind.TOOL) == []


def test_uninstrument_restores_strands(spans: Spans) -> None:
    from strands.agent.agent import Agent as AgentClass
    from strands.multiagent.graph import Graph
    from strands.telemetry.tracer import Tracer

    methods = [
        (AgentClass, "__init__"),
        (Graph, "__init__"),
        (Graph, "_execute_nodes_parallel"),
        (Tracer, "end_model_invoke_span"),
        (Tracer, "start_tool_call_span"),
        (Tracer, "end_tool_call_span"),
    ]

    def installed() -> list[int]:
        # Identities: a wrapt wrapper compares equal to the function it wraps.
        return [id(owner.__dict__[name]) for owner, name in methods]

    before = installed()
    forktrace.instrument("strands")
    assert forktrace.instrument("strands") == []
    made_while_instrumented = researcher("tides")
    graph = survey_graph()
    assert not set(installed()) & set(before)
    forktrace.uninstrument()
    assert installed() == before

    with forktrace.run("after"):
        made_while_instrumented("research tides")
        graph("survey the sea")
    strands_spans = [s for s in spans.all() if s.instrumentation_scope.name.startswith("strands")]
    assert len(strands_spans) > 20  # Strands still traces itself ...
    for span in strands_spans:  # ... and forktrace adds nothing to it
        assert semconv.KIND not in span.attributes
        assert semconv.LLM_REASONING not in span.attributes
    assert spans.kind(semconv.Kind.FORK) == []
    # The hook providers left the agents they were added to.
    own = spans.named("read tides")
    assert own and all(semconv.AGENT_NAME not in span.attributes for span in own)


def test_an_internal_error_never_breaks_the_agent(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import strands as integration

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("forktrace bug")

    for name in ("_llm_result", "_tool_output", "_tool_started", "_node_outcome", "_agent_of"):
        monkeypatch.setattr(integration, name, broken)
    monkeypatch.setattr(integration._Batch, "start", broken)
    monkeypatch.setattr(integration, "current_lineage", broken)
    forktrace.instrument("strands")
    with forktrace.run("survey"):
        result = survey_graph()("survey the sea")
    assert result.status.value == "completed"
    assert len(spans.named("chat")) == 10  # Strands' spans still flow


async def test_an_openai_model_call_is_one_llm_span_with_the_openai_integration_on(
    spans: Spans, openai_server: Any
) -> None:
    """Strands' chat span is the llm span; the openai integration records none inside it."""
    require("openai")
    from strands.models.openai import OpenAIModel

    assert forktrace.instrument("strands", "openai") == ["strands", "openai"]
    client_args = {"base_url": f"{openai_server.url}/v1", "api_key": "test", "max_retries": 0}

    async def study(topic: str) -> str:
        model = OpenAIModel(client_args=client_args, model_id="gpt-test")
        agent = Agent(name=topic, model=model, callback_handler=None)
        return str(await agent.invoke_async(topic)).strip()

    with forktrace.run("survey"), forktrace.fork("topics", strategy="map") as fork:
        outputs = await fork.map(study, TOPICS, labels=TOPICS)
    assert outputs == [f"answer: {topic}" for topic in TOPICS]

    llms = spans.kind(semconv.Kind.LLM)
    assert len(llms) == 4  # one per call: tokens count once
    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    for llm in llms:
        topic = llm.attributes[semconv.AGENT_NAME]
        assert agent_span(spans, topic) in spans.ancestors(llm)
        assert llm.attributes[semconv.BRANCH_ID] == span_id(branches[topic])
        assert llm.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
        assert llm.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
        assert spans.children(llm) == []  # no span of the openai integration inside it
