-- otel_traces: column for column the table the OpenTelemetry Collector's
-- ClickHouse exporter creates (Map variant), so any OTLP pipeline can write it
-- and the Grafana ClickHouse plugin's trace mode reads it unchanged.
CREATE TABLE IF NOT EXISTS otel_traces${local}${on_cluster} (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = ${replicated}MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
${ttl_Timestamp}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- cluster-only
CREATE TABLE IF NOT EXISTS otel_traces${on_cluster} AS otel_traces_local
ENGINE = Distributed(${cluster}, currentDatabase(), otel_traces_local, cityHash64(TraceId));

-- The trace-id lookup table: finding a trace's time range first lets a trace
-- query read only the partitions and granules that hold it.
CREATE TABLE IF NOT EXISTS otel_traces_trace_id_ts${local}${on_cluster} (
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ${replicated}MergeTree
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
${ttl_Start}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

-- cluster-only
CREATE TABLE IF NOT EXISTS otel_traces_trace_id_ts${on_cluster} AS otel_traces_trace_id_ts_local
ENGINE = Distributed(${cluster}, currentDatabase(), otel_traces_trace_id_ts_local, cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_trace_id_ts_mv${on_cluster}
TO otel_traces_trace_id_ts${local}
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM otel_traces${local}
WHERE TraceId != ''
GROUP BY TraceId;
