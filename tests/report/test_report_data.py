"""The report document and the page built from it, checked against the scripted
run's known contents (no browser here: see test_report_browser.py)."""

from __future__ import annotations

import json
import re

import pytest
import report_scenario as scenario

from forktrace import semconv
from forktrace.collector.reader import ClientReader
from forktrace.collector.report import ReportError, build, render_html
from forktrace.collector.views import RunNotFoundError


@pytest.fixture
def reader(scripted: tuple[ClientReader, scenario.Scenario]) -> ClientReader:
    return scripted[0]


@pytest.fixture
def written(scripted: tuple[ClientReader, scenario.Scenario]) -> scenario.Scenario:
    return scripted[1]


def test_run_document(reader: ClientReader, written: scenario.Scenario) -> None:
    doc = build(reader, written.run_id)
    (run,) = doc["runs"]
    assert (
        run["name"] == "fix flaky checkout test"
        and run["goal"] == "make test_checkout pass reliably"
    )
    assert run["agents"] == written.agents
    assert {b["path"]: b["outcome"] for b in run["branches"]} == written.outcomes
    assert {b["path"]: b["label"] for b in run["branches"]} == written.branch_labels
    assert [b["path"] for b in run["branches"] if b["wasted"]] == ["1", "2", "2.1"]
    approaches = next(f for f in run["forks"] if f["name"] == "approaches")
    assert approaches["winner_label"] == written.winner_label
    assert approaches["criterion"] == written.criterion
    assert approaches["winner"] == written.ids["retry"]
    assert [d["question"] for d in run["decisions"]] == written.decisions
    plan = run["decisions"][0]
    assert (plan["chosen"], plan["confidence"], plan["maker"]) == ("retry", 0.35, "model")
    assert [t["error"] for t in run["tools"] if t["status"] == "Error"] == written.tool_errors
    assert [(i["kind"], i["author"]) for i in run["interventions"]] == [("redirect", "alice")]
    # waste is the three losing branches' cost; the views price gpt-4o and gpt-4o-mini
    wasted = sum(b["cost"] for b in run["branches"] if b["wasted"] and "." not in b["path"])
    assert run["totals"]["waste_cost"] == pytest.approx(wasted)
    assert run["span"] == written.ids["run"]


def test_lanes_spans_and_markers(reader: ClientReader, written: scenario.Scenario) -> None:
    doc = build(reader, written.run_id)
    labels = [lane["label"] for lane in doc["lanes"]]
    assert labels[:4] == [
        "run",
        "coordinator",
        "fixer-a · 0 retry-with-backoff",
        "fixer-b · 1 mock-the-clock",
    ]
    spans = doc["spans"]
    assert len(spans["id"]) == len(doc["details"]) == written.spans
    # every column has one entry per span, and every span sits in a lane
    assert {len(column) for column in spans.values()} == {written.spans}
    assert set(spans["lane"]) == set(range(len(doc["lanes"])))
    activity = dict(zip(spans["name"], spans["activity"], strict=True))
    assert doc["activities"][activity["chat gpt-4o"]] == "thinking"
    assert doc["activities"][activity["execute_tool run_tests"]] == "tool"
    assert doc["activities"][activity["branch mock-the-clock"]] == "waiting"
    failed = [
        n
        for n, a in zip(spans["name"], spans["activity"], strict=True)
        if doc["activities"][a] == "failed"
    ]
    assert failed == ["execute_tool edit_file"]
    # the branch span shares its worker's lane: one lane per branch
    mock_lane = spans["lane"][spans["id"].index(written.ids["mock"])]
    assert doc["lanes"][mock_lane]["label"] == "fixer-b · 1 mock-the-clock"
    assert doc["lanes"][mock_lane]["outcome"] == "failed"
    kinds = sorted(m["type"] for m in doc["markers"])
    assert kinds == ["fork", "fork", "intervention", "join", "join"]
    intervention = next(m for m in doc["markers"] if m["type"] == "intervention")
    assert intervention["label"] == "redirect by alice" and intervention["t"] == 6000
    assert doc["end_ms"] == 9000 and doc["origin"] == "2026-03-02T09:00:00.000Z"


def test_details_keep_every_attribute_and_mark_cuts(
    reader: ClientReader, written: scenario.Scenario
) -> None:
    doc = build(reader, written.run_id, max_value_chars=10)
    plan = doc["details"][written.ids["plan"]]
    assert plan["kind"] == "decision"
    assert plan["attributes"]["forktrace.decision.chosen"] == "retry"
    question = plan["attributes"][semconv.DECISION_QUESTION]
    assert question.startswith("Which appr" + semconv.TRUNCATION_MARKER)
    assert question.endswith(f"(original length {len(scenario.QUESTIONS[0])})")
    assert doc["details"][written.ids["run"]]["attributes"]["service.name"] == "agents"


def test_session_document(reader: ClientReader, written: scenario.Scenario) -> None:
    doc = build(reader, session_id=scenario.SESSION)
    assert doc["session_id"] == scenario.SESSION
    assert [r["run_id"] for r in doc["runs"]] == [scenario.RUN, scenario.SIBLING_RUN]
    assert doc["runs"][1]["start_ms"] == 300
    assert [r["tag"] for r in doc["runs"]] == ["#1", "#2"]
    assert "#2 writer" in [lane["label"] for lane in doc["lanes"]]
    # asked with a run too: that run comes first
    doc = build(reader, scenario.SIBLING_RUN, session_id=scenario.SESSION)
    assert doc["runs"][0]["run_id"] == scenario.SIBLING_RUN


def test_unknown_run_or_session(reader: ClientReader, written: scenario.Scenario) -> None:
    with pytest.raises(RunNotFoundError, match="no-such-run"):
        build(reader, "no-such-run")
    with pytest.raises(ReportError, match="no runs in session 'nope'"):
        build(reader, session_id="nope")


def test_run_id_prefix(reader: ClientReader, written: scenario.Scenario) -> None:
    assert build(reader, "run-fl")["runs"][0]["run_id"] == scenario.RUN


def test_page_is_self_contained_and_data_cannot_escape(
    reader: ClientReader, written: scenario.Scenario
) -> None:
    html = render_html(build(reader, written.run_id))
    outside_scripts = re.sub(r"(<script[^>]*>).*?</script>", r"\1", html, flags=re.S)
    assert not re.search(r"\b(src|href)=|<link|@import|url\(", outside_scripts)
    assert "default-src 'none'" in html  # the browser itself refuses any fetch
    assert scenario.HOSTILE_RESULT not in html
    blob = re.search(
        r'<script type="application/json" id="forktrace-data">(.*?)</script>', html, re.S
    )
    assert blob, "the data blob is one script element"
    doc = json.loads(blob.group(1))
    results = [t["result"] for t in doc["runs"][0]["tools"]]
    assert scenario.HOSTILE_RESULT in results  # intact once parsed
    # the structure bounded by the run is rendered by the template
    assert html.count('class="card decision-card"') == 2
    assert html.count('class="branch-row"') == 5
