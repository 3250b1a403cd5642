"""Every panel of the shipped dashboards, read from the rendered JSON, run on chDB.

Each query goes through the datasource's macro and variable expansion
(grafana_sql.py), runs on the hand-built runs of dashboard_seed.py, and must
return the fields its panel type needs and, where the answer is known, that answer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_seed import T0
from grafana_sql import ALL, QueryContext, expand

from forktrace.dashboards import DATASOURCE_TYPE, rendered

DASHBOARDS = rendered()
SESSION, RUN = "sess-a", "run-auth"


def context(**variables: str | list[str]) -> QueryContext:
    return QueryContext(
        time_from=T0 - dt.timedelta(hours=1),
        time_to=T0 + dt.timedelta(hours=2),
        interval_ms=60_000,
        variables={"session": SESSION, "run": RUN, **variables},
        options={"session": ["sess-a", "sess-b"]},
    )


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside rows


def all_targets() -> list[Any]:
    return list(_targets())


def clickhouse_panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Panels that query ClickHouse (not rows, not the collector's Prometheus metrics)."""
    for panel in panels(board):
        if panel["type"] != "row" and panel["datasource"]["type"] != "prometheus":
            yield panel


def _targets() -> Iterator[Any]:
    for uid, board in DASHBOARDS.items():
        for panel in clickhouse_panels(board):
            for target in panel.get("targets", []):
                yield pytest.param(panel, target, id=f"{uid}/{panel['title']}/{target['refId']}")


class Result:
    def __init__(self, client: Any, sql: str) -> None:
        result = client.query(sql)
        self.sql = sql
        self.columns = list(result.column_names)
        self.types = [t.name for t in result.column_types]
        self.rows = [dict(zip(self.columns, row, strict=True)) for row in result.result_rows]

    def column(self, name: str) -> list[Any]:
        return [row[name] for row in self.rows]


def run(client: Any, panel: dict[str, Any], ref_id: str = "A", **variables: Any) -> Result:
    target = next(t for t in panel["targets"] if t["refId"] == ref_id)
    return Result(client, expand(target["rawSql"], context(**variables)))


def panel_named(uid: str, title: str) -> dict[str, Any]:
    return next(p for p in panels(DASHBOARDS[uid]) if p["title"] == title)


# --- every panel ---------------------------------------------------------------


@pytest.mark.parametrize(("panel", "target"), all_targets())
def test_every_panel_query_returns_the_fields_its_panel_needs(seeded, panel, target):
    client, _ = seeded
    result = Result(client, expand(target["rawSql"], context()))
    assert result.rows, f"no rows for the seeded runs:\n{result.sql}"
    # the plugin converts plain ClickHouse types: no SimpleAggregateFunction(...) leaking out
    assert not [t for t in result.types if "AggregateFunction" in t], result.types
    kind = panel["type"]
    if kind == "timeseries":
        assert target["format"] == 0 and target["queryType"] == "timeseries"
        assert result.types[0].startswith("DateTime"), result.columns
        assert len(result.columns) >= 2
    elif kind == "stat":
        assert len(result.rows) == 1
    elif kind == "state-timeline":
        assert result.columns == ["time", "lane", "state"]
        assert result.types[0].startswith("DateTime")
        partition = panel["transformations"][0]
        assert partition["id"] == "partitionByValues"
        assert partition["options"]["fields"] == ["lane"]
        assert result.column("time") == sorted(result.column("time")), "rows must be in time order"
    elif kind == "nodeGraph":
        if "source" in result.columns:
            assert {"id", "source", "target"} <= set(result.columns)
        else:
            assert {"id", "title", "mainstat", "color"} <= set(result.columns)
            arcs = [arc["field"] for arc in panel["options"]["nodes"]["arcs"]]
            assert set(arcs) <= set(result.columns)
            for row in result.rows:
                assert sum(row[a] for a in arcs) == pytest.approx(1.0), row
    elif kind == "traces":
        assert target["queryType"] == "traces" and target["format"] == 3
        assert {
            "traceID", "spanID", "parentSpanID", "serviceName", "operationName",
            "startTime", "duration", "tags", "serviceTags",
        } <= set(result.columns)  # fmt: skip
    elif kind == "table":
        assert target["format"] == 1
    else:
        pytest.fail(f"no check for panel type {kind}")
    links = [
        prop
        for override in panel.get("fieldConfig", {}).get("overrides", [])
        for prop in override["properties"]
        if prop["id"] == "links"
    ]
    if links:
        assert {"run_id", "session_id"} <= set(result.columns), "the run link needs both fields"


def test_every_panel_and_query_reads_through_the_datasource_variable():
    for board in DASHBOARDS.values():
        for panel in clickhouse_panels(board):
            for thing in [panel, *panel.get("targets", [])]:
                assert thing["datasource"] == {"type": DATASOURCE_TYPE, "uid": "${datasource}"}
            for target in panel.get("targets", []):
                assert target["editorType"] == "sql" and target["rawSql"].strip()


def test_panel_ids_and_titles_are_unique_in_each_dashboard():
    for board in DASHBOARDS.values():
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)) and all(ids)
        titles = [p["title"] for p in panels(board)]
        assert len(titles) == len(set(titles)), titles


# --- template variables --------------------------------------------------------


def variable(uid: str, name: str) -> dict[str, Any]:
    return next(v for v in DASHBOARDS[uid]["templating"]["list"] if v["name"] == name)


def test_session_variable_lists_the_sessions_in_range(seeded):
    client, _ = seeded
    for uid in ("forktrace-run-explorer", "forktrace-session"):
        query = variable(uid, "session")["query"]
        assert sorted(Result(client, expand(query, context())).column("session_id")) == [
            "sess-a",
            "sess-b",
        ]


def test_run_variable_follows_the_session_and_labels_each_run(seeded):
    client, _ = seeded
    query = variable("forktrace-run-explorer", "run")["query"]
    in_session = Result(client, expand(query, context(session="sess-a")))
    assert in_session.column("run_id") == ["run-alt", "run-auth"]  # newest first
    labels = [row[in_session.columns[1]] for row in in_session.rows]
    assert labels[1].startswith("refactor auth · 2026-01-10 12:00:00 · succeeded")
    every = Result(client, expand(query, context(session=ALL)))
    assert sorted(every.column("run_id")) == ["run-alt", "run-auth", "run-other"]


# --- known answers -------------------------------------------------------------


def test_overview_counts_runs_failures_and_tokens(seeded):
    client, _ = seeded
    board = "forktrace-overview"
    assert run(client, panel_named(board, "Runs")).rows == [{"runs": 3}]
    assert run(client, panel_named(board, "Failed runs")).rows == [{"failed": 1}]
    assert run(client, panel_named(board, "Tokens")).rows == [{"tokens": 7550}]
    table = run(client, panel_named(board, "Recent runs"))
    assert table.column("run_id") == ["run-other", "run-alt", "run-auth"]
    tools = run(client, panel_named(board, "Top tools"))
    assert tools.rows[0]["tool_name"] == "run_tests" and tools.rows[0]["calls"] == 3


def test_run_explorer_compares_the_three_branches(seeded):
    client, _ = seeded
    branches = run(client, panel_named("forktrace-run-explorer", "Branch comparison"))
    outcomes = {row["label"]: (row["outcome"], row["reason"]) for row in branches.rows}
    assert outcomes == {
        "rewrite": ("won", "all tests pass"),
        "patch": ("failed", "patch broke login"),
        "library": ("abandoned", "redirected by alice"),
    }
    assert {row["label"]: row["tokens"] for row in branches.rows} == {
        "rewrite": 2500,
        "patch": 1800,
        "library": 600,
    }


def test_fork_tree_is_a_tree_from_the_run_down(seeded):
    client, _ = seeded
    panel = panel_named("forktrace-run-explorer", "Fork tree")
    nodes = run(client, panel, "nodes")
    edges = run(client, panel, "edges")
    kinds = sorted(row["detail__kind"] for row in nodes.rows)
    assert kinds == ["branch"] * 3 + ["decision"] * 2 + ["fork", "run"]
    ids = set(nodes.column("id"))
    assert len(ids) == len(nodes.rows)
    assert len(edges.rows) == len(ids) - 1  # a tree: every node but the run has one parent
    assert set(edges.column("target")) == ids - {"run:run-auth"}
    assert set(edges.column("source")) <= ids
    colors = {row["title"]: row["color"] for row in nodes.rows}
    assert colors["rewrite"] == "#73BF69" and colors["patch"] == "#F2495C"
    library = next(r for r in nodes.rows if r["title"] == "library")
    assert library["arc__lost"] == 1.0
    # the worker's decision hangs under its branch, the coordinator's under the run
    parent = {row["target"]: row["source"] for row in edges.rows}
    decisions = {r["title"]: r["id"] for r in nodes.rows if r["detail__kind"] == "decision"}
    assert parent[decisions["Which library?"]] == library["id"]
    assert parent[decisions["Which approach?"]] == "run:run-auth"


def state_at(result: Result, lane: str, seconds: float) -> str:
    """The state a lane shows at T0 + seconds: the last change at or before then."""
    at = T0.replace(tzinfo=None) + dt.timedelta(seconds=seconds)
    changes = [row["state"] for row in result.rows if row["lane"] == lane and row["time"] <= at]
    return changes[-1]


def test_swimlanes_show_thinking_tools_waiting_and_the_end(seeded):
    client, _ = seeded
    lanes = run(client, panel_named("forktrace-run-explorer", "Agents and branches"))
    assert set(lanes.column("lane")) == {
        "agent · coordinator", "agent · worker-1", "agent · worker-2", "agent · worker-3",
        "branch · 0 rewrite", "branch · 1 patch", "branch · 2 library",
    }  # fmt: skip
    worker = "agent · worker-1"
    assert state_at(lanes, worker, 5.5) == "waiting"
    assert state_at(lanes, worker, 7) == "thinking"
    assert state_at(lanes, worker, 10) == "calling a tool"  # one call ends as the next starts
    assert state_at(lanes, worker, 25) == "calling a tool"
    assert state_at(lanes, worker, 35) == "waiting"
    assert state_at(lanes, worker, 85) == "done"
    assert state_at(lanes, "agent · worker-2", 45) == "failed"
    assert state_at(lanes, "branch · 0 rewrite", 15) == "calling a tool"
    assert state_at(lanes, "branch · 0 rewrite", 85) == "won"
    assert state_at(lanes, "branch · 2 library", 7) == "thinking"
    assert state_at(lanes, "branch · 2 library", 55) == "abandoned"


def test_run_explorer_logs_decisions_tools_and_interventions(seeded):
    client, _ = seeded
    board = "forktrace-run-explorer"
    decisions = run(client, panel_named(board, "Decisions"))
    assert decisions.column("question") == ["Which approach?", "Which library?"]
    assert decisions.rows[0]["options"] == "rewrite | patch | library"
    assert decisions.rows[1]["confidence"] == pytest.approx(0.3)
    tools = run(client, panel_named(board, "Tool calls"))
    assert tools.column("tool_name") == ["apply_patch", "run_tests", "run_tests"]
    failed = next(r for r in tools.rows if r["tool_name"] == "apply_patch")
    assert (failed["status"], failed["error"]) == ("error", "merge conflict in auth.py")
    interventions = run(client, panel_named(board, "Interventions"))
    assert [(r["kind"], r["author"], r["path"]) for r in interventions.rows] == [
        ("redirect", "alice", "2")
    ]


def test_trace_waterfall_has_every_span_of_the_run(seeded):
    client, runs = seeded
    trace = run(client, panel_named("forktrace-run-explorer", "Trace"))
    expected = runs[RUN].spans
    assert sorted(trace.column("spanID")) == sorted(s.id for s in expected)
    assert trace.column("startTime") == sorted(trace.column("startTime"))
    root = next(r for r in trace.rows if r["parentSpanID"] == "")
    assert root["operationName"] == "refactor auth" and root["duration"] == pytest.approx(100_000)
    tags = {t["key"]: t["value"] for t in root["tags"]}
    assert tags["forktrace.run.id"] == RUN
    failed = next(r for r in trace.rows if r["operationName"] == "execute_tool apply_patch")
    assert failed["statusCode"] == 2


def test_session_shows_its_runs_side_by_side_with_the_winner(seeded):
    client, _ = seeded
    board = "forktrace-session"
    assert run(client, panel_named(board, "Runs")).rows == [{"runs": 2}]
    rows = run(client, panel_named(board, "The session's runs")).rows
    assert [(r["run_id"], r["status"], r["winner"], r["offset_ms"]) for r in rows] == [
        ("run-auth", "succeeded", "rewrite", 0),
        ("run-alt", "failed", "", 10_000),
    ]
    lanes = run(client, panel_named(board, "Runs side by side"))
    assert [(r["lane"], r["state"]) for r in lanes.rows] == [
        ("refactor auth · run-auth", "running"),
        ("refactor auth, one agent · run-alt", "running"),
        ("refactor auth, one agent · run-alt", "failed"),
        ("refactor auth · run-auth", "succeeded"),
    ]


def test_post_mortem_finds_what_went_wrong(seeded):
    client, _ = seeded
    board = "forktrace-post-mortem"
    assert run(client, panel_named(board, "Failed runs")).column("run_id") == ["run-alt"]
    failed = run(client, panel_named(board, "Failed branches")).rows
    assert [(r["label"], r["reason"]) for r in failed] == [("patch", "patch broke login")]
    loops = run(client, panel_named(board, "Repeated identical tool calls")).rows
    assert [(r["run_id"], r["tool_name"], r["calls"]) for r in loops] == [
        ("run-auth", "run_tests", 2)
    ]
    assert json.loads(loops[0]["arguments"]) == {"path": "tests/auth"}
    low = run(client, panel_named(board, "Low-confidence decisions")).rows
    assert [(r["question"], r["chosen"]) for r in low] == [("Which library?", "authlib")]
    abandoned = run(client, panel_named(board, "Branches abandoned after an intervention")).rows
    assert [(r["label"], r["intervention"], r["author"]) for r in abandoned] == [
        ("library", "redirect", "alice")
    ]
    waste = run(client, panel_named(board, "Waste by agent")).rows
    assert {r["agent"]: (r["wasted_tokens"], r["wasted_cost"]) for r in waste} == {
        "worker-2": (1800, pytest.approx(0.009)),  # claude-sonnet-4: 1500 in, 300 out at $3/$15
        "worker-3": (600, None),  # mystery-model has no price
    }
