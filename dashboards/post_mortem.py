"""Post-mortem: what went wrong across the runs in the time range, and what it cost."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from forktrace.dashboards.panels import add_panels, new_dashboard, table_panel

UID = "forktrace-post-mortem"

#: session and run of the runs in range, to filter parameterised views and to link rows.
_RUNS = "(SELECT session_id, run_id, name AS run FROM forktrace_runs WHERE $__timeFilter(start))"


def build() -> dashboard.Dashboard:
    board = new_dashboard(
        UID,
        "forktrace · Post-mortem",
        "Failed runs and branches, loops of identical tool calls, low-confidence decisions, "
        "branches abandoned after a human stepped in, and the waste per agent.",
    )
    return add_panels(
        board,
        (
            table_panel(
                "Failed runs",
                "Runs whose status is failed, with how many calls failed inside them.",
                """
            SELECT start, name, errors, tool_calls, llm_calls, duration_ms, cost, session_id, run_id
            FROM forktrace_runs
            WHERE $__timeFilter(start) AND status = 'failed'
            ORDER BY start DESC
            """,
                span=12,
                units_for=("duration_ms", "cost"),
                runs_linked=True,
            ),
            table_panel(
                "Failed branches",
                "Branches that failed, with the error that ended them.",
                f"""
            SELECT r.run AS run, b.fork_name AS fork, b.label AS label, b.outcome_reason AS reason,
                b.error AS error, b.cost AS cost, r.session_id AS session_id, b.run_id AS run_id
            FROM forktrace_branches(run_id = '') AS b
            INNER JOIN {_RUNS} AS r ON r.run_id = b.run_id
            WHERE b.outcome = 'failed'
            ORDER BY b.start DESC
            """,
                span=12,
                units_for=("cost",),
                runs_linked=True,
            ),
            table_panel(
                "Repeated identical tool calls",
                "The same tool called with the same arguments more than once in a run: often a loop.",
                f"""
            SELECT r.run AS run, t.tool_name AS tool_name, count() AS calls,
                min(t.time) AS first, max(t.time) AS last, any(t.arguments) AS arguments,
                groupUniqArray(t.agent) AS agents, r.session_id AS session_id, t.run_id AS run_id
            FROM forktrace_tool_calls(run_id = '') AS t
            INNER JOIN {_RUNS} AS r ON r.run_id = t.run_id
            GROUP BY r.session_id, r.run, t.run_id, t.tool_name, t.arguments_hash
            HAVING calls > 1
            ORDER BY calls DESC
            """,
                runs_linked=True,
            ),
            table_panel(
                "Low-confidence decisions",
                "Decisions taken with confidence under 0.5.",
                f"""
            SELECT d.time AS time, r.run AS run, d.agent AS agent, d.question AS question,
                d.chosen AS chosen, d.confidence AS confidence, d.maker AS maker,
                d.reasoning AS reasoning, r.session_id AS session_id, d.run_id AS run_id
            FROM forktrace_decisions(run_id = '') AS d
            INNER JOIN {_RUNS} AS r ON r.run_id = d.run_id
            WHERE d.confidence < 0.5
            ORDER BY d.confidence
            """,
                units_for=("confidence",),
                runs_linked=True,
            ),
            table_panel(
                "Branches abandoned after an intervention",
                "Branches that ended abandoned after a human intervened on them or on a branch inside.",
                f"""
            SELECT i.time AS time, r.run AS run, b.label AS label, i.kind AS intervention,
                i.author AS author, i.message AS message, b.outcome_reason AS reason,
                b.cost AS cost, r.session_id AS session_id, b.run_id AS run_id
            FROM forktrace_branches(run_id = '') AS b
            INNER JOIN {_RUNS} AS r ON r.run_id = b.run_id
            INNER JOIN forktrace_interventions(run_id = '') AS i ON i.run_id = b.run_id
            WHERE b.outcome = 'abandoned'
              AND (i.branch_id = b.branch_id OR startsWith(i.branch_path, concat(b.branch_path, '.')))
            ORDER BY i.time DESC
            """,
                units_for=("cost",),
                runs_linked=True,
            ),
            table_panel(
                "Waste by agent",
                "Tokens and cost each agent spent in branches that did not win (each call counted "
                "once; no cost when a model is unpriced).",
                f"""
            SELECT u.agent AS agent, sum(u.input_tokens + u.output_tokens) AS wasted_tokens,
                if(countIf(u.cost IS NULL) > 0, NULL, sum(u.cost)) AS wasted_cost,
                uniqExact(u.run_id) AS runs
            FROM forktrace_usage_cost(run_id = '') AS u
            INNER JOIN (
                SELECT run_id, branch_id FROM forktrace_branches(run_id = '')
                WHERE in_waste AND run_id IN (SELECT run_id FROM {_RUNS})
            ) AS w ON w.run_id = u.run_id AND w.branch_id = u.branch_id
            GROUP BY agent
            HAVING wasted_tokens > 0
            ORDER BY wasted_tokens DESC
            """,
                units_for=("wasted_cost",),
            ),
        ),
    )
