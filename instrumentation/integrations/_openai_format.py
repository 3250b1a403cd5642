"""Reading OpenAI's request and response shapes into forktrace's model-call record.

Shared by the OpenAI SDK integration and the OpenAI Agents SDK integration
(whose spans carry the same shapes); needs neither package installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forktrace.integrations._shared import (
    LlmResult,
    field_of,
    message,
    text_part,
    tool_call_part,
    tool_result_part,
)


def content_parts(content: Any) -> list[dict[str, Any]]:
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


def chat_messages(messages: Any) -> list[dict[str, Any]]:
    converted = []
    for item in messages or ():
        role = field_of(item, "role") or "user"
        parts = content_parts(field_of(item, "content"))
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


def chat_result(completion: Any) -> LlmResult:
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


def responses_messages(kwargs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The input of a responses call (``instructions`` and ``input``) as GenAI messages."""
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
                        field_of(item, "role") or "user", content_parts(field_of(item, "content"))
                    )
                )
    return messages


def responses_result(response: Any) -> LlmResult:
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
