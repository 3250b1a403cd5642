"""forktrace.instrument() / uninstrument() and the helpers every integration shares.

These need no framework: the registry is exercised with a stand-in
integration, the helpers with forktrace's own spans.
"""

from __future__ import annotations

import logging
import sys
import types
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from integration_helpers import Spans, span_id

import forktrace
from forktrace import semconv, text
from forktrace._extras import MissingExtraError
from forktrace.integrations import SUPPORTED, Integration, _shared


class _Recorder:
    instances: ClassVar[list[_Recorder]] = []

    def __init__(self) -> None:
        self.calls: list[str] = []
        _Recorder.instances.append(self)

    def instrument(self, **options: Any) -> None:
        if options.get("fail"):
            raise RuntimeError("unsupported version")
        self.calls.append("instrument")

    def uninstrument(self) -> None:
        self.calls.append("uninstrument")


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two integrations: one whose framework is 'installed' (json), one missing."""
    module = types.ModuleType("forktrace.integrations._stand_in")
    module.Instrumentor = _Recorder  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "forktrace.integrations._stand_in", module)
    supported = {
        "present": Integration("present", "_stand_in", "json", "present"),
        "absent": Integration("absent", "_stand_in", "no_such_framework_here", "absent-extra"),
    }
    monkeypatch.setattr("forktrace.integrations.SUPPORTED", supported)
    _Recorder.instances.clear()
    yield
    forktrace.uninstrument()


def test_instrument_all_skips_missing_frameworks_quietly(stand_ins: None) -> None:
    assert forktrace.instrument() == ["present"]
    assert forktrace.instrument() == []  # idempotent
    assert len(_Recorder.instances) == 1
    assert forktrace.uninstrument() == ["present"]
    assert _Recorder.instances[0].calls == ["instrument", "uninstrument"]
    assert forktrace.uninstrument() == []


def test_naming_a_missing_framework_gives_the_pip_line(stand_ins: None) -> None:
    with pytest.raises(MissingExtraError, match=r'pip install "forktrace\[absent-extra\]"'):
        forktrace.instrument("present", "absent")
    assert forktrace.integrations.instrumented() == []  # nothing half-done
    with pytest.raises(ValueError, match="no integration named 'nope'; supported: present, absent"):
        forktrace.instrument("nope")


def test_a_failing_integration_is_logged_unless_named(
    stand_ins: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="forktrace"):
        assert forktrace.instrument(fail=True) == []
    assert "instrumenting present" in caplog.text
    with pytest.raises(RuntimeError, match="unsupported version"):
        forktrace.instrument("present", fail=True)


def test_every_supported_framework_has_an_extra_and_aliases_resolve() -> None:
    from forktrace.integrations import _resolve

    assert set(SUPPORTED) == {
        "langgraph",
        "openai-agents",
        "pydantic-ai",
        "crewai",
        "openai",
        "anthropic",
        "dspy",
        "smolagents",
        "llama-index",
        "autogen",
        "google-adk",
        "strands",
    }
    assert _resolve("langchain").name == "langgraph"
    assert _resolve("openai_agents").name == "openai-agents"
    assert _resolve("Pydantic_AI").name == "pydantic-ai"
    assert _resolve("google_adk").name == "google-adk"
    assert _resolve("strands_agents").name == "strands"
    pyproject = (__import__("pathlib").Path(__file__).parents[2] / "pyproject.toml").read_text()
    for integration in SUPPORTED.values():
        assert f"\n{integration.extra} = [" in pyproject


def test_importing_forktrace_imports_no_framework() -> None:
    import subprocess

    code = (
        "import sys, forktrace; forktrace.integrations.SUPPORTED; "
        "print(sorted(m for m in ('openai','anthropic','langchain_core','agents','pydantic_ai','crewai','wrapt') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {
                "prompt_tokens": 3,
                "completion_tokens": 4,
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
            (3, 4, 2),
        ),
        (
            {
                "input_tokens": 5,
                "output_tokens": 6,
                "output_tokens_details": {"reasoning_tokens": 1},
            },
            (5, 6, 1),
        ),
        (
            {"input_tokens": 7, "output_tokens": 8, "output_token_details": {"reasoning": 3}},
            (7, 8, 3),
        ),
        (
            types.SimpleNamespace(input_tokens=1, output_tokens=2, output_tokens_details=None),
            (1, 2, None),
        ),
        (None, (None, None, None)),
        ({"input_tokens": True}, (None, None, None)),
    ],
)
def test_usage_tokens_reads_every_provider_shape(usage: Any, expected: tuple[Any, ...]) -> None:
    assert _shared.usage_tokens(usage) == expected


def test_fork_spans_record_lineage_and_outcomes_like_forktrace_fork(spans: Spans) -> None:
    from opentelemetry import context as otel_context

    with forktrace.run("discovered") as run:
        fork = _shared.ForkSpans("step 3", semconv.ForkStrategy.MAP, otel_context.get_current())
        contexts = []
        for label in ("a", "b", "c", "d"):
            span, context = fork.branch(label)
            contexts.append((span, context))
        for index, (span, context) in enumerate(contexts):
            child = _shared.start_span("work", semconv.Kind.TOOL, context=context)
            _shared.end_span(child)
            outcome = (
                semconv.BranchOutcome.FAILED if index == 2 else semconv.BranchOutcome.COMPLETED
            )
            fork.end_branch(span, outcome, "boom" if index == 2 else None)
        fork.end(attributes={"joined_by": "merge"})

    (fork_span,) = spans.kind(semconv.Kind.FORK)
    assert fork_span.attributes[semconv.FORK_ID] == span_id(fork_span)
    assert fork_span.attributes[semconv.FORK_BRANCH_COUNT] == 4
    assert fork_span.attributes[semconv.RUN_ID] == run.id
    branches = sorted(
        spans.kind(semconv.Kind.BRANCH), key=lambda s: s.attributes[semconv.BRANCH_INDEX]
    )
    assert [b.attributes[semconv.BRANCH_PATH] for b in branches] == ["0", "1", "2", "3"]
    for branch in branches:
        assert spans.parent(branch) is fork_span
        assert branch.attributes[semconv.BRANCH_ID] == span_id(branch)
        assert branch.attributes[semconv.FORK_ID] == span_id(fork_span)
        (work,) = spans.children(branch)
        assert work.attributes[semconv.BRANCH_ID] == span_id(branch)
        assert work.attributes[semconv.BRANCH_PATH] == branch.attributes[semconv.BRANCH_PATH]
    events = [e.attributes for e in fork_span.events if e.name == semconv.BRANCH_OUTCOME_EVENT]
    assert [e[semconv.BRANCH_OUTCOME] for e in events] == [
        "completed",
        "completed",
        "failed",
        "completed",
    ]
    assert events[2][semconv.BRANCH_OUTCOME_REASON] == "boom"


def test_content_is_truncated_with_its_length_and_dropped_when_capture_is_off(spans: Spans) -> None:
    saved = (text.policy.capture_content, text.policy.max_length)
    span = _shared.start_span("chat", semconv.Kind.LLM)
    try:
        text.configure(capture_content=True, max_length=100)
        _shared.set_content(span, semconv.LLM_REASONING, "x" * 500)
        text.configure(capture_content=False, max_length=100)
        _shared.set_content(span, semconv.GEN_AI_OUTPUT_MESSAGES, "secret")
    finally:
        text.configure(capture_content=saved[0], max_length=saved[1])
        _shared.end_span(span)
    (llm,) = spans.kind(semconv.Kind.LLM)
    assert len(llm.attributes[semconv.LLM_REASONING]) == 100
    assert llm.attributes[semconv.LLM_REASONING].endswith(semconv.TRUNCATION_MARKER)
    assert llm.attributes[semconv.LLM_REASONING + semconv.ORIGINAL_LENGTH_SUFFIX] == 500
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in llm.attributes


def test_guarded_callbacks_log_once_and_return_none(caplog: pytest.LogCaptureFixture) -> None:
    @_shared.guarded("test.guarded_callback")
    def callback() -> None:
        raise KeyError("bug")

    with caplog.at_level(logging.WARNING, logger="forktrace"):
        assert callback() is None
        assert callback() is None
    assert caplog.text.count("test.guarded_callback") == 1
