"""An agent traced by forktrace while its collector is down (a closed port) or
hangs (a server that accepts connections and never answers): it finishes at
its normal speed, nothing is raised into it, and the spans it lost are
counted (forktrace.dropped_spans() and a warning at shutdown).

Speed is compared with the same agent exporting to a collector that takes
everything at once (exporting has its own CPU cost, which is not the point
here), under a loose bound, twice its time plus a second, because the machine
is shared and noisy: what the bound catches is an agent held up by its
tracing, which would take seconds per batch with a hanging collector.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fault_collector import HERE

AGENT = HERE / "fault_agent.py"
SPANS = 3000  # more than the batch processor's queue (2048): some are dropped there


def run_agent(endpoint: str, protocol: str = "grpc", spans: int = SPANS) -> tuple[dict, str]:
    completed = subprocess.run(
        [sys.executable, str(AGENT), endpoint, protocol, str(spans)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1]), completed.stderr


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that takes everything (an empty response is a full success)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield endpoint(server.server_address[1], "http/protobuf")
    server.shutdown()


@pytest.fixture(scope="module")
def baseline(sink: str) -> dict[str, Any]:
    result, _ = run_agent(sink, "http/protobuf")
    return result


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port  # nothing listens: every connection is refused


@pytest.fixture
def silent_port() -> Iterator[int]:
    """Connections are accepted by the kernel; nothing ever reads or answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


def endpoint(port: int, protocol: str) -> str:
    base = f"http://127.0.0.1:{port}"
    return base if protocol == "grpc" else f"{base}/v1/traces"


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
@pytest.mark.parametrize("collector", ["down", "hanging"])
def test_the_agent_keeps_its_speed_and_counts_what_was_lost(
    request: pytest.FixtureRequest, baseline: dict, protocol: str, collector: str
) -> None:
    port = request.getfixturevalue("closed_port" if collector == "down" else "silent_port")
    result, stderr = run_agent(endpoint(port, protocol), protocol)
    print(f"{collector} {protocol}: {result}; with a working collector: {baseline}")
    assert result["work_seconds"] < 2 * baseline["work_seconds"] + 1.0
    # shutdown waits for the collector at most the export timeout plus a second
    assert result["shutdown_seconds"] < result["export_timeout"] + 1.0 + 1.0
    assert result["dropped"] == SPANS  # none reached a collector, all are counted
    assert f"forktrace: {SPANS} of {SPANS} spans did not reach the collector" in stderr


def test_a_collector_that_takes_everything_loses_nothing(sink: str) -> None:
    # fewer spans than the queue holds: all are delivered, none counted as lost
    result, stderr = run_agent(sink, "http/protobuf", spans=500)
    assert result["dropped"] == 0
    assert "did not reach the collector" not in stderr
