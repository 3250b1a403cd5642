"""Reports opened in a real headless Chromium: what a person would see and click.

The demo session's reports are written by the real ``forktrace demo`` and
``forktrace report`` commands in subprocesses (they open a data directory of
their own; chDB allows one per process). The scripted session, whose contents
are known exactly, and the 10,000-span run are built from the shared test engine.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pagejs
import pytest
import report_scenario as scenario
from collector_process import CollectorProcess

from forktrace.collector.reader import ClientReader
from forktrace.collector.report import write_report


def _forktrace(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "forktrace.cli", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"forktrace {' '.join(args)} failed:\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``forktrace demo``, then its runs reported and compared through the CLI."""
    root = tmp_path_factory.mktemp("demo")
    data = ["--data-dir", str(root / "data")]
    _forktrace("demo", *data)
    runs = json.loads(_forktrace("runs", "-f", "json", *data).stdout)
    main = max(runs, key=lambda r: r["branches"])  # the run that forks three ways
    run_report, session_report = root / "run.html", root / "session.html"
    return {
        "data_dir": root / "data",
        "runs": runs,
        "main": main,
        "report": _forktrace("report", main["run_id"][:8], "-o", str(run_report), *data),
        "session_report": _forktrace(
            "report", "--session", main["session_id"], "-o", str(session_report), *data
        ),
        "compare": _forktrace("compare", main["run_id"], "0", "1", *data),
        "run_html": run_report,
        "session_html": session_report,
    }


@pytest.fixture(scope="module")
def scripted_html(
    scripted: tuple[ClientReader, scenario.Scenario], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return write_report(scripted[0], tmp_path_factory.mktemp("scripted") / "run.html", scenario.RUN)


@pytest.fixture(scope="module")
def scripted_session_html(
    scripted: tuple[ClientReader, scenario.Scenario], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("scripted") / "session.html"
    return write_report(scripted[0], path, session_id=scenario.SESSION)


def assert_not_blank(png: bytes) -> None:
    """A screenshot of a drawn report has many colours and real contrast."""
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(png)).convert("RGB")
    stddev = ImageStat.Stat(image).stddev
    assert min(stddev) > 20, f"screenshot looks blank (per-channel stddev {stddev})"
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 200, "screenshot has almost no colours"


def test_report_command_writes_one_file(demo: dict[str, Any]) -> None:
    assert "wrote" in demo["report"].stdout
    html = demo["run_html"].read_text()
    assert "<script src" not in html and "<link" not in html and "@import" not in html


def test_report_command_wants_a_run_or_a_session(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from forktrace.cli import app

    result = CliRunner().invoke(app, ["report", "-o", str(tmp_path / "x.html")])
    assert result.exit_code == 1
    assert "give a run id, or --session S" in result.output
    assert not (tmp_path / "x.html").exists()


def test_compare_command_on_the_demo(demo: dict[str, Any]) -> None:
    out = demo["compare"].stdout
    assert "diverged at step" in out
    assert "won" in out and "failed" in out  # the demo's branch 0 wins, branch 1 fails
    assert "steps" in out and "tool calls" in out


def _document(html: Path) -> dict[str, Any]:
    blob = re.search(
        r'<script type="application/json" id="forktrace-data">(.*?)</script>',
        html.read_text(),
        re.S,
    )
    assert blob
    document = json.loads(blob.group(1))
    del document["generated_at"]
    return document


def test_report_through_a_running_collector(demo: dict[str, Any], tmp_path: Path) -> None:
    """With a collector running, the CLI reads through its SQL endpoint (chDB
    lets only the collector open the store): the report must be the same."""
    data_dir = demo["data_dir"]
    collector = CollectorProcess(data_dir, log=tmp_path / "collector.log").start()
    try:
        via_endpoint = tmp_path / "via-endpoint.html"
        _forktrace(
            "report", demo["main"]["run_id"], "-o", str(via_endpoint), "--data-dir", str(data_dir)
        )
        collector.stop()
    finally:
        collector.kill()
    assert _document(via_endpoint) == _document(demo["run_html"])


def test_demo_reports_in_the_browser(demo: dict[str, Any], open_report: Any) -> None:
    main = demo["main"]
    report = open_report(demo["run_html"])
    page = report.page
    lanes = report.lane_labels()
    for agent in main["agents"]:
        assert any(label.startswith(agent) for label in lanes), f"no lane for agent {agent}"
    nodes = report.tree_nodes()
    assert len(nodes) == 1 + main["forks"] + main["branches"]
    assert any(n.startswith("★") and n.endswith("· won") for n in nodes)
    assert any(n.endswith("· failed") for n in nodes) and any(
        n.endswith("· abandoned") for n in nodes
    )
    assert page.locator(".decision-card").count() == main["decisions"]
    assert page.locator("#tools-0 tr.tool-row.error").count() == main["errors"]
    assert page.locator(".interventions li").count() == main["interventions"]
    assert report.console_errors == [] and report.network_requests == []
    assert_not_blank(page.screenshot(full_page=True))

    session = open_report(demo["session_html"])
    headers = session.page.locator("#session-table thead th").all_inner_texts()[1:]
    assert sorted(h.split(" ", 1)[1] for h in headers) == sorted(r["name"] for r in demo["runs"])
    assert session.page.locator(".run-block").count() == len(demo["runs"])
    assert session.console_errors == [] and session.network_requests == []


def test_run_report_in_the_browser(scripted_html: Path, open_report: Any) -> None:
    report = open_report(scripted_html)
    page = report.page

    assert report.lane_labels() == [
        "run",
        "coordinator",
        "fixer-a · 0 retry-with-backoff",
        "fixer-b · 1 mock-the-clock",
        "fixer-c · 2 rewrite-test",
        "fixer-c · 2.0 split",
        "fixer-c · 2.1 parametrize",
    ]
    assert report.tree_nodes() == [
        "fix flaky checkout test",
        "approaches (best_of)",
        "★ 0 retry-with-backoff · won",
        "1 mock-the-clock · failed",
        "2 rewrite-test · abandoned",
        "variants (race)",
        "★ 2.0 split · won",
        "2.1 parametrize · lost",
    ]
    forks = page.locator(".fork-summary").all_inner_texts()
    assert "winner retry-with-backoff; criterion: tests green in fewest changed lines" in forks[0]

    cards = page.locator(".decision-card")
    assert cards.locator("h4").all_inner_texts() == scenario.QUESTIONS
    assert cards.first.locator("li.chosen").inner_text().startswith("retry")
    assert "0.35" in cards.first.inner_text() and "decided by model" in cards.first.inner_text()

    wasted = page.locator(".branch-row:has(.badge.waste) code").all_inner_texts()
    assert wasted == ["1", "2", "2.1"]
    assert "redirect by alice" in page.locator(".interventions li").inner_text()

    error_rows = page.locator("#tools-0 tr.tool-row.error")
    assert error_rows.count() == 1
    assert "PermissionError" in error_rows.inner_text()
    error_rows.click()  # expands to the full arguments and result
    assert '"path": "src/clock.py"' in page.locator("#tools-0 tr.tool-detail").inner_text()
    assert page.title().startswith("fix flaky checkout test")  # the hostile result did not run

    assert report.console_errors == []
    assert report.network_requests == []
    assert_not_blank(page.screenshot(full_page=True))


def test_clicking_a_span_shows_its_attributes(scripted_html: Path, open_report: Any) -> None:
    report = open_report(scripted_html)
    failed_tool = report.page.evaluate(
        "() => { const d = window.forktraceReport.document.details;"
        " return Object.keys(d).find(k => d[k].name === 'execute_tool edit_file' && d[k].status === 'Error'); }"
    )
    report.click_span(failed_tool)
    title, body = report.details()
    assert title == "execute_tool edit_file"
    assert "gen_ai.tool.name" in body and "PermissionError: src/clock.py is read-only" in body

    mock_branch = report.page.evaluate(
        "() => window.forktraceReport.document.runs[0].branches.find(b => b.label === 'mock-the-clock').id"
    )
    report.click_tree_node(mock_branch)
    title, body = report.details()
    assert title == "branch mock-the-clock"
    assert "forktrace.branch.label" in body

    report.page.locator(".decision-card").first.click()
    title, body = report.details()
    assert title.startswith("decision Which approaches")
    assert "the failure looks timing related" in body
    assert report.console_errors == []


def test_session_report_shows_runs_side_by_side(
    scripted_session_html: Path, open_report: Any
) -> None:
    report = open_report(scripted_session_html)
    page = report.page
    headers = page.locator("#session-table thead th").all_inner_texts()
    assert headers[1:] == ["#1 fix flaky checkout test", "#2 update the docs"]
    assert page.locator(".run-block").count() == 2
    labels = report.lane_labels()
    assert "#2 writer" in labels
    assert "#1 fixer-b · 1 mock-the-clock" in labels
    assert report.console_errors == []
    assert report.network_requests == []


def test_ten_thousand_span_report(clickhouse: Any, tmp_path: Path, open_report: Any) -> None:
    spans = scenario.insert_big_run(clickhouse)
    path = write_report(
        ClientReader(clickhouse, "test", owns_client=False), tmp_path / "big.html", scenario.BIG_RUN
    )
    report = open_report(path)
    page = report.page

    labels = report.lane_labels()
    assert len(labels) == 42 and labels[:3] == ["run", "coordinator", "worker-0 · 0 worker-0"]
    drawn = page.evaluate(
        "() => window.forktraceReport.swimlanes.getOption().series.slice(0, 2)"
        ".reduce((n, s) => n + s.data.filter(d => d[4] >= 0).length, 0)"
    )
    assert drawn == spans
    # canvas, not one DOM node per span
    assert page.evaluate("() => document.getElementsByTagName('*').length") < 3_000
    assert len(report.tree_nodes()) == 42
    assert "1 of 1" not in page.locator("#tools-0 .pager").inner_text()

    some_tool = page.evaluate(pagejs.BIG_RUN_TOOL)
    report.click_span(some_tool)
    title, body = report.details()
    assert title == "execute_tool search" and "gen_ai.tool.call.arguments" in body
    assert report.console_errors == []
    assert report.network_requests == []
    assert_not_blank(page.screenshot())
