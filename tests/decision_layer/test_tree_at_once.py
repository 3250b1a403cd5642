"""``views.run_tree`` fetches its statements at once, on a reader that really runs
queries at once (one chDB client per query in flight), and gives the tree that
fetching each statement in turn gives; a failing statement fails the tree."""

from __future__ import annotations

from typing import Any

import clickhouse_connect
import pytest
import scenario as _scenario

from forktrace.collector import views
from forktrace.collector.reader import ClientReader, QueryError


def concurrent_reader(client: Any) -> ClientReader:
    """A reader on ``client``'s database that opens more clients on the same
    engine and database when queries run at once."""

    def connect() -> Any:
        return clickhouse_connect.get_client(dsn=f"chdb://{client.path}", database=client.database)

    return ClientReader(client, "test", owns_client=False, connect=connect)


def tree_in_turn(reader: ClientReader, run_id: str) -> views.RunTree:
    """The tree from each statement fetched one after another, as the views give them."""
    base = reader.query(
        "SELECT * FROM forktrace_run_base WHERE run_id = {run:String}", {"run": run_id}
    ).dicts()
    branches = views.run_view(reader, "forktrace_branches", run_id)
    return views.RunTree(
        run=views.run_row(base[0], branches),
        forks=views.fork_rows(views.run_view(reader, "forktrace_fork_base", run_id), branches),
        branches=branches,
        decisions=views.run_view(reader, "forktrace_decisions", run_id),
        tool_calls=views.run_view(reader, "forktrace_tool_calls", run_id),
        llm_calls=views.run_view(reader, "forktrace_llm_calls", run_id),
        interventions=views.run_view(reader, "forktrace_interventions", run_id),
    )


@pytest.fixture(scope="module")
def reader(loaded: tuple[Any, Any]) -> Any:
    client, _ = loaded
    reader = concurrent_reader(client)
    yield reader
    reader.close()


@pytest.mark.parametrize("workers", [2, 7])
def test_the_tree_fetched_at_once_is_the_tree_fetched_in_turn(reader, workers):
    for run_id in ("run-a", "run-b"):
        tree = views.run_tree(reader, run_id, workers=workers)
        assert tree == tree_in_turn(reader, run_id)
    tree = views.run_tree(reader, "run-a", workers=workers)
    # each statement's rows landed in their own field, not a neighbour's
    assert {b["label"] for b in tree.branches} >= {"rewrite", "patch", "vendor", "copy"}
    assert {f["name"] for f in tree.forks} == {"approaches", "vendor how", "review"}
    assert {c["tool_name"] for c in tree.tool_calls} == {"search", "run_tests", "apply_patch"}
    assert [i["author"] for i in tree.interventions] == ["alice"]
    assert tree.run["run_id"] == "run-a" and tree.run["wasted_tokens"] > 0


def test_an_unknown_run_is_not_found(reader):
    with pytest.raises(views.RunNotFoundError, match="no run 'run-z'"):
        views.run_tree(reader, "run-z")


def test_a_failing_statement_fails_the_tree_with_its_error(clickhouse):
    _scenario.store(clickhouse)
    reader = concurrent_reader(clickhouse)
    assert views.run_tree(reader, "run-a").interventions  # whole, before the view goes
    clickhouse.command("DROP VIEW forktrace_interventions")
    with pytest.raises(QueryError, match="forktrace_interventions"):
        views.run_tree(reader, "run-a")
    reader.close()


def test_the_activity_split_gives_each_kind_the_columns_of_its_view(reader):
    views_of_kind = {
        "decision": "forktrace_decisions",
        "tool": "forktrace_tool_calls",
        "llm": "forktrace_llm_calls",
    }
    activity = reader.query(
        "SELECT * FROM forktrace_all_activity WHERE run_id = {run:String} ORDER BY time, span_id",
        {"run": "run-a"},
    ).dicts()
    split = views.split_activity(activity)
    for kind, view in views_of_kind.items():
        rows = views.run_view(reader, view, "run-a")
        assert rows, view
        # the same columns, in the view's order, and the same rows in the same order
        assert list(split[kind][0]) == list(rows[0]) == list(views.ACTIVITY_COLUMNS[kind])
        assert split[kind] == rows
