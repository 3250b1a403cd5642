"""The OpenAI SDK integration against a local server speaking the OpenAI API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from integration_helpers import Spans, require, span_id
from opentelemetry import trace

openai = require("openai")

from aiohttp import web  # noqa: E402
from fake_providers import LocalServer, sse  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv, text  # noqa: E402

USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 7,
    "total_tokens": 18,
    "completion_tokens_details": {"reasoning_tokens": 3},
}


def _last_text(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


async def _chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    prompt = _last_text(body)
    if "fail" in prompt:
        return web.json_response({"error": {"message": "refused", "type": "invalid"}}, status=400)
    tool_calls = None
    if "weather" in prompt:
        tool_calls = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ]
    finish = "tool_calls" if tool_calls else "stop"
    answer = f"answer: {prompt}"
    reasoning = f"thinking about {prompt}"
    if not body.get("stream"):
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-test-2026",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": finish,
                        "message": {
                            "role": "assistant",
                            "content": None if tool_calls else answer,
                            "reasoning_content": reasoning,
                            "tool_calls": tool_calls,
                        },
                    }
                ],
                "usage": USAGE,
            }
        )

    async def chunks() -> AsyncIterator[tuple[str | None, Any]]:
        base = {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gpt-test-2026",
        }
        yield (
            None,
            base
            | {
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "reasoning_content": reasoning}}
                ]
            },
        )
        for word in answer.split(" "):
            yield None, base | {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
        yield None, base | {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        yield None, base | {"choices": [], "usage": USAGE}
        yield None, "[DONE]"

    return await sse(request, chunks())


def _response_body(prompt: str) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "model": "o-test-2026",
        "status": "completed",
        "output": [
            {
                "id": "rs_1",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": f"reasoned about {prompt}"}],
            },
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": f"answer: {prompt}", "annotations": []}
                ],
            },
        ],
        "usage": {
            "input_tokens": 5,
            "output_tokens": 9,
            "total_tokens": 14,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 4},
        },
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


async def _responses(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    prompt = body["input"]
    full = _response_body(prompt)
    if not body.get("stream"):
        return web.json_response(full)

    async def events() -> AsyncIterator[tuple[str | None, Any]]:
        created = full | {"status": "in_progress", "output": [], "usage": None}
        yield (
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": created},
        )
        yield (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 1,
                "item_id": "msg_1",
                "output_index": 1,
                "content_index": 0,
                "delta": "answer",
                "logprobs": [],
            },
        )
        yield (
            "response.completed",
            {"type": "response.completed", "sequence_number": 2, "response": full},
        )

    return await sse(request, events())


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer({"/v1/chat/completions": _chat, "/v1/responses": _responses}) as running:
        yield running


@pytest.fixture
def client(server: LocalServer) -> Any:
    return openai.OpenAI(api_key="test", base_url=f"{server.url}/v1", max_retries=0)


@pytest.fixture
def async_client(server: LocalServer) -> Any:
    return openai.AsyncOpenAI(api_key="test", base_url=f"{server.url}/v1", max_retries=0)


def test_a_chat_completion_is_an_llm_span_inside_its_agent(spans: Spans, client: Any) -> None:
    forktrace.instrument("openai")
    with forktrace.run("weather") as run, forktrace.agent("planner"):
        completion = client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "what is the weather?"}]
        )
    assert completion.choices[0].message.tool_calls[0].function.name == "get_weather"

    llm = spans.one("chat gpt-test")
    attrs = llm.attributes
    assert attrs[semconv.KIND] == "llm"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "openai"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "gpt-test"
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-test-2026"
    assert (
        attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS],
        attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS],
    ) == (11, 7)
    assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 3
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert attrs[semconv.LLM_REASONING] == "thinking about what is the weather?"
    assert '"name": "get_weather"' in attrs[semconv.GEN_AI_OUTPUT_MESSAGES]
    assert "what is the weather?" in attrs[semconv.GEN_AI_INPUT_MESSAGES]
    # Lineage: inside the run and the agent, under the agent span.
    assert attrs[semconv.RUN_ID] == run.id
    assert attrs[semconv.AGENT_NAME] == "planner"
    assert spans.parent(llm).name == "invoke_agent planner"


def test_a_streamed_completion_ends_its_span_when_the_stream_is_read(
    spans: Spans, client: Any
) -> None:
    forktrace.instrument("openai")
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hello there"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert spans.named("chat gpt-test") == []  # still open while the stream is unread
    pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices]
    assert "".join(p or "" for p in pieces).strip() == "answer: hello there"

    attrs = spans.one("chat gpt-test").attributes
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 7
    assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert attrs[semconv.LLM_REASONING] == "thinking about hello there"
    assert "answer: hello there" in attrs[semconv.GEN_AI_OUTPUT_MESSAGES]


async def test_parallel_async_calls_stay_in_their_own_branches(
    spans: Spans, async_client: Any
) -> None:
    forktrace.instrument()  # every installed framework: here, openai
    labels = ["a", "b", "c", "d", "e"]

    async def attempt(label: str) -> str:
        stream = await async_client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": f"try {label}"}], stream=True
        )
        parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        completion = await async_client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": f"check {label}"}]
        )
        return "".join(parts) + completion.choices[0].message.content

    with forktrace.run("parallel"), forktrace.fork("approach") as fork:
        await fork.map(attempt, labels, labels=labels)

    branches = {
        span.attributes[semconv.BRANCH_LABEL]: span for span in spans.kind(semconv.Kind.BRANCH)
    }
    assert sorted(branches) == labels
    llms = spans.kind(semconv.Kind.LLM)
    assert len(llms) == 10
    for llm in llms:
        label = llm.attributes[semconv.GEN_AI_INPUT_MESSAGES].split(" ")[-1].split('"')[0]
        branch = branches[label]
        # Directly under its own branch: not nested in a sibling, not detached.
        assert spans.parent(llm) is branch
        assert llm.attributes[semconv.BRANCH_ID] == span_id(branch)
        assert llm.attributes[semconv.BRANCH_PATH] == branch.attributes[semconv.BRANCH_PATH]
    assert len({b.attributes[semconv.BRANCH_PATH] for b in branches.values()}) == 5


async def test_responses_api_sync_async_and_streamed(
    spans: Spans, client: Any, async_client: Any
) -> None:
    forktrace.instrument("openai")
    client.responses.create(model="o-test", input="plan the trip")
    async for _ in await async_client.responses.create(model="o-test", input="pack", stream=True):
        pass

    first, second = sorted(spans.named("chat o-test"), key=lambda span: span.start_time)
    for span, prompt in ((first, "plan the trip"), (second, "pack")):
        attrs = span.attributes
        assert attrs[semconv.KIND] == "llm"
        assert attrs[semconv.LLM_REASONING] == f"reasoned about {prompt}"
        assert attrs[semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == 4
        assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "o-test-2026"
        assert attrs[semconv.GEN_AI_RESPONSE_FINISH_REASONS] == ("completed",)


def test_a_failed_call_is_an_error_span_and_the_error_reaches_the_caller(
    spans: Spans, client: Any
) -> None:
    forktrace.instrument("openai")
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "fail"}]
        )
    span = spans.one("chat gpt-test")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes[semconv.ERROR_TYPE] == "BadRequestError"


def test_content_capture_off_keeps_tokens_and_drops_text(spans: Spans, client: Any) -> None:
    forktrace.instrument("openai")
    saved = (text.policy.capture_content, text.policy.max_length)
    text.configure(capture_content=False, max_length=saved[1])
    try:
        client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "secret"}]
        )
    finally:
        text.configure(capture_content=saved[0], max_length=saved[1])
    attrs = spans.one("chat gpt-test").attributes
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11
    assert not {
        semconv.GEN_AI_INPUT_MESSAGES,
        semconv.GEN_AI_OUTPUT_MESSAGES,
        semconv.LLM_REASONING,
    } & set(attrs)


def test_an_internal_error_is_logged_once_and_never_breaks_the_call(
    spans: Spans, client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from forktrace.integrations import _shared

    def broken(self: Any, usage: Any) -> None:
        raise RuntimeError("forktrace bug")

    monkeypatch.setattr(_shared.LlmResult, "add_usage", broken)
    forktrace.instrument("openai")
    with caplog.at_level(logging.WARNING, logger="forktrace"):
        for _ in range(3):
            completion = client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": "hi"}]
            )
            assert completion.choices[0].message.content == "answer: hi"
    assert len(spans.named("chat gpt-test")) == 3  # spans still end
    assert len([r for r in caplog.records if "openai.chat" in r.getMessage()]) == 1


def test_uninstrument_restores_the_sdk(spans: Spans, client: Any) -> None:
    from openai.resources.chat.completions import AsyncCompletions, Completions
    from openai.resources.responses import AsyncResponses, Responses

    originals = [
        owner.__dict__["create"]
        for owner in (Completions, AsyncCompletions, Responses, AsyncResponses)
    ]
    assert forktrace.instrument("openai") == ["openai"]
    assert forktrace.instrument("openai") == []  # idempotent
    assert Completions.__dict__["create"] is not originals[0]
    assert forktrace.uninstrument() == ["openai"]
    restored = [
        owner.__dict__["create"]
        for owner in (Completions, AsyncCompletions, Responses, AsyncResponses)
    ]
    assert restored == originals
    client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
    assert spans.all() == []


def test_naming_a_missing_framework_says_how_to_install_it() -> None:
    from forktrace._extras import MissingExtraError
    from forktrace.integrations import SUPPORTED

    missing = next((i for i in SUPPORTED.values() if not i.installed()), None)
    if missing is None:  # every framework installed: nothing to name
        return
    with pytest.raises(MissingExtraError, match=rf'pip install "forktrace\[{missing.extra}\]"'):
        forktrace.instrument(missing.name)
    with pytest.raises(ValueError, match="no integration named"):
        forktrace.instrument("no-such-framework")


def test_streams_dropped_half_read_still_end_their_span(spans: Spans, client: Any) -> None:
    forktrace.instrument("openai")
    stream = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "a b c"}], stream=True
    )
    next(iter(stream))
    stream.close()
    assert len(spans.named("chat gpt-test")) == 1


def test_asyncio_gather_of_runs_keeps_runs_apart(spans: Spans, async_client: Any) -> None:
    forktrace.instrument("openai")

    async def one(index: int) -> str:
        with forktrace.run(f"run-{index}") as run:
            await async_client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": f"n{index}"}]
            )
            return run.id

    async def main() -> list[str]:
        return await asyncio.gather(*(one(i) for i in range(4)))

    run_ids = asyncio.run(main())
    by_prompt = {
        span.attributes[semconv.GEN_AI_INPUT_MESSAGES].split('"content": "')[1].split('"')[0]: span
        for span in spans.kind(semconv.Kind.LLM)
    }
    for index, run_id in enumerate(run_ids):
        assert by_prompt[f"n{index}"].attributes[semconv.RUN_ID] == run_id


def test_a_raw_response_call_is_read(spans: Spans, client: Any) -> None:
    """``with_raw_response`` (LangChain's ChatOpenAI calls it) still gives model and tokens."""
    forktrace.instrument("openai")
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=[{"role": "user", "content": "raw"}]
    )
    assert raw.parse().choices[0].message.content == "answer: raw"
    attrs = spans.one("chat gpt-test").attributes
    assert attrs[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-test-2026"
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 11


def test_a_call_a_framework_records_gets_no_span_of_its_own(spans: Spans, client: Any) -> None:
    """Inside a framework's marker or its current llm span, the framework's span is the one."""
    from forktrace.integrations._shared import framework_model_call, start_span

    forktrace.instrument("openai")
    request = {"model": "gpt-test", "messages": [{"role": "user", "content": "once"}]}
    with framework_model_call("some-framework") as call:
        client.chat.completions.create(**request)
    (provided,) = call.provider_results  # what only the provider said, for the framework
    assert (provided.response_model, provided.reasoning) == (
        "gpt-test-2026",
        ["thinking about once"],
    )

    framework_span = start_span(
        "chat gpt-test",
        semconv.Kind.LLM,
        attributes={
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 99  # the framework's own count stays
        },
    )
    with trace.use_span(framework_span, end_on_exit=True):
        client.chat.completions.create(**request)
    (llm,) = spans.kind(semconv.Kind.LLM)
    assert llm.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 99
    assert llm.attributes[semconv.GEN_AI_RESPONSE_MODEL] == "gpt-test-2026"
    assert llm.attributes[semconv.LLM_REASONING] == "thinking about once"

    client.chat.completions.create(**request)  # the marker and the span ended with their call
    assert len(spans.kind(semconv.Kind.LLM)) == 2
