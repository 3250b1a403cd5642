"""A query for the Grafana ClickHouse datasource (``grafana-clickhouse-datasource``).

grafana-foundation-sdk ships query types for Grafana's core datasources only;
this is the plugin's SQL-editor query model (``src/types/sql.ts`` in
grafana/clickhouse-datasource) as a foundation-sdk ``Dataquery`` and builder,
so it drops into any panel's ``with_target``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants

from forktrace.dashboards import DATASOURCE_TYPE

#: Dashboards select their datasource through this variable (see panels.py).
DATASOURCE_VARIABLE = "${datasource}"


class QueryType(str, Enum):
    """How the plugin presents the result (its ``QueryType`` enum)."""

    TABLE = "table"
    TIME_SERIES = "timeseries"
    LOGS = "logs"
    TRACES = "traces"


class Format(IntEnum):
    """The backend's frame format (sqlutil's ``FormatQueryOption``)."""

    TIME_SERIES = 0
    TABLE = 1
    LOGS = 2
    TRACE = 3


_FORMAT = {
    QueryType.TABLE: Format.TABLE,
    QueryType.TIME_SERIES: Format.TIME_SERIES,
    QueryType.LOGS: Format.LOGS,
    QueryType.TRACES: Format.TRACE,
}


@dataclass
class ClickHouseQuery(cogvariants.Dataquery):
    raw_sql: str
    ref_id: str = "A"
    query_type: QueryType = QueryType.TABLE
    datasource_uid: str = DATASOURCE_VARIABLE

    def to_json(self) -> dict[str, Any]:
        return {
            "datasource": {"type": DATASOURCE_TYPE, "uid": self.datasource_uid},
            "editorType": "sql",
            "format": int(_FORMAT[self.query_type]),
            "queryType": self.query_type.value,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }


class Query(cogbuilder.Builder[ClickHouseQuery]):
    """Builder: ``Query(sql).ref_id("B").query_type(QueryType.TRACES)``."""

    def __init__(self, raw_sql: str) -> None:
        self._internal = ClickHouseQuery(raw_sql=raw_sql.strip())

    def build(self) -> ClickHouseQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Query:
        self._internal.ref_id = ref_id
        return self

    def query_type(self, query_type: QueryType) -> Query:
        self._internal.query_type = query_type
        return self

    def datasource_uid(self, uid: str) -> Query:
        self._internal.datasource_uid = uid
        return self
