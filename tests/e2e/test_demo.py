"""``forktrace demo`` end to end: the real SDK, OTLP exporter, collector and chDB.

The demo opens its own chDB engine, and so does every reading command after
it, so each runs in a subprocess (a pytest process holds one engine path).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "decision_layer"))

from recipes import recipes


def forktrace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forktrace.cli", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


# Runs in a subprocess on the demo's data directory; prints one JSON document.
READ_BACK = textwrap.dedent(
    """
    import json, sys
    from forktrace.collector import views
    from forktrace.collector.reader import open_reader

    data_dir, recipes = sys.argv[1], json.loads(sys.stdin.read())
    reader = open_reader(data_dir=data_dir)
    runs = views.runs(reader)
    runs = [dict(zip(runs.column_names, row)) for row in runs.rows]
    fix = next(r for r in runs if r["name"] == "fix the flaky checkout test")
    out = {
        "runs": runs,
        "branches": views.run_view(reader, "forktrace_branches", fix["run_id"]),
        "peak": views.run_view(reader, "forktrace_peak_concurrency", fix["run_id"]),
        "interventions": views.run_view(reader, "forktrace_interventions", fix["run_id"]),
        "recipes": {title: len(reader.query(sql).rows) for title, sql in recipes},
    }
    print(json.dumps(out, default=str))
    """
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data_dir = tmp_path_factory.mktemp("demo")
    result = forktrace("demo", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    return data_dir, result.stdout


@pytest.fixture(scope="module")
def stored(demo: tuple[Path, str]) -> dict[str, Any]:
    data_dir, _ = demo
    result = subprocess.run(
        [sys.executable, "-c", READ_BACK, str(data_dir)],
        input=json.dumps(recipes()),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_demo_prints_the_tree_and_what_to_try_next(demo):
    _, out = demo
    for expected in (
        "run fix the flaky checkout test",
        "fork approach",
        "fix the race  won",
        "retry with backoff  failed",
        "mock the gateway  abandoned",
        "fork how to serialise checkouts",
        "dana redirect",
        "How do we attack the flaky test?",
        "Try next:",
        "forktrace runs --session demo-",
    ):
        assert expected in out, f"{expected!r} not in the demo's output"


def test_demo_session_has_two_parallel_runs(stored):
    runs = {r["name"]: r for r in stored["runs"]}
    fix, docs = runs["fix the flaky checkout test"], runs["update the API docs"]
    assert fix["session_id"] == docs["session_id"]
    assert fix["status"] == docs["status"] == "succeeded"
    assert fix["start"] < docs["end"] and docs["start"] < fix["end"]  # they overlapped
    assert (fix["forks"], fix["branches"], fix["interventions"], fix["errors"]) == (2, 5, 1, 1)
    assert fix["cost"] > 0 and 0 < fix["wasted_cost"] < fix["cost"]
    assert docs["wasted_tokens"] == 0


def test_demo_outcomes_and_concurrency(stored):
    outcomes = {b["label"]: b["outcome"] for b in stored["branches"]}
    assert outcomes == {
        "fix the race": "won",
        "retry with backoff": "failed",
        "mock the gateway": "abandoned",
        "row lock": "won",
        "optimistic version check": "lost",
    }
    # the coordinator and its three branch agents worked at once
    assert stored["peak"][0]["peak_agents"] == 4
    [intervention] = stored["interventions"]
    assert (intervention["author"], intervention["kind"]) == ("dana", "redirect")


def test_every_recipe_finds_rows_in_the_demo(stored):
    empty = [title for title, count in stored["recipes"].items() if count == 0]
    assert not empty, f"recipes returning nothing on demo data: {empty}"


def test_runs_and_tree_commands_read_the_demo_afterwards(demo, stored):
    data_dir, _ = demo
    listed = forktrace("runs", "--data-dir", str(data_dir), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 2
    fix = next(r for r in stored["runs"] if r["name"] == "fix the flaky checkout test")
    tree = forktrace("tree", fix["run_id"][:8], "--data-dir", str(data_dir), "--format", "json")
    assert tree.returncode == 0, tree.stderr
    body = json.loads(tree.stdout)
    assert body["run"]["run_id"] == fix["run_id"]
    assert {d["question"] for d in body["decisions"]} >= {"How many retries?"}
