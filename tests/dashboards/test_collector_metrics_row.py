"""The Overview's collector row: Prometheus panels on the metrics the collector exports."""

from __future__ import annotations

import re
from typing import Any

from forktrace.collector.metrics import Metrics
from forktrace.dashboards import rendered

PROMETHEUS = {"type": "prometheus", "uid": "${prometheus}"}


def collector_row() -> dict[str, Any]:
    board = rendered()["forktrace-overview"]
    (row,) = [p for p in board["panels"] if p["type"] == "row"]
    return row


def families() -> set[str]:
    """The metric families the collector's registry exposes (counters without _total)."""
    metrics = Metrics()

    class Inserter:
        failures = 0

        def insert(self, client: Any, segment: Any) -> None:
            pass

    metrics.observe_inserter(Inserter())
    return {family.name for family in metrics.registry.collect()}


def test_the_row_is_collapsed_and_reads_the_prometheus_variable():
    board = rendered()["forktrace-overview"]
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "prometheus"]
    row = collector_row()
    assert row["collapsed"] is True and row["panels"]
    for panel in row["panels"]:
        assert panel["datasource"] == PROMETHEUS
        for target in panel["targets"]:
            assert target["datasource"] == PROMETHEUS and target["expr"].strip()


def test_every_query_names_series_the_collector_exports_and_shows_them_all():
    used = set()
    for panel in collector_row()["panels"]:
        for target in panel["targets"]:
            used.update(re.findall(r"forktrace_collector_\w+", target["expr"]))
    # a counter's series ends in _total, a histogram's buckets in _bucket
    assert {re.sub(r"_(total|bucket)$", "", name) for name in used} == families()
