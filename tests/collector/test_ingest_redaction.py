"""Redaction in the collector: the rules as the ``forktrace_redact`` SQL function
in the ingest view. Real-looking secrets go through real OTLP exporters into a
real collector (``forktrace up``) and must come out of ``otel_traces`` redacted
(span, event and resource attributes, the status message), clean text
untouched; a user's rule works, disabling a rule works, and redaction off
stores text as sent. Restarting the collector with other rules re-sets the view,
which ClickHouse would otherwise keep with the function body it expanded when
the view was created."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("chdb")

from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

import forktrace
from forktrace.collector import redaction
from forktrace.redaction import DEFAULT_RULES, Redactor, resolve_rules

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "instrumentation"))
sys.path.insert(0, str(TESTS / "fuzz"))

from otlp_fuzz import Collector  # noqa: E402
from redaction_samples import (  # noqa: E402
    ANTHROPIC,
    AWS_ID,
    CLEAN,
    GITHUB_CLASSIC,
    JWT,
    OPENAI_PROJECT,
    REDACTED,
    SLACK,
    STRIPE,
)

ROWS = (
    "SELECT SpanName, SpanAttributes, `Events.Attributes`, ResourceAttributes, StatusMessage "
    "FROM otel_traces WHERE ServiceName = {service:String} ORDER BY SpanName"
)


def test_the_sql_function_redacts_as_the_sdk_does(clickhouse: Any) -> None:
    """The rendered function body, run by the engine's RE2, gives the SDK's result."""
    for rules in (DEFAULT_RULES, resolve_rules("+email;ticket=TICKET-[0-9]{4,}")):
        python = Redactor(rules)
        body = redaction.function_body(rules)
        for text in [sample for sample, _ in REDACTED] + CLEAN + ["TICKET-2024 to a@b.io"]:
            (engine,) = clickhouse.query(
                f"WITH {body} AS redact SELECT redact({{text:String}})", parameters={"text": text}
            ).result_rows[0]
            assert engine == python.redact(text), text


def test_no_rules_is_the_identity() -> None:
    assert redaction.function_body(resolve_rules("off")) == "(v) -> v"


def test_the_ingest_view_is_re_set_with_its_schema_query() -> None:
    ((name, statement),) = redaction.view_statements()
    assert name == "otel_traces_otlp_ingest_mv"
    assert statement.startswith("ALTER TABLE otel_traces_otlp_ingest_mv MODIFY QUERY WITH")
    assert statement.count("forktrace_redact(") == 3  # attribute values, nested values, status


def _view_query(client: Any) -> str:
    return client.query(
        "SELECT create_table_query FROM system.tables"
        " WHERE database = currentDatabase() AND name = 'otel_traces_otlp_ingest_mv'"
    ).result_rows[0][0]


def test_a_start_with_the_same_rules_leaves_the_views_alone(clickhouse: Any) -> None:
    try:
        redaction.apply(clickhouse, "off")
        assert "replaceRegexpAll" not in _view_query(clickhouse)

        redaction.apply(clickhouse, None)  # the default rules: function and view re-set
        with_rules = _view_query(clickhouse)
        assert "replaceRegexpAll" in with_rules

        # a crash between the function and the view's comment: the next start redoes it
        clickhouse.command("ALTER TABLE otel_traces_otlp_ingest_mv MODIFY COMMENT ''")
        clickhouse.command(redaction.function_sql(resolve_rules("off")))
        redaction.apply(clickhouse, None)
        assert _view_query(clickhouse) == with_rules

        # the same rules again: nothing is re-set, so even a function changed behind
        # the collector's back stays as it is
        clickhouse.command(redaction.function_sql(resolve_rules("off")))
        redaction.apply(clickhouse, None)
        (body,) = clickhouse.query(
            "SELECT create_query FROM system.functions WHERE name = 'forktrace_redact'"
        ).result_rows[0]
        assert "replaceRegexpAll" not in body
        assert _view_query(clickhouse) == with_rules
    finally:
        redaction.apply(clickhouse, "off")  # the function is server-wide: leave the identity


def _send(endpoint: str, service: str, secret_spans: bool = True) -> None:
    """Spans from a plain OpenTelemetry SDK (no forktrace) over OTLP/HTTP."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deploy.token": f"Bearer {JWT}"}),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(
        SimpleSpanProcessor(HttpExporter(endpoint=f"{endpoint}/v1/traces", timeout=30))
    )
    tracer = provider.get_tracer("tests.redaction")
    with tracer.start_as_current_span("clean", attributes={"text": CLEAN[0], "task": CLEAN[1]}):
        pass
    if secret_spans:
        with tracer.start_as_current_span(
            "secret",
            attributes={
                "prompt": f"my key is {ANTHROPIC}, ticket TICKET-4711, mail ops@example.com",
                "keys": [f"aws {AWS_ID}", "nothing"],
                "count": 2,
            },
        ) as span:
            span.add_event("tool.result", {"output": f"GITHUB_TOKEN={GITHUB_CLASSIC}"})
            span.set_status(Status(StatusCode.ERROR, f"charge failed for {STRIPE}"))
    provider.shutdown()


def _rows(collector: Collector, service: str, spans: int = 2) -> dict[str, list[Any]]:
    """The stored spans of ``service`` by name, once all ``spans`` of them are in."""
    query = ROWS.replace("{service:String}", f"'{service}'")
    deadline = time.monotonic() + 120
    while len(rows := collector.sql(query)) < spans and time.monotonic() < deadline:
        time.sleep(0.2)
    return {row[0]: row[1:] for row in rows}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("redacting-collector"))


@pytest.fixture
def restartable(data_dir: Path) -> Iterator[list[Collector]]:
    started: list[Collector] = []
    yield started
    for collector in started:
        collector.stop()


def _start(data_dir: Path, started: list[Collector], *extra: str) -> Collector:
    collector = Collector(data_dir, extra=list(extra)).start()
    started.append(collector)
    return collector


def test_secrets_are_redacted_in_otel_traces_and_rules_follow_restarts(
    data_dir: Path, restartable: list[Collector]
) -> None:
    # the default rules
    collector = _start(data_dir, restartable)
    _send(collector.http_endpoint, "defaults")
    rows = _rows(collector, "defaults")
    attributes, events, resource, status = rows["secret"]
    assert attributes["prompt"] == (
        "my key is [REDACTED:anthropic_key], ticket TICKET-4711, mail ops@example.com"
    )
    assert attributes["keys"] == '["aws [REDACTED:aws_access_key]","nothing"]'
    assert attributes["count"] == "2"
    assert events == [{"output": "GITHUB_TOKEN=[REDACTED:github_token]"}]
    assert resource["deploy.token"] == "Bearer [REDACTED:jwt]"
    assert status == "charge failed for [REDACTED:stripe_key]"
    clean_attributes = rows["clean"][0]
    assert clean_attributes["text"] == CLEAN[0] and clean_attributes["task"] == CLEAN[1]
    collector.stop()

    # a user's rule, an optional rule enabled, a default rule disabled
    collector = _start(
        data_dir, restartable, "--redact", "+email;-aws_access_key;ticket=TICKET-[0-9]{4,}"
    )
    _send(collector.http_endpoint, "custom")
    attributes, events, resource, status = _rows(collector, "custom")["secret"]
    assert attributes["prompt"] == (
        "my key is [REDACTED:anthropic_key], ticket [REDACTED:ticket], mail [REDACTED:email]"
    )
    assert attributes["keys"] == f'["aws {AWS_ID}","nothing"]'
    assert events == [{"output": "GITHUB_TOKEN=[REDACTED:github_token]"}]
    # rows stored earlier keep what they were stored with
    assert _rows(collector, "defaults")["secret"][0]["keys"] == (
        '["aws [REDACTED:aws_access_key]","nothing"]'
    )
    collector.stop()

    # off in the collector: text is stored as sent, unless the SDK redacted it
    collector = _start(data_dir, restartable, "--redact", "off")
    _send(collector.http_endpoint, "off")
    attributes, events, resource, status = _rows(collector, "off")["secret"]
    assert ANTHROPIC in attributes["prompt"] and status == f"charge failed for {STRIPE}"
    assert resource["deploy.token"] == f"Bearer {JWT}"

    provider = TracerProvider(
        resource=Resource.create({"service.name": "sdk"}), shutdown_on_exit=False
    )
    forktrace.init(
        tracer_provider=provider,
        endpoint=f"{collector.http_endpoint}/v1/traces",
        protocol="http/protobuf",
        export_timeout=30,
    )
    try:
        with (
            forktrace.run("deploy", goal=f"post to slack with {SLACK}"),
            provider.get_tracer("other").start_as_current_span(
                "upload", attributes={"body": f'{{"openai": "{OPENAI_PROJECT}"}}'}
            ),
        ):
            pass
    finally:
        forktrace.shutdown()
    rows = _rows(collector, "sdk")
    assert (
        rows["run deploy"][0]["forktrace.run.goal"] == "post to slack with [REDACTED:slack_token]"
    )
    assert rows["upload"][0]["body"] == '{"openai": "[REDACTED:openai_key]"}'
