"""The views on the hand-built session of scenario.py, whose answers are known.

Every test runs twice (see the ``loaded`` fixture): with the session stored in
one insert, and with its rows reversed (children before parents) and split
across many inserts, as a collector may deliver them. Both must agree.
"""

from __future__ import annotations

from typing import Any

import pytest
from scenario import store
from traces import Trace, insert

GPT_4O = (2.5, 10.0)
GPT_4O_MINI = (0.15, 0.6)


def cost(prices: tuple[float, float], tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * prices[0] + tokens_out * prices[1]) / 1e6


def rows(client: Any, sql: str, **parameters: Any) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=parameters)
    return [dict(zip(result.column_names, row, strict=False)) for row in result.result_rows]


def by(items: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {item[key]: item for item in items}


def test_runs_count_what_each_run_did(loaded):
    client, _ = loaded
    runs = by(rows(client, "SELECT * FROM forktrace_runs"), "run_id")
    a = runs["run-a"]
    assert (a["session_id"], a["name"], a["status"]) == (
        "sess-1",
        "refactor the parser",
        "succeeded",
    )
    assert a["duration_ms"] == 10_000
    assert a["agents"] == ["alpha", "beta", "coordinator", "gamma"]
    assert (a["forks"], a["branches"], a["decisions"]) == (3, 7, 2)
    assert (a["tool_calls"], a["llm_calls"], a["errors"], a["interventions"]) == (4, 8, 1, 1)
    assert (a["input_tokens"], a["output_tokens"]) == (15_000, 1_900)
    b = runs["run-b"]
    assert (b["status"], b["agent_count"], b["input_tokens"]) == ("failed", 1, 500)


def test_cost_is_tokens_times_price_and_null_for_unknown_models(loaded):
    client, _ = loaded
    runs = by(rows(client, "SELECT * FROM forktrace_runs"), "run_id")
    expected = (
        cost(GPT_4O, 1000, 100)
        + cost(GPT_4O, 2000, 500)
        + cost(GPT_4O, 1000, 200)
        + cost(GPT_4O_MINI, 10_000, 1000)
        + 2 * cost(GPT_4O, 400, 40)
        + 2 * cost(GPT_4O, 100, 10)
    )
    assert runs["run-a"]["cost"] == pytest.approx(expected)
    assert runs["run-a"]["unpriced_models"] == []
    assert runs["run-b"]["cost"] is None
    assert runs["run-b"]["wasted_cost"] is None
    assert runs["run-b"]["unpriced_models"] == ["my-private-model"]


def test_waste_counts_losing_branches_once_with_their_subtrees(loaded):
    client, _ = loaded
    a = by(rows(client, "SELECT * FROM forktrace_runs"), "run_id")["run-a"]
    # patch failed; vendor was abandoned, and the loser submodule inside it counts
    # once; strict lost the second fork
    wasted_tokens = (1000 + 200) + (10_000 + 1000) + (400 + 40) * 2 + (100 + 10)
    wasted_cost = (
        cost(GPT_4O, 1000, 200)
        + cost(GPT_4O_MINI, 10_000, 1000)
        + 2 * cost(GPT_4O, 400, 40)
        + cost(GPT_4O, 100, 10)
    )
    assert a["wasted_tokens"] == wasted_tokens
    assert a["wasted_cost"] == pytest.approx(wasted_cost)
    assert a["waste_share"] == pytest.approx(wasted_tokens / (15_000 + 1_900))
    assert a["waste_cost_share"] == pytest.approx(wasted_cost / a["cost"])
    [waste] = rows(client, "SELECT * FROM forktrace_waste(run_id = 'run-a')")
    assert (waste["wasted_branches"], waste["wasted_tokens"]) == (4, wasted_tokens)


def test_branch_outcomes_explicit_and_by_default(loaded):
    client, built = loaded
    branches = by(rows(client, "SELECT * FROM forktrace_branches(run_id = 'run-a')"), "label")
    outcome = {label: (b["branch_path"], b["outcome"]) for label, b in branches.items()}
    assert outcome == {
        "rewrite": ("0", "won"),  # the fork's winner attribute
        "patch": ("1", "failed"),  # the branch span ended in error
        "vendor": ("2", "abandoned"),  # the fork's outcome event
        "copy": ("2.0", "won"),
        "submodule": ("2.1", "lost"),  # not the winner of a fork that has one
        "strict": ("0", "lost"),  # outcome events only
        "lenient": ("1", "won"),
    }
    assert branches["vendor"]["outcome_reason"] == "human redirect"
    assert branches["patch"]["outcome_reason"] == "merge conflict"
    assert branches["rewrite"]["is_winner"] and not branches["rewrite"]["is_waste"]
    assert branches["submodule"]["fork_branch_path"] == "2"
    assert branches["submodule"]["parent_branch_id"] == built.ids["b2"]
    assert branches["submodule"]["depth"] == 2
    assert branches["rewrite"]["criterion"] == "tests pass first"


def test_a_branch_counts_its_whole_subtree(loaded):
    client, _ = loaded
    branches = by(rows(client, "SELECT * FROM forktrace_branches(run_id = 'run-a')"), "label")
    vendor = branches["vendor"]
    assert (vendor["input_tokens"], vendor["output_tokens"]) == (10_800, 1_080)
    assert (vendor["llm_calls"], vendor["decisions"]) == (3, 1)
    assert vendor["cost"] == pytest.approx(
        cost(GPT_4O_MINI, 10_000, 1000) + 2 * cost(GPT_4O, 400, 40)
    )
    assert vendor["duration_ms"] == 8000
    rewrite = branches["rewrite"]
    assert (rewrite["tool_calls"], rewrite["errors"]) == (3, 0)
    assert branches["patch"]["errors"] == 1
    # strict and lenient have the paths of rewrite and patch, in another fork: nothing mixes
    assert (rewrite["input_tokens"], rewrite["output_tokens"]) == (2000, 500)
    assert (branches["strict"]["input_tokens"], branches["strict"]["llm_calls"]) == (100, 1)


def test_forks_have_winner_strategy_and_waste(loaded):
    client, built = loaded
    forks = by(rows(client, "SELECT * FROM forktrace_forks(run_id = 'run-a')"), "name")
    top = forks["approaches"]
    assert (top["strategy"], top["branches"], top["winner_label"]) == ("race", 3, "rewrite")
    assert top["winner_branch_id"] == built.ids["b0"]
    assert top["parent_branch_path"] == ""
    inner = forks["vendor how"]
    assert (inner["winner_path"], inner["parent_branch_path"]) == ("2.0", "2")
    assert inner["wasted_cost"] == pytest.approx(cost(GPT_4O, 400, 40))
    review = forks["review"]
    assert (review["strategy"], review["winner_label"], review["branches"]) == (
        "vote",
        "lenient",
        2,
    )


def test_decisions(loaded):
    client, _ = loaded
    decisions = rows(client, "SELECT * FROM forktrace_decisions(run_id = 'run-a')")
    assert [(d["agent"], d["branch_path"], d["question"]) for d in decisions] == [
        ("coordinator", "", "Which approach?"),
        ("gamma", "2", "Vendor how?"),
    ]
    first = decisions[0]
    assert first["options"] == ["rewrite", "patch", "vendor"]
    assert first["chosen"] == "try all three"
    assert first["confidence"] == pytest.approx(0.8)
    assert first["reasoning"] == "No approach is clearly best; race them."
    assert first["maker"] == "agent"


def test_tool_calls_show_failures_and_repeats(loaded):
    client, _ = loaded
    calls = rows(client, "SELECT * FROM forktrace_tool_calls(run_id = 'run-a')")
    assert [(c["tool_name"], c["status"]) for c in calls] == [
        ("apply_patch", "error"),
        ("search", "ok"),
        ("search", "ok"),
        ("run_tests", "ok"),
    ]
    assert calls[0]["error"] == "merge conflict"
    assert calls[0]["branch_path"] == "1" and calls[0]["agent"] == "beta"
    assert calls[1]["arguments_hash"] == calls[2]["arguments_hash"] != calls[3]["arguments_hash"]
    assert calls[3]["duration_ms"] == 1500


def test_interventions(loaded):
    client, built = loaded
    [intervention] = rows(client, "SELECT * FROM forktrace_interventions(run_id = '')")
    assert (intervention["kind"], intervention["author"], intervention["message"]) == (
        "redirect",
        "alice",
        "stop vendoring",
    )
    assert (intervention["run_id"], intervention["branch_path"]) == ("run-a", "2")
    assert intervention["branch_id"] == built.ids["b2"]


def test_peak_concurrency(loaded):
    client, _ = loaded
    peaks = by(rows(client, "SELECT * FROM forktrace_peak_concurrency(run_id = '')"), "run_id")
    # the coordinator and its three branch agents; branches 0, 1, 2, 2.0, 2.1 overlap
    assert (peaks["run-a"]["peak_agents"], peaks["run-a"]["peak_branches"]) == (4, 5)
    assert peaks["run-b"]["peak_agents"] == 1


def test_concurrency_lanes_share_one_time_axis(loaded):
    client, _ = loaded
    lanes = rows(client, "SELECT * FROM forktrace_concurrency(run_id = 'run-a')")
    agents = {
        lane["lane"]: (lane["start_offset_ms"], lane["end_offset_ms"])
        for lane in lanes
        if lane["lane_kind"] == "agent"
    }
    assert agents == {
        "coordinator": (0, 10_000),
        "alpha": (1000, 8000),
        "beta": (1000, 5000),
        "gamma": (1000, 9000),
    }
    branches = {lane["lane"]: lane["state"] for lane in lanes if lane["lane_kind"] == "branch"}
    assert branches["1 patch"] == "failed"


def test_session_runs_side_by_side(loaded):
    client, _ = loaded
    runs = rows(client, "SELECT * FROM forktrace_session_runs(session_id = 'sess-1')")
    assert [(r["run_id"], r["offset_ms"], r["status"]) for r in runs] == [
        ("run-a", 0, "succeeded"),
        ("run-b", 500, "failed"),
    ]


def test_agent_usage(loaded):
    client, _ = loaded
    agents = by(rows(client, "SELECT * FROM forktrace_agent_usage(run_id = 'run-a')"), "agent")
    assert agents["gamma"]["input_tokens"] == 10_800
    assert agents["alpha"]["cost"] == pytest.approx(cost(GPT_4O, 2000, 500))


def test_traces_from_other_genai_tools_are_runs(loaded):
    client, built = loaded
    runs = by(rows(client, "SELECT * FROM forktrace_runs"), "run_id")
    genai = runs[built.ids["genai_run"]]
    # claude-sonnet-4-5-20250929 is priced as claude-sonnet-4-5: $3 / $15
    assert (genai["session_id"], genai["llm_calls"], genai["tool_calls"]) == ("conv-9", 1, 1)
    assert genai["cost"] == pytest.approx(cost((3.0, 15.0), 1000, 100))
    assert genai["agents"] == ["researcher"]
    openinference = runs[built.ids["oi_run"]]
    assert (openinference["name"], openinference["llm_calls"], openinference["tool_calls"]) == (
        "workflow",
        1,
        1,
    )
    assert (openinference["input_tokens"], openinference["output_tokens"]) == (200, 20)
    assert openinference["cost"] == pytest.approx(cost(GPT_4O_MINI, 200, 20))
    [lookup] = rows(
        client, "SELECT * FROM forktrace_tool_calls(run_id = {run:String})", run=built.ids["oi_run"]
    )
    assert (lookup["tool_name"], lookup["arguments"]) == ("lookup", '{"id": 7}')


def test_a_price_update_reprices_past_runs(clickhouse):
    client = clickhouse
    store(client)
    client.command(
        "INSERT INTO forktrace_model_prices (model, provider, input_per_million, output_per_million, price_date, source) "
        "VALUES ('my-private-model', 'me', 1.0, 2.0, today(), 'test')"
    )
    run_b = by(rows(client, "SELECT * FROM forktrace_runs"), "run_id")["run-b"]
    assert run_b["cost"] == pytest.approx(cost((1.0, 2.0), 500, 50))
    assert run_b["unpriced_models"] == []


def test_a_run_whose_run_span_has_not_arrived_is_running(clickhouse):
    trace = Trace("run-live", "s")
    run = trace.run("live", 0, 5000)
    agent = trace.agent(run, "worker", 10, 100)
    trace.llm(agent, "gpt-4o", 10, 1, 20, 50)
    insert(clickhouse, [span.row() for span in trace.spans[1:]])
    [live] = rows(clickhouse, "SELECT status, llm_calls FROM forktrace_runs")
    assert live == {"status": "running", "llm_calls": 1}
    insert(clickhouse, [trace.spans[0].row()])
    [done] = rows(clickhouse, "SELECT status, llm_calls FROM forktrace_runs")
    assert done == {"status": "succeeded", "llm_calls": 1}
