"""views.py (what the CLI, the report and the dashboards call) and the rich tree
of ``forktrace tree``, on the hand-built session."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from forktrace.collector import tree_render, views
from forktrace.collector.reader import ClientReader


@pytest.fixture(scope="module")
def reader(loaded):
    client, _ = loaded
    return ClientReader(client, "test", owns_client=False)


def render(tree: views.RunTree) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(tree_render.build(tree))
    return out.getvalue()


def test_run_ids_resolve_from_a_unique_prefix(reader):
    assert views.resolve_run_id(reader, "run-a") == "run-a"
    assert views.resolve_run_id(reader, "run-b") == "run-b"
    with pytest.raises(views.RunNotFoundError, match="several runs"):
        views.resolve_run_id(reader, "run-")
    with pytest.raises(views.RunNotFoundError, match="no run id starts with"):
        views.resolve_run_id(reader, "nope")


def test_runs_newest_first_by_session_and_last(reader):
    session = views.runs(reader, session="sess-1")
    ids = [row[session.column_names.index("run_id")] for row in session.rows]
    assert ids == ["run-b", "run-a"]  # run-b started 500 ms later
    assert len(views.runs(reader, last=1).rows) == 1


def test_tree_shows_forks_branches_outcomes_and_what_happened_in_each(reader):
    text = render(views.run_tree(reader, "run-a"))
    for expected in (
        "run refactor the parser  succeeded  10.0s",
        "⑂ fork approaches  (race)  3 branches  winner rewrite  by tests pass first",
        "★ 0 rewrite  won",
        "✗ 1 patch  failed  (merge conflict)",
        "⊘ 2 vendor  abandoned  (human redirect)",
        "· 2.1 submodule  lost",
        "? Vendor how? → both  (options: copy · submodule)  confidence 0.30",
        'apply_patch({"file": "parser.py"}) failed: merge conflict',
        "alice redirect: stop vendoring",
        "A minimal patch keeps the diff small.",
    ):
        assert expected in text, f"{expected!r} not in the tree:\n{text}"
    # the second fork's branches have the paths 0 and 1 too, but only their own calls
    review = text[text.index("fork review") :]
    assert "strict  lost" in review and "lenient  won" in review
    assert "search(" not in review and "apply_patch" not in review


def test_an_unpriced_run_says_so_instead_of_zero(reader):
    text = render(views.run_tree(reader, "run-b"))
    assert "cost unknown" in text and "$0.0000" not in text


def test_runs_picked_by_last_and_session_are_those_of_the_whole_list(reader):
    # views.runs picks the ids first (pushed down into the view); the rows must be
    # exactly what filtering and ordering the whole forktrace_runs gives
    whole = views.runs(reader)
    ids = [row[whole.column_names.index("run_id")] for row in whole.rows]
    sessions = {row[whole.column_names.index("session_id")] for row in whole.rows} - {""}
    assert len(ids) >= 3 and len(sessions) >= 2
    assert views.runs(reader, last=2).rows == whole.rows[:2]
    for session in sessions:
        expected = [r for r in whole.rows if r[whole.column_names.index("session_id")] == session]
        assert views.runs(reader, session=session).rows == expected
        assert views.runs(reader, session=session, last=1).rows == expected[:1]


def test_the_trees_run_and_forks_are_the_views_rows(reader):
    # run_tree builds the run row and the forks from the base views and the
    # branches (in Python, to plan the branch machinery once): they must be
    # exactly forktrace_runs' and forktrace_forks' rows, columns in order
    # (run-b's cost is unknown, run-a has waste nested in a losing branch)
    whole = views.runs(reader)
    run_ids = [row[whole.column_names.index("run_id")] for row in whole.rows]
    assert len(run_ids) >= 3
    for run_id in run_ids:
        tree = views.run_tree(reader, run_id)
        expected_run = views.run(reader, run_id)
        assert list(tree.run.items()) == list(expected_run.items())
        expected_forks = views.run_view(reader, "forktrace_forks", run_id)
        assert [list(f.items()) for f in tree.forks] == [list(f.items()) for f in expected_forks]
    assert views.run(reader, "run-a")["wasted_tokens"] > 0
    assert views.run(reader, "run-b")["cost"] is None
