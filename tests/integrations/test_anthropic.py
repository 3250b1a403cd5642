"""The Anthropic SDK integration against a local server speaking the Messages API.

The SDK traces its calls itself; these tests check that forktrace turns those
spans into llm spans with lineage and thinking text, without duplicates.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from integration_helpers import Spans, require, span_id
from opentelemetry import trace

anthropic = require("anthropic")

from aiohttp import web  # noqa: E402
from fake_providers import LocalServer, sse  # noqa: E402

import forktrace  # noqa: E402
from forktrace import semconv  # noqa: E402
from forktrace.integrations.anthropic import CONTENT_MODE_VARIABLE  # noqa: E402

CALL = "anthropic.messages.create"


def _prompt(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else content[0].get("text", "")


async def _messages(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    prompt = _prompt(body)
    thinking = f"thinking about {prompt}"
    answer = f"answer: {prompt}"
    usage = {"input_tokens": 12, "output_tokens": 8}
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-2026",
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "content": [
            {"type": "thinking", "thinking": thinking, "signature": "sig"},
            {"type": "text", "text": answer},
        ],
        "usage": usage,
    }
    if not body.get("stream"):
        return web.json_response(message)

    async def events() -> AsyncIterator[tuple[str | None, Any]]:
        start = message | {
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        }
        yield "message_start", {"type": "message_start", "message": start}
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        )
        yield (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": thinking},
            },
        )
        yield (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "sig"},
            },
        )
        yield "content_block_stop", {"type": "content_block_stop", "index": 0}
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        )
        yield (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": answer},
            },
        )
        yield "content_block_stop", {"type": "content_block_stop", "index": 1}
        yield (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 8},
            },
        )
        yield "message_stop", {"type": "message_stop"}

    return await sse(request, events())


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer({"/v1/messages": _messages}) as running:
        yield running


def _client(server: LocalServer, cls: Any = None) -> Any:
    return (cls or anthropic.Anthropic)(api_key="test", base_url=server.url, max_retries=0)


def _reasoning_parts(span: Any) -> list[str]:
    messages = json.loads(span.attributes[semconv.GEN_AI_OUTPUT_MESSAGES])
    return [
        part["content"] for msg in messages for part in msg["parts"] if part["type"] == "reasoning"
    ]


def test_a_message_is_one_llm_span_with_thinking_and_lineage(
    spans: Spans, server: LocalServer
) -> None:
    forktrace.instrument("anthropic")
    client = _client(server)  # created after instrument(): records content
    with forktrace.run("ask") as run, forktrace.agent("writer"):
        reply = client.messages.create(
            model="claude-test",
            max_tokens=100,
            thinking={"type": "enabled", "budget_tokens": 50},
            messages=[{"role": "user", "content": "a poem"}],
        )
    assert reply.content[1].text == "answer: a poem"

    (llm,) = spans.named(CALL)  # the SDK's own span, not a duplicate
    attrs = llm.attributes
    assert attrs[semconv.KIND] == "llm"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "claude-test"
    assert attrs[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 8
    assert attrs[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 12
    assert attrs[semconv.RUN_ID] == run.id
    assert attrs[semconv.AGENT_NAME] == "writer"
    assert spans.parent(llm).name == "invoke_agent writer"
    assert _reasoning_parts(llm) == ["thinking about a poem"]
    assert spans.kind(semconv.Kind.LLM) == [llm]


def test_streamed_messages_keep_thinking(spans: Spans, server: LocalServer) -> None:
    forktrace.instrument("anthropic")
    client = _client(server)
    with client.messages.stream(
        model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].thinking == "thinking about stream it"
    (llm,) = spans.named(CALL)
    assert llm.attributes[semconv.KIND] == "llm"
    assert _reasoning_parts(llm) == ["thinking about stream it"]
    assert llm.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 8


async def test_parallel_branches_each_hold_their_own_calls(
    spans: Spans, server: LocalServer
) -> None:
    forktrace.instrument("anthropic")
    client = _client(server, anthropic.AsyncAnthropic)
    labels = ["w", "x", "y", "z"]

    async def attempt(label: str) -> str:
        first = await client.messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": label}]
        )
        stream = await client.messages.create(
            model="claude-test",
            max_tokens=10,
            messages=[{"role": "user", "content": label}],
            stream=True,
        )
        async for _ in stream:
            await asyncio.sleep(0)
        return first.content[1].text

    with forktrace.run("race"), forktrace.fork("drafts", strategy="best_of") as fork:
        results = await fork.map(attempt, labels, labels=labels)
        fork.choose("y", criterion="shortest")
    assert results == [f"answer: {label}" for label in labels]

    branches = {b.attributes[semconv.BRANCH_LABEL]: b for b in spans.kind(semconv.Kind.BRANCH)}
    calls = spans.named(CALL)
    assert len(calls) == 8
    for call in calls:
        label = json.loads(call.attributes[semconv.GEN_AI_INPUT_MESSAGES])[-1]["parts"][0][
            "content"
        ]
        assert spans.parent(call) is branches[label]
        assert call.attributes[semconv.BRANCH_ID] == span_id(branches[label])
    fork_span = spans.kind(semconv.Kind.FORK)[0]
    outcomes = {
        event.attributes[semconv.BRANCH_LABEL]: event.attributes[semconv.BRANCH_OUTCOME]
        for event in fork_span.events
        if event.name == semconv.BRANCH_OUTCOME_EVENT
    }
    assert outcomes == {"w": "lost", "x": "lost", "y": "won", "z": "lost"}


def test_uninstrument_restores_the_sdk_settings(
    spans: Spans, server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONTENT_MODE_VARIABLE, raising=False)
    forktrace.instrument("anthropic")
    assert forktrace.instrument("anthropic") == []
    forktrace.uninstrument()
    assert CONTENT_MODE_VARIABLE not in __import__("os").environ
    client = _client(server)
    client.messages.create(
        model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    (call,) = spans.named(CALL)  # the SDK still traces itself, as it did before forktrace
    assert semconv.KIND not in call.attributes
    assert semconv.GEN_AI_OUTPUT_MESSAGES not in call.attributes


def test_a_call_a_framework_records_is_not_a_second_llm_span(
    spans: Spans, server: LocalServer
) -> None:
    """Inside a framework's marker or its current llm span, the SDK's span gets no llm kind."""
    from forktrace.integrations._shared import framework_model_call, start_span

    forktrace.instrument("anthropic")
    client = _client(server)
    request = {
        "model": "claude-test",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "x"}],
    }
    with framework_model_call("some-framework"):
        client.messages.create(**request)
    framework_span = start_span("chat claude-test", semconv.Kind.LLM)
    with trace.use_span(framework_span, end_on_exit=True):
        client.messages.create(**request)
    (llm,) = spans.kind(semconv.Kind.LLM)
    assert llm.name == "chat claude-test"
    sdk_spans = spans.named(CALL)
    assert len(sdk_spans) == 2  # still there, with the SDK's detail, kindless
    assert all(semconv.KIND not in span.attributes for span in sdk_spans)
    assert spans.parent(sdk_spans[1]) is llm

    client.messages.create(**request)  # after them: the SDK's span is the llm span again
    assert len(spans.kind(semconv.Kind.LLM)) == 2
