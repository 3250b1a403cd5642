"""Latency of the decision layer's queries at 1 and 10 million spans.

Generates synthetic agent runs in SQL (INSERT ... SELECT FROM numbers(), so the
spans go through otel_traces and every materialised view, as collector inserts
do) into a throw-away chDB path, then times the queries the CLI runs:

- the runs list: ``forktrace runs --last 50`` (``views.runs``);
- a run tree: the branches view alone, and all the statements of ``forktrace tree``
  (at once, as the CLI runs them);
- a run's decisions.

Each query runs ``--repeat`` times on runs picked at random; the median and the
slowest are reported. Run::

    python benchmarks/queries.py --spans 1000000 10000000 --out benchmarks/results/queries.md
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPANS_PER_RUN = 500
INSERT_CHUNK = 1_000_000

# One synthetic run of SPANS_PER_RUN spans: span k of run r is
#   k = 0 the run, 1 the coordinator agent, 2 and 3 two forks (the second nested in
#   branch 0 of the first), 4..9 their branches; then model calls (50%), tool calls
#   (35%), decisions (5%) and agent spans spread over the branch paths, one agent per
#   path using two models. Fork 1 is won by branch 0; its branch 1 loses and branch 2
#   fails (outcome events on the fork).
GENERATE = """
INSERT INTO otel_traces
    (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
     ResourceAttributes, ScopeName, SpanAttributes, Duration, StatusCode, StatusMessage,
     `Events.Timestamp`, `Events.Name`, `Events.Attributes`)
WITH
    {first:UInt64} + number AS n,
    intDiv(n, {per_run:UInt64}) AS r,
    n % {per_run:UInt64} AS k,
    lower(hex(MD5(toString(r)))) AS run_id,
    lower(hex(toUInt64(r * 1000 + k))) AS span_id,
    lower(hex(toUInt64(r * 1000 + 2))) AS fork1,
    lower(hex(toUInt64(r * 1000 + 3))) AS fork2,
    toDateTime64('2026-01-01 00:00:00', 9) + toIntervalMillisecond(r * 10000 + k * 10) AS ts,
    multiIf(k = 0, 'run', k = 1, 'agent', k < 4, 'fork', k < 10, 'branch',
            k % 20 < 10, 'llm', k % 20 < 17, 'tool', k % 20 < 18, 'decision', 'agent') AS kind,
    ['', '0', '1', '2', '0.0', '0.1', '0.2'][(k % 7) + 1] AS work_path,
    multiIf(k < 4, '', k < 7, toString(k - 4), concat('0.', toString(k - 7))) AS own_path,
    multiIf(k < 10, if(k = 3, '0', if(k < 4, '', own_path)), work_path) AS path,
    ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4-5', 'gemini-2.5-flash', 'in-house-model'][
        ((k % 7) + (k % 2)) % 5 + 1] AS model,
    ['coordinator', 'alpha', 'beta', 'gamma', 'alpha-1', 'alpha-2', 'alpha-3'][(k % 7) + 1] AS agent_name
SELECT
    ts,
    lower(hex(MD5(concat('t', toString(r))))) AS TraceId,
    span_id,
    multiIf(k = 0, '', k = 1, lower(hex(toUInt64(r * 1000))), lower(hex(toUInt64(r * 1000 + 1)))),
    concat(kind, ' ', toString(k)),
    'Internal',
    'bench-agents',
    map('service.name', 'bench-agents'),
    'forktrace',
    mapFilter((key, value) -> value != '', map(
        'forktrace.kind', kind,
        'forktrace.run.id', run_id,
        'forktrace.session.id', concat('session-', toString(intDiv(r, 4))),
        'forktrace.run.name', if(k = 0, concat('task ', toString(r)), ''),
        'forktrace.run.outcome', if(k = 0, 'succeeded', ''),
        'forktrace.agent.name', if(k < 2, 'coordinator', agent_name),
        'forktrace.fork.id', multiIf(k = 2 OR (k BETWEEN 4 AND 6), fork1, k = 3 OR (k BETWEEN 7 AND 9), fork2, ''),
        'forktrace.fork.strategy', if(kind = 'fork', 'best_of', ''),
        'forktrace.fork.winner', multiIf(k = 2, lower(hex(toUInt64(r * 1000 + 4))), k = 3, lower(hex(toUInt64(r * 1000 + 7))), ''),
        'forktrace.branch.id', if(kind = 'branch', span_id, ''),
        'forktrace.branch.path', path,
        'forktrace.branch.index', if(kind = 'branch', toString((k - 4) % 3), ''),
        'forktrace.branch.label', if(kind = 'branch', concat('approach ', toString(k)), ''),
        'gen_ai.request.model', if(kind = 'llm', model, ''),
        'gen_ai.usage.input_tokens', if(kind = 'llm', toString(500 + (n % 3000)), ''),
        'gen_ai.usage.output_tokens', if(kind = 'llm', toString(50 + (n % 700)), ''),
        'forktrace.llm.reasoning', if(kind = 'llm', repeat('thinking about the next step ', 4), ''),
        'gen_ai.tool.name', if(kind = 'tool', ['search', 'read_file', 'run_tests', 'edit'][(k % 4) + 1], ''),
        'gen_ai.tool.call.arguments', if(kind = 'tool', concat('{"path": "src/module_', toString(k % 13), '.py"}'), ''),
        'gen_ai.tool.call.result', if(kind = 'tool', repeat('line of output ', 10), ''),
        'forktrace.decision.question', if(kind = 'decision', 'which file next?', ''),
        'forktrace.decision.options', if(kind = 'decision', '["a","b","c"]', ''),
        'forktrace.decision.chosen', if(kind = 'decision', 'b', ''),
        'forktrace.decision.confidence', if(kind = 'decision', toString((n % 100) / 100), ''),
        'forktrace.decision.reasoning', if(kind = 'decision', 'b has the failing test', '')
    )),
    toUInt64(multiIf(k = 0, 5000, k < 10, 4000, 1000 + n % 50000) * 1000000),
    if(kind = 'tool' AND n % 17 = 0, 'Error', 'Unset'),
    if(kind = 'tool' AND n % 17 = 0, 'tool failed', ''),
    if(k = 2, [ts, ts], []),
    if(k = 2, ['forktrace.branch.outcome', 'forktrace.branch.outcome'], []),
    if(k = 2, [
        map('forktrace.branch.id', lower(hex(toUInt64(r * 1000 + 5))), 'forktrace.branch.outcome', 'lost'),
        map('forktrace.branch.id', lower(hex(toUInt64(r * 1000 + 6))), 'forktrace.branch.outcome', 'failed')
    ], [])
FROM numbers({count:UInt64})
"""


def generate(client: Any, first: int, count: int) -> float:
    started = time.perf_counter()
    for offset in range(0, count, INSERT_CHUNK):
        client.command(
            GENERATE,
            parameters={
                "first": first + offset,
                "count": min(INSERT_CHUNK, count - offset),
                "per_run": SPANS_PER_RUN,
            },
        )
    return time.perf_counter() - started


@dataclass
class Timings:
    """Milliseconds per repetition: wall time, and this process's CPU time
    (user + system, every thread: chDB runs in-process), which other
    engineers' load on the shared cores inflates far less than wall time."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    # CPU of EXPLAIN PLAN of the same statements: analysing and planning the
    # views, without reading a row
    plan_cpu: list[float] = field(default_factory=list)
    # per statement of the action (its FROM clause): CPU of running it alone, and
    # of planning it, one value per repetition
    parts: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)


class RecordingReader:
    """A reader that keeps the statements it is asked, to plan them again."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.calls: list[tuple[str, dict[str, Any] | None]] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        self.calls.append((sql, parameters))
        return self.reader.query(sql, parameters)


def _cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def _source(sql: str) -> str:
    """The view a statement reads: ``forktrace_x(run_id = ...)`` -> ``forktrace_x``."""
    return sql.split(" FROM ", 1)[1].split()[0].split("(")[0]


def timed(action: Callable[[], Any], repeat: int, reader: RecordingReader) -> Timings:
    reader.calls.clear()
    action()  # warm caches: a user's second query is the typical one
    statements = list(reader.calls)
    timings = Timings()
    for _ in range(repeat):
        started, cpu_started = time.perf_counter(), _cpu_ms()
        action()
        timings.wall.append((time.perf_counter() - started) * 1000)
        timings.cpu.append(_cpu_ms() - cpu_started)
    for _ in range(repeat):
        cpu_started = _cpu_ms()
        for sql, parameters in statements:
            reader.reader.query(f"EXPLAIN PLAN {sql}", parameters)
        timings.plan_cpu.append(_cpu_ms() - cpu_started)
    if len(statements) > 1:
        for sql, parameters in statements:
            run_cpu, plan_cpu = timings.parts.setdefault(_source(sql), ([], []))
            for _ in range(repeat):
                for prefix, into in (("", run_cpu), ("EXPLAIN PLAN ", plan_cpu)):
                    cpu_started = _cpu_ms()
                    reader.reader.query(prefix + sql, parameters)
                    into.append(_cpu_ms() - cpu_started)
    return timings


def measure(plain_reader: Any, runs: int, repeat: int) -> dict[str, Timings]:
    from forktrace.collector import views

    reader = RecordingReader(plain_reader)
    rng = random.Random(7)

    def some_run() -> str:
        import hashlib

        return hashlib.md5(str(rng.randrange(runs)).encode()).hexdigest()

    return {
        "runs list (`forktrace runs --last 50`)": timed(
            lambda: views.runs(reader, last=50), repeat, reader
        ),
        "runs of one session (`forktrace_session_runs`)": timed(
            lambda: views.session_runs(reader, f"session-{rng.randrange(runs // 4)}"),
            repeat,
            reader,
        ),
        "run tree: `forktrace_branches(run_id)`": timed(
            lambda: views.run_view(reader, "forktrace_branches", some_run()), repeat, reader
        ),
        "run tree: all 5 statements of `forktrace tree`": timed(
            lambda: views.run_tree(reader, some_run()), repeat, reader
        ),
        "a run's decisions (`forktrace_decisions(run_id)`)": timed(
            lambda: views.run_view(reader, "forktrace_decisions", some_run()), repeat, reader
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path, help="write the results as markdown here")
    parser.add_argument(
        "--path", type=Path, help="chDB path to use and keep (default: a temporary one)"
    )
    args = parser.parse_args()
    if args.path:
        run(args)
    else:
        with tempfile.TemporaryDirectory(prefix="forktrace-queries-") as path:
            args.path = Path(path)
            run(args)


def run(args: argparse.Namespace) -> None:

    import clickhouse_connect

    from forktrace.collector import schema
    from forktrace.collector.reader import open_reader

    load_before = os.getloadavg()
    client = clickhouse_connect.get_client(dsn=f"chdb://{args.path}")
    schema.apply(client)
    # the CLI's reader: it opens a client per query in flight, so the tree's
    # statements run at once (views.TREE_WORKERS of them)
    reader = open_reader(clickhouse=f"chdb://{args.path}")
    version = client.query("SELECT version()").result_rows[0][0]

    lines = []
    # a kept --path resumes: only the spans it lacks are generated
    stored = client.query("SELECT count() FROM otel_traces").result_rows[0][0]
    for total in sorted(args.spans):
        seconds = generate(client, stored, max(total - stored, 0))
        stored = max(total, stored)
        sizes = client.query(
            "SELECT table, sum(rows), formatReadableSize(sum(bytes_on_disk)) FROM system.parts "
            "WHERE active AND database = currentDatabase() GROUP BY table ORDER BY table"
        ).result_rows
        load = os.getloadavg()[0]
        results = measure(reader, stored // SPANS_PER_RUN, args.repeat)
        load = max(load, os.getloadavg()[0])
        printed = len(lines)
        lines.append(f"\n### {stored:,} spans ({stored // SPANS_PER_RUN:,} runs)\n")
        lines.append(
            f"Generated and inserted through the views in {seconds:.0f} s. "
            f"Load average (1 min) while measuring: up to {load:.1f}.\n"
        )
        lines.append(
            "| query | median CPU ms | of which planning | median wall ms | slowest wall ms |"
        )
        lines.append("|---|---:|---:|---:|---:|")
        for name, t in results.items():
            lines.append(
                f"| {name} | {statistics.median(t.cpu):.1f} | {statistics.median(t.plan_cpu):.1f} "
                f"| {statistics.median(t.wall):.1f} | {max(t.wall):.1f} |"
            )
        for name, t in results.items():
            if t.parts:
                lines.append(f"\nThe statements of {name}, each alone:\n")
                lines.append("| reads | median CPU ms | of which planning |")
                lines.append("|---|---:|---:|")
                lines.extend(
                    f"| `{view}` | {statistics.median(run_cpu):.1f} "
                    f"| {statistics.median(plan_cpu):.1f} |"
                    for view, (run_cpu, plan_cpu) in t.parts.items()
                )
        lines.append("\nRows and size on disk:\n")
        lines.append("| table | rows | on disk |")
        lines.append("|---|---:|---:|")
        lines.extend(f"| {table} | {rows:,} | {size} |" for table, rows, size in sizes)
        print("\n".join(lines[printed:]), flush=True)

    header = [
        "# Decision layer query latency",
        "",
        f"`python benchmarks/queries.py --spans {' '.join(map(str, args.spans))} "
        f"--repeat {args.repeat}`",
        "",
        f"Embedded engine chDB (ClickHouse {version}), Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average before the run "
        f"{', '.join(f'{x:.1f}' for x in load_before)}. Synthetic runs of "
        f"{SPANS_PER_RUN} spans (2 forks, 6 branches, model/tool/decision spans over "
        "7 branch paths, 5 models of which one is unpriced). Each query runs through "
        "clickhouse-connect (the CLI's reader: a run tree's statements run at once, "
        "2 at a time, each on its own client), after one warm-up query, on runs picked "
        "at random; CPU is "
        "the process's user + system time (the engine runs in-process), wall the "
        "elapsed time, which waits for a core when the machine is loaded; of which "
        "planning is the CPU of `EXPLAIN PLAN` of the same statements (the engine "
        "analysing and planning the views, reading no row).",
    ]
    if args.out:
        args.out.write_text("\n".join(header + lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
