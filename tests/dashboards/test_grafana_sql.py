"""The expansion harness produces the text the ClickHouse datasource produces.

Expected strings follow the plugin's own macro tests (pkg/macros/macros_test.go)
and its frontend's applyConditionalAll / format behaviour.
"""

from __future__ import annotations

import pytest
from grafana_sql import ALL, QueryContext, expand, utc

FROM, TO = utc(2026, 1, 10, 11, 0, 0), utc(2026, 1, 10, 14, 0, 0)
F, T = int(FROM.timestamp()), int(TO.timestamp())


def ctx(**variables):
    return QueryContext(FROM, TO, interval_ms=30_000, variables=variables,
                        options={"env": ["dev", "prod"]})  # fmt: skip


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("$__timeFilter(start)", f"start >= toDateTime({F}) AND start <= toDateTime({T})"),
        (
            "$__timeFilter_ms(t)",
            f"t >= fromUnixTimestamp64Milli({F * 1000}) AND t <= fromUnixTimestamp64Milli({T * 1000})",
        ),
        ("$__fromTime AND $__toTime", f"toDateTime({F}) AND toDateTime({T})"),
        ("$__fromTime_ms", f"fromUnixTimestamp64Milli({F * 1000})"),
        ("$__dateFilter(d)", "d >= toDate('2026-01-10') AND d <= toDate('2026-01-10')"),
        (
            "$__dt(d, t)",
            f"(d >= toDate('2026-01-10') AND d <= toDate('2026-01-10')) AND "
            f"(t >= toDateTime({F}) AND t <= toDateTime({T}))",
        ),
        ("$__timeInterval(start)", "toStartOfInterval(toDateTime(start), INTERVAL 30 second)"),
        (
            "$__timeInterval_ms(start)",
            "toStartOfInterval(toDateTime64(start, 3), INTERVAL 30000 millisecond)",
        ),
        ("x / $__interval_s", "x / 30"),
    ],
)
def test_backend_macros_expand_as_the_plugin_does(sql, expected):
    assert expand(sql, ctx()) == expected


def test_nested_parentheses_stay_inside_one_argument():
    assert expand("$__timeFilter(toDate(start))", ctx()).startswith("toDate(start) >= ")


def test_unknown_macros_fail_as_in_the_plugin():
    with pytest.raises(ValueError, match="undefined macro"):
        expand("SELECT $__nope(x)", ctx())


def test_single_values_go_in_unquoted_and_lists_quoted():
    assert expand("run = '${run}' AND s = '$s'", ctx(run="r1", s="x")) == "run = 'r1' AND s = 'x'"
    assert expand("env IN (${env})", ctx(env=["dev", "prod"])) == "env IN ('dev','prod')"
    assert expand("env IN ($env)", ctx(env=ALL)) == "env IN ('dev','prod')"


def test_unknown_dollar_names_are_left_alone():
    assert expand("SELECT '$notavariable'", ctx()) == "SELECT '$notavariable'"


def test_conditional_all_drops_the_condition_for_all_or_empty():
    sql = "WHERE $__conditionalAll(env IN (${env}), $env) AND 1"
    assert expand(sql, ctx(env=["prod"])) == "WHERE env IN ('prod') AND 1"
    assert expand(sql, ctx(env=ALL)) == "WHERE 1=1 AND 1"
    assert expand(sql, ctx(env="")) == "WHERE 1=1 AND 1"


def test_builtin_time_variables():
    assert expand("${__from} ${__to} $__interval_ms", ctx()) == f"{F * 1000} {T * 1000} 30000"
