"""Every panel on spans recorded by the real SDK, exported over OTLP/gRPC to the real
collector (embedded, in a subprocess: it needs a chDB path of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from forktrace.dashboards import rendered

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def panels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    pytest.importorskip("chdb")
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "sdk_panels.py"),
            str(tmp_path_factory.mktemp("sdk")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    return {key: value["rows"] for key, value in results.items()}


def test_every_panel_has_rows_for_an_sdk_recorded_session(panels):
    queries = sum(len(p.get("targets", [])) for b in rendered().values() for p in b["panels"])
    assert len(panels) == queries
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
    failed_runs = panels["forktrace-post-mortem/Failed runs/A"]
    assert [row["run_id"] for row in failed_runs] == ["run-sdk-failing"]
    (failed_branch,) = panels["forktrace-post-mortem/Failed branches/A"]
    assert failed_branch["label"] == "revert"
    (loop,) = panels["forktrace-post-mortem/Repeated identical tool calls/A"]
    assert (loop["tool_name"], loop["calls"]) == ("run_tests", 2)
    waste = panels["forktrace-post-mortem/Waste by agent/A"]
    assert [(row["agent"], row["wasted_tokens"]) for row in waste] == [("patcher", 1000)]
    assert panels["forktrace-overview/Runs/A"][0]["runs"] == 2
    assert panels["forktrace-session/Runs/A"][0]["runs"] == 2
