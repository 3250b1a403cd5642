"""Python access to the decision layer's views (docs/sql.md).

Small functions over a reader (``forktrace.collector.reader.open_reader()``,
or anything with ``query(sql, parameters) -> QueryResult``) that return rows as
dicts. The CLI, the HTML report and the dashboard tests use them, so each
question stays written once, in the SQL views; this module only selects.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar

# Views that take a run id (run_id = '' means every run).
RUN_VIEWS = (
    "forktrace_branches",
    "forktrace_forks",
    "forktrace_fork_base",
    "forktrace_decisions",
    "forktrace_tool_calls",
    "forktrace_llm_calls",
    "forktrace_interventions",
    "forktrace_concurrency",
    "forktrace_peak_concurrency",
    "forktrace_agent_usage",
    "forktrace_usage_cost",
    "forktrace_waste",
)

# What `forktrace runs` prints as a table; csv and json get every column.
RUNS_SUMMARY_COLUMNS = (
    "run_id",
    "session_id",
    "name",
    "start",
    "duration_ms",
    "status",
    "agent_count",
    "branches",
    "decisions",
    "tool_calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cost",
    "wasted_tokens",
    "wasted_cost",
    "waste_share",
    "waste_cost_share",
)


T = TypeVar("T")


class Result(Protocol):
    column_names: list[str]
    rows: list[tuple[Any, ...]]


class Queryable(Protocol):
    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Result: ...


class RunNotFoundError(LookupError):
    """No run, or more than one, matches the id or prefix given."""


def _dicts(result: Result) -> list[dict[str, Any]]:
    return [dict(zip(result.column_names, row, strict=False)) for row in result.rows]


def runs(reader: Queryable, session: str | None = None, last: int | None = None) -> Result:
    """Runs, newest first: all of them, one session's, or the last ``last``.

    With a session or ``last``, the run ids are picked first from
    ``forktrace_run_totals`` (one small GROUP BY), and ``forktrace_runs`` is
    read for those ids only: the engine pushes ``run_id IN (...)`` down to
    every table the view reads, so the cost and waste of the other runs are
    never computed. ``start`` and ``session_id`` of the view are ``min(start)``
    and ``max(session_id)`` of run_totals, so the ids are the same runs the
    view's own ORDER BY and WHERE would keep."""
    parameters: dict[str, Any] = {}
    where = ""
    if session or last:
        pick = "SELECT run_id FROM forktrace_run_totals GROUP BY run_id"
        if session:
            pick += " HAVING max(session_id) = {session:String}"
            parameters["session"] = session
        if last:
            pick += " ORDER BY min(start) DESC, run_id LIMIT {last:UInt64}"
            parameters["last"] = last
        where = f" WHERE run_id IN ({pick})"
    sql = f"SELECT * FROM forktrace_runs{where} ORDER BY start DESC, run_id"
    if last:
        sql += " LIMIT {last:UInt64}"
    return reader.query(sql, parameters)


def run(reader: Queryable, run_id: str) -> dict[str, Any]:
    """One run's row of ``forktrace_runs``."""
    found = _dicts(
        reader.query("SELECT * FROM forktrace_runs WHERE run_id = {run:String}", {"run": run_id})
    )
    if not found:
        raise RunNotFoundError(f"no run {run_id!r}")
    return found[0]


def session_runs(reader: Queryable, session: str) -> list[dict[str, Any]]:
    return _dicts(
        reader.query(
            "SELECT * FROM forktrace_session_runs(session_id = {session:String})",
            {"session": session},
        )
    )


def run_view(reader: Queryable, view: str, run_id: str = "") -> list[dict[str, Any]]:
    """The rows of one of ``RUN_VIEWS`` for a run ('' for every run)."""
    if view not in RUN_VIEWS:
        raise ValueError(f"{view!r} is not a run view; one of {', '.join(RUN_VIEWS)}")
    return _dicts(reader.query(f"SELECT * FROM {view}(run_id = {{run:String}})", {"run": run_id}))


def resolve_run_id(reader: Queryable, id_or_prefix: str) -> str:
    """The full run id for an id or a unique prefix of one."""
    if not id_or_prefix:
        raise RunNotFoundError("no run id given")
    matches = [
        row[0]
        for row in reader.query(
            "SELECT DISTINCT run_id FROM forktrace_run_totals "
            "WHERE startsWith(run_id, {prefix:String}) ORDER BY run_id LIMIT 6",
            {"prefix": id_or_prefix},
        ).rows
    ]
    if id_or_prefix in matches:
        return id_or_prefix
    if not matches:
        raise RunNotFoundError(f"no run id starts with {id_or_prefix!r}")
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise RunNotFoundError(f"{id_or_prefix!r} matches several runs: {shown}")
    return matches[0]


@dataclass
class RunTree:
    """Everything ``forktrace tree`` shows about one run."""

    run: dict[str, Any]
    forks: list[dict[str, Any]] = field(default_factory=list)
    branches: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    llm_calls: list[dict[str, Any]] = field(default_factory=list)
    interventions: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cost_sum(costs: list[float | None]) -> float | None:
    """A sum of costs as the views make it: unknown if one is, rounded to a
    billionth of a dollar (float sums must not depend on row order)."""
    if any(cost is None for cost in costs):
        return None
    return round(sum(costs), 9)  # type: ignore[arg-type]


def _share(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


def run_row(base: dict[str, Any], branches: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's ``forktrace_runs`` row from its ``forktrace_run_base`` row
    and its ``forktrace_branches``: the waste columns as ``forktrace_waste``
    and ``forktrace_runs`` compute them (tests compare the two)."""
    wasted = [b for b in branches if b["in_waste"]]
    tokens = sum(b["own_input_tokens"] + b["own_output_tokens"] for b in wasted)
    if wasted:
        cost = _cost_sum([b["own_cost"] for b in wasted])
    else:
        cost = None if base["cost"] is None else 0.0
    row = {k: v for k, v in base.items() if k != "trace_ids"}
    row["wasted_tokens"] = tokens
    row["wasted_cost"] = cost
    row["waste_share"] = _share(tokens, base["input_tokens"] + base["output_tokens"])
    row["waste_cost_share"] = _share(cost, base["cost"])
    row["trace_ids"] = base["trace_ids"]
    return row


def fork_rows(bases: list[dict[str, Any]], branches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The run's ``forktrace_forks`` rows from its ``forktrace_fork_base``
    rows and its ``forktrace_branches``: what each fork's branches spent, as
    the view sums it (tests compare the two)."""
    by_fork: dict[str, list[dict[str, Any]]] = {}
    for branch in branches:
        by_fork.setdefault(branch["fork_id"], []).append(branch)
    rows = []
    for base in bases:
        own = by_fork.get(base["fork_id"], [])
        winner = next((b for b in own if b["is_winner"]), None)
        waste = [b for b in own if b["is_waste"]]
        row = {k: v for k, v in base.items() if k != "winner_branch_id"}
        row["branches"] = len(own)
        row["winner_branch_id"] = winner["branch_id"] if winner else base["winner_branch_id"]
        row["winner_label"] = winner["label"] if winner else ""
        row["winner_path"] = winner["branch_path"] if winner else ""
        row["input_tokens"] = sum(b["input_tokens"] for b in own)
        row["output_tokens"] = sum(b["output_tokens"] for b in own)
        row["cost"] = _cost_sum([b["cost"] for b in own]) if own else None
        row["wasted_tokens"] = sum(b["input_tokens"] + b["output_tokens"] for b in waste)
        row["wasted_cost"] = _cost_sum([b["cost"] for b in waste]) if own else None
        rows.append(row)
    return rows


# Statements of a tree fetched at once: the engine analyses each view on its own
# thread (chDB releases the GIL), and two keep this machine's 2 cores busy (a
# third gained nothing, measured on the 10M-span benchmark data).
TREE_WORKERS = 2


def _at_once(calls: dict[str, Callable[[], T]], workers: int) -> dict[str, T]:
    """Each call's result, by name; the calls run on ``workers`` threads,
    started in the order given. The first failure (in that order) is raised
    as it is, and the calls not yet started are dropped."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="forktrace-tree") as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        try:
            return {name: future.result() for name, future in futures.items()}
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


# The columns of forktrace_decisions, forktrace_tool_calls and
# forktrace_llm_calls, each a selection of one kind of forktrace_all_activity:
# a tree reads a run's activity once and splits it (tests keep these equal to
# the views' columns, in order).
ACTIVITY_COLUMNS: dict[str, tuple[str, ...]] = {
    "decision": (
        "run_id", "time", "span_id", "agent", "branch_id", "branch_path",
        "question", "options", "chosen", "reasoning", "confidence", "maker", "duration_ms",
    ),
    "tool": (
        "run_id", "time", "span_id", "tool_name", "call_id", "arguments", "result",
        "arguments_hash", "duration_ms", "status", "error", "agent", "branch_id", "branch_path",
    ),
    "llm": (
        "run_id", "time", "span_id", "agent", "branch_id", "branch_path", "model",
        "input_tokens", "output_tokens", "reasoning_tokens", "price_entry", "cost",
        "duration_ms", "status", "error", "reasoning",
    ),
}  # fmt: skip


def split_activity(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows of ``forktrace_all_activity`` as the rows of the view of each kind."""
    by_kind: dict[str, list[dict[str, Any]]] = {kind: [] for kind in ACTIVITY_COLUMNS}
    for row in rows:
        columns = ACTIVITY_COLUMNS[row["kind"]]
        by_kind[row["kind"]].append({column: row[column] for column in columns})
    return by_kind


def run_tree(reader: Queryable, run_id: str, workers: int = TREE_WORKERS) -> RunTree:
    """A run's tree. The run row and the forks are built from the cheap base
    views and the run's branches, not read from ``forktrace_runs`` and
    ``forktrace_forks``: both of those analyse the whole branch machinery
    again. The decisions, tool and model calls are read in one statement from
    ``forktrace_all_activity``, so the run's spans are read once. Analysing
    the views, and reading a run not read before, are most of a tree's time
    (benchmarks/results/queries.md). The statements are independent: they
    run at once on a reader that takes queries from several threads at once
    (``ClientReader`` with ``connect``, ``EndpointReader``), and take turns on
    one that does not."""

    def view(name: str) -> Callable[[], list[dict[str, Any]]]:
        return partial(run_view, reader, name, run_id)

    def where_run(source: str, order: str = "") -> Callable[[], list[dict[str, Any]]]:
        sql = f"SELECT * FROM {source} WHERE run_id = {{run:String}}{order}"
        return lambda: _dicts(reader.query(sql, {"run": run_id}))

    # these statements, at once; the longest first
    rows = _at_once(
        {
            "branches": view("forktrace_branches"),
            "activity": where_run("forktrace_all_activity", " ORDER BY time, span_id"),
            "base": where_run("forktrace_run_base"),
            "fork_base": view("forktrace_fork_base"),
            "interventions": view("forktrace_interventions"),
        },
        workers,
    )
    if not rows["base"]:
        raise RunNotFoundError(f"no run {run_id!r}")
    branches = rows["branches"]
    activity = split_activity(rows["activity"])
    return RunTree(
        run=run_row(rows["base"][0], branches),
        forks=fork_rows(rows["fork_base"], branches),
        branches=branches,
        decisions=activity["decision"],
        tool_calls=activity["tool"],
        llm_calls=activity["llm"],
        interventions=rows["interventions"],
    )
