"""``forktrace doctor``: the resolved configuration, where each value came from, and a probe."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from forktrace.cli import app
from forktrace.doctor import EXIT_INVALID, EXIT_UNREACHABLE

runner = CliRunner()


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_reachable_endpoint(listening_port: int, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{listening_port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=secret-token")
    monkeypatch.setenv("FORKTRACE_CAPTURE_CONTENT", "false")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert f"http://127.0.0.1:{listening_port}  [env OTEL_EXPORTER_OTLP_ENDPOINT]" in result.output
    assert "capture_content  False  [env FORKTRACE_CAPTURE_CONTENT]" in result.output
    assert "protocol         grpc  [default]" in result.output
    assert "authorization=***" in result.output
    assert "secret-token" not in result.output
    assert "reachable" in result.output


def test_unreachable_endpoint_exits_1() -> None:
    port = free_port()
    result = runner.invoke(
        app, ["doctor", "--endpoint", f"http://127.0.0.1:{port}", "--timeout", "1"]
    )
    assert result.exit_code == EXIT_UNREACHABLE
    assert "[argument]" in result.output
    assert "NOT reachable" in result.output


def test_invalid_configuration_exits_2_listing_every_problem(monkeypatch) -> None:
    monkeypatch.setenv("FORKTRACE_MAX_TEXT_LENGTH", "huge")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "smoke-signals")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == EXIT_INVALID
    assert "2 problems" in result.output
    assert "FORKTRACE_MAX_TEXT_LENGTH" in result.output
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in result.output
