"""What a real agent process sees: a light import, a dead collector that does not hang it,
and an OpenTelemetry setup of its own that forktrace joins instead of replacing."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap

import pytest

HEAVY_MODULES = ("grpc", "clickhouse_connect", "chdb", "aiohttp", "grafana_client", "typer")


def run_python(code: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_import_forktrace_loads_no_heavy_module() -> None:
    result = run_python(
        """
        import json, sys
        import forktrace
        print(json.dumps(sorted(sys.modules)))
        """
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY_MODULES]
    assert heavy == []


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_unreachable_collector_neither_raises_nor_hangs(protocol: str) -> None:
    """The agent finishes and exits 0; the bound is about not hanging, not speed."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result = run_python(
        f"""
        import asyncio, forktrace

        forktrace.init(service_name="dead-collector", endpoint={endpoint!r},
                       protocol={protocol!r}, export_timeout=1)

        async def work(fork, i):
            async with fork.branch(f"b{{i}}"):
                with forktrace.tool("t", arguments={{"i": i}}) as tool:
                    tool.result(i)

        async def main():
            with forktrace.run("r"):
                async with forktrace.fork("f") as fork:
                    await asyncio.gather(*(work(fork, i) for i in range(200)))
        asyncio.run(main())
        print("agent finished")
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "agent finished" in result.stdout


def test_joins_an_sdk_provider_the_program_already_set() -> None:
    result = run_python(
        """
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import forktrace

        exporter = InMemorySpanExporter()
        theirs = TracerProvider()
        theirs.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(theirs)

        joined = forktrace.init(export=False)
        assert forktrace.init(export=False) is joined  # idempotent
        with forktrace.run("r"), forktrace.fork("f") as fork, fork.branch("b"):
            with trace.get_tracer("app").start_as_current_span("app span"):
                pass
        spans = {s.name: dict(s.attributes) for s in exporter.get_finished_spans()}
        print(json.dumps({"same": joined is theirs
                          and trace.get_tracer_provider() is theirs, "spans": spans}))
        """
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["same"] is True
    spans = report["spans"]
    assert set(spans) == {"run r", "fork f", "branch b", "app span"}
    assert spans["app span"]["forktrace.branch.path"] == "0"
    assert spans["app span"]["forktrace.branch.id"] == spans["branch b"]["forktrace.branch.id"]


def test_init_sets_a_global_provider_when_there_is_none() -> None:
    result = run_python(
        """
        from opentelemetry import trace
        import forktrace

        provider = forktrace.init(endpoint="http://127.0.0.1:9", export_timeout=0.5)
        print(trace.get_tracer_provider() is provider,
              provider.resource.attributes["service.name"])
        forktrace.shutdown()
        """,
        OTEL_SERVICE_NAME="svc-from-env",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "svc-from-env"]
