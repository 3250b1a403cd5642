"""OpenAI SDK: chat completions and responses (sync, async, streaming) as llm spans.

The SDK has no hooks and no OpenTelemetry of its own, so forktrace wraps the
``create`` methods of the resource classes (every client shares them) and
restores them on uninstrument. A streamed response keeps its span open until
the stream ends, folding the chunks into model, tokens, text, tool calls and
reasoning text (``reasoning_content`` from OpenAI-compatible servers, reasoning
summaries from the responses API).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forktrace.integrations._shared import (
    LlmResult,
    field_of,
    llm_attributes,
    message,
    text_part,
    tool_call_part,
    tool_result_part,
)
from forktrace.integrations._wrapping import (
    LlmCallSpec,
    MethodPatches,
    StreamAccumulator,
    llm_wrappers,
)

PROVIDER = "openai"


def _is_stream(response: Any, kwargs: Mapping[str, Any]) -> bool:
    from openai import AsyncStream, Stream

    return isinstance(response, Stream | AsyncStream)


# --- chat completions -------------------------------------------------------


def _chat_request(kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    model = kwargs.get("model")
    return f"chat {model}", llm_attributes(PROVIDER, model), _chat_messages(kwargs.get("messages"))


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts = []
    for item in content:
        kind = field_of(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(field_of(item, "text") or ""))
        else:
            parts.append({"type": kind or "unknown"})
    return parts


def _chat_messages(messages: Any) -> list[dict[str, Any]]:
    converted = []
    for item in messages or ():
        role = field_of(item, "role") or "user"
        parts = _content_parts(field_of(item, "content"))
        for call in field_of(item, "tool_calls") or ():
            function = field_of(call, "function")
            parts.append(
                tool_call_part(
                    field_of(call, "id"),
                    field_of(function, "name"),
                    field_of(function, "arguments"),
                )
            )
        if role == "tool":
            parts = [tool_result_part(field_of(item, "tool_call_id"), field_of(item, "content"))]
        converted.append(message(role, parts))
    return converted


def _chat_result(completion: Any) -> LlmResult:
    result = LlmResult(
        response_model=field_of(completion, "model"), response_id=field_of(completion, "id")
    )
    result.add_usage(field_of(completion, "usage"))
    for choice in field_of(completion, "choices") or ():
        msg = field_of(choice, "message")
        if field_of(choice, "finish_reason"):
            result.finish_reasons.append(choice.finish_reason)
        if msg is None:
            continue
        if field_of(msg, "content"):
            result.text.append(msg.content)
        # Not in OpenAI's own schema; OpenAI-compatible reasoning servers send it.
        reasoning = field_of(msg, "reasoning_content", "reasoning")
        if isinstance(reasoning, str):
            result.reasoning.append(reasoning)
        for call in field_of(msg, "tool_calls") or ():
            function = field_of(call, "function")
            result.tool_calls.append(
                {
                    "id": field_of(call, "id"),
                    "name": field_of(function, "name"),
                    "arguments": field_of(function, "arguments"),
                }
            )
    return result


class _ChatChunks(StreamAccumulator):
    def __init__(self) -> None:
        super().__init__()
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, chunk: Any) -> None:
        result = self.result
        result.response_model = field_of(chunk, "model") or result.response_model
        result.response_id = field_of(chunk, "id") or result.response_id
        if field_of(chunk, "usage") is not None:
            result.add_usage(chunk.usage)
        for choice in field_of(chunk, "choices") or ():
            if field_of(choice, "finish_reason"):
                result.finish_reasons.append(choice.finish_reason)
            delta = field_of(choice, "delta")
            if delta is None:
                continue
            if field_of(delta, "content"):
                self._text.append(delta.content)
            reasoning = field_of(delta, "reasoning_content", "reasoning")
            if isinstance(reasoning, str):
                self._reasoning.append(reasoning)
            for call in field_of(delta, "tool_calls") or ():
                slot = self._calls.setdefault(
                    field_of(call, "index") or 0, {"id": None, "name": None, "arguments": ""}
                )
                slot["id"] = field_of(call, "id") or slot["id"]
                function = field_of(call, "function")
                if function is not None:
                    slot["name"] = field_of(function, "name") or slot["name"]
                    slot["arguments"] += field_of(function, "arguments") or ""
        result.text = ["".join(self._text)]
        result.reasoning = ["".join(self._reasoning)]
        result.tool_calls = [self._calls[index] for index in sorted(self._calls)]


# --- responses --------------------------------------------------------------


def _responses_request(
    kwargs: Mapping[str, Any],
) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    model = kwargs.get("model")
    messages = []
    if kwargs.get("instructions"):
        messages.append(message("system", [text_part(kwargs["instructions"])]))
    given = kwargs.get("input")
    if isinstance(given, str):
        messages.append(message("user", [text_part(given)]))
    elif given:
        for item in given:
            kind = field_of(item, "type")
            if kind == "function_call_output":
                messages.append(
                    message(
                        "tool",
                        [tool_result_part(field_of(item, "call_id"), field_of(item, "output"))],
                    )
                )
            elif kind == "function_call":
                part = tool_call_part(
                    field_of(item, "call_id"), field_of(item, "name"), field_of(item, "arguments")
                )
                messages.append(message("assistant", [part]))
            else:
                messages.append(
                    message(
                        field_of(item, "role") or "user", _content_parts(field_of(item, "content"))
                    )
                )
    return f"chat {model}", llm_attributes(PROVIDER, model), messages


def _responses_result(response: Any) -> LlmResult:
    result = LlmResult(
        response_model=field_of(response, "model"), response_id=field_of(response, "id")
    )
    result.add_usage(field_of(response, "usage"))
    status = field_of(response, "status")
    if status:
        result.finish_reasons.append(status)
    for item in field_of(response, "output") or ():
        kind = field_of(item, "type")
        if kind == "message":
            for part in field_of(item, "content") or ():
                if field_of(part, "type") == "output_text":
                    result.text.append(field_of(part, "text") or "")
        elif kind == "reasoning":
            for part in list(field_of(item, "summary") or ()) + list(
                field_of(item, "content") or ()
            ):
                if field_of(part, "text"):
                    result.reasoning.append(part.text)
        elif kind == "function_call":
            result.tool_calls.append(
                {
                    "id": field_of(item, "call_id"),
                    "name": field_of(item, "name"),
                    "arguments": field_of(item, "arguments"),
                }
            )
    return result


class _ResponseEvents(StreamAccumulator):
    """The final ``response.completed`` event carries the whole response; deltas are a fallback."""

    def __init__(self) -> None:
        super().__init__()
        self._text: list[str] = []
        self._reasoning: list[str] = []

    def add(self, event: Any) -> None:
        kind = field_of(event, "type")
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.result = _responses_result(event.response)
        elif kind == "response.output_text.delta":
            self._text.append(field_of(event, "delta") or "")
            self.result.text = ["".join(self._text)]
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self._reasoning.append(field_of(event, "delta") or "")
            self.result.reasoning = ["".join(self._reasoning)]
        elif kind == "response.created":
            self.result.response_model = field_of(field_of(event, "response"), "model")


CHAT = LlmCallSpec(
    where="openai.chat",
    provider=PROVIDER,
    request=_chat_request,
    result=_chat_result,
    accumulator=_ChatChunks,
    is_stream=_is_stream,
)
RESPONSES = LlmCallSpec(
    where="openai.responses",
    provider=PROVIDER,
    request=_responses_request,
    result=_responses_result,
    accumulator=_ResponseEvents,
    is_stream=_is_stream,
)


class Instrumentor:
    def __init__(self) -> None:
        self._patches = MethodPatches()

    def instrument(self, **options: Any) -> None:
        from openai.resources.chat import completions
        from openai.resources.responses import responses

        for spec, sync_owner, async_owner in (
            (CHAT, completions.Completions, completions.AsyncCompletions),
            (RESPONSES, responses.Responses, responses.AsyncResponses),
        ):
            sync_wrapper, async_wrapper = llm_wrappers(spec)
            self._patches.wrap(sync_owner, "create", sync_wrapper)
            self._patches.wrap(async_owner, "create", async_wrapper)

    def uninstrument(self) -> None:
        self._patches.restore()
