"""Session: the runs a person launched together, side by side on one time axis."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from forktrace.dashboards.panels import (
    add_panels,
    new_dashboard,
    sql_variable,
    stat_panel,
    state_timeline_panel,
    table_panel,
)

UID = "forktrace-session"

#: The session's runs, to narrow views that take a run_id ('' = every run).
_SESSION_RUN_IDS = "SELECT run_id FROM forktrace_session_runs(session_id = '${session}')"

#: The winners of each run's top-level forks, one row per run.
_WINNERS = """
SELECT run_id, arrayStringConcat(groupArray(winner_label), ', ') AS winner
FROM forktrace_forks(run_id = '')
WHERE parent_branch_id = '' AND winner_label != ''
GROUP BY run_id
"""


def build() -> dashboard.Dashboard:
    board = new_dashboard(
        UID,
        "forktrace · Session",
        "The runs launched together in one session, side by side: status, cost, the winning "
        "approach. Click a run to open it in the run explorer.",
    ).with_variable(
        sql_variable(
            "session",
            "Session",
            """
            SELECT session_id FROM forktrace_runs
            WHERE $__timeFilter(start) AND session_id != ''
            GROUP BY session_id
            ORDER BY max(start) DESC
            """,
        )
    )
    return add_panels(
        board,
        (
            stat_panel(
                "Runs",
                "Runs in the session.",
                "SELECT count() AS runs FROM forktrace_session_runs(session_id = '${session}')",
            ),
            stat_panel(
                "Succeeded",
                "Runs that succeeded.",
                """
            SELECT countIf(status = 'succeeded') AS succeeded
            FROM forktrace_session_runs(session_id = '${session}')
            """,
            ),
            stat_panel(
                "Cost",
                "Model cost of the whole session.",
                "SELECT sum(cost) AS cost FROM forktrace_session_runs(session_id = '${session}')",
                unit="currencyUSD",
            ),
            stat_panel(
                "Wasted",
                "Cost of the branches that did not win, across the session.",
                """
            SELECT sum(wasted_cost) AS wasted_cost
            FROM forktrace_session_runs(session_id = '${session}')
            """,
                unit="currencyUSD",
            ),
            stat_panel(
                "Peak agents",
                "The most agents working at once in any run of the session.",
                f"""
            SELECT max(peak_agents) AS peak_agents
            FROM forktrace_peak_concurrency(run_id = '')
            WHERE run_id IN ({_SESSION_RUN_IDS})
            """,
            ),
            stat_panel(
                "Wall time",
                "From the session's first start to its last end.",
                """
            SELECT intDiv(toUnixTimestamp64Nano(max(end)) - toUnixTimestamp64Nano(min(start)), 1000000)
                AS duration_ms
            FROM forktrace_session_runs(session_id = '${session}')
            """,
                unit="ms",
            ),
            state_timeline_panel(
                "Runs side by side",
                "One lane per run on the session's time axis: running, then its status.",
                """
            SELECT time, lane, state
            FROM (
                SELECT CAST(start AS DateTime64(9)) AS time,
                    concat(name, ' · ', substring(run_id, 1, 8)) AS lane,
                    'running' AS state, 0 AS step
                FROM forktrace_session_runs(session_id = '${session}')
                UNION ALL
                SELECT CAST(end AS DateTime64(9)) AS time,
                    concat(name, ' · ', substring(run_id, 1, 8)) AS lane,
                    status AS state, 1 AS step
                FROM forktrace_session_runs(session_id = '${session}')
                WHERE status != 'running'
            )
            ORDER BY time, step
            """,
                height=8,
            ),
            table_panel(
                "The session's runs",
                "The session's runs in start order, with the approach that won each top-level fork.",
                f"""
            SELECT
                r.offset_ms AS offset_ms, r.name AS name, r.status AS status, w.winner AS winner,
                r.duration_ms AS duration_ms, r.agent_count AS agents, p.peak_agents AS peak_agents,
                r.branches AS branches, r.errors AS errors,
                r.input_tokens + r.output_tokens AS tokens, r.cost AS cost,
                r.wasted_cost AS wasted_cost, r.session_id AS session_id, r.run_id AS run_id
            FROM forktrace_session_runs(session_id = '${{session}}') AS r
            LEFT JOIN ({_WINNERS.strip()}) AS w ON w.run_id = r.run_id
            LEFT JOIN (
                SELECT run_id, peak_agents FROM forktrace_peak_concurrency(run_id = '')
                WHERE run_id IN ({_SESSION_RUN_IDS})
            ) AS p ON p.run_id = r.run_id
            ORDER BY r.start
            """,
                height=10,
                units_for=("offset_ms", "duration_ms", "cost", "wasted_cost"),
                colored=("status",),
                runs_linked=True,
            ),
        ),
    )
