"""Readers give the same Python values whether they query the engine directly or
through a collector's JSON endpoint, and the CLI prints them as users expect."""

from __future__ import annotations

import datetime as dt
import io
import json

from forktrace.collector.output import render
from forktrace.collector.reader import ClientReader, QueryResult, revive_rows, to_json

SQL = (
    "SELECT toDateTime64('2026-01-02 03:04:05.123456789', 9, 'UTC') AS ts, toDate('2026-01-02') AS day, "
    "{n:UInt64} AS n, map('k', 'v') AS m, ['a', 'b'] AS arr, "
    "[toDateTime64('2026-01-02 03:04:05', 9, 'UTC')] AS times, (1, 'x') AS pair, CAST(NULL, 'Nullable(String)') AS nothing"
)


def test_endpoint_json_revives_to_the_direct_values(clickhouse):
    direct = ClientReader(clickhouse, "test", owns_client=False).query(SQL, {"n": 7})
    wire = json.loads(json.dumps({"rows": direct.rows}, default=to_json))["rows"]
    assert revive_rows(wire, direct.types) == direct.rows
    assert direct.column_names == ["ts", "day", "n", "m", "arr", "times", "pair", "nothing"]
    row = direct.rows[0]
    assert row[1] == dt.date(2026, 1, 2) and row[2] == 7 and row[3] == {"k": "v"} and row[7] is None


def test_output_formats():
    result = QueryResult(["name", "attrs", "n"], [("a", {"k": "v"}, 1), ("b", ["x"], None)])
    out = io.StringIO()
    render(result, "csv", out)
    assert out.getvalue() == 'name,attrs,n\na,"{""k"": ""v""}",1\nb,"[""x""]",\n'
    out = io.StringIO()
    render(result, "json", out)
    assert json.loads(out.getvalue()) == [
        {"name": "a", "attrs": {"k": "v"}, "n": 1},
        {"name": "b", "attrs": ["x"], "n": None},
    ]
    out = io.StringIO()
    render(result, "table", out)
    assert "name" in out.getvalue() and '{"k": "v"}' in out.getvalue()


def test_nested_values_revive_inside_arrays_maps_and_tuples(clickhouse):
    sql = (
        "SELECT [(toDateTime64('2026-01-02 03:04:05', 9, 'UTC'), 'x')] AS pairs, "
        "map('a', toDate('2026-01-02'), 'b', NULL) AS days, "
        "[CAST(NULL, 'Nullable(DateTime64(9))')] AS maybe_times, "
        "CAST(NULL, 'Nullable(DateTime64(9))') AS no_time"
    )
    direct = ClientReader(clickhouse, "test", owns_client=False).query(sql)
    wire = json.loads(json.dumps({"rows": direct.rows}, default=to_json))["rows"]
    assert revive_rows(wire, direct.types) == direct.rows
    pairs, days, maybe_times, no_time = direct.rows[0]
    assert isinstance(pairs[0][0], dt.datetime) and days["a"] == dt.date(2026, 1, 2)
    assert days["b"] is None and maybe_times == [None] and no_time is None
