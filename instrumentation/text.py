"""What text forktrace records: the content-capture switch and truncation.

With content capture off, forktrace keeps the structure of the work (names,
kinds, ids, outcomes, token counts, a decision's question, options and chosen
option) and drops content: prompts and messages, reasoning text, tool
arguments and results, a run's goal, decision reasoning and intervention
messages.

Any text longer than the limit is cut to exactly the limit, ending with
``semconv.TRUNCATION_MARKER``, and its original length is recorded under
``<attribute>.original_length``: long text is never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

from forktrace import _guard
from forktrace.config import DEFAULT_MAX_TEXT_LENGTH
from forktrace.semconv import ORIGINAL_LENGTH_SUFFIX, TRUNCATION_MARKER


class TextPolicy:
    __slots__ = ("capture_content", "max_length")

    def __init__(self, capture_content: bool, max_length: int) -> None:
        self.capture_content = capture_content
        self.max_length = max_length


policy = TextPolicy(capture_content=True, max_length=DEFAULT_MAX_TEXT_LENGTH)


def configure(*, capture_content: bool, max_length: int) -> None:
    policy.capture_content = capture_content
    policy.max_length = max_length


def to_text(value: Any) -> str:
    """A string as is; anything else as JSON (the GenAI conventions' form), else its str()."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except Exception as exc:  # circular structures, a __str__ that raises
        _guard.report("text.to_text", exc)
    try:
        return repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def clip(value: str) -> str:
    """``value`` cut to the limit, ending with the truncation marker when cut."""
    limit = policy.max_length
    if len(value) <= limit:
        return value
    return value[: limit - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER


def put_text(attributes: MutableMapping[str, Any], key: str, value: Any) -> None:
    """Record structural text (names, questions, reasons) under ``key``, truncated if too long."""
    if value is None:
        return
    text = to_text(value)
    clipped = clip(text)
    attributes[key] = clipped
    if clipped is not text:
        attributes[key + ORIGINAL_LENGTH_SUFFIX] = len(text)


def put_content(attributes: MutableMapping[str, Any], key: str, value: Any) -> None:
    """Record content (prompts, reasoning, tool I/O) under ``key`` unless capture is off."""
    if policy.capture_content:
        put_text(attributes, key, value)
