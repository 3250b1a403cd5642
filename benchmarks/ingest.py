"""Collector ingest throughput: OTLP in, durably spooled, inserted into chDB.

A ``forktrace up`` subprocess (embedded chDB in a temporary data directory,
durability on: every acknowledged request is fsynced to the spool first) is fed
by a load-generator subprocess that sends pre-encoded OTLP requests of
realistic agent spans (15 to 25 attributes each, tool results and messages of
200 to 3,000 characters) over OTLP/gRPC, then over OTLP/HTTP, with several
requests in flight. For each transport it reports:

- sustained spans/s: spans stored in otel_traces divided by the time from the
  first request to the moment the last one is queryable (so the spool must
  drain; the receive rate alone is also shown);
- the collector's CPU (user + system seconds per wall second; 2.0 = both cores
  of this machine) and its peak RSS (VmHWM);

then where the time goes, in CPU per span (the figure to trust on a shared
machine), measured in this process on one spool segment of the same requests:
the receiver's validation (upb parse + id checks), the spool's group-committed
append with fsync, and the engine's insert of the segment into the complete
schema, split by chDB's own logs into the insert itself (Protobuf decoding), the
flattening view, writing otel_traces, and each materialised view of the decision
layer; then what the default redaction rules add.

Each request is one run's trace (its spans share the run and session and spread
over the four branches of one fork), so the decision layer's aggregates see
what they see from real agents, not one group per span.

Run:  python benchmarks/ingest.py [--seconds 20] [--senders 8] [--output benchmarks/results/ingest.md]
      python benchmarks/ingest.py --breakdown-only   (CPU per stage only, about a minute)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import multiprocessing
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

# tests/ holds the collector subprocess helper the test suites start `forktrace up` with
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from collector_process import CollectorProcess

SPANS_PER_REQUEST = 100
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TEXT = (
    "The failing test points at the tokenizer: it splits on the first colon, so "
    "URLs with ports break. I will patch split_header() and rerun the suite. "
) * 50


def make_requests(count: int, seed: int = 7) -> list[bytes]:
    """Pre-encoded ExportTraceServiceRequests of agent-like spans."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    rnd = random.Random(seed)
    requests = []
    for _ in range(count):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        for key, value in [
            ("service.name", "coder-agent"),
            ("telemetry.sdk.name", "opentelemetry"),
            ("telemetry.sdk.language", "python"),
            ("telemetry.sdk.version", "1.38.0"),
            ("host.name", "worker-3"),
        ]:
            resource_spans.resource.attributes.add(key=key).value.string_value = value
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name, scope_spans.scope.version = "forktrace", "0.1.0"
        # one request is one run's trace: its spans share the run and session
        # and spread over the four branches of one fork, as an agent's do
        trace_id = rnd.randbytes(16)
        lineage = {
            "forktrace.session.id": f"session-{rnd.randrange(10**6):06d}",
            "forktrace.run.id": f"run-{rnd.randrange(10**9):09d}",
            "forktrace.fork.id": f"fork-{rnd.randrange(10**9):09d}",
        }
        branches = [f"branch-{rnd.randrange(10**9):09d}" for _ in range(4)]
        start = time.time_ns() - 3_600 * 10**9
        for i in range(SPANS_PER_REQUEST):
            kind = rnd.choice(["llm", "tool", "tool", "agent", "decision"])
            span = scope_spans.spans.add(
                trace_id=trace_id,
                span_id=rnd.randbytes(8),
                parent_span_id=rnd.randbytes(8),
                name={
                    "llm": "chat claude",
                    "tool": "execute_tool bash",
                    "agent": "invoke_agent coder",
                    "decision": "decide",
                }[kind],
                kind=1 if kind != "llm" else 3,
                start_time_unix_nano=start + i * 1_000_000,
                end_time_unix_nano=start + i * 1_000_000 + rnd.randint(10**5, 10**9),
            )
            attributes = span.attributes

            def put(key: str, attributes=attributes, **value: object) -> None:
                pair = attributes.add(key=key)
                for field, v in value.items():
                    setattr(pair.value, field, v)

            for key, value in lineage.items():
                put(key, string_value=value)
            branch = rnd.randrange(len(branches))
            put("forktrace.branch.id", string_value=branches[branch])
            put("forktrace.branch.path", string_value=f"0.{branch}")
            put("forktrace.agent.name", string_value="coder")
            put("forktrace.kind", string_value=kind)
            put(
                "gen_ai.operation.name",
                string_value={
                    "llm": "chat",
                    "tool": "execute_tool",
                    "agent": "invoke_agent",
                    "decision": "plan",
                }[kind],
            )
            put("gen_ai.provider.name", string_value="anthropic")
            put("gen_ai.request.model", string_value="claude-sonnet-4")
            put("gen_ai.usage.input_tokens", int_value=rnd.randint(100, 200_000))
            put("gen_ai.usage.output_tokens", int_value=rnd.randint(10, 8_000))
            put("forktrace.cost.usd", double_value=rnd.random())
            put("forktrace.branch.won", bool_value=rnd.random() < 0.5)
            extra = rnd.randint(0, 6)
            if kind == "tool":
                put("gen_ai.tool.name", string_value="bash")
                put("gen_ai.tool.call.id", string_value=f"toolu_{rnd.randrange(10**12)}")
                put(
                    "gen_ai.tool.call.arguments",
                    string_value='{"command": "pytest -x tests/test_headers.py"}',
                )
                put("gen_ai.tool.call.result", string_value=TEXT[: rnd.randint(200, 3000)])
            elif kind == "llm":
                put("gen_ai.output.messages", string_value=TEXT[: rnd.randint(200, 3000)])
                put("gen_ai.response.finish_reasons", string_value="end_turn")
                put("gen_ai.usage.reasoning.output_tokens", int_value=rnd.randint(0, 4000))
            elif kind == "decision":
                put("forktrace.decision.question", string_value="Which fix first?")
                options = attributes.add(key="forktrace.decision.options").value.array_value.values
                for option in ("patch tokenizer", "rewrite parser", "skip test"):
                    options.add(string_value=option)
                put("forktrace.decision.reasoning", string_value=TEXT[: rnd.randint(200, 1500)])
            for n in range(extra):
                put(f"app.detail.{n}", string_value=f"detail {rnd.randrange(1000)}")
            if rnd.random() < 0.1:
                event = span.events.add(
                    time_unix_nano=span.start_time_unix_nano + 1, name="forktrace.intervention"
                )
                event.attributes.add(key="kind").value.string_value = "approve"
        requests.append(request.SerializeToString())
    return requests


# --- the load generator (its own process) ----------------------------------------


def _send_grpc(
    endpoint: str, requests: list[bytes], seconds: float, senders: int, out: dict
) -> None:
    import grpc

    channel = grpc.insecure_channel(endpoint.removeprefix("http://"))
    export = channel.unary_unary(GRPC_METHOD)
    deadline = time.monotonic() + seconds
    sent = [0] * senders

    def loop(worker: int) -> None:
        i = worker
        while time.monotonic() < deadline:
            export(requests[i % len(requests)], timeout=60)
            sent[worker] += 1
            i += senders

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out["requests"] = sum(sent)


def _send_http(
    endpoint: str, requests: list[bytes], seconds: float, senders: int, out: dict
) -> None:
    import aiohttp

    async def main() -> int:
        deadline = time.monotonic() + seconds
        sent = 0
        async with aiohttp.ClientSession(
            headers={"Content-Type": "application/x-protobuf"}
        ) as session:

            async def loop(worker: int) -> None:
                nonlocal sent
                i = worker
                while time.monotonic() < deadline:
                    async with session.post(
                        f"{endpoint}/v1/traces", data=requests[i % len(requests)]
                    ) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"HTTP {response.status}")
                    sent += 1
                    i += senders

            await asyncio.gather(*(loop(w) for w in range(senders)))
        return sent

    out["requests"] = asyncio.run(main())


def _generator(
    transport: str, endpoint: str, seconds: float, senders: int, result: multiprocessing.Queue
) -> None:
    requests = make_requests(200)
    out: dict = {}
    started = time.time()
    cpu = time.process_time()
    (_send_grpc if transport == "grpc" else _send_http)(endpoint, requests, seconds, senders, out)
    result.put(
        {
            "started": started,
            "finished": time.time(),
            "spans": out["requests"] * SPANS_PER_REQUEST,
            # it shares the two cores with the collector: its CPU is the collector's loss
            "cpu_seconds": time.process_time() - cpu,
        }
    )


# --- measuring the collector ---------------------------------------------------------


def _count(collector: CollectorProcess) -> int:
    return collector.query("SELECT count() FROM otel_traces").rows[0][0]


def _proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used since boot (all cores, not idle)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_transport(transport: str, seconds: float, senders: int, data_dir: Path) -> dict:
    collector = CollectorProcess(data_dir).start()  # its output goes to data_dir/collector.log
    try:
        return _measure(collector, transport, seconds, senders)
    finally:
        collector.kill()  # only if the clean stop did not happen


def _measure(collector: CollectorProcess, transport: str, seconds: float, senders: int) -> dict:
    pid = collector.process.pid  # type: ignore[union-attr]
    endpoint = collector.grpc_endpoint if transport == "grpc" else collector.http_endpoint
    before = _count(collector)
    cpu_before = _cpu_seconds(pid)  # start-up (schema, engine) excluded
    machine_before = _machine_busy_seconds()

    result: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    generator = multiprocessing.get_context("spawn").Process(
        target=_generator, args=(transport, endpoint, seconds, senders, result)
    )
    generator.start()
    sent = result.get()  # the generator builds its requests first; measure from its first send
    generator.join()
    while True:
        stored = _count(collector) - before
        if stored >= sent["spans"]:
            break
        # each count is a query the collector answers: poll gently, so its CPU
        # is the ingest's, not the benchmark's (0.5 s in a run of 40 s or more)
        time.sleep(0.5)
    drained = time.time()
    cpu = _cpu_seconds(pid) - cpu_before
    machine = _machine_busy_seconds() - machine_before
    peak_rss = _proc_status(pid, "VmHWM")
    collector.stop(timeout=120)
    wall = drained - sent["started"]
    return {
        "transport": transport,
        "spans": stored,
        "receive_rate": sent["spans"] / (sent["finished"] - sent["started"]),
        "sustained_rate": stored / wall,
        "seconds": wall,
        "collector_cpu_seconds": cpu,
        "generator_cpu_seconds": sent["cpu_seconds"],
        # the collector is paced by the CPU it gets: with the machine near
        # os.cpu_count() busy, its rate says more about the load than the design
        "machine_cpu_seconds": machine,
        "peak_rss_mb": peak_rss / 2**20,
    }


# --- where the time goes -----------------------------------------------------------

# chDB keeps no query log unless its configuration asks for one; the breakdown
# reads each materialised view's own CPU from system.query_views_log.
_LOG_CONFIG = """<clickhouse>
  <query_log><database>system</database><table>query_log</table></query_log>
  <query_views_log><database>system</database><table>query_views_log</table></query_views_log>
</clickhouse>
"""


def _engine_stage(client, table: str, body: bytes, label: str, rounds: int) -> float:
    """CPU seconds of this process (every engine thread) for one insert, best of ``rounds``."""
    from forktrace.collector.inserter import ingest_settings, write_schema_file

    schema_file = write_schema_file(Path(tempfile.gettempdir()) / "forktrace-bench-format-schemas")
    best = float("inf")
    for i in range(rounds):
        cpu = time.process_time()
        client.raw_insert(
            table,
            insert_block=body,
            fmt="Protobuf",
            settings=ingest_settings(f"{label}-{i}", schema_file),
        )
        best = min(best, time.process_time() - cpu)
    return best


def _views_cpu(
    admin, client, body: bytes, label: str, rounds: int
) -> tuple[float, dict[str, float]]:
    """The complete insert's CPU and each view's own share of it (its query plus
    writing its table; the views it feeds are counted on their own), from the
    engine's logs, for the round with the least CPU."""
    _engine_stage(client, "otel_traces_otlp_ingest", body, label, rounds)
    admin.command("SYSTEM FLUSH LOGS")
    queries = admin.query(
        "SELECT query_id, (ProfileEvents['UserTimeMicroseconds'] + ProfileEvents['SystemTimeMicroseconds']) / 1e6 "
        "FROM system.query_log WHERE type = 'QueryFinish' AND current_database = {db:String} "
        "AND startsWith(Settings['insert_deduplication_token'], {label:String}) ORDER BY 2 LIMIT 1",
        parameters={"db": client.database, "label": f"{label}-"},
    ).result_rows
    query_id, total = queries[0]
    views = admin.query(
        "SELECT replaceRegexpOne(view_name, '^[^.]*[.]', ''), "
        "(ProfileEvents['UserTimeMicroseconds'] + ProfileEvents['SystemTimeMicroseconds']) / 1e6 "
        "FROM system.query_views_log WHERE initial_query_id = {id:String}",
        parameters={"id": query_id},
    ).result_rows
    return total, dict(views)


def breakdown(requests: list[bytes], work: Path, rounds: int = 5) -> dict:
    """CPU per stage for one spool segment of ``requests``: the Python side, then the
    engine's Protobuf decoding, the flattening view and each materialised view."""
    import clickhouse_connect

    from forktrace.collector import redaction, schema
    from forktrace.collector.inserter import INGEST_TABLE
    from forktrace.collector.otlp import accept_protobuf
    from forktrace.collector.spool import Spool

    spans = len(requests) * SPANS_PER_REQUEST
    stages: dict[str, float] = {}

    cpu = time.process_time()
    for body in requests:
        accept_protobuf(body)
    stages["receiver: validate (upb parse + id checks)"] = time.process_time() - cpu

    spool = Spool(work / "spool", batch_spans=10**9, batch_age=3600, limit_bytes=10**12)
    spool.start()
    cpu = time.process_time()
    futures = [spool.append(body, SPANS_PER_REQUEST) for body in requests]
    for future in futures:
        future.result()
    stages["spool: append + fsync, group commit"] = time.process_time() - cpu
    spool.seal_now()
    segment = spool.next_sealed(timeout=10)
    assert segment is not None
    body = segment.path.read_bytes()
    spool.close()

    (work / "chdb-logs.xml").write_text(_LOG_CONFIG)
    options = {"config-file": str(work / "chdb-logs.xml")}
    dsn = f"chdb://{work / 'chdb'}"
    admin = clickhouse_connect.get_client(dsn=dsn, chdb_options=options)
    for database in ("parts", "complete"):
        admin.command(f"CREATE DATABASE {database}")
    # decoding alone, and decoding + flattening into a table that stores nothing
    parts = clickhouse_connect.get_client(dsn=dsn, database="parts", chdb_options=options)
    for migration in schema.migrations():
        if migration.version < 100:
            for statement in schema.render(migration):
                parts.command(statement)
    view = parts.query(
        "SELECT create_table_query FROM system.tables WHERE database = 'parts' AND name = 'otel_traces_otlp_ingest_mv'"
    ).result_rows[0][0]
    parts.command(f"CREATE TABLE decode_only AS {INGEST_TABLE} ENGINE = Null")
    parts.command(f"CREATE TABLE view_only AS {INGEST_TABLE} ENGINE = Null")
    parts.command("CREATE TABLE view_sink AS otel_traces ENGINE = Null")
    parts.command(
        view.replace("parts.otel_traces_otlp_ingest_mv", "parts.view_only_mv")
        .replace(f"parts.{INGEST_TABLE}", "parts.view_only")
        .replace("TO parts.otel_traces", "TO parts.view_sink")
    )
    decode = _engine_stage(parts, "decode_only", body, "decode", rounds)
    flatten = max(0.0, _engine_stage(parts, "view_only", body, "view", rounds) - decode)

    complete = clickhouse_connect.get_client(
        dsn=dsn, database="complete", chdb_options=options, settings={"log_query_views": 1}
    )
    schema.apply(complete)
    total, views = _views_cpu(admin, complete, body, "identity", rounds)
    ingest_view = views.pop("otel_traces_otlp_ingest_mv")
    # the rows below add up to the complete insert's CPU; decoding alone, into
    # a Null table, costs about the first row
    stages["engine: Protobuf decode and the insert pipeline"] = (
        total - ingest_view - sum(views.values())
    )
    stages["engine: flattening view (rows as the upstream exporter writes them)"] = flatten
    stages["engine: writing otel_traces"] = max(0.0, ingest_view - flatten)
    for name, seconds in sorted(views.items(), key=lambda item: -item[1]):
        stages[f"engine: view {name} (its query + its table)"] = seconds
    # forktrace up installs the default redaction rules: one RE2 scan per value
    redaction.apply(complete)
    _, redacted_views = _views_cpu(admin, complete, body, "redacted", rounds)
    return {
        "spans": spans,
        "bytes": len(body),
        "stages": stages,
        "engine_total": total,
        "redaction": redacted_views["otel_traces_otlp_ingest_mv"] - ingest_view,
    }


def _breakdown_lines(parts: dict, requests: int) -> list[str]:
    spans = parts["spans"]
    lines = [
        f"Where the time goes, for one spool segment of {spans:,} spans ({requests} requests), measured "
        "in the benchmark's own process: CPU time (user + system, every engine thread), best of the "
        "rounds, the figure that depends least on what else runs on the machine. The engine rows "
        "come from chDB's own logs (`system.query_log`, `system.query_views_log`); each view's row "
        "is its query plus writing its table.",
        "",
        "| stage | CPU µs per span | spans/s per core |",
        "|---|---:|---:|",
    ]
    python = 0.0
    for stage, cpu in parts["stages"].items():
        if not stage.startswith("engine"):
            python += cpu
        per_span = cpu / spans * 1e6
        rate = f"{spans / cpu:,.0f}" if cpu else "-"
        lines.append(f"| {stage} | {per_span:.1f} | {rate} |")
    total = python + parts["engine_total"]
    lines += [
        f"| **Python side (receive, spool)** | **{python / spans * 1e6:.1f}** | {spans / python:,.0f} |",
        f"| **engine, complete schema** | **{parts['engine_total'] / spans * 1e6:.1f}** | "
        f"{spans / parts['engine_total']:,.0f} |",
        f"| **total** | **{total / spans * 1e6:.1f}** | **{spans / total:,.0f}** |",
        "",
        f"With the default redaction rules installed (as `forktrace up` does), the flattening view "
        f"costs {parts['redaction'] / spans * 1e6:+.1f} µs per span more (one RE2 scan of every "
        "string value); with the identity function, as measured above, nothing.",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="sending time per transport")
    parser.add_argument("--senders", type=int, default=8, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each breakdown stage")
    parser.add_argument(
        "--breakdown-only", action="store_true", help="skip the transports, measure CPU per stage"
    )
    parser.add_argument("--output", type=Path, help="write the results as Markdown here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="forktrace-bench-"))
    try:
        load_before = os.getloadavg()
        runs = []
        if not args.breakdown_only:
            runs = [
                run_transport(t, args.seconds, args.senders, work / t) for t in ("grpc", "http")
            ]
        load_after = os.getloadavg()
        requests = make_requests(200)
        parts = breakdown(requests, work / "breakdown", args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    command = f"python benchmarks/ingest.py --seconds {args.seconds:g} --senders {args.senders}"
    if args.breakdown_only:
        command = f"python benchmarks/ingest.py --breakdown-only --rounds {args.rounds}"
    lines = [
        "# Collector ingest benchmark",
        "",
        f"`{command}`, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before and {load_after[0]:.1f} after "
        "(other work shares this machine).",
        "",
        f"Requests of {SPANS_PER_REQUEST} agent spans (one run's trace each), about "
        f"{parts['bytes'] / parts['spans']:,.0f} bytes a span on the wire; durability on (fsync before "
        "every acknowledgement); embedded chDB.",
        "",
    ]
    if runs:
        lines += [
            "| transport | spans stored | receive spans/s | sustained spans/s (stored) | collector CPU (cores) | collector CPU µs per span | peak RSS | load generator CPU (cores) | machine busy (cores) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for run in runs:
            lines.append(
                f"| {run['transport']} | {run['spans']:,} | {run['receive_rate']:,.0f} | "
                f"{run['sustained_rate']:,.0f} | {run['collector_cpu_seconds'] / run['seconds']:.2f} | "
                f"{run['collector_cpu_seconds'] / run['spans'] * 1e6:.1f} | {run['peak_rss_mb']:,.0f} MB | "
                f"{run['generator_cpu_seconds'] / run['seconds']:.2f} | "
                f"{run['machine_cpu_seconds'] / run['seconds']:.2f} of {os.cpu_count()} |"
            )
        lines += [
            "",
            "Machine busy: every process's CPU over the run, from `/proc/stat`; the load generator "
            "is over its sending time only, shown against the whole run.",
            "",
        ]
    lines += _breakdown_lines(parts, len(requests))
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        args.output.write_text(report)


if __name__ == "__main__":
    main()
