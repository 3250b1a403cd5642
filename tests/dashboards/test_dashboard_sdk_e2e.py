"""The run explorer on spans recorded by the real SDK, exported over OTLP/gRPC to the
real collector (embedded, in a subprocess: it needs a chDB path of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
EXPLORER = "forktrace-run-explorer"


@pytest.fixture(scope="module")
def panels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    pytest.importorskip("chdb")
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "sdk_panels.py"),
            str(tmp_path_factory.mktemp("sdk")),
            EXPLORER,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.splitlines()[-1])
    return {key.split("/", 1)[1]: value["rows"] for key, value in results.items()}


def test_every_run_explorer_panel_has_rows_for_an_sdk_recorded_run(panels):
    assert len(panels) == 8  # seven panels, the fork tree with two queries
    assert {name for name, rows in panels.items() if not rows} == set()


def test_swimlanes_and_tree_follow_the_sdk_lineage(panels):
    lanes = {row["lane"] for row in panels["Agents and branches/A"]}
    assert lanes == {
        "agent · planner", "agent · writer", "agent · patcher",
        "branch · 0 rewrite", "branch · 1 patch",
    }  # fmt: skip
    states = {row["state"] for row in panels["Agents and branches/A"]}
    assert {"thinking", "calling a tool", "waiting", "done", "won", "abandoned"} <= states
    nodes = {row["title"]: row for row in panels["Fork tree/nodes"]}
    assert set(nodes) == {"sdk session run", "fork · fixes", "rewrite", "patch", "Which fix?"}
    edges = {(row["source"], row["target"]) for row in panels["Fork tree/edges"]}
    fork, run = nodes["fork · fixes"]["id"], nodes["sdk session run"]["id"]
    assert {(run, fork), (fork, nodes["rewrite"]["id"]), (fork, nodes["patch"]["id"])} <= edges


def test_branches_decisions_interventions_and_trace(panels):
    outcomes = {
        row["label"]: (row["outcome"], row["reason"]) for row in panels["Branch comparison/A"]
    }
    assert outcomes == {"rewrite": ("won", ""), "patch": ("abandoned", "redirected by bob")}
    (decision,) = panels["Decisions/A"]
    assert (decision["question"], decision["chosen"], decision["confidence"]) == (
        "Which fix?",
        "rewrite",
        0.4,
    )
    (intervention,) = panels["Interventions/A"]
    assert (intervention["kind"], intervention["author"], intervention["path"]) == (
        "redirect",
        "bob",
        "1",
    )
    trace = panels["Trace/A"]
    assert len(trace) == 13  # run, 3 agents, fork, 2 branches, 3 model calls, 1 decision, 2 tools
    assert len({row["traceID"] for row in trace}) == 1
    assert sum(row["parentSpanID"] == "" for row in trace) == 1
