"""Redaction in the SDK: the rules, their configuration, and the exporter that
applies them to every span before export (forktrace's and other
instrumentations'). The secrets are real-looking: right prefixes, lengths and
alphabets."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from redaction_samples import (
    ANTHROPIC,
    AWS_ID,
    CLEAN,
    GITHUB_CLASSIC,
    JWT,
    OPENAI_PROJECT,
    REDACTED,
    STRIPE,
)

import forktrace
from forktrace.config import ConfigError, resolve
from forktrace.redact_export import RedactingSpanExporter, redact_span
from forktrace.redaction import (
    BUILTIN_RULES,
    DEFAULT_RULES,
    RedactionConfigError,
    Redactor,
    Rule,
    resolve_rules,
)


def test_every_default_rule_redacts_its_secret() -> None:
    redactor = Redactor(DEFAULT_RULES)
    for text, expected in REDACTED:
        assert redactor.redact(text) == expected, text


def test_clean_text_is_untouched_and_not_copied() -> None:
    redactor = Redactor(DEFAULT_RULES)
    for text in CLEAN:
        assert redactor.redact(text) is text


def test_redacting_twice_changes_nothing_more() -> None:
    """The SDK redacts, then the collector again: markers never match a rule."""
    redactor = Redactor(resolve_rules("+email"))
    for text, _ in REDACTED:
        once = redactor.redact(text)
        assert redactor.redact(once) == once


@pytest.mark.parametrize("rule", list(BUILTIN_RULES.values()), ids=lambda rule: rule.name)
def test_hints_are_in_every_match(rule: Rule) -> None:
    """A rule's regex is skipped on text holding none of its hints, so every
    possible match must hold one, or a secret would pass unredacted."""

    @settings(max_examples=40, derandomize=True, database=None, deadline=None)
    @given(st.from_regex(re.compile(rule.pattern, re.ASCII)))
    def hinted(text: str) -> None:
        if re.search(rule.pattern, text, re.ASCII):
            assert any(hint in text.lower() for hint in rule.hints), text

    hinted()


def test_entries_enable_disable_and_add_rules() -> None:
    rules = resolve_rules(
        "+email; -jwt\nticket=TICKET-[0-9]{4,}; aws_access_key=AKIA[A-Z0-9]{16}=>[aws key]"
    )
    names = [rule.name for rule in rules]
    assert "email" in names and "jwt" not in names and "ticket" in names
    redactor = Redactor(rules)
    assert redactor.redact(f"see TICKET-12345, mail a@b.io, {AWS_ID}") == (
        "see [REDACTED:ticket], mail [REDACTED:email], [aws key]"
    )
    assert resolve_rules("off") == () and str(resolve_rules("off")) == "off"
    assert resolve_rules(False) == () and resolve_rules(True) == DEFAULT_RULES
    assert [r.name for r in resolve_rules("-all;mine=secret-[0-9]+")] == ["mine"]
    custom = Rule("internal_host", r"\b[a-z0-9]+\.corp\.example\b", "[host]")
    assert Redactor(resolve_rules([custom, "-url_password"])).redact("db1.corp.example") == "[host]"


def test_a_replacement_keeps_groups() -> None:
    rule = Rule("password_field", r"(password=)[^&\s]+", r"\1***")
    assert Redactor([rule]).redact("user=a&password=hunter2&x=1") == "user=a&password=***&x=1"


def test_every_bad_entry_is_reported_at_once() -> None:
    with pytest.raises(RedactionConfigError) as caught:
        resolve_rules("-nosuchrule;+nosuchrule;Bad Name=x;lookahead=a(?=b);backref=(a)\\1;empty=x*")
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 6, problems
    assert "lookaround" in problems and "backreference" in problems
    assert "empty string" in problems and "nosuchrule" in problems


def test_the_environment_sets_the_rules_and_errors_join_the_config_errors() -> None:
    config = resolve(environ={"FORKTRACE_REDACT": "+email;-jwt"})
    assert config.redact.source == "env FORKTRACE_REDACT"
    assert "email" in str(config.redact.value) and "jwt" not in str(config.redact.value)
    assert resolve(environ={}).redact.value == DEFAULT_RULES
    assert resolve(redact=False, environ={"FORKTRACE_REDACT": "+email"}).redact.value == ()
    with pytest.raises(ConfigError) as caught:
        resolve(environ={"FORKTRACE_REDACT": "x=(", "FORKTRACE_MAX_TEXT_LENGTH": "1"})
    assert len(caught.value.problems) == 2


def _recording(redact: object = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    rules = resolve_rules(redact)  # type: ignore[arg-type]
    provider.add_span_processor(
        SimpleSpanProcessor(RedactingSpanExporter(exporter, Redactor(rules)))
    )
    return provider, exporter


def test_the_exporter_redacts_attributes_events_and_status_of_any_span() -> None:
    provider, exporter = _recording()
    forktrace.init(tracer_provider=provider, export=False)
    try:
        with forktrace.run("deploy", goal=f"use {GITHUB_CLASSIC} to push"):
            tool = provider.get_tracer("other.instrumentation")
            with tool.start_as_current_span(
                "http GET",
                attributes={
                    "http.url": "https://bot:Tr0ub4dor3@api.example.com/v1",
                    "headers": ("Accept: */*", f"Authorization: Bearer {JWT}"),
                    "retries": 3,
                    "clean": "nothing to see",
                },
            ) as span:
                span.add_event("request", {"body": f'{{"key": "{OPENAI_PROJECT}"}}', "n": 1})
                span.record_exception(RuntimeError(f"auth failed for {AWS_ID}"))
                span.set_status(Status(StatusCode.ERROR, f"rejected {STRIPE}"))
    finally:
        forktrace.shutdown()

    by_name = {span.name: span for span in exporter.get_finished_spans()}
    http = by_name["http GET"]
    assert http.attributes["http.url"] == "https://bot:[REDACTED:url_password]@api.example.com/v1"
    assert http.attributes["headers"] == ("Accept: */*", "Authorization: Bearer [REDACTED:jwt]")
    assert http.attributes["retries"] == 3 and http.attributes["clean"] == "nothing to see"
    assert http.events[0].attributes == {"body": '{"key": "[REDACTED:openai_key]"}', "n": 1}
    assert "[REDACTED:aws_access_key]" in http.events[1].attributes["exception.message"]
    assert AWS_ID not in http.events[1].attributes["exception.stacktrace"]
    assert http.status.description == "rejected [REDACTED:stripe_key]"
    assert http.status.status_code is StatusCode.ERROR
    run = by_name["run deploy"]
    assert run.attributes["forktrace.run.goal"] == "use [REDACTED:github_token] to push"
    # everything else about the span is kept
    assert http.parent.span_id == run.context.span_id and http.kind is not None


def test_a_clean_span_is_passed_on_as_it_is() -> None:
    provider, exporter = _recording(redact="off")
    tracer = provider.get_tracer("plain")
    with tracer.start_as_current_span("clean", attributes={"text": CLEAN[0], "task": CLEAN[1]}):
        pass
    with tracer.start_as_current_span("dirty", attributes={"text": ANTHROPIC}):
        pass
    clean, dirty = exporter.get_finished_spans()
    redactor = Redactor(DEFAULT_RULES)
    assert redact_span(redactor, clean) is clean  # no copy when there is nothing to redact
    assert redact_span(redactor, dirty).attributes == {"text": "[REDACTED:anthropic_key]"}
    assert dirty.attributes == {"text": ANTHROPIC}  # the SDK's own span is left alone


def test_redaction_off_exports_text_unchanged() -> None:
    provider, exporter = _recording(redact="off")
    with provider.get_tracer("plain").start_as_current_span("s", attributes={"k": ANTHROPIC}):
        pass
    assert exporter.get_finished_spans()[0].attributes["k"] == ANTHROPIC
