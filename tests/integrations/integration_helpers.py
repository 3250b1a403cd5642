"""Helpers for the framework integration tests (imported by module name: this
folder is on sys.path under pytest's default import mode)."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from forktrace import semconv


def require(module: str) -> ModuleType:
    """Import a framework: skip when missing, fail when the nox session requires it."""
    if os.environ.get("FORKTRACE_REQUIRE_FRAMEWORK") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)


class Spans:
    """The finished spans of one test, with the queries the assertions need."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self._exporter.get_finished_spans())

    def kind(self, kind: semconv.Kind) -> list[ReadableSpan]:
        return [span for span in self.all() if span.attributes.get(semconv.KIND) == kind.value]

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.all() if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {[s.name for s in self.all()]}"
        return found[0]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        by_id = {s.context.span_id: s for s in self.all()}
        return by_id.get(span.parent.span_id)

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return sorted(
            (
                s
                for s in self.all()
                if s.parent is not None and s.parent.span_id == span.context.span_id
            ),
            key=lambda s: s.start_time or 0,
        )

    def ancestors(self, span: ReadableSpan) -> list[ReadableSpan]:
        chain = []
        current = self.parent(span)
        while current is not None:
            chain.append(current)
            current = self.parent(current)
        return chain

    def clear(self) -> None:
        self._exporter.clear()


def span_id(span: ReadableSpan) -> str:
    return format(span.context.span_id, "016x")


def assert_one_llm_span_in_each_branch(
    spans: Spans, branches: int, input_tokens: int | None = 11
) -> list[ReadableSpan]:
    """Each of ``branches`` fork branches holds exactly one llm span, right under it,
    for the prompt naming the branch's label, with the fake OpenAI server's token
    count and no span of the provider SDK's integration inside it: a model call that
    a framework and the openai integration both see is recorded (and counted) once."""
    llms = spans.kind(semconv.Kind.LLM)
    assert len(llms) == branches  # one per call: tokens count once
    by_id = {span_id(b): b for b in spans.kind(semconv.Kind.BRANCH)}
    for span in llms:
        branch = by_id[span.attributes[semconv.BRANCH_ID]]
        assert spans.parent(span) is branch
        assert (
            branch.attributes[semconv.BRANCH_LABEL]
            in span.attributes[semconv.GEN_AI_INPUT_MESSAGES]
        )
        if input_tokens is not None:
            assert span.attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == input_tokens
        assert spans.children(span) == []
    return llms
