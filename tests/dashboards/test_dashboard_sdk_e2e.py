"""Every panel on spans recorded by the real SDK, exported over OTLP/gRPC to the real
collector (embedded, in a subprocess: it needs a chDB path of its own): a session of
our own with known answers, and the one ``forktrace demo`` records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from forktrace.dashboards import rendered

HERE = Path(__file__).parent
SESSION = "sess-sdk"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """sdk_panels.py's output: both sessions recorded, every panel run for each."""
    pytest.importorskip("chdb")
    done = subprocess.run(
        [sys.executable, str(HERE / "sdk_panels.py"), str(tmp_path_factory.mktemp("sdk"))],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def panels(recorded: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return recorded["sdk"]["panels"]


@pytest.fixture(scope="module")
def demo(recorded: dict[str, Any]) -> dict[str, Any]:
    return recorded["demo"]


QUERIES = sum(len(p.get("targets", [])) for b in rendered().values() for p in b["panels"])


def test_every_panel_has_rows_for_an_sdk_recorded_session(panels):
    assert len(panels) == QUERIES
    assert {name for name, rows in panels.items() if not rows} == set()


def explorer(panels, name: str) -> list[dict[str, Any]]:
    return panels[f"forktrace-run-explorer/{name}"]


def test_swimlanes_and_tree_follow_the_sdk_lineage(panels):
    lanes = {row["lane"] for row in explorer(panels, "Agents and branches/A")}
    assert lanes == {
        "agent · planner", "agent · writer", "agent · patcher", "agent · reverter",
        "branch · 0 rewrite", "branch · 1 patch", "branch · 2 revert",
    }  # fmt: skip
    states = {row["state"] for row in explorer(panels, "Agents and branches/A")}
    assert {"thinking", "calling a tool", "waiting", "done", "failed", "won", "abandoned"} <= states
    nodes = {row["title"]: row for row in explorer(panels, "Fork tree/nodes")}
    assert set(nodes) == {
        "sdk session run", "fork · fixes", "rewrite", "patch", "revert", "Which fix?",
    }  # fmt: skip
    edges = {(row["source"], row["target"]) for row in explorer(panels, "Fork tree/edges")}
    fork, run = nodes["fork · fixes"]["id"], nodes["sdk session run"]["id"]
    assert {(run, fork), (fork, nodes["rewrite"]["id"]), (fork, nodes["patch"]["id"])} <= edges


def test_branches_decisions_interventions_and_trace(panels):
    outcomes = {
        row["label"]: (row["outcome"], row["reason"])
        for row in explorer(panels, "Branch comparison/A")
    }
    assert outcomes == {
        "rewrite": ("won", ""),
        "patch": ("abandoned", "redirected by bob"),
        "revert": ("failed", "RuntimeError: revert conflicts with main"),
    }
    (decision,) = explorer(panels, "Decisions/A")
    assert (decision["question"], decision["chosen"], decision["confidence"]) == (
        "Which fix?",
        "rewrite",
        0.4,
    )
    (intervention,) = explorer(panels, "Interventions/A")
    assert (intervention["kind"], intervention["author"], intervention["path"]) == (
        "redirect",
        "bob",
        "1",
    )
    trace = explorer(panels, "Trace/A")
    assert len(trace) == 16  # run, 4 agents, fork, 3 branches, 3 model calls, decision, 3 tools
    assert len({row["traceID"] for row in trace}) == 1
    assert sum(row["parentSpanID"] == "" for row in trace) == 1


def test_post_mortem_and_overview_see_the_failures(panels):
    # these panels cover the time range, so they list the demo's runs too
    def ours(name: str) -> list[dict[str, Any]]:
        return [r for r in panels[f"forktrace-post-mortem/{name}/A"] if r["session_id"] == SESSION]

    assert [row["run_id"] for row in ours("Failed runs")] == ["run-sdk-failing"]
    assert [row["label"] for row in ours("Failed branches")] == ["revert"]
    loops = [(row["tool_name"], row["calls"]) for row in ours("Repeated identical tool calls")]
    assert loops == [("run_tests", 2)]
    waste = {
        row["agent"]: row["wasted_tokens"]
        for row in panels["forktrace-post-mortem/Waste by agent/A"]
    }
    assert waste["patcher"] == 1000
    assert panels["forktrace-overview/Runs/A"][0]["runs"] == 4  # two of ours, two of the demo
    assert panels["forktrace-session/Runs/A"][0]["runs"] == 2


def test_every_panel_works_on_the_demo_session(demo):
    rows = demo["panels"]
    assert len(rows) == QUERIES
    assert {key for key, found in rows.items() if not found} == set()
    lanes = {row["lane"] for row in rows["forktrace-run-explorer/Agents and branches/A"]}
    assert "branch · 0.0 row lock" in lanes  # the fork inside the winning branch
    nodes = {row["id"] for row in rows["forktrace-run-explorer/Fork tree/nodes"]}
    edges = rows["forktrace-run-explorer/Fork tree/edges"]
    assert len(edges) == len(nodes) - 1
    assert {edge["target"] for edge in edges} == nodes - {f"run:{demo['run']}"}
    trace = rows["forktrace-run-explorer/Trace/A"]
    assert {row["traceID"] for row in trace} and all(row["serviceName"] for row in trace)
    session = rows["forktrace-session/The session's runs/A"]
    assert {row["session_id"] for row in session} == {demo["session"]} and len(session) == 2
