"""``forktrace compare``: branches named three ways, where they diverged, and the
terminal output a user reads."""

from __future__ import annotations

import io

import pytest
import report_scenario as scenario

from forktrace.collector import views
from forktrace.collector.compare import compare, print_comparison
from forktrace.collector.reader import ClientReader
from forktrace.collector.report import ReportError


@pytest.fixture
def reader(scripted: tuple[ClientReader, scenario.Scenario]) -> ClientReader:
    return scripted[0]


def test_branches_by_path_label_and_id_prefix(reader: ClientReader) -> None:
    branches = views.run_view(reader, "forktrace_branches", scenario.RUN)
    mock_id = next(b["branch_id"] for b in branches if b["label"] == "mock-the-clock")
    for a, b in (("0", "1"), ("retry-with-backoff", "mock-the-clock"), ("0", mock_id)):
        result = compare(reader, scenario.RUN, a, b)
        assert (result.a.branch["label"], result.b.branch["label"]) == (
            "retry-with-backoff",
            "mock-the-clock",
        )
        assert result.siblings
    # the test ids are sequential, so a short prefix names several branches
    with pytest.raises(ReportError, match="names 5 branches"):
        compare(reader, scenario.RUN, "0", mock_id[:4])


def test_where_siblings_diverge(reader: ClientReader) -> None:
    result = compare(reader, scenario.RUN, "0", "1")
    assert [s.text for s in result.a.steps] == [
        "model gpt-4o",
        'tool edit_file({"path": "tests/test_checkout.py"})',
        'tool run_tests({"select": "test_checkout"})',
    ]
    assert result.b.steps[1].failed
    assert result.diverged_at == 1  # same first model call, then different edits
    assert result.a.tools == {"edit_file": 1, "run_tests": 1}
    assert result.b.tools == {"edit_file": 1}


def test_nested_branches_count_in_their_parent(reader: ClientReader) -> None:
    result = compare(reader, scenario.RUN, "2", "0")
    assert result.a.decisions == {"Split the test or parametrize it?": "split"}
    assert result.a.tools == {"run_tests": 1}
    assert (
        len(result.a.steps) == 5
    )  # its own model call and decision, and both inner branches' work
    inner = compare(reader, scenario.RUN, "2.0", "2.1")
    assert inner.siblings and inner.diverged_at == 1  # both call gpt-4o-mini first


def test_branches_of_different_forks_are_flagged(reader: ClientReader) -> None:
    assert not compare(reader, scenario.RUN, "1", "2.1").siblings


def test_bad_branch_names(reader: ClientReader) -> None:
    with pytest.raises(ReportError, match=r"no branch 'nope'.*0 retry-with-backoff"):
        compare(reader, scenario.RUN, "0", "nope")
    with pytest.raises(ReportError, match="same branch"):
        compare(reader, scenario.RUN, "0", "retry-with-backoff")


def test_printed_comparison(reader: ClientReader) -> None:
    out = io.StringIO()
    print_comparison(compare(reader, scenario.RUN, "0", "1"), file=out, width=160)
    text = out.getvalue()
    assert "branch 0 retry-with-backoff vs 1 mock-the-clock" in text
    assert "won (green with a 3-line change)" in text
    assert "failed (edit_file failed)" in text
    assert "diverged at step 2" in text and "2 ◀ diverged" in text
    assert "PermissionError" in text
    assert "$0.0100" in text and "$0.0085" in text  # cost per branch
    assert "2,000 / 500" in text  # tokens in / out
