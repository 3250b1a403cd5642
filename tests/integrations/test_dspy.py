"""The DSPy integration with DSPy's own DummyLM: ReAct agents, tools, dspy.Parallel."""

from __future__ import annotations

from typing import Any

import pytest
from integration_helpers import Spans, assert_one_llm_span_in_each_branch, require, span_id

require("dspy")

import dspy  # noqa: E402
from dspy.utils import DummyLM  # noqa: E402
from dspy.utils.parallelizer import ParallelExecutor  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402

TOPICS = ["tides", "winds", "waves", "currents"]


def look_up(topic: str) -> str:
    """Look a topic up."""
    if topic == "storms":
        raise ValueError("no data on storms")
    return f"facts about {topic}"


def _answers() -> dict[str, dict[str, Any]]:
    """DummyLM answers, keyed by text found in the last message of each turn.

    DummyLM answers with the first key contained in that message, whatever
    thread asks, so the most specific turn (the final extract) comes first.
    """
    topics = [*TOPICS, "storms"]
    extract = {
        f"I know enough about {t}\n\n[[ ## tool_name_1": {
            "reasoning": f"the notes on {t} suffice",
            "answer": f"notes on {t}",
        }
        for t in topics
    }
    observed = {
        f"{t}\n\nRespond with the corresponding output fields, starting with the field "
        "`[[ ## next_thought": {
            "next_thought": f"I know enough about {t}",
            "next_tool_name": "finish",
            "next_tool_args": {},
        }
        for t in topics
    }
    first = {
        f"research {t}\n\n[[ ## trajectory ## ]]\n\n\n": {
            "next_thought": f"I should look up {t}",
            "next_tool_name": "look_up",
            "next_tool_args": {"topic": t},
        }
        for t in topics
    }
    return {**extract, **observed, **first}


@pytest.fixture
def lm() -> DummyLM:
    # dspy.configure, not dspy.context: a context block snapshots the settings
    # (callbacks included) when it is entered, before the test instruments.
    lm = DummyLM(_answers())
    dspy.configure(lm=lm)
    return lm


def _agent(name: str = "researcher") -> dspy.ReAct:
    agent = dspy.ReAct("question -> answer", tools=[look_up], max_iters=4)
    agent.name = name
    return agent


def test_a_react_agent_with_its_steps_thoughts_and_tool(spans: Spans, lm: DummyLM) -> None:
    forktrace.instrument("dspy")
    with forktrace.run("survey") as run:
        result = _agent()(question="research tides")
    assert result.answer == "notes on tides"

    agent = spans.one("invoke_agent researcher")
    assert spans.parent(agent).name == "run survey"
    assert agent.attributes[semconv.KIND] == "agent"
    assert agent.attributes[semconv.GEN_AI_AGENT_NAME] == "researcher"
    children = [span.name for span in spans.children(agent)]
    assert children == [
        "react step 0",
        "execute_tool look_up",
        "react step 1",
        "execute_tool finish",
        "module ChainOfThought",
    ]
    step = spans.one("react step 0")
    assert step.attributes[semconv.LLM_REASONING] == "I should look up tides"
    assert step.attributes["dspy.react.tool"] == "look_up"
    (llm,) = spans.children(step)
    assert llm.name == "chat dummy"
    assert llm.attributes[semconv.KIND] == "llm"
    assert llm.attributes[semconv.LLM_REASONING] == "I should look up tides"
    assert llm.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 0
    assert "research tides" in llm.attributes[semconv.GEN_AI_INPUT_MESSAGES]

    tool = spans.one("execute_tool look_up")
    assert tool.attributes[semconv.KIND] == "tool"
    assert tool.attributes[semconv.GEN_AI_TOOL_CALL_ARGUMENTS] == '{"topic": "tides"}'
    assert tool.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == "facts about tides"
    final = [s for s in spans.kind(semconv.Kind.LLM) if "suffice" in str(s.attributes)]
    assert final[0].attributes[semconv.LLM_REASONING] == "the notes on tides suffice"
    for span in spans.all():
        if span is not agent and agent in spans.ancestors(span):
            assert span.attributes[semconv.AGENT_NAME] == "researcher"
            assert span.attributes[semconv.RUN_ID] == run.id


def test_a_failing_tool_is_an_error_the_agent_sees(spans: Spans, lm: DummyLM) -> None:
    forktrace.instrument("dspy")
    result = _agent()(question="research storms")
    assert "storms" in result.trajectory["observation_0"]
    tool = spans.one("execute_tool look_up")
    assert tool.status.status_code.name == "ERROR"
    assert tool.attributes[semconv.ERROR_TYPE] == "ValueError"


def test_parallel_agents_are_branches_of_one_fork(spans: Spans, lm: DummyLM) -> None:
    forktrace.instrument("dspy")
    agents = [_agent(f"{topic} researcher") for topic in TOPICS]
    pairs = [
        (agent, dspy.Example(question=f"research {topic}").with_inputs("question"))
        for agent, topic in zip(agents, TOPICS, strict=True)
    ]
    with forktrace.run("survey") as run:
        results = dspy.Parallel(num_threads=4, disable_progress_bar=True)(pairs)
    assert [r.answer for r in results] == [f"notes on {t}" for t in TOPICS]

    (fork,) = spans.kind(semconv.Kind.FORK)
    assert spans.parent(fork).name == "run survey"
    assert fork.attributes[semconv.FORK_STRATEGY] == "map"
    assert fork.attributes[semconv.FORK_BRANCH_COUNT] == 4
    branches = spans.kind(semconv.Kind.BRANCH)
    assert len(branches) == 4
    for branch in branches:
        assert spans.parent(branch) is fork  # none nested in another, none detached
        (agent,) = spans.children(branch)
        topic = agent.attributes[semconv.GEN_AI_AGENT_NAME].split()[0]
        assert branch.attributes[semconv.BRANCH_LABEL].startswith(f"{topic} researcher[")
        inside = [s for s in spans.all() if agent in spans.ancestors(s)]
        assert len(inside) == 9  # 2 steps, ChainOfThought, Predict, 3 LM calls, 2 tools
        for span in [agent, *inside]:
            assert span.attributes[semconv.BRANCH_ID] == span_id(branch)
            assert span.attributes[semconv.AGENT_NAME] == f"{topic} researcher"
            assert span.attributes[semconv.RUN_ID] == run.id
            assert span.context.trace_id == fork.context.trace_id
        tool = next(s for s in inside if s.name == "execute_tool look_up")
        assert tool.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == f"facts about {topic}"
    paths = sorted(b.attributes[semconv.BRANCH_PATH] for b in branches)
    assert paths == ["0", "1", "2", "3"]
    outcomes = [e.attributes[semconv.BRANCH_OUTCOME] for e in fork.events]
    assert outcomes == ["completed"] * 4


def test_a_failed_item_is_a_failed_branch(spans: Spans, lm: DummyLM) -> None:
    forktrace.instrument("dspy")

    class Boom(dspy.Module):
        def forward(self, question: str) -> Any:
            raise RuntimeError(f"cannot {question}")

    pairs = [(_agent(), {"question": "research tides"}), (Boom(), {"question": "research x"})]
    results = dspy.Parallel(num_threads=2, disable_progress_bar=True, max_errors=5)(pairs)
    assert results[0].answer == "notes on tides"
    (fork,) = spans.kind(semconv.Kind.FORK)
    outcomes = {
        e.attributes[semconv.BRANCH_LABEL]: e.attributes[semconv.BRANCH_OUTCOME]
        for e in fork.events
    }
    assert outcomes == {"researcher[0]": "completed", "Boom[1]": "failed"}


def test_uninstrument_restores_dspy(spans: Spans, lm: DummyLM) -> None:
    callbacks = list(dspy.settings.get("callbacks", []))
    execute = ParallelExecutor.execute
    forktrace.instrument("dspy")
    assert forktrace.instrument("dspy") == []
    assert ParallelExecutor.execute is not execute
    forktrace.uninstrument()
    assert ParallelExecutor.execute is execute
    assert list(dspy.settings.get("callbacks", [])) == callbacks
    _agent()(question="research tides")
    assert spans.all() == []


def test_an_internal_error_never_breaks_the_agent(
    spans: Spans, lm: DummyLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import dspy as integration

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("forktrace bug")

    monkeypatch.setattr(integration, "_lm_result", broken)
    monkeypatch.setattr(integration, "_module_start", broken)
    monkeypatch.setattr(integration, "ForkSpans", broken)
    forktrace.instrument("dspy")
    pairs = [(_agent(), {"question": f"research {t}"}) for t in TOPICS]
    results = dspy.Parallel(num_threads=4, disable_progress_bar=True)(pairs)
    assert [r.answer for r in results] == [f"notes on {t}" for t in TOPICS]


def test_nothing_is_left_behind(spans: Spans, lm: DummyLM) -> None:
    from forktrace.integrations import _active

    forktrace.instrument("dspy")
    dspy.Parallel(num_threads=4, disable_progress_bar=True)(
        [(_agent(), {"question": f"research {t}"}) for t in TOPICS]
    )
    assert len(_active["dspy"].calls.map) == 0


def test_an_openai_lm_call_is_one_llm_span_with_the_openai_integration_on(
    spans: Spans, openai_server: Any
) -> None:
    """DSPy's llm span is the one; the openai SDK call LiteLLM makes inside it records none."""
    require("openai")
    assert forktrace.instrument("dspy", "openai") == ["dspy", "openai"]
    lm = dspy.LM(
        "openai/gpt-test",
        api_base=f"{openai_server.url}/v1",
        api_key="test",
        cache=False,
        num_retries=0,
    )

    def ask(topic: str) -> str:
        output = lm(topic)[0]  # with the server's reasoning_content, a dict
        return output["text"] if isinstance(output, dict) else output

    with forktrace.run("survey"), forktrace.fork("topics") as fork:
        answers = fork.map(ask, TOPICS, labels=TOPICS)
    assert answers == [f"answer: {topic}" for topic in TOPICS]

    llms = assert_one_llm_span_in_each_branch(spans, branches=4)
    for span in llms:
        assert span.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-test-2026"
