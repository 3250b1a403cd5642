"""OpenAI SDK: chat completions and responses (sync, async, streaming) as llm spans.

The SDK has no hooks and no OpenTelemetry of its own, so forktrace wraps the
``create`` methods of the resource classes (every client shares them) and
restores them on uninstrument. A streamed response keeps its span open until
the stream ends, folding the chunks into model, tokens, text, tool calls and
reasoning text (``reasoning_content`` from OpenAI-compatible servers, reasoning
summaries from the responses API).

A call made while a framework records it as its own llm span (LangChain's
ChatOpenAI, Strands' or Pydantic AI's OpenAI models) gets no span here: the
framework's span is the llm span, and what only the provider's answer says
(its model, reasoning tokens and text) is added to it where it lacks them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from forktrace.integrations._openai_format import (
    chat_messages,
    chat_result,
    responses_messages,
    responses_result,
)
from forktrace.integrations._shared import (
    LlmResult,
    field_of,
    llm_attributes,
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


def _parsed(read: Callable[[Any], LlmResult]) -> Callable[[Any], LlmResult]:
    """``read`` that also reads ``with_raw_response`` calls (LangChain's ChatOpenAI makes them).

    Their ``create`` returns the raw HTTP response; its ``parse()`` is cached, so
    parsing it here spares the caller nothing and costs it nothing. A raw streamed
    response is left to its caller: reading it would consume it.
    """

    def read_parsed(response: Any) -> LlmResult:
        from openai._legacy_response import LegacyAPIResponse

        if isinstance(response, LegacyAPIResponse):
            if getattr(response, "_stream", False):
                return LlmResult()
            response = response.parse()
        return read(response)

    return read_parsed


# --- chat completions -------------------------------------------------------


def _chat_request(kwargs: Mapping[str, Any]) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    model = kwargs.get("model")
    return f"chat {model}", llm_attributes(PROVIDER, model), chat_messages(kwargs.get("messages"))


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
    return f"chat {model}", llm_attributes(PROVIDER, model), responses_messages(kwargs)


class _ResponseEvents(StreamAccumulator):
    """The final ``response.completed`` event carries the whole response; deltas are a fallback."""

    def __init__(self) -> None:
        super().__init__()
        self._text: list[str] = []
        self._reasoning: list[str] = []

    def add(self, event: Any) -> None:
        kind = field_of(event, "type")
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self.result = responses_result(event.response)
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
    result=_parsed(chat_result),
    accumulator=_ChatChunks,
    is_stream=_is_stream,
)
RESPONSES = LlmCallSpec(
    where="openai.responses",
    provider=PROVIDER,
    request=_responses_request,
    result=_parsed(responses_result),
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
