"""The hand-built session whose right answers the decision-layer tests check.

Session "sess-1" holds two runs that ran at the same time, plus two traces
written by other tools (GenAI-only and OpenInference-only spans).

run-a (succeeded), prices in $ per million tokens: gpt-4o 2.5/10, gpt-4o-mini 0.15/0.6
  coordinator  decides (confidence 0.8), one model call  1000/100 gpt-4o  = 0.0035
  fork "approaches" (race, winner = branch 0 by attribute, no outcome event for it)
    0 rewrite  agent alpha: 2000/500 gpt-4o = 0.01, search x2 (same args), run_tests   -> won
    1 patch    agent beta:  1000/200 gpt-4o = 0.0045, apply_patch fails            -> failed (span error)
    2 vendor   agent gamma: 10000/1000 gpt-4o-mini = 0.0021, decision (0.3),
               a human redirect (intervention)                                     -> abandoned (fork event)
      fork "vendor how" (winner 2.0)
        2.0 copy     400/40 gpt-4o = 0.0014                                        -> won
        2.1 submodule 400/40 gpt-4o = 0.0014                                       -> lost (default)
  fork "review" (vote, after the first, outcome events only): paths "0" and "1" again
    0 strict   100/10 gpt-4o = 0.00035                                             -> lost
    1 lenient  100/10 gpt-4o = 0.00035                                             -> won
run-b (failed): one agent, 500/50 of an unpriced model -> cost NULL
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from traces import Trace, insert

from forktrace import semconv as sc

SESSION = "sess-1"


@dataclass
class Scenario:
    run_a: Trace
    run_b: Trace
    genai: Trace
    openinference: Trace
    ids: dict[str, str]

    def traces(self) -> list[Trace]:
        return [self.run_a, self.run_b, self.genai, self.openinference]


def build() -> Scenario:
    a = Trace("run-a", SESSION)
    run = a.run("refactor the parser", 0, 10_000, **{sc.RUN_OUTCOME: "succeeded"})
    coord = a.agent(run, "coordinator", 0, 10_000)
    a.decision(
        coord, "Which approach?", ["rewrite", "patch", "vendor"], "try all three", 100,
        confidence=0.8, reasoning="No approach is clearly best; race them.",
    )  # fmt: skip
    a.llm(coord, "gpt-4o", 1000, 100, 200, 500)
    fork = a.fork(coord, "approaches", 1000, 8000, **{sc.FORK_STRATEGY: "race"})
    fork.attributes[sc.FORK_CRITERION] = "tests pass first"

    b0 = a.branch(fork, 0, "rewrite", 1000, 7000)
    alpha = a.agent(b0, "alpha", 1000, 7000)
    a.llm(alpha, "gpt-4o", 2000, 500, 1100, 1000)
    a.tool(alpha, "search", '{"q": "parser"}', 2200, 100, result="3 hits")
    a.tool(alpha, "search", '{"q": "parser"}', 2400, 100, result="3 hits")
    a.tool(alpha, "run_tests", "{}", 6000, 1500, result="ok")
    fork.attributes[sc.FORK_WINNER] = b0.span_id

    b1 = a.branch(fork, 1, "patch", 1000, 4000, error="merge conflict")
    beta = a.agent(b1, "beta", 1000, 4000, error="merge conflict")
    a.llm(
        beta, "gpt-4o", 1000, 200, 1100, 800,
        **{sc.LLM_REASONING: "A minimal patch keeps the diff small."},
    )  # fmt: skip
    a.tool(beta, "apply_patch", '{"file": "parser.py"}', 2000, 300, error="merge conflict")

    b2 = a.branch(fork, 2, "vendor", 1000, 8000)
    b2.event(3000, sc.INTERVENTION_EVENT, kind="redirect", author="alice", message="stop vendoring")
    gamma = a.agent(b2, "gamma", 1000, 8000)
    a.llm(gamma, "gpt-4o-mini", 10000, 1000, 1100, 900)
    a.decision(gamma, "Vendor how?", ["copy", "submodule"], "both", 2000, confidence=0.3)
    inner = a.fork(gamma, "vendor how", 2500, 3000, **{sc.FORK_STRATEGY: "best_of"})
    c0 = a.branch(inner, 0, "copy", 2500, 3000)
    a.llm(c0, "gpt-4o", 400, 40, 2600, 300)
    c1 = a.branch(inner, 1, "submodule", 2500, 3000)
    a.llm(c1, "gpt-4o", 400, 40, 2600, 300)
    inner.attributes[sc.FORK_WINNER] = c0.span_id
    fork.event(
        9000, sc.BRANCH_OUTCOME_EVENT,
        **{sc.BRANCH_ID: b2.span_id, sc.BRANCH_OUTCOME: "abandoned",
           sc.BRANCH_OUTCOME_REASON: "human redirect"},
    )  # fmt: skip

    # a second fork after the first, in the same scope: its branches have the
    # same paths ("0", "1") as the first fork's and must not mix with them
    review = a.fork(coord, "review", 9000, 900, **{sc.FORK_STRATEGY: "vote"})
    r0 = a.branch(review, 0, "strict", 9000, 400)
    a.llm(r0, "gpt-4o", 100, 10, 9000, 100)
    r1 = a.branch(review, 1, "lenient", 9500, 400)
    a.llm(r1, "gpt-4o", 100, 10, 9500, 100)
    for branch, outcome in ((r0, "lost"), (r1, "won")):
        review.event(
            9900, sc.BRANCH_OUTCOME_EVENT,
            **{sc.BRANCH_ID: branch.span_id, sc.BRANCH_OUTCOME: outcome},
        )  # fmt: skip

    b = Trace("run-b", SESSION)
    run_b = b.run("write the changelog", 500, 3000, error="gave up")
    writer = b.agent(run_b, "writer", 600, 2000)
    b.llm(writer, "my-private-model", 500, 50, 700, 500)

    genai = Trace(None, service="other-tool")
    root = genai.span(
        "invoke_agent researcher", None, 0, 2000,
        **{sc.GEN_AI_OPERATION_NAME: "invoke_agent", sc.GEN_AI_AGENT_NAME: "researcher",
           sc.GEN_AI_CONVERSATION_ID: "conv-9"},
    )  # fmt: skip
    genai.span(
        "chat claude", root, 100, 500,
        **{sc.GEN_AI_OPERATION_NAME: "chat",
           sc.GEN_AI_RESPONSE_MODEL: "claude-sonnet-4-5-20250929",
           sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100},
    )  # fmt: skip
    genai.span(
        "execute_tool web_search", root, 700, 200,
        **{sc.GEN_AI_OPERATION_NAME: "execute_tool", sc.GEN_AI_TOOL_NAME: "web_search"},
    )  # fmt: skip

    oi = Trace(None, service="openinference-app")
    chain = oi.span("workflow", None, 0, 1000, **{sc.OPENINFERENCE_SPAN_KIND: "CHAIN"})
    oi.span(
        "ChatCompletion", chain, 100, 300,
        **{sc.OPENINFERENCE_SPAN_KIND: "LLM", "llm.model_name": "gpt-4o-mini",
           "llm.token_count.prompt": 200, "llm.token_count.completion": 20},
    )  # fmt: skip
    oi.span(
        "lookup", chain, 500, 100,
        **{sc.OPENINFERENCE_SPAN_KIND: "TOOL", "tool.name": "lookup", "input.value": '{"id": 7}'},
    )  # fmt: skip

    ids = {
        "fork": fork.span_id,
        "inner_fork": inner.span_id,
        "b0": b0.span_id,
        "b1": b1.span_id,
        "b2": b2.span_id,
        "c0": c0.span_id,
        "c1": c1.span_id,
        "r0": r0.span_id,
        "r1": r1.span_id,
        "genai_run": genai.trace_id,
        "oi_run": oi.trace_id,
    }
    return Scenario(a, b, genai, oi, ids)


def store(client: Any, in_pieces: bool = False) -> Scenario:
    """Store the scenario in one insert, or as a collector would see it at its
    worst: children before parents, each run split across inserts."""
    built = build()
    rows = [row for trace in built.traces() for row in trace.rows()]
    if not in_pieces:
        insert(client, rows)
        return built
    rows.reverse()
    for start in range(0, len(rows), 5):
        insert(client, rows[start : start + 5])
    return built
