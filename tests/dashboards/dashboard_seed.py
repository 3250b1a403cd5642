"""Hand-built otel_traces rows with known answers, shaped as forktrace's SDK writes them.

Session ``sess-a`` launched two runs together; ``sess-b`` one more:

run-auth (sess-a, 0-100 s, succeeded): a coordinator thinks, decides on three
approaches (confidence 0.8) and forks them (best_of, winner "rewrite"):
  - branch 0 "rewrite"  (worker-1): one model call, run_tests twice with the
    same arguments (a loop): won;
  - branch 1 "patch"    (worker-2): one model call, apply_patch fails: failed;
  - branch 2 "library"  (worker-3): a model call on an unpriced model and a
    decision at confidence 0.3; alice redirects it at 45 s: abandoned.
run-alt (sess-a, 10-60 s, failed): one agent whose tool call fails.
run-other (sess-b, 30-40 s, succeeded): one agent, one model call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from grafana_sql import utc

from forktrace import semconv as sc

T0 = utc(2026, 1, 10, 12, 0, 0)
SERVICE = "agents"


def span_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def trace_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


@dataclass
class Span:
    key: str  # unique name in the scenario; the span id derives from it
    name: str
    start: float  # seconds after T0
    end: float
    attributes: dict[str, str]
    parent: str = ""
    status: str = "Unset"
    message: str = ""
    events: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return span_id(self.key)


class Run:
    """Builds one run's spans, stamping lineage the way the SDK's processor does."""

    def __init__(self, run_id: str, session: str, name: str) -> None:
        self.run_id, self.session, self.trace = run_id, session, trace_id(run_id)
        self.spans: list[Span] = []
        self.root = self.add(
            f"{run_id}/run",
            name,
            0,
            0,
            {sc.KIND: sc.Kind.RUN.value, sc.RUN_NAME: name},
            lineage={},
        )

    def add(
        self,
        key: str,
        name: str,
        start: float,
        end: float,
        attributes: dict[str, Any],
        *,
        parent: Span | None = None,
        lineage: dict[str, str],
        status: str = "Unset",
        message: str = "",
    ) -> Span:
        attrs = {sc.SESSION_ID: self.session, sc.RUN_ID: self.run_id, **lineage}
        attrs.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in attributes.items()})
        span = Span(key, name, start, end, attrs, parent.id if parent else "", status, message)
        self.spans.append(span)
        return span

    def agent(
        self,
        name: str,
        start: float,
        end: float,
        parent: Span,
        lineage: dict[str, str],
        status: str = "Unset",
    ) -> Span:
        return self.add(
            f"{self.run_id}/{name}/{start}",
            f"invoke_agent {name}",
            start,
            end,
            {
                sc.KIND: sc.Kind.AGENT.value,
                sc.GEN_AI_OPERATION_NAME: "invoke_agent",
                sc.GEN_AI_AGENT_NAME: name,
            },
            parent=parent,
            lineage={**lineage, sc.AGENT_NAME: name},
            status=status,
        )

    def llm(
        self, agent: Span, start: float, end: float, model: str, tokens: tuple[int, int]
    ) -> Span:
        return self.add(
            f"{agent.key}/llm/{start}",
            f"chat {model}",
            start,
            end,
            {
                sc.KIND: sc.Kind.LLM.value,
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_REQUEST_MODEL: model,
                sc.GEN_AI_USAGE_INPUT_TOKENS: str(tokens[0]),
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: str(tokens[1]),
                sc.LLM_REASONING: "Let me think about this step by step.",
            },
            parent=agent,
            lineage=_lineage(agent),
        )

    def tool(
        self,
        agent: Span,
        start: float,
        end: float,
        tool: str,
        arguments: dict[str, Any],
        result: str = "ok",
        error: str = "",
    ) -> Span:
        return self.add(
            f"{agent.key}/tool/{start}",
            f"execute_tool {tool}",
            start,
            end,
            {
                sc.KIND: sc.Kind.TOOL.value,
                sc.GEN_AI_OPERATION_NAME: "execute_tool",
                sc.GEN_AI_TOOL_NAME: tool,
                sc.GEN_AI_TOOL_CALL_ID: span_id(f"{agent.key}{start}"),
                sc.GEN_AI_TOOL_CALL_ARGUMENTS: json.dumps(arguments, sort_keys=True),
                sc.GEN_AI_TOOL_CALL_RESULT: result,
            },
            parent=agent,
            lineage=_lineage(agent),
            status="Error" if error else "Unset",
            message=error,
        )

    def decision(
        self,
        agent: Span,
        start: float,
        question: str,
        options: list[str],
        chosen: str,
        confidence: float,
        reasoning: str,
    ) -> Span:
        return self.add(
            f"{agent.key}/decision/{start}",
            "decision",
            start,
            start + 1,
            {
                sc.KIND: sc.Kind.DECISION.value,
                sc.DECISION_QUESTION: question,
                sc.DECISION_OPTIONS: options,
                sc.DECISION_CHOSEN: chosen,
                sc.DECISION_REASONING: reasoning,
                sc.DECISION_CONFIDENCE: str(confidence),
                sc.DECISION_MAKER: sc.DecisionMaker.MODEL.value,
            },
            parent=agent,
            lineage=_lineage(agent),
        )


def _lineage(span: Span) -> dict[str, str]:
    return {
        k: span.attributes[k]
        for k in sc.LINEAGE_KEYS
        if k in span.attributes and k not in (sc.SESSION_ID, sc.RUN_ID)
    }


def run_auth() -> Run:
    run = Run("run-auth", "sess-a", "refactor auth")
    run.root.end = 100
    run.root.attributes[sc.RUN_OUTCOME] = sc.RunOutcome.SUCCEEDED.value
    coordinator = run.agent("coordinator", 0, 100, run.root, {})
    run.llm(coordinator, 1, 3, "gpt-4o", (1000, 200))
    run.decision(
        coordinator,
        3,
        "Which approach?",
        ["rewrite", "patch", "library"],
        "rewrite",
        0.8,
        "Try all three; the tests decide.",
    )
    fork_lineage = {sc.AGENT_NAME: "coordinator"}
    fork = run.add(
        "run-auth/fork",
        "fork approaches",
        5,
        90,
        {
            sc.KIND: sc.Kind.FORK.value,
            sc.FORK_NAME: "approaches",
            sc.FORK_STRATEGY: sc.ForkStrategy.BEST_OF.value,
            sc.FORK_BRANCH_COUNT: "3",
            sc.FORK_CRITERION: "tests pass",
        },
        parent=coordinator,
        lineage={**fork_lineage, sc.FORK_ID: span_id("run-auth/fork")},
    )
    outcomes = {}
    branches = {}
    for index, (label, worker, end) in enumerate(
        [("rewrite", "worker-1", 80), ("patch", "worker-2", 40), ("library", "worker-3", 50)]
    ):
        key = f"run-auth/branch/{index}"
        lineage = {sc.FORK_ID: fork.id, sc.BRANCH_ID: span_id(key), sc.BRANCH_PATH: str(index)}
        failed = label == "patch"
        branch = run.add(
            key,
            f"branch {label}",
            5,
            end,
            {sc.KIND: sc.Kind.BRANCH.value, sc.BRANCH_INDEX: str(index), sc.BRANCH_LABEL: label},
            parent=fork,
            lineage={**fork_lineage, **lineage},
            status="Error" if failed else "Unset",
            message="patch broke login" if failed else "",
        )
        branches[label] = branch
        agent = run.agent(worker, 5, end, branch, lineage, status="Error" if failed else "Unset")
        if label == "rewrite":
            run.llm(agent, 6, 10, "gpt-4o", (2000, 500))
            run.tool(agent, 10, 20, "run_tests", {"path": "tests/auth"})
            run.tool(agent, 20, 30, "run_tests", {"path": "tests/auth"})
        elif label == "patch":
            run.llm(agent, 6, 9, "claude-sonnet-4", (1500, 300))
            run.tool(
                agent,
                9,
                12,
                "apply_patch",
                {"file": "auth.py"},
                result="",
                error="merge conflict in auth.py",
            )
        else:
            run.llm(agent, 6, 8, "mystery-model", (500, 100))
            run.decision(
                agent,
                8,
                "Which library?",
                ["authlib", "python-jose"],
                "authlib",
                0.3,
                "Not sure either fits.",
            )
        outcomes[label] = branch
    branches["library"].events.append(
        (
            45,
            sc.INTERVENTION_EVENT,
            {
                sc.INTERVENTION_KIND: sc.InterventionKind.REDIRECT.value,
                sc.INTERVENTION_AUTHOR: "alice",
                sc.INTERVENTION_MESSAGE: "stop, the rewrite is enough",
            },
        )
    )
    fork.attributes[sc.FORK_WINNER] = branches["rewrite"].id
    for label, outcome, reason in [
        ("rewrite", sc.BranchOutcome.WON, "all tests pass"),
        ("patch", sc.BranchOutcome.FAILED, "patch broke login"),
        ("library", sc.BranchOutcome.ABANDONED, "redirected by alice"),
    ]:
        fork.events.append(
            (
                90,
                sc.BRANCH_OUTCOME_EVENT,
                {
                    sc.BRANCH_ID: branches[label].id,
                    sc.BRANCH_OUTCOME: outcome.value,
                    sc.BRANCH_OUTCOME_REASON: reason,
                },
            )
        )
    return run


def run_alt() -> Run:
    run = Run("run-alt", "sess-a", "refactor auth, one agent")
    run.root.start, run.root.end = 10, 60
    run.root.status, run.root.message = "Error", "tests failed"
    run.root.attributes[sc.RUN_OUTCOME] = sc.RunOutcome.FAILED.value
    solo = run.agent("solo", 10, 60, run.root, {})
    run.llm(solo, 11, 15, "gpt-4o-mini", (800, 150))
    run.tool(solo, 15, 20, "run_tests", {"path": "tests"}, result="", error="3 tests failed")
    return run


def run_other() -> Run:
    run = Run("run-other", "sess-b", "write docs")
    run.root.start, run.root.end = 30, 40
    run.root.attributes[sc.RUN_OUTCOME] = sc.RunOutcome.SUCCEEDED.value
    writer = run.agent("writer", 30, 40, run.root, {})
    run.llm(writer, 31, 35, "gpt-4o", (400, 100))
    return run


RUNS = (run_auth, run_alt, run_other)

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


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rows(run: Run) -> list[list[Any]]:
    out = []
    for span in run.spans:
        out.append(
            [
                _at(span.start),
                run.trace,
                span.id,
                span.parent,
                "",
                span.name,
                "Internal",
                SERVICE,
                {"service.name": SERVICE, "telemetry.sdk.name": "opentelemetry"},
                "forktrace",
                "0.1.0",
                span.attributes,
                int((span.end - span.start) * 1e9),
                span.status,
                span.message,
                [_at(t) for t, _, _ in span.events],
                [n for _, n, _ in span.events],
                [a for _, _, a in span.events],
                [],
                [],
                [],
                [],
            ]
        )
    return out


def seed(client: Any) -> dict[str, Run]:
    """Insert every run, children before parents and one run over two inserts, as a
    collector receives them; returns the runs by id."""
    runs = {build().run_id: build() for build in RUNS}
    for run in runs.values():
        spans = list(reversed(rows(run)))
        half = len(spans) // 2
        for part in (spans[:half], spans[half:]):
            if part:
                client.insert("otel_traces", part, column_names=COLUMNS)
    return runs
