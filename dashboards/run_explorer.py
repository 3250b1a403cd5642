"""Run explorer: one run's agents and branches in time, its fork tree, decisions and trace."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, nodegraph

from forktrace.dashboards.clickhouse_query import Query, QueryType
from forktrace.dashboards.panels import (
    DATASOURCE,
    OUTCOME_COLORS,
    RUN_EXPLORER_UID,
    add_panels,
    new_dashboard,
    outcome_color_sql,
    sql,
    sql_variable,
    state_timeline_panel,
    table_panel,
    with_sql,
)

UID = RUN_EXPLORER_UID

#: Node kinds in the fork tree; each gets an arc__<kind> field (1 for its kind).
_ARCS = {
    "won": OUTCOME_COLORS["won"],
    "lost": OUTCOME_COLORS["lost"],
    "failed": OUTCOME_COLORS["failed"],
    "other": OUTCOME_COLORS["completed"],
}

SWIMLANES = """
WITH
    lanes AS (
        SELECT lane_kind, lane, agent, branch_path, start, end, state
        FROM forktrace_concurrency(run_id = '${run}')
    ),
    activity AS (
        SELECT agent, branch_path, time AS start,
            time + toIntervalMillisecond(duration_ms) AS end, 'thinking' AS state
        FROM forktrace_llm_calls(run_id = '${run}')
        UNION ALL
        SELECT agent, branch_path, time AS start,
            time + toIntervalMillisecond(duration_ms) AS end, 'calling a tool' AS state
        FROM forktrace_tool_calls(run_id = '${run}')
    ),
    -- each model or tool call shown in its agent's lane and in every branch lane above it
    placed AS (
        SELECT concat(l.lane_kind, ' · ', l.lane) AS lane, a.start, a.end, a.state, l.end AS lane_end
        FROM activity AS a, lanes AS l
        WHERE a.start >= l.start AND a.start < l.end
          AND if(l.lane_kind = 'agent',
                 a.agent = l.agent,
                 a.branch_path = l.branch_path OR startsWith(a.branch_path, concat(l.branch_path, '.')))
    )
SELECT time, lane, state
FROM (
    SELECT start AS time, concat(lane_kind, ' · ', lane) AS lane, 'waiting' AS state, 0 AS step
    FROM lanes
    UNION ALL
    -- a call ending as the next one starts: the end first, so the lane shows the new call
    SELECT end AS time, lane, 'waiting' AS state, 1 AS step FROM placed WHERE end < lane_end
    UNION ALL
    SELECT start AS time, lane, state, 2 AS step FROM placed
    UNION ALL
    SELECT end AS time, concat(lane_kind, ' · ', lane) AS lane,
        multiIf(state = 'ok', 'done', state) AS state, 3 AS step
    FROM lanes
)
ORDER BY time, step
"""

TREE_NODES = f"""
SELECT id, title, subtitle, mainstat, secondarystat, {outcome_color_sql("outcome")} AS color,
    toFloat64(outcome = 'won') AS arc__won,
    toFloat64(outcome = 'lost' OR outcome = 'abandoned' OR outcome = 'cancelled') AS arc__lost,
    toFloat64(outcome = 'failed') AS arc__failed,
    1 - arc__won - arc__lost - arc__failed AS arc__other,
    kind AS detail__kind, outcome AS detail__outcome, detail AS detail__detail
FROM (
    SELECT concat('run:', run_id) AS id, name AS title, status AS subtitle, 'run' AS kind,
        status AS outcome, toFloat64(duration_ms) AS mainstat, cost AS secondarystat, goal AS detail
    FROM forktrace_runs WHERE run_id = '${{run}}'
    UNION ALL
    SELECT fork_id, concat('fork · ', name), concat(strategy, ' · ', toString(branches), ' branches'),
        'fork', if(failed = 1, 'failed', 'completed'), toFloat64(duration_ms), cost,
        concat('winner: ', winner_label, if(criterion != '', concat(' · ', criterion), ''))
    FROM forktrace_forks(run_id = '${{run}}')
    UNION ALL
    SELECT branch_id, if(label != '', label, concat('branch ', branch_path)), outcome,
        'branch', outcome, toFloat64(duration_ms), cost, outcome_reason
    FROM forktrace_branches(run_id = '${{run}}')
    UNION ALL
    SELECT span_id, question, concat('chose ', chosen), 'decision', 'completed',
        toFloat64(duration_ms), CAST(confidence AS Nullable(Float64)), reasoning
    FROM forktrace_decisions(run_id = '${{run}}')
)
"""

TREE_EDGES = """
SELECT concat(source, '->', target) AS id, source, target
FROM (
    SELECT if(parent_branch_id != '', parent_branch_id, concat('run:', run_id)) AS source,
        fork_id AS target
    FROM forktrace_forks(run_id = '${run}')
    UNION ALL
    SELECT fork_id AS source, branch_id AS target
    FROM forktrace_branches(run_id = '${run}')
    UNION ALL
    SELECT if(branch_id != '', branch_id, concat('run:', run_id)) AS source, span_id AS target
    FROM forktrace_decisions(run_id = '${run}')
)
"""

# Every span of the run's traces, in the columns Grafana's trace view reads; the
# trace-id lookup table bounds the scan to the traces' time range, as the
# ClickHouse plugin's own OTel trace mode does.
TRACE = """
WITH
    (SELECT trace_ids FROM forktrace_runs WHERE run_id = '${run}') AS run_traces,
    (SELECT min(Start) FROM otel_traces_trace_id_ts WHERE has(run_traces, TraceId)) AS trace_start,
    (SELECT max(End) + 1 FROM otel_traces_trace_id_ts WHERE has(run_traces, TraceId)) AS trace_end
SELECT
    TraceId AS traceID,
    SpanId AS spanID,
    ParentSpanId AS parentSpanID,
    ServiceName AS serviceName,
    SpanName AS operationName,
    multiply(toUnixTimestamp64Nano(Timestamp), 0.000001) AS startTime,
    multiply(Duration, 0.000001) AS duration,
    arrayMap(key -> map('key', key, 'value', SpanAttributes[key]), mapKeys(SpanAttributes)) AS tags,
    arrayMap(key -> map('key', key, 'value', ResourceAttributes[key]), mapKeys(ResourceAttributes))
        AS serviceTags,
    lower(SpanKind) AS kind,
    multiIf(StatusCode = 'Error', 2, StatusCode = 'Ok', 1, 0) AS statusCode,
    StatusMessage AS statusMessage
FROM otel_traces
WHERE has(run_traces, TraceId) AND Timestamp >= trace_start AND Timestamp <= trace_end
ORDER BY startTime
LIMIT 10000
"""


def build() -> dashboard.Dashboard:
    board = (
        new_dashboard(
            UID,
            "forktrace · Run explorer",
            "One run: who worked when, the fork tree, how the branches compare, the decisions "
            "and their reasoning, tool calls, human interventions and the full trace.",
        )
        .with_variable(
            sql_variable(
                "session",
                "Session",
                """
                SELECT DISTINCT session_id FROM forktrace_runs
                WHERE $__timeFilter(start) AND session_id != ''
                ORDER BY session_id
                """,
            ).include_all(True)
        )
        .with_variable(
            sql_variable(
                "run",
                "Run",
                """
                SELECT run_id, concat(name, ' · ', formatDateTime(start, '%F %T'), ' · ', status)
                FROM forktrace_runs
                WHERE $__timeFilter(start) AND $__conditionalAll(session_id = '${session}', $session)
                ORDER BY start DESC
                """,
            )
        )
    )
    return add_panels(
        board,
        (
            state_timeline_panel(
                "Agents and branches",
                "One lane per agent and per branch on one time axis: thinking (model calls), calling a "
                "tool, waiting, then done or failed (branches end with their outcome).",
                SWIMLANES,
                height=12,
            ),
            fork_tree(),
            table_panel(
                "Branch comparison",
                "Every branch of every fork: approach, outcome and why, and what its whole subtree spent.",
                """
            SELECT
                fork_name AS fork, branch_path AS path, label, outcome, outcome_reason AS reason,
                duration_ms, input_tokens + output_tokens AS tokens, cost, tool_calls, errors
            FROM forktrace_branches(run_id = '${run}')
            ORDER BY start, branch_path
            """,
                units_for=("duration_ms", "cost"),
                colored=("outcome",),
            ),
            table_panel(
                "Decisions",
                "Each decision point: the question, the options, what was chosen, by whom and why.",
                """
            SELECT
                time, agent, branch_path AS path, question,
                arrayStringConcat(options, ' | ') AS options, chosen, confidence, maker, reasoning
            FROM forktrace_decisions(run_id = '${run}')
            ORDER BY time
            """,
                units_for=("confidence",),
            ),
            table_panel(
                "Tool calls",
                "Every tool call with its arguments and result (first 500 characters).",
                """
            SELECT time, agent, branch_path AS path, tool_name, status, duration_ms, arguments,
                result, error
            FROM forktrace_tool_calls(run_id = '${run}')
            ORDER BY time
            """,
                span=16,
                units_for=("duration_ms",),
                colored=("status",),
            ),
            table_panel(
                "Interventions",
                "Where a human stepped in: approve, reject, redirect, edit or abort.",
                """
            SELECT time, kind, author, message, agent, branch_path AS path
            FROM forktrace_interventions(run_id = '${run}')
            ORDER BY time
            """,
                span=8,
            ),
            with_sql(
                dashboard.Panel()
                .type("traces")
                .title("Trace")
                .description(
                    "The run's spans as a waterfall (the ClickHouse datasource's trace mode)."
                )
                .height(14)
                .span(24),
                TRACE,
                QueryType.TRACES,
            ),
        ),
    )


def fork_tree() -> nodegraph.Panel:
    panel = (
        nodegraph.Panel()
        .title("Fork tree")
        .description(
            "The run, its forks, their branches and the decisions, parent to child. Colour: "
            "outcome (green won, orange lost or abandoned, red failed). Main stat: duration; "
            "second: cost (confidence for decisions)."
        )
        .datasource(DATASOURCE)
        .height(14)
        .span(24)
        .with_target(Query(sql(TREE_NODES)).ref_id("nodes"))
        .with_target(Query(sql(TREE_EDGES)).ref_id("edges"))
        .nodes(
            nodegraph.NodeOptions()
            .main_stat_unit("ms")
            .secondary_stat_unit("short")
            .arcs(
                [
                    nodegraph.ArcOption().field(f"arc__{name}").color(color)
                    for name, color in _ARCS.items()
                ]
            )
        )
    )
    return panel
