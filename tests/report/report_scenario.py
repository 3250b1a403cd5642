"""Runs with known contents for the report tests and the report benchmark.

Built with the decision layer's trace builder (tests/decision_layer/traces.py),
so the rows are what a collector writes into ``otel_traces``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decision_layer.traces import Span, Trace, insert

from forktrace import semconv as sc

SESSION = "session-checkout"
RUN = "run-flaky-test"
SIBLING_RUN = "run-docs"
BIG_RUN = "run-big"
QUESTIONS = ["Which approaches should we try?", "Split the test or parametrize it?"]
HOSTILE_RESULT = '#42 </script><script>document.title = "pwned"</script>'


@dataclass
class Scenario:
    """What the scripted run holds: the answers the tests check the report against."""

    run_id: str
    agents: list[str]
    branch_labels: dict[str, str]  # path -> label
    outcomes: dict[str, str]  # path -> outcome
    decisions: list[str]  # questions
    tool_errors: list[str]
    interventions: int
    winner_label: str
    criterion: str
    ids: dict[str, str]  # name -> span id, for clicking
    spans: int


def _outcome(fork: Span, branch: Span, outcome: str, reason: str, at: int) -> None:
    fork.event(
        at, sc.BRANCH_OUTCOME_EVENT,
        **{sc.BRANCH_ID: branch.span_id, sc.BRANCH_OUTCOME: outcome, sc.BRANCH_OUTCOME_REASON: reason},
    )  # fmt: skip


def flaky_test_run(trace: Trace) -> Scenario:
    """A coordinator plans, forks three approaches; one wins, one fails with a
    tool error, one forks again and is abandoned after a human redirect."""
    run = trace.run(
        "fix flaky checkout test", 0, 9_000, **{sc.RUN_GOAL: "make test_checkout pass reliably"}
    )
    coordinator = trace.agent(run, "coordinator", 10, 8_980)
    trace.llm(
        coordinator, "gpt-4o", 1_200, 300, 20, 600, **{sc.LLM_REASONING: "three plausible causes"}
    )
    plan = trace.decision(
        coordinator, QUESTIONS[0], ["retry", "mock clock", "rewrite test"],
        "retry", 640, confidence=0.35, reasoning="the failure looks timing related", maker="model",
    )  # fmt: skip
    fork = trace.fork(
        coordinator,
        "approaches",
        700,
        7_800,
        **{sc.FORK_STRATEGY: "best_of", sc.FORK_CRITERION: "tests green in fewest changed lines"},
    )

    retry = trace.branch(fork, 0, "retry-with-backoff", 710, 5_000)
    fixer_a = trace.agent(retry, "fixer-a", 720, 4_980)
    trace.llm(fixer_a, "gpt-4o", 2_000, 500, 730, 900)
    trace.tool(fixer_a, "edit_file", '{"path": "tests/test_checkout.py"}', 1_700, 200, result="ok")
    trace.tool(fixer_a, "run_tests", '{"select": "test_checkout"}', 2_000, 3_000, result="1 passed")

    mock = trace.branch(fork, 1, "mock-the-clock", 710, 2_400)
    fixer_b = trace.agent(mock, "fixer-b", 720, 2_380)
    trace.llm(fixer_b, "gpt-4o", 1_800, 400, 730, 800)
    trace.tool(
        fixer_b,
        "edit_file",
        '{"path": "src/clock.py"}',
        1_600,
        300,
        error="PermissionError: src/clock.py is read-only",
    )

    rewrite = trace.branch(fork, 2, "rewrite-test", 710, 6_500)
    fixer_c = trace.agent(rewrite, "fixer-c", 720, 6_480)
    trace.llm(fixer_c, "gpt-4o-mini", 3_000, 900, 730, 700)
    trace.decision(fixer_c, QUESTIONS[1], ["split", "parametrize"], "split", 1_450, confidence=0.8)
    variants = trace.fork(fixer_c, "variants", 1_500, 4_000, **{sc.FORK_STRATEGY: "race"})
    split = trace.branch(variants, 0, "split", 1_510, 3_900)
    trace.llm(split, "gpt-4o-mini", 900, 200, 1_520, 500)
    trace.tool(split, "run_tests", '{"select": "test_checkout_*"}', 2_100, 2_000, result="2 passed")
    param = trace.branch(variants, 1, "parametrize", 1_510, 1_200)
    trace.llm(param, "gpt-4o-mini", 800, 150, 1_520, 400)
    variants.attributes[sc.FORK_WINNER] = split.span_id
    _outcome(variants, split, "won", "finished first", 5_500)
    _outcome(variants, param, "lost", "slower", 5_500)
    fixer_c.event(6_000, sc.INTERVENTION_EVENT, kind="redirect", author="alice",
                  message="stop rewriting, the retry already works")  # fmt: skip

    fork.attributes[sc.FORK_WINNER] = retry.span_id
    _outcome(fork, retry, "won", "green with a 3-line change", 8_500)
    _outcome(fork, mock, "failed", "edit_file failed", 8_500)
    _outcome(fork, rewrite, "abandoned", "human redirect", 8_500)
    # A result that tries to end the page's data script: it must show as text.
    trace.tool(coordinator, "open_pull_request", '{"branch": "fix/flaky-checkout"}', 8_600, 300,
               result=HOSTILE_RESULT)  # fmt: skip

    return Scenario(
        run_id=trace.run_id or "",
        agents=["coordinator", "fixer-a", "fixer-b", "fixer-c"],
        branch_labels={"0": "retry-with-backoff", "1": "mock-the-clock", "2": "rewrite-test",
                       "2.0": "split", "2.1": "parametrize"},
        outcomes={"0": "won", "1": "failed", "2": "abandoned", "2.0": "won", "2.1": "lost"},
        decisions=QUESTIONS,
        tool_errors=["PermissionError: src/clock.py is read-only"],
        interventions=1,
        winner_label="retry-with-backoff",
        criterion="tests green in fewest changed lines",
        ids={"plan": plan.span_id, "retry": retry.span_id, "mock": mock.span_id,
             "fork": fork.span_id, "run": run.span_id},
        spans=len(trace.spans),
    )  # fmt: skip


def docs_run(trace: Trace) -> None:
    """A second, small run of the same session, at the same time."""
    run = trace.run("update the docs", 300, 4_000)
    writer = trace.agent(run, "writer", 310, 3_900)
    trace.llm(writer, "claude-sonnet-4-5", 1_000, 800, 320, 1_500)
    trace.tool(writer, "write_file", '{"path": "docs/checkout.md"}', 2_000, 100, result="ok")


def insert_session(client: Any) -> Scenario:
    """The scripted run and its sibling run, both in session SESSION."""
    main = Trace(RUN, SESSION)
    scenario = flaky_test_run(main)
    sibling = Trace(SIBLING_RUN, SESSION)
    docs_run(sibling)
    insert(client, main.rows() + sibling.rows())
    return scenario


def big_run(spans: int = 10_000, branches: int = 40) -> Trace:
    """A run of about ``spans`` spans: a coordinator forks ``branches`` workers,
    each alternating model calls and tool calls, a few failing."""
    trace = Trace(BIG_RUN, "session-big")
    per_branch = (spans - 4) // branches - 2  # minus branch + agent spans
    length = per_branch * 300 + 1_000
    run = trace.run("big parallel search", 0, length + 2_000)
    coordinator = trace.agent(run, "coordinator", 5, length + 1_990)
    trace.decision(
        coordinator, "How many workers?", ["10", "40"], str(branches), 10, confidence=0.6
    )
    fork = trace.fork(coordinator, "workers", 20, length + 1_000, **{sc.FORK_STRATEGY: "best_of"})
    for b in range(branches):
        branch = trace.branch(fork, b, f"worker-{b}", 30, length)
        if b == 0:
            fork.attributes[sc.FORK_WINNER] = branch.span_id
        agent = trace.agent(branch, f"worker-{b}", 40, length - 20)
        for step in range(per_branch):
            at = 50 + step * 300
            if step % 2 == 0:
                trace.llm(agent, "gpt-4o-mini", 500 + step, 100, at, 250)
            else:
                failing = step % 97 == 1
                trace.tool(agent, "search", f'{{"query": "q{b}-{step}"}}', at, 250,
                           result="" if failing else f"result {step}",
                           error="TimeoutError: search backend" if failing else None)  # fmt: skip
        _outcome(
            fork,
            branch,
            "won" if b == 0 else "lost",
            "best score" if b == 0 else "lower score",
            length + 900,
        )
    return trace


def insert_big_run(client: Any, spans: int = 10_000) -> int:
    trace = big_run(spans)
    rows = trace.rows()
    for start in range(0, len(rows), 5_000):
        insert(client, rows[start : start + 5_000])
    return len(rows)
