"""Every post-mortem recipe in docs/sql.md runs and finds something in the
hand-built session (the demo test runs them on the demo's data too)."""

from __future__ import annotations

import pytest
from recipes import recipes
from scenario import store

from forktrace.collector import views

RECIPES = recipes()


def test_docs_have_at_least_ten_recipes():
    assert len(RECIPES) >= 10


@pytest.fixture(scope="module")
def stored(clickhouse_module):
    store(clickhouse_module)
    return clickhouse_module


@pytest.mark.parametrize(("title", "sql"), RECIPES, ids=[title for title, _ in RECIPES])
def test_recipe_returns_rows(stored, title, sql):
    rows = stored.query(sql).result_rows
    assert rows, f"recipe {title!r} returned no rows"


VIEWS = [
    "forktrace_runs",
    "forktrace_session_runs(session_id = '')",
    *(f"{view}(run_id = '')" for view in views.RUN_VIEWS),
]


@pytest.mark.parametrize("view", VIEWS)
def test_views_return_plain_column_types(stored, view):
    # clients (the collector's JSON endpoint, Grafana) read plain types, not the
    # storage's aggregate-state wrappers
    types = [row[1] for row in stored.query(f"DESCRIBE (SELECT * FROM {view})").result_rows]
    assert not [t for t in types if "AggregateFunction" in t]
