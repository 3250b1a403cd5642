"""What every forktrace dashboard shares: the datasource, variables, links, panel plumbing."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import (
    dashboard,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from forktrace.dashboards import DATASOURCE_TYPE, DATASOURCE_UID
from forktrace.dashboards.clickhouse_query import DATASOURCE_VARIABLE, Query, QueryType

RUN_EXPLORER_UID = "forktrace-run-explorer"

#: Every panel and query reads through the ``datasource`` variable, so the
#: dashboards work with any ClickHouse datasource, not only the provisioned one.
DATASOURCE = common.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_VARIABLE)

#: The collector's own metrics come from Prometheus, through the ``prometheus``
#: variable (deploy/ provisions a Prometheus datasource under this uid).
PROMETHEUS_TYPE = "prometheus"
PROMETHEUS_UID = "forktrace-prometheus"
PROMETHEUS = common.DataSourceRef(type_val=PROMETHEUS_TYPE, uid="${prometheus}")

#: Colours of states and outcomes (Grafana's palette), one set for every panel:
#: value mappings in tables and timelines, node colours in the fork tree.
OUTCOME_COLORS = {
    "won": "#73BF69",
    "succeeded": "#73BF69",
    "done": "#73BF69",
    "completed": "#5794F2",
    "merged": "#5794F2",
    "thinking": "#8AB8FF",
    "calling a tool": "#FF9830",
    "waiting": "#CCCCDC",
    "running": "#FADE2A",
    "lost": "#FFB357",
    "abandoned": "#B877D9",
    "cancelled": "#B877D9",
    "failed": "#F2495C",
}
UNKNOWN_COLOR = "#8E8E8E"


def outcome_color_sql(column: str) -> str:
    """SQL mapping an outcome column to its colour, for panels that take colours as data."""
    names = ", ".join(f"'{name}'" for name in OUTCOME_COLORS)
    colors = ", ".join(f"'{color}'" for color in OUTCOME_COLORS.values())
    return f"transform({column}, [{names}], [{colors}], '{UNKNOWN_COLOR}')"


class _SqlPanel(Protocol):
    def with_target(self, target: Any) -> Any: ...
    def datasource(self, datasource: common.DataSourceRef) -> Any: ...


P = TypeVar("P", bound=_SqlPanel)


def sql(text: str) -> str:
    """Panel SQL written as an indented block in the builders, stored flush left."""
    return textwrap.dedent(text).strip()


def with_sql(panel: P, query: str, query_type: QueryType = QueryType.TABLE, ref_id: str = "A") -> P:
    """Attach one ClickHouse SQL query to a panel, through the datasource variable."""
    panel.datasource(DATASOURCE)
    panel.with_target(Query(sql(query)).query_type(query_type).ref_id(ref_id))
    return panel


def new_dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["forktrace"])
        .time("now-24h", "now")
        .timezone("browser")
        .refresh("30s")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .editable()
        .with_variable(datasource_variable())
        .link(
            dashboard.DashboardLink("forktrace")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["forktrace"])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
    )


def datasource_variable() -> dashboard.DatasourceVariable:
    return (
        dashboard.DatasourceVariable("datasource")
        .label("ClickHouse")
        .type(DATASOURCE_TYPE)
        .current(model.VariableOption(text=DATASOURCE_UID, value=DATASOURCE_UID))
    )


def prometheus_variable() -> dashboard.DatasourceVariable:
    return (
        dashboard.DatasourceVariable("prometheus")
        .label("Prometheus")
        .type(PROMETHEUS_TYPE)
        .current(model.VariableOption(text=PROMETHEUS_UID, value=PROMETHEUS_UID))
    )


def sql_variable(name: str, label: str, query: str) -> dashboard.QueryVariable:
    """A single-value variable whose options are the first column of ``query``.

    The plugin inserts a single value unquoted, so panel SQL quotes it: ``'${run}'``.
    """
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(sql(query))
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.DISABLED)
    )


def run_explorer_link(title: str = "Open in the run explorer") -> dashboard.DashboardLink:
    """A data link from any row that has ``session_id`` and ``run_id`` fields."""
    return dashboard.DashboardLink(title).url(
        f"/d/{RUN_EXPLORER_UID}/run-explorer?var-datasource=${{datasource}}"
        "&var-session=${__data.fields.session_id}&var-run=${__data.fields.run_id}"
        "&${__url_time_range}"
    )


def link_runs(panel: P, field: str = "run_id") -> P:
    """Make ``field`` of every row a link to that run in the run explorer."""
    link = run_explorer_link().build()
    panel.override_by_name(field, [model.DynamicConfigValue(id_val="links", value=[link])])  # type: ignore[attr-defined]
    return panel


def outcome_mappings() -> list[model.ValueMap]:
    return [
        model.ValueMap(
            options={
                value: model.ValueMappingResult(color=color, index=index)
                for index, (value, color) in enumerate(OUTCOME_COLORS.items())
            }
        )
    ]


# --- panel constructors: one per panel type the dashboards use ---------------

#: Units by column name, applied wherever a column of that name appears.
COLUMN_UNITS = {
    "cost": "currencyUSD",
    "wasted_cost": "currencyUSD",
    "duration_ms": "ms",
    "offset_ms": "ms",
    "avg_duration_ms": "ms",
    "p95_duration_ms": "ms",
    "waste_share": "percentunit",
    "confidence": "percentunit",
    "error_rate": "percentunit",
}


def _units(panel: Any, columns: tuple[str, ...]) -> None:
    for column in columns:
        unit = COLUMN_UNITS.get(column)
        if unit:
            panel.override_by_name(column, [model.DynamicConfigValue(id_val="unit", value=unit)])


def table_panel(
    title: str,
    description: str,
    query: str,
    *,
    height: int = 8,
    span: int = 24,
    units_for: tuple[str, ...] = (),
    colored: tuple[str, ...] = (),
    runs_linked: bool = False,
) -> table.Panel:
    """A table; ``runs_linked`` makes its run_id cells open the run explorer."""
    panel = with_sql(table.Panel().title(title).description(description), query)
    panel.height(height).span(span).filterable(True)
    _units(panel, units_for)
    for column in colored:
        panel.override_by_name(column, color_properties())
    if runs_linked:
        link_runs(panel)
    return panel


def stat_panel(title: str, description: str, query: str, *, unit: str = "short") -> stat.Panel:
    panel = with_sql(stat.Panel().title(title).description(description), query)
    return panel.height(4).span(4).unit(unit).graph_mode(common.BigValueGraphMode.NONE)


def timeseries_panel(
    title: str,
    description: str,
    query: str,
    *,
    unit: str = "short",
    span: int = 12,
    series_by: str | None = None,
) -> timeseries.Panel:
    """Bars per interval. With ``series_by``, the query returns rows (time, <series_by>,
    value) and the plugin turns them into one series per value, named after it."""
    panel = with_sql(
        timeseries.Panel().title(title).description(description), query, QueryType.TIME_SERIES
    )
    if series_by:
        panel.display_name(f"${{__field.labels.{series_by}}}")
    return (
        panel.height(8)
        .span(span)
        .unit(unit)
        .draw_style(common.GraphDrawStyle.BARS)
        .fill_opacity(60)
        .stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    )


def metrics_panel(
    title: str,
    description: str,
    queries: dict[str, str],
    *,
    unit: str = "short",
    span: int = 8,
) -> timeseries.Panel:
    """Lines of PromQL ``queries`` (legend -> expression) on the ``prometheus`` variable."""
    panel = timeseries.Panel().title(title).description(description).datasource(PROMETHEUS)
    for index, (legend, expr) in enumerate(queries.items()):
        panel.with_target(
            prometheus.Dataquery()
            .datasource(PROMETHEUS)
            .expr(sql(expr))
            .legend_format(legend)
            .ref_id(chr(ord("A") + index))
        )
    return panel.height(8).span(span).unit(unit).fill_opacity(10)


def state_timeline_panel(
    title: str, description: str, query: str, *, lane: str = "lane", height: int = 10
) -> statetimeline.Panel:
    """A swimlane per distinct ``lane`` value: the query returns rows (time, lane, state),
    one per state change, and Grafana splits them into one frame per lane."""
    panel = with_sql(
        statetimeline.Panel().title(title).description(description), query, QueryType.TABLE
    )
    return (
        panel.height(height)
        .span(24)
        .with_transformation(
            model.DataTransformerConfig(
                id_val="partitionByValues",
                options={"fields": [lane], "keepFields": False, "naming": {"asLabels": True}},
            )
        )
        .display_name(f"${{__field.labels.{lane}}}")
        .mappings(outcome_mappings())
        .merge_values(True)
        .show_value(common.VisibilityMode.AUTO)
        .row_height(0.8)
    )


def color_properties() -> list[model.DynamicConfigValue]:
    return [
        model.DynamicConfigValue(id_val="mappings", value=outcome_mappings()),
        model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
    ]


def add_panels(board: dashboard.Dashboard, panels: Iterable[Any]) -> dashboard.Dashboard:
    """Add panels in order with stable ids (1, 2, ...), so links to a panel survive re-renders."""
    for panel_id, panel in enumerate(panels, start=1):
        board.with_panel(panel.id(panel_id))
    return board
