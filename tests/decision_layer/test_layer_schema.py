"""The decision layer's schema files render for one server and for a cluster."""

from __future__ import annotations

import re

from forktrace.collector import schema

TABLES = [
    "forktrace_spans",
    "forktrace_run_totals",
    "forktrace_usage",
    "forktrace_branch_facts",
    "forktrace_fork_facts",
    "forktrace_intervention_events",
]


def layer_statements(options: schema.SchemaOptions) -> list[str]:
    return [
        statement
        for migration in schema.migrations()
        if migration.version >= 100
        for statement in schema.render(migration, options)
    ]


def test_on_a_cluster_each_table_is_local_shards_behind_a_distributed_table():
    statements = layer_statements(schema.SchemaOptions(cluster="prod", ttl_days=30))
    text = "\n".join(statements)
    for table in TABLES:
        assert f"CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER prod" in text
        assert f"Distributed(prod, currentDatabase(), {table}_local, cityHash64(run_id))" in text
    # materialised views read and write the shards, never the Distributed tables
    views = [s for s in statements if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == 8
    for view in views:
        assert re.search(r"\bTO \w+_local\b", view), view
        assert all(source.endswith("_local") for source in re.findall(r"\bFROM (\w+)", view)), view
    assert "TTL toDateTime(start) + INTERVAL 30 DAY" in text
    assert "CREATE OR REPLACE VIEW forktrace_runs ON CLUSTER prod" in text


def test_on_one_server_there_is_no_cluster_syntax():
    text = "\n".join(layer_statements(schema.SchemaOptions()))
    assert "ON CLUSTER" not in text and "_local" not in text and "Distributed" not in text
