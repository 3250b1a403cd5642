"""Configuration: argument, then environment, then default; every problem reported at once."""

from __future__ import annotations

import pytest

import forktrace
from forktrace.config import ConfigError, resolve


def test_defaults() -> None:
    config = resolve(environ={})
    assert config.endpoint.value == "http://localhost:4317"
    assert config.endpoint.source == "default"
    assert config.protocol.value == "grpc"
    assert config.capture_content.value is True
    assert config.insecure


def test_argument_beats_environment_beats_default() -> None:
    env = {
        "OTEL_SERVICE_NAME": "from-env",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "FORKTRACE_SESSION": "env-session",
        "FORKTRACE_MAX_TEXT_LENGTH": "500",
    }
    config = resolve(service_name="from-arg", environ=env)
    assert (config.service_name.value, config.service_name.source) == ("from-arg", "argument")
    assert config.endpoint.value == "http://collector:4317"
    assert config.endpoint.source == "env OTEL_EXPORTER_OTLP_ENDPOINT"
    assert (config.session.value, config.session.source) == ("env-session", "env FORKTRACE_SESSION")
    assert config.max_text_length.value == 500
    assert config.capture_content.source == "default"


def test_traces_endpoint_wins_and_http_gets_its_path() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://generic:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces:4318/custom/path",
        "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,x-team=core",
    }
    config = resolve(environ=env)
    assert config.endpoint.value == "https://traces:4318/custom/path"
    assert not config.insecure
    assert config.headers.value == {"authorization": "Bearer abc", "x-team": "core"}
    del env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    assert resolve(environ=env).endpoint.value == "https://generic:4318/v1/traces"
    assert resolve(environ={}, protocol="http/protobuf").endpoint.value == (
        "http://localhost:4318/v1/traces"
    )


def test_every_problem_is_reported_at_once() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://collector:21",
        "OTEL_EXPORTER_OTLP_HEADERS": "no-equals-sign",
        "FORKTRACE_CAPTURE_CONTENT": "maybe",
        "FORKTRACE_MAX_TEXT_LENGTH": "ten",
        "FORKTRACE_EXPORT_TIMEOUT": "-1",
        "OTEL_RESOURCE_ATTRIBUTES": "team",
    }
    with pytest.raises(ConfigError) as caught:
        resolve(environ=env)
    problems = caught.value.problems
    assert len(problems) == 7, problems
    message = str(caught.value)
    for name in env:
        assert name in message
    assert "7 problems" in message


def test_bad_arguments_are_reported_too() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(environ={}, max_text_length=3, endpoint="http://:4317", capture_content="yes")
    assert len(caught.value.problems) == 3


def test_endpoint_without_port_uses_the_scheme_default() -> None:
    from forktrace.config import endpoint_address

    config = resolve(environ={}, endpoint="https://otlp.example.com", protocol="http/protobuf")
    assert config.endpoint.value == "https://otlp.example.com/v1/traces"
    assert endpoint_address(config.endpoint.value) == ("otlp.example.com", 443)
    assert resolve(environ={}, endpoint="collector:4317").endpoint.value == "http://collector:4317"


def test_init_refuses_an_invalid_configuration_before_touching_anything(monkeypatch) -> None:
    monkeypatch.setenv("FORKTRACE_MAX_TEXT_LENGTH", "lots")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with pytest.raises(ConfigError) as caught:
        forktrace.init(export=False)
    assert len(caught.value.problems) == 2
    from forktrace import setup

    assert setup.current_config() is None


def test_init_is_idempotent(record) -> None:
    recorded = record(session="first")
    again = forktrace.init(session="second")
    assert again is recorded.provider
    from forktrace import setup

    assert setup.current_config().session.value == "first"


def test_collector_token_becomes_the_bearer_header_unless_one_is_given() -> None:
    config = resolve(environ={"FORKTRACE_TOKEN": "shared", "FORKTRACE_WRITE_TOKEN": "w1"})
    assert config.headers.value == {"authorization": "Bearer w1"}
    assert config.headers.source == "env FORKTRACE_WRITE_TOKEN"

    config = resolve(environ={"FORKTRACE_TOKEN": "shared"})
    assert config.headers.value == {"authorization": "Bearer shared"}

    explicit = resolve(headers={"Authorization": "Bearer mine"}, environ={"FORKTRACE_TOKEN": "x"})
    assert explicit.headers.value == {"authorization": "Bearer mine"}
