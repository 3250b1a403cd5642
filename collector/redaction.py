"""Redaction in the collector: the rules as a ClickHouse SQL function, applied while ingesting.

The ingest view (``0002_otlp_ingest.sql``) passes every string attribute value
(span, event and resource attributes) and the status message through
``forktrace_redact(value)``. The schema creates that function as the identity;
at start-up the collector replaces it with the configured rules (the same
rules as the SDK, :mod:`forktrace.redaction`), rendered as::

    (v) -> if(match(v, '<every rule's pattern, as one union>'),
               replaceRegexpAll(... replaceRegexpAll(v, '<rule 1>', '<replacement 1>') ...),
               v)

so a clean value costs one RE2 scan and no Python runs per span.

ClickHouse expands a SQL function into a materialised view's query when the
view is created (``SHOW CREATE`` shows the body, not the call), so replacing
the function alone does not reach the view. After replacing it, the collector
re-sets each view that calls it with ``ALTER TABLE ... MODIFY QUERY``, using
the query text from the schema file, which expands the new body. Functions are
global to a ClickHouse server: collectors that share one server should share
their rules too.

Re-setting the views takes over a second, so it happens only when something
changed: each view, once re-set, carries a comment naming the digest of the
function and of its query, and a start whose rules and schema give the same
digest leaves function and views alone. The comment is written last, so a
crash halfway leaves a view whose comment does not match, redone next time;
a view a later migration re-creates loses its comment and is redone too.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from forktrace.collector import schema
from forktrace.redaction import RedactionConfigError, RedactSpec, Rules, resolve_rules

FUNCTION = "forktrace_redact"
_VIEW = re.compile(
    r"CREATE MATERIALIZED VIEW (?:IF NOT EXISTS )?(?P<name>\S+)(?P<cluster> ON CLUSTER \S+)?"
    r"\s+TO \S+\s+AS\s+(?P<query>.*)",
    re.DOTALL,
)


def quote(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def function_body(rules: Rules) -> str:
    """The lambda ``forktrace_redact`` is defined as, for these rules."""
    if not rules:
        return "(v) -> v"
    union = "|".join(rule.scoped_pattern for rule in rules)
    replaced = "v"
    for rule in rules:
        replaced = f"replaceRegexpAll({replaced}, {quote(rule.pattern)}, {quote(rule.replacement)})"
    return f"(v) -> if(match(v, {quote(union)}), {replaced}, v)"


def function_sql(rules: Rules, on_cluster: str = "") -> str:
    return f"CREATE OR REPLACE FUNCTION {FUNCTION}{on_cluster} AS {function_body(rules)}"


def view_statements() -> list[tuple[str, str]]:
    """(view name, ``ALTER TABLE ... MODIFY QUERY``) for each materialised view of the
    schema that calls ``forktrace_redact``: running them makes the views expand its
    current body."""
    statements = []
    for migration in schema.migrations():
        for statement in schema.render(migration):
            found = _VIEW.match(statement)
            if found and f"{FUNCTION}(" in found["query"]:
                cluster = found["cluster"] or ""
                statements.append(
                    (
                        found["name"],
                        f"ALTER TABLE {found['name']}{cluster} MODIFY QUERY {found['query']}",
                    )
                )
    return statements


def _marker(function: str, views: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256("\n".join([function, *(sql for _, sql in views)]).encode())
    return f"{FUNCTION} {digest.hexdigest()[:16]}"


def _views_marked(client: Any, views: list[tuple[str, str]], marker: str) -> bool:
    comments = dict(
        client.query(
            "SELECT name, comment FROM system.tables"
            " WHERE database = currentDatabase() AND name IN %(names)s",
            parameters={"names": [name for name, _ in views]},
        ).result_rows
    )
    return all(comments.get(name) == marker for name, _ in views)


def _compiles(client: Any, patterns: list[str]) -> str | None:
    """None if the engine's RE2 compiles every pattern, else its error."""
    if not patterns:
        return None
    try:
        client.query("SELECT " + ", ".join(f"match('', {quote(p)})" for p in patterns))
    except Exception as exc:
        return str(exc)
    return None


def check_patterns(client: Any, rules: Rules) -> None:
    """Compile every pattern with the engine's RE2; raise listing each one it rejects.
    One query for all of them; rule by rule only to name the ones that fail."""
    if (
        _compiles(client, [t for rule in rules for t in (rule.pattern, rule.scoped_pattern)])
        is None
    ):
        return
    problems = []
    for rule in rules:
        error = _compiles(client, [rule.pattern, rule.scoped_pattern])
        if error is not None:
            problems.append(f"rule {rule.name!r}: ClickHouse cannot use {rule.pattern!r}: {error}")
    if problems:
        raise RedactionConfigError(problems)


def apply(client: Any, spec: RedactSpec = None) -> Rules:
    """Install the rules ``spec`` asks for (format: :mod:`forktrace.redaction`; None: the
    defaults) as ``forktrace_redact`` and make the ingest views use them; returns the rules."""
    rules = resolve_rules(spec)
    function = function_sql(rules)
    views = view_statements()
    marker = _marker(function, views)
    if _views_marked(client, views, marker):
        return rules  # installed by an earlier start, views included
    check_patterns(client, rules)
    client.command(function)
    for name, statement in views:
        client.command(statement)
        client.command(f"ALTER TABLE {name} MODIFY COMMENT {quote(marker)}")
    return rules
