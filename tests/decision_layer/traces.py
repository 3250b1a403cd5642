"""Hand-built traces with known answers, written into ``otel_traces`` the way a
collector writes them (one row per span, attribute values as strings).

A ``Trace`` hands out spans that inherit their lineage from their parent, as
forktrace's span processor stamps it: run and session on every span, the agent
of the innermost agent span, the fork and branch of the innermost branch (a
fork span carries its own id as the fork and the lineage of the branch it was
opened in).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from forktrace import semconv as sc

T0 = dt.datetime(2026, 3, 2, 9, 0, 0)

COLUMNS = [
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
]

_ids = itertools.count(1)


def _new_id(width: int) -> str:
    return f"{next(_ids):0{width}x}"


@dataclass
class Span:
    trace: Trace
    span_id: str
    parent_id: str
    name: str
    at_ms: int
    ms: int
    attributes: dict[str, str]
    status: str = "Unset"
    status_message: str = ""
    events: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)

    def lineage(self) -> dict[str, str]:
        return {k: self.attributes[k] for k in sc.LINEAGE_KEYS if k in self.attributes}

    def event(self, at_ms: int, name: str, **attributes: str) -> Span:
        self.events.append((at_ms, name, attributes))
        return self

    def row(self) -> list[Any]:
        start = T0 + dt.timedelta(milliseconds=self.at_ms)
        return [
            start,
            self.trace.trace_id,
            self.span_id,
            self.parent_id,
            "",
            self.name,
            "Internal",
            self.trace.service,
            {"service.name": self.trace.service},
            "forktrace",
            "0.1.0",
            self.attributes,
            self.ms * 1_000_000,
            self.status,
            self.status_message,
            [T0 + dt.timedelta(milliseconds=at) for at, _, _ in self.events],
            [name for _, name, _ in self.events],
            [attrs for _, _, attrs in self.events],
            [],
            [],
            [],
            [],
        ]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    return str(value)


class Trace:
    """The spans of one trace; ``run_id=None`` writes no forktrace lineage at all."""

    def __init__(self, run_id: str | None, session_id: str = "", service: str = "agents") -> None:
        self.trace_id = _new_id(32)
        self.run_id = run_id
        self.session_id = session_id
        self.service = service
        self.spans: list[Span] = []

    def span(
        self,
        name: str,
        parent: Span | None,
        at: int,
        ms: int,
        kind: str | None = None,
        error: str | None = None,
        **attributes: Any,
    ) -> Span:
        attrs: dict[str, str] = parent.lineage() if parent else {}
        if self.run_id is not None:
            attrs.setdefault(sc.RUN_ID, self.run_id)
            if self.session_id:
                attrs.setdefault(sc.SESSION_ID, self.session_id)
        if kind:
            attrs[sc.KIND] = kind
        attrs.update({k: _text(v) for k, v in attributes.items()})
        span = Span(self, _new_id(16), parent.span_id if parent else "", name, at, ms, attrs)
        if error is not None:
            span.status, span.status_message = "Error", error
        self.spans.append(span)
        return span

    # forktrace kinds, with lineage set the way the SDK sets it

    def run(self, name: str, at: int, ms: int, **attrs: Any) -> Span:
        return self.span(name, None, at, ms, kind="run", **{sc.RUN_NAME: name}, **attrs)

    def agent(self, parent: Span, name: str, at: int, ms: int, **attrs: Any) -> Span:
        return self.span(
            f"invoke_agent {name}", parent, at, ms, kind="agent",
            **{sc.AGENT_NAME: name, sc.GEN_AI_AGENT_NAME: name, sc.GEN_AI_OPERATION_NAME: "invoke_agent"},
            **attrs,
        )  # fmt: skip

    def fork(self, parent: Span, name: str, at: int, ms: int, **attrs: Any) -> Span:
        span = self.span(name, parent, at, ms, kind="fork", **{sc.FORK_NAME: name}, **attrs)
        span.attributes[sc.FORK_ID] = span.span_id
        return span

    def branch(self, fork: Span, index: int, label: str, at: int, ms: int, **attrs: Any) -> Span:
        parent_path = fork.attributes.get(sc.BRANCH_PATH, "")
        path = f"{parent_path}.{index}" if parent_path else str(index)
        span = self.span(
            f"branch {label}", fork, at, ms, kind="branch",
            **{sc.BRANCH_INDEX: index, sc.BRANCH_LABEL: label, sc.BRANCH_PATH: path}, **attrs,
        )  # fmt: skip
        span.attributes[sc.FORK_ID] = fork.span_id
        span.attributes[sc.BRANCH_ID] = span.span_id
        return span

    def llm(
        self,
        parent: Span,
        model: str,
        tokens_in: int,
        tokens_out: int,
        at: int,
        ms: int,
        **attrs: Any,
    ) -> Span:
        return self.span(
            f"chat {model}", parent, at, ms, kind="llm",
            **{
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_REQUEST_MODEL: model,
                sc.GEN_AI_USAGE_INPUT_TOKENS: tokens_in,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: tokens_out,
            },
            **attrs,
        )  # fmt: skip

    def tool(
        self, parent: Span, name: str, arguments: str, at: int, ms: int,
        result: str = "", error: str | None = None,
    ) -> Span:  # fmt: skip
        return self.span(
            f"execute_tool {name}", parent, at, ms, kind="tool", error=error,
            **{
                sc.GEN_AI_OPERATION_NAME: "execute_tool",
                sc.GEN_AI_TOOL_NAME: name,
                sc.GEN_AI_TOOL_CALL_ARGUMENTS: arguments,
                sc.GEN_AI_TOOL_CALL_RESULT: result,
            },
        )  # fmt: skip

    def decision(
        self, parent: Span, question: str, options: list[str], chosen: str, at: int,
        confidence: float | None = None, reasoning: str = "", maker: str = "agent",
    ) -> Span:  # fmt: skip
        attrs: dict[str, Any] = {
            sc.DECISION_QUESTION: question,
            sc.DECISION_OPTIONS: options,
            sc.DECISION_CHOSEN: chosen,
            sc.DECISION_REASONING: reasoning,
            sc.DECISION_MAKER: maker,
        }
        if confidence is not None:
            attrs[sc.DECISION_CONFIDENCE] = confidence
        return self.span(f"decision {question}", parent, at, 1, kind="decision", **attrs)

    def rows(self) -> list[list[Any]]:
        return [span.row() for span in self.spans]


def insert(client: Any, rows: list[list[Any]]) -> None:
    client.insert("otel_traces", rows, column_names=COLUMNS)
