"""Overview: every run in the time range, what it cost, what was wasted, what failed."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from forktrace.dashboards.panels import (
    add_panels,
    metrics_panel,
    new_dashboard,
    prometheus_variable,
    stat_panel,
    table_panel,
    timeseries_panel,
)

UID = "forktrace-overview"

#: The runs that started in the dashboard's time range; every panel starts here.
RUNS_IN_RANGE = "SELECT run_id FROM forktrace_runs WHERE $__timeFilter(start)"


#: PromQL over the collector's metrics (collector/metrics.py; docs/operations.md).
COLLECTOR = "forktrace_collector"


def collector_row(first_id: int) -> dashboard.Row:
    """The collector's own health, from Prometheus: collapsed, so a Grafana
    without a Prometheus datasource shows the rest of the dashboard as before."""
    panels = [
        metrics_panel(
            "Accepted",
            "Spans and requests acknowledged per second (on disk in the spool), by transport.",
            {
                "spans {{transport}}": f"sum by (transport) (rate({COLLECTOR}_accepted_spans_total[$__rate_interval]))",
                "requests {{transport}}": f"sum by (transport) (rate({COLLECTOR}_accepted_requests_total[$__rate_interval]))",
            },
        ),
        metrics_panel(
            "Rejected",
            "Requests refused and spans dropped per second, by reason; 429s (spool full).",
            {
                "request: {{reason}}": f"sum by (reason) (rate({COLLECTOR}_rejected_requests_total[$__rate_interval]))",
                "span: {{reason}}": f"sum by (reason) (rate({COLLECTOR}_rejected_spans_total[$__rate_interval]))",
                "throttled (429)": f"sum(rate({COLLECTOR}_throttled_requests_total[$__rate_interval]))",
            },
            unit="reqps",
        ),
        metrics_panel(
            "Spool",
            "Bytes acknowledged but not yet in the store: it grows while the store is slow or down.",
            {"spooled": f"sum({COLLECTOR}_spool_bytes)"},
            unit="bytes",
        ),
        metrics_panel(
            "Inserted",
            "Spans and segments inserted per second; failed insert attempts (retried).",
            {
                "spans": f"sum(rate({COLLECTOR}_inserted_spans_total[$__rate_interval]))",
                "segments": f"sum(rate({COLLECTOR}_inserted_segments_total[$__rate_interval]))",
                "retries": f"sum(rate({COLLECTOR}_insert_retries_total[$__rate_interval]))",
                "replayed": f"sum(increase({COLLECTOR}_replayed_segments_total[$__rate_interval]))",
            },
            span=8,
        ),
        metrics_panel(
            "Insert latency",
            "One segment insert, 50th and 95th percentile.",
            {
                f"p{q}": f"histogram_quantile(0.{q}, sum by (le) (rate({COLLECTOR}_insert_duration_seconds_bucket[$__rate_interval])))"
                for q in (50, 95)
            },
            unit="s",
        ),
        metrics_panel(
            "Truncated values",
            "Attribute values cut to the value length limit, per second.",
            {"truncated": f"sum(rate({COLLECTOR}_truncated_values_total[$__rate_interval]))"},
        ),
    ]
    row = dashboard.Row("Collector (Prometheus)").collapsed(True).id(first_id)
    for panel_id, panel in enumerate(panels, start=first_id + 1):
        row.with_panel(panel.id(panel_id))
    return row


def build() -> dashboard.Dashboard:
    board = new_dashboard(
        UID,
        "forktrace · Overview",
        "Every run in the time range: status, cost, waste, the slowest and most expensive, "
        "top agents and tools, and the collector's health. Click a run to open it in the "
        "run explorer.",
    ).with_variable(prometheus_variable())
    board = add_panels(
        board,
        (
            stat_panel(
                "Runs",
                "Runs that started in the time range.",
                "SELECT count() AS runs FROM forktrace_runs WHERE $__timeFilter(start)",
            ),
            stat_panel(
                "Failed runs",
                "Runs whose status is failed.",
                """
            SELECT countIf(status = 'failed') AS failed
            FROM forktrace_runs WHERE $__timeFilter(start)
            """,
            ),
            stat_panel(
                "Cost",
                "Model cost of every run (unpriced models count nothing here; see forktrace_prices).",
                "SELECT sum(cost) AS cost FROM forktrace_runs WHERE $__timeFilter(start)",
                unit="currencyUSD",
            ),
            stat_panel(
                "Tokens",
                "Input and output tokens of every model call.",
                """
            SELECT sum(input_tokens + output_tokens) AS tokens
            FROM forktrace_runs WHERE $__timeFilter(start)
            """,
            ),
            stat_panel(
                "Waste",
                "Share of tokens spent in branches that did not win (lost, abandoned, failed, cancelled).",
                """
            SELECT sum(wasted_tokens) / nullIf(sum(input_tokens + output_tokens), 0) AS waste_share
            FROM forktrace_runs WHERE $__timeFilter(start)
            """,
                unit="percentunit",
            ),
            stat_panel(
                "Active sessions",
                "Sessions with a run still running, out of all sessions in the time range.",
                """
            SELECT
                uniqExactIf(session_id, status = 'running') AS active,
                uniqExact(session_id) AS sessions
            FROM forktrace_runs WHERE $__timeFilter(start)
            """,
            ),
            timeseries_panel(
                "Runs over time by status",
                "Runs started per interval, stacked by status.",
                """
            SELECT $__timeInterval(start) AS time, status, count() AS runs
            FROM forktrace_runs
            WHERE $__timeFilter(start)
            GROUP BY time, status
            ORDER BY time
            """,
                series_by="status",
            ),
            timeseries_panel(
                "Tokens over time",
                "Input and output tokens of the runs started per interval.",
                """
            SELECT
                $__timeInterval(start) AS time,
                sum(input_tokens) AS input_tokens,
                sum(output_tokens) AS output_tokens,
                sum(wasted_tokens) AS wasted_tokens
            FROM forktrace_runs
            WHERE $__timeFilter(start)
            GROUP BY time
            ORDER BY time
            """,
            ),
            timeseries_panel(
                "Cost over time",
                "Model cost of the runs started per interval, and the part of it wasted.",
                """
            SELECT
                $__timeInterval(start) AS time,
                sum(cost) AS cost,
                sum(wasted_cost) AS wasted_cost
            FROM forktrace_runs
            WHERE $__timeFilter(start)
            GROUP BY time
            ORDER BY time
            """,
                unit="currencyUSD",
            ),
            timeseries_panel(
                "Error rate",
                "Failed model and tool calls as a share of all of them, per interval.",
                """
            SELECT
                $__timeInterval(start) AS time,
                sum(errors) / nullIf(sum(llm_calls + tool_calls), 0) AS error_rate
            FROM forktrace_runs
            WHERE $__timeFilter(start)
            GROUP BY time
            ORDER BY time
            """,
                unit="percentunit",
            ),
            table_panel(
                "Recent runs",
                "Every run in the time range, newest first.",
                """
            SELECT
                start, name, status, session_id, run_id, duration_ms, agent_count AS agents,
                forks, branches, decisions, tool_calls, errors,
                input_tokens + output_tokens AS tokens, cost, waste_share
            FROM forktrace_runs
            WHERE $__timeFilter(start)
            ORDER BY start DESC
            LIMIT 500
            """,
                height=10,
                units_for=("duration_ms", "cost", "waste_share"),
                colored=("status",),
                runs_linked=True,
            ),
            table_panel(
                "Slowest runs",
                "The ten longest runs.",
                """
            SELECT name, status, duration_ms, session_id, run_id
            FROM forktrace_runs
            WHERE $__timeFilter(start)
            ORDER BY duration_ms DESC
            LIMIT 10
            """,
                span=12,
                units_for=("duration_ms",),
                colored=("status",),
                runs_linked=True,
            ),
            table_panel(
                "Most expensive runs",
                "The ten runs that cost most, with what their losing branches cost.",
                """
            SELECT name, status, cost, wasted_cost, session_id, run_id
            FROM forktrace_runs
            WHERE $__timeFilter(start) AND cost IS NOT NULL
            ORDER BY cost DESC
            LIMIT 10
            """,
                span=12,
                units_for=("cost", "wasted_cost"),
                colored=("status",),
                runs_linked=True,
            ),
            table_panel(
                "Top agents",
                "Agents by tokens spent, across the runs in the time range.",
                f"""
            SELECT
                agent,
                sum(llm_calls) AS llm_calls,
                sum(tool_calls) AS tool_calls,
                sum(errors) AS errors,
                sum(input_tokens + output_tokens) AS tokens,
                sum(cost) AS cost
            FROM forktrace_agent_usage(run_id = '')
            WHERE run_id IN ({RUNS_IN_RANGE}) AND agent != ''
            GROUP BY agent
            ORDER BY tokens DESC
            LIMIT 10
            """,
                span=12,
                units_for=("cost",),
            ),
            table_panel(
                "Top tools",
                "Tools by number of calls, with failures and latency.",
                """
            SELECT
                tool_name,
                count() AS calls,
                countIf(status = 'error') AS errors,
                avg(duration_ms) AS avg_duration_ms,
                quantile(0.95)(duration_ms) AS p95_duration_ms
            FROM forktrace_tool_calls(run_id = '')
            WHERE $__timeFilter(time)
            GROUP BY tool_name
            ORDER BY calls DESC
            LIMIT 10
            """,
                span=12,
                units_for=("avg_duration_ms", "p95_duration_ms"),
            ),
        ),
    )
    return board.with_row(collector_row(first_id=100))
