"""The CrewAI integration with a scripted BaseLLM subclass."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
from integration_helpers import Spans, require, span_id

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
require("crewai")

from crewai import Agent, Crew, Process, Task  # noqa: E402
from crewai.events import crewai_event_bus  # noqa: E402
from crewai.events.types.llm_events import LLMCallType  # noqa: E402
from crewai.llms.base_llm import BaseLLM  # noqa: E402
from crewai.tools import tool  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402


class ScriptedLLM(BaseLLM):
    """Answers in CrewAI's ReAct text format: one tool call, then the final answer."""

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> str:
        self._emit_call_started_event(messages=messages, from_task=from_task, from_agent=from_agent)
        text = (
            messages
            if isinstance(messages, str)
            else " ".join(str(m.get("content")) for m in messages)
        )
        topic = re.search(r"research topic (\w+)", text)
        if "facts about" in text or topic is None:
            reply = "Thought: I now know the final answer\nFinal Answer: notes done"
        else:
            reply = (
                f"Thought: I should look up {topic.group(1)}\n"
                "Action: look_up\n"
                f'Action Input: {{"topic": "{topic.group(1)}"}}'
            )
        self._emit_call_completed_event(
            response=reply,
            call_type=LLMCallType.LLM_CALL,
            from_task=from_task,
            from_agent=from_agent,
            messages=messages,
            usage={"prompt_tokens": 30, "completion_tokens": 9},
        )
        return reply

    def supports_function_calling(self) -> bool:
        return False


@tool("look_up")
def look_up(topic: str) -> str:
    """Look a topic up."""
    return f"facts about {topic}"


TOPICS = ["tides", "winds", "waves", "currents"]

# CrewAI warns about its own deprecated internals on every kickoff.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _crew(fail: str | None = None) -> Crew:
    llm = ScriptedLLM(model="scripted-1")
    researchers = [
        Agent(
            role=f"{topic} researcher",
            goal="research",
            backstory="curious",
            llm=llm,
            tools=[look_up],
            max_iter=3,
        )
        for topic in TOPICS
    ]
    research = [
        Task(
            description=f"research topic {topic}",
            expected_output="notes",
            agent=agent,
            async_execution=True,
            name=topic,
        )
        for topic, agent in zip(TOPICS, researchers, strict=True)
    ]
    editor = Agent(role="editor", goal="edit", backstory="careful", llm=llm)
    summary = Task(
        description="summarize the notes",
        expected_output="summary",
        agent=editor,
        context=research,
        name="summary",
    )
    return Crew(
        agents=[*researchers, editor],
        tasks=[*research, summary],
        process=Process.sequential,
        name="survey",
    )


def _kickoff(crew: Crew) -> Any:
    result = crew.kickoff()
    crewai_event_bus.flush()
    return result


def test_async_tasks_are_branches_of_a_fork_joined_by_the_next_task(spans: Spans) -> None:
    forktrace.instrument("crewai")
    with forktrace.run("survey") as run:
        result = _kickoff(_crew())
    assert "notes done" in str(result)

    crew = spans.one("crew survey")
    assert spans.parent(crew).name == "run survey"
    (fork,) = spans.kind(semconv.Kind.FORK)
    assert spans.parent(fork) is crew
    assert fork.attributes["crewai.join_task"] == "summary"
    assert fork.attributes[semconv.FORK_BRANCH_COUNT] == 4
    summary = spans.one("task summary")
    assert spans.parent(summary) is crew
    assert fork.end_time <= summary.start_time + 1_000

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    assert sorted(branches) == sorted(TOPICS)
    for topic, branch in branches.items():
        (task,) = spans.children(branch)
        assert task.name == f"task {topic}"
        (agent,) = spans.children(task)
        assert agent.attributes[semconv.GEN_AI_AGENT_NAME] == f"{topic} researcher"
        work = spans.children(agent)
        kinds = [span.attributes[semconv.KIND] for span in work]
        assert kinds.count("llm") == 2 and kinds.count("tool") == 1
        for span in work:
            # Every call sits in its own branch, with its agent: never a sibling's.
            assert span.attributes[semconv.BRANCH_ID] == span_id(branch)
            assert span.attributes[semconv.AGENT_NAME] == f"{topic} researcher"
            assert span.attributes[semconv.RUN_ID] == run.id
        (tool_span,) = [span for span in work if span.attributes[semconv.KIND] == "tool"]
        assert tool_span.attributes[semconv.GEN_AI_TOOL_CALL_RESULT] == f"facts about {topic}"
        first_llm = next(span for span in work if span.attributes[semconv.KIND] == "llm")
        assert first_llm.attributes[semconv.LLM_REASONING] == f"I should look up {topic}"
        assert first_llm.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 30
    outcomes = {
        e.attributes[semconv.BRANCH_LABEL]: e.attributes[semconv.BRANCH_OUTCOME]
        for e in fork.events
    }
    assert outcomes == dict.fromkeys(TOPICS, "completed")


def test_uninstrument_removes_the_listener(spans: Spans) -> None:
    before = {key: set(value) for key, value in crewai_event_bus._sync_handlers.items()}
    call = ScriptedLLM.__dict__["call"]
    forktrace.instrument("crewai")
    assert ScriptedLLM.__dict__["call"] is not call  # claims its model calls
    assert forktrace.instrument("crewai") == []
    forktrace.uninstrument()
    after = {key: set(value) for key, value in crewai_event_bus._sync_handlers.items()}
    assert after == before
    assert ScriptedLLM.__dict__["call"] is call
    _kickoff(_crew())
    assert spans.all() == []


def test_an_internal_error_never_breaks_the_crew(
    spans: Spans, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forktrace.integrations import crewai as integration

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("forktrace bug")

    monkeypatch.setattr(integration, "_tree", broken)
    monkeypatch.setattr(integration, "_llm_result", broken)
    forktrace.instrument("crewai")
    assert "notes done" in str(_kickoff(_crew()))


def test_nothing_is_left_behind(spans: Spans) -> None:
    from forktrace.integrations import _active

    forktrace.instrument("crewai")
    _kickoff(_crew())
    assert _active["crewai"].recorder.pending() == 0


def test_a_native_openai_llm_call_is_one_llm_span_with_the_openai_integration_on(
    spans: Spans, openai_server: Any
) -> None:
    """CrewAI's llm span is the one; its native OpenAI provider's SDK call records none."""
    from crewai import LLM

    assert forktrace.instrument("crewai", "openai") == ["crewai", "openai"]
    llm = LLM(model="openai/gpt-test", base_url=f"{openai_server.url}/v1", api_key="test")
    assert type(llm).__module__.startswith("crewai.llms.providers.openai")  # calls the SDK
    with forktrace.run("ask"):
        answers = [llm.call(f"research {topic}") for topic in TOPICS]
        crewai_event_bus.flush()
    assert answers == [f"answer: research {topic}" for topic in TOPICS]

    llms = spans.kind(semconv.Kind.LLM)
    assert len(llms) == 4  # one per call: tokens count once
    for span in llms:
        assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
        assert spans.parent(span).name == "run ask"
