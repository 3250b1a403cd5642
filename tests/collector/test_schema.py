from forktrace.collector import schema

UPSTREAM_COLUMNS = [
    ("Timestamp", "DateTime64(9)"),
    ("TraceId", "String"),
    ("SpanId", "String"),
    ("ParentSpanId", "String"),
    ("TraceState", "String"),
    ("SpanName", "LowCardinality(String)"),
    ("SpanKind", "LowCardinality(String)"),
    ("ServiceName", "LowCardinality(String)"),
    ("ResourceAttributes", "Map(LowCardinality(String), String)"),
    ("ScopeName", "String"),
    ("ScopeVersion", "String"),
    ("SpanAttributes", "Map(LowCardinality(String), String)"),
    ("Duration", "UInt64"),
    ("StatusCode", "LowCardinality(String)"),
    ("StatusMessage", "String"),
    ("Events.Timestamp", "Array(DateTime64(9))"),
    ("Events.Name", "Array(LowCardinality(String))"),
    ("Events.Attributes", "Array(Map(LowCardinality(String), String))"),
    ("Links.TraceId", "Array(String)"),
    ("Links.SpanId", "Array(String)"),
    ("Links.TraceState", "Array(String)"),
    ("Links.Attributes", "Array(Map(LowCardinality(String), String))"),
]


def test_otel_traces_has_the_upstream_exporter_columns(clickhouse):
    rows = clickhouse.query(
        "SELECT name, type FROM system.columns "
        "WHERE database = currentDatabase() AND table = 'otel_traces' ORDER BY position"
    ).result_rows
    assert rows == UPSTREAM_COLUMNS


def test_applying_twice_applies_nothing_new(clickhouse):
    assert schema.apply(clickhouse) == []


def test_cluster_variant_uses_replicated_local_tables_and_distributed_tables():
    statements = schema.render_all(schema.SchemaOptions(cluster="forktrace", ttl_days=30))
    text = "\n".join(statements)
    assert "CREATE TABLE IF NOT EXISTS otel_traces_local ON CLUSTER forktrace" in text
    assert "ENGINE = ReplicatedMergeTree" in text
    assert "Distributed(forktrace, currentDatabase(), otel_traces_local" in text
    assert "TTL toDateTime(Timestamp) + INTERVAL 30 DAY" in text
    single = "\n".join(schema.render_all())
    assert "ON CLUSTER" not in single and "Distributed" not in single and "TTL" not in single
