"""Reports opened in a real headless Chromium: what a person would see and click.

The scripted session's reports are written by the real ``forktrace report``
command in a subprocess (it opens its own data directory; chDB allows one per
process); the 10,000-span report is built from the shared test engine.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import scenario

from forktrace.collector.reader import ClientReader
from forktrace.collector.report import write_report

HERE = Path(__file__).resolve().parent


def _forktrace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "forktrace.cli", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cli_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The scripted session in a data directory, and what the CLI makes of it."""
    root = tmp_path_factory.mktemp("cli")
    data_dir = root / "data"
    subprocess.run(
        [sys.executable, str(HERE / "populate.py"), str(data_dir)], check=True, timeout=300
    )
    run_report, session_report = root / "run.html", root / "session.html"
    results = {
        "run": _forktrace(
            "report", scenario.RUN, "-o", str(run_report), "--data-dir", str(data_dir)
        ),
        "session": _forktrace(
            "report",
            "--session",
            scenario.SESSION,
            "-o",
            str(session_report),
            "--data-dir",
            str(data_dir),
        ),
        "compare": _forktrace(
            "compare", scenario.RUN, "0", "mock-the-clock", "--data-dir", str(data_dir)
        ),
        "missing": _forktrace(
            "report", "no-such-run", "-o", str(root / "x.html"), "--data-dir", str(data_dir)
        ),
    }
    return {"results": results, "run": run_report, "session": session_report}


def assert_not_blank(png: bytes) -> None:
    """A screenshot of a drawn report has many colours and real contrast."""
    from PIL import Image, ImageStat

    image = Image.open(io.BytesIO(png)).convert("RGB")
    stddev = ImageStat.Stat(image).stddev
    assert min(stddev) > 20, f"screenshot looks blank (per-channel stddev {stddev})"
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 200, "screenshot has almost no colours"


def test_report_command_writes_one_file(cli_reports: dict[str, Any]) -> None:
    result = cli_reports["results"]["run"]
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    html = cli_reports["run"].read_text()
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    # the hostile tool result stays inside the JSON: escaped, never raw
    assert "</script><script>document.title" not in html


def test_report_command_wants_a_run_or_a_session(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from forktrace.cli import app

    result = CliRunner().invoke(app, ["report", "-o", str(tmp_path / "x.html")])
    assert result.exit_code == 1
    assert "give a run id, or --session S" in result.output
    assert not (tmp_path / "x.html").exists()


def test_compare_command(cli_reports: dict[str, Any]) -> None:
    result = cli_reports["results"]["compare"]
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "0 retry-with-backoff" in out and "1 mock-the-clock" in out
    assert "won" in out and "failed" in out and "edit_file failed" in out
    assert "diverged at step 2" in out
    assert "PermissionError" in out


def test_run_report_in_the_browser(cli_reports: dict[str, Any], open_report: Any) -> None:
    report = open_report(cli_reports["run"])
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


def test_clicking_a_span_shows_its_attributes(
    cli_reports: dict[str, Any], open_report: Any
) -> None:
    report = open_report(cli_reports["run"])
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
    cli_reports: dict[str, Any], open_report: Any
) -> None:
    assert cli_reports["results"]["session"].returncode == 0, cli_reports["results"][
        "session"
    ].stderr
    report = open_report(cli_reports["session"])
    page = report.page
    headers = page.locator("#session-table thead th").all_inner_texts()
    assert headers[1:] == ["fix flaky checkout test", "update the docs"]
    assert page.locator(".run-block").count() == 2
    labels = report.lane_labels()
    assert "update the docs: writer" in labels
    assert "fix flaky checkout test: fixer-b · 1 mock-the-clock" in labels
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

    some_tool = page.evaluate("() => window.forktraceReport.document.runs[0].tools[100].span")
    report.click_span(some_tool)
    title, body = report.details()
    assert title == "execute_tool search" and "gen_ai.tool.call.arguments" in body
    assert report.console_errors == []
    assert report.network_requests == []
    assert_not_blank(page.screenshot())
