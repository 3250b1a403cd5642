"""Content capture off keeps the structure and drops the content; long text is truncated visibly."""

from __future__ import annotations

from sdk_helpers import attrs

import forktrace
from forktrace import semconv

CONTENT_KEYS = {
    semconv.RUN_GOAL,
    semconv.GEN_AI_INPUT_MESSAGES,
    semconv.GEN_AI_OUTPUT_MESSAGES,
    semconv.LLM_REASONING,
    semconv.GEN_AI_TOOL_CALL_ARGUMENTS,
    semconv.GEN_AI_TOOL_CALL_RESULT,
    semconv.DECISION_REASONING,
}


def record_everything() -> None:
    with forktrace.run("r", goal="secret goal"), forktrace.agent("a"):
        with forktrace.llm("m", input_messages=[{"role": "user", "parts": []}]) as call:
            call.record(input_tokens=5, output_tokens=7, reasoning="secret thoughts",
                        output_messages=[{"role": "assistant", "parts": []}])  # fmt: skip
        with forktrace.tool("t", arguments={"password": "hunter2"}) as tool:
            tool.result("secret result")
        with forktrace.decision("which one?", options=["x", "y"]) as decision:
            decision.choose("y", reasoning="secret reasoning", confidence=0.5)
            forktrace.intervene("approve", author="bo", message="secret note")


def test_capture_off_drops_content_and_keeps_structure(record) -> None:
    recorded = record(capture_content=False)
    record_everything()

    recorded_keys = {key for span in recorded.spans() for key in attrs(span)}
    assert not recorded_keys & CONTENT_KEYS
    every_value = [str(v) for span in recorded.spans() for v in attrs(span).values()]
    assert not [v for v in every_value if "secret" in v or "hunter2" in v]

    decision = attrs(recorded.one("decision"))
    assert decision[semconv.DECISION_QUESTION] == "which one?"
    assert decision[semconv.DECISION_OPTIONS] == ("x", "y")
    assert decision[semconv.DECISION_CHOSEN] == "y"
    assert decision[semconv.DECISION_CONFIDENCE] == 0.5
    llm = attrs(recorded.one("chat m"))
    assert llm[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    (intervention,) = recorded.one("decision").events
    assert dict(intervention.attributes) == {"kind": "approve", "author": "bo"}


def test_capture_on_records_content(record) -> None:
    recorded = record(capture_content=True)
    record_everything()
    recorded_keys = {key for span in recorded.spans() for key in attrs(span)}
    assert recorded_keys >= CONTENT_KEYS


def test_capture_switch_from_the_environment(record, monkeypatch) -> None:
    monkeypatch.setenv("FORKTRACE_CAPTURE_CONTENT", "false")
    recorded = record()
    record_everything()
    assert not {key for span in recorded.spans() for key in attrs(span)} & CONTENT_KEYS


def test_long_text_is_truncated_with_marker_and_original_length(record) -> None:
    recorded = record(max_text_length=100)
    long_result = "r" * 5000
    with forktrace.run("r"):
        with forktrace.tool("t") as tool:
            tool.result(long_result)
        with forktrace.decision("q" * 300, options=["short"]) as decision:
            decision.choose("short", reasoning="fits")

    tool_attrs = attrs(recorded.one("execute_tool t"))
    result = tool_attrs[semconv.GEN_AI_TOOL_CALL_RESULT]
    assert len(result) == 100
    assert result.endswith(semconv.TRUNCATION_MARKER)
    assert result.startswith("rrrr")
    key = semconv.GEN_AI_TOOL_CALL_RESULT + semconv.ORIGINAL_LENGTH_SUFFIX
    assert tool_attrs[key] == 5000

    decision = attrs(recorded.one("decision"))
    assert decision[semconv.DECISION_QUESTION].endswith(semconv.TRUNCATION_MARKER)
    assert decision[semconv.DECISION_QUESTION + semconv.ORIGINAL_LENGTH_SUFFIX] == 300
    assert decision[semconv.DECISION_REASONING] == "fits"
    assert semconv.DECISION_REASONING + semconv.ORIGINAL_LENGTH_SUFFIX not in decision


def test_policy_applies_when_the_span_opens_not_when_decorated(record) -> None:
    @forktrace.run("decorated early", goal="secret goal")
    def job() -> None:
        with forktrace.tool("t", arguments="secret args"):
            pass

    recorded = record(capture_content=False)  # init() after the decorator was built
    job()
    assert semconv.RUN_GOAL not in attrs(recorded.one("run decorated early"))
    assert semconv.GEN_AI_TOOL_CALL_ARGUMENTS not in attrs(recorded.one("execute_tool t"))
