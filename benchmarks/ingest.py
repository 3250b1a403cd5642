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

then where the time goes, measured in this process on the same requests:
the receiver's validation (upb parse + id checks), the spool's group-committed
append with fsync, and the engine's insert of one segment, split into
Protobuf decoding alone and the full insert (decode + flatten in the
materialised view + writing otel_traces and the trace-id table).

Run:  python benchmarks/ingest.py [--seconds 20] [--senders 8] [--output benchmarks/results/ingest.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

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
        trace_id = rnd.randbytes(16)
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

            for key in (
                "forktrace.session.id",
                "forktrace.run.id",
                "forktrace.fork.id",
                "forktrace.branch.id",
            ):
                put(key, string_value=f"{key.split('.')[1]}-{rnd.randrange(10**6):06d}")
            put("forktrace.branch.path", string_value="1.0.2")
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
    (_send_grpc if transport == "grpc" else _send_http)(endpoint, requests, seconds, senders, out)
    result.put(
        {"started": started, "finished": time.time(), "spans": out["requests"] * SPANS_PER_REQUEST}
    )


# --- measuring the collector ---------------------------------------------------------


def _sql(endpoint: str, query: str) -> list:
    request = urllib.request.Request(
        f"{endpoint}/api/sql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["rows"]


def _proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def run_transport(transport: str, seconds: float, senders: int, data_dir: Path) -> dict:
    collector = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "forktrace.cli",
            "up",
            "--data-dir",
            str(data_dir),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    discovery = data_dir / "collector.json"
    while not discovery.exists():
        if collector.poll() is not None:
            raise RuntimeError(collector.stdout.read())  # type: ignore[union-attr]
        time.sleep(0.1)
    found = json.loads(discovery.read_text())
    http = found["http_endpoint"]
    endpoint = found["grpc_endpoint"] if transport == "grpc" else http
    before = _sql(http, "SELECT count() FROM otel_traces")[0][0]
    cpu_before = _cpu_seconds(collector.pid)  # start-up (schema, engine) excluded

    result: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    generator = multiprocessing.get_context("spawn").Process(
        target=_generator, args=(transport, endpoint, seconds, senders, result)
    )
    generator.start()
    sent = result.get()  # the generator builds its requests first; measure from its first send
    generator.join()
    while True:
        stored = _sql(http, "SELECT count() FROM otel_traces")[0][0] - before
        if stored >= sent["spans"]:
            break
        time.sleep(0.05)
    drained = time.time()
    cpu = _cpu_seconds(collector.pid) - cpu_before
    peak_rss = _proc_status(collector.pid, "VmHWM")
    collector.send_signal(signal.SIGTERM)
    collector.wait(timeout=120)
    wall = drained - sent["started"]
    return {
        "transport": transport,
        "spans": stored,
        "receive_rate": sent["spans"] / (sent["finished"] - sent["started"]),
        "sustained_rate": stored / wall,
        "seconds": wall,
        "collector_cpu_seconds": cpu,
        "peak_rss_mb": peak_rss / 2**20,
    }


# --- where the time goes -----------------------------------------------------------


def _engine_stage(
    client, table: str, body: bytes, label: str, rounds: int = 3
) -> tuple[float, float]:
    """(CPU seconds of this process, i.e. all engine threads; wall seconds), best of ``rounds``."""
    from forktrace.collector.inserter import ingest_settings, write_schema_file

    schema_file = write_schema_file(Path(tempfile.gettempdir()) / "forktrace-bench-format-schemas")
    best = (float("inf"), float("inf"))
    for i in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        client.raw_insert(
            table,
            insert_block=body,
            fmt="Protobuf",
            settings=ingest_settings(f"{label}-{i}", schema_file),
        )
        best = min(best, (time.process_time() - cpu, time.perf_counter() - wall))
    return best


def breakdown(requests: list[bytes], work: Path) -> dict:
    import clickhouse_connect

    from forktrace.collector import schema
    from forktrace.collector.inserter import INGEST_TABLE
    from forktrace.collector.otlp import accept_protobuf
    from forktrace.collector.spool import Spool

    spans = len(requests) * SPANS_PER_REQUEST
    stages: dict[str, tuple[float, float]] = {}

    cpu, wall = time.process_time(), time.perf_counter()
    for body in requests:
        accept_protobuf(body)
    stages["receiver: validate (upb parse + id checks)"] = (
        time.process_time() - cpu,
        time.perf_counter() - wall,
    )

    spool = Spool(work / "spool", batch_spans=10**9, batch_age=3600, limit_bytes=10**12)
    spool.start()
    cpu, wall = time.process_time(), time.perf_counter()
    futures = [spool.append(body, SPANS_PER_REQUEST) for body in requests]
    for future in futures:
        future.result()
    stages["spool: append + fsync, group commit"] = (
        time.process_time() - cpu,
        time.perf_counter() - wall,
    )
    spool.seal_now()
    segment = spool.next_sealed(timeout=10)
    assert segment is not None
    body = segment.path.read_bytes()
    spool.close()

    # Two databases in one engine: the collector's own tables (schema files
    # below 0100) and the complete schema, decision layer included.
    admin = clickhouse_connect.get_client(dsn=f"chdb://{work / 'chdb'}")
    for database in ("core", "complete"):
        admin.command(f"CREATE DATABASE {database}")
    core = clickhouse_connect.get_client(dsn=f"chdb://{work / 'chdb'}", database="core")
    for migration in schema.migrations():
        if migration.version < 100:
            for statement in schema.render(migration):
                core.command(statement)
    complete = clickhouse_connect.get_client(dsn=f"chdb://{work / 'chdb'}", database="complete")
    schema.apply(complete)
    view = core.query(
        "SELECT create_table_query FROM system.tables WHERE database = 'core' AND name = 'otel_traces_otlp_ingest_mv'"
    ).result_rows[0][0]
    core.command(f"CREATE TABLE decode_only AS {INGEST_TABLE} ENGINE = Null")
    core.command(f"CREATE TABLE view_only AS {INGEST_TABLE} ENGINE = Null")
    core.command("CREATE TABLE view_sink AS otel_traces ENGINE = Null")
    core.command(
        view.replace("core.otel_traces_otlp_ingest_mv", "core.view_only_mv")
        .replace(f"core.{INGEST_TABLE}", "core.view_only")
        .replace("TO core.otel_traces", "TO core.view_sink")
    )
    stages["engine: Protobuf decode"] = _engine_stage(core, "decode_only", body, "decode")
    stages["engine: decode + flattening view"] = _engine_stage(core, "view_only", body, "view")
    stages["engine: + writing otel_traces and the trace-id table"] = _engine_stage(
        core, INGEST_TABLE, body, "core"
    )
    stages["engine: + the decision layer's views (complete schema)"] = _engine_stage(
        complete, INGEST_TABLE, body, "complete"
    )
    return {"spans": spans, "bytes": len(body), "stages": stages}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="sending time per transport")
    parser.add_argument("--senders", type=int, default=8, help="requests in flight")
    parser.add_argument("--output", type=Path, help="write the results as Markdown here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="forktrace-bench-"))
    try:
        load_before = os.getloadavg()
        runs = [run_transport(t, args.seconds, args.senders, work / t) for t in ("grpc", "http")]
        load_after = os.getloadavg()
        requests = make_requests(200)
        parts = breakdown(requests, work / "breakdown")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "# Collector ingest benchmark",
        "",
        f"`python benchmarks/ingest.py --seconds {args.seconds:g} --senders {args.senders}`, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before and {load_after[0]:.1f} after "
        "(other work shares this machine).",
        "",
        f"Requests of {SPANS_PER_REQUEST} agent spans, about "
        f"{parts['bytes'] / parts['spans']:,.0f} bytes a span on the wire; durability on (fsync before "
        "every acknowledgement); embedded chDB.",
        "",
        "| transport | spans stored | receive spans/s | sustained spans/s (stored) | collector CPU (cores) | peak RSS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run['transport']} | {run['spans']:,} | {run['receive_rate']:,.0f} | {run['sustained_rate']:,.0f} | "
            f"{run['collector_cpu_seconds'] / run['seconds']:.2f} | {run['peak_rss_mb']:,.0f} MB |"
        )
    lines += [
        "",
        f"Where the time goes, for one segment of {parts['spans']:,} spans ({len(requests)} requests), "
        "measured in this process. CPU is the process's CPU time (every engine thread), the figure that "
        "depends least on what else runs on the machine; engine stages are cumulative, each includes the "
        "ones above it:",
        "",
        "| stage | CPU s | wall s | CPU µs per span | spans/s per core |",
        "|---|---:|---:|---:|---:|",
    ]
    for stage, (cpu, wall) in parts["stages"].items():
        lines.append(
            f"| {stage} | {cpu:.3f} | {wall:.3f} | {cpu / parts['spans'] * 1e6:.1f} | "
            f"{parts['spans'] / cpu:,.0f} |"
        )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        args.output.write_text(report)


if __name__ == "__main__":
    main()
