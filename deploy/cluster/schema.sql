CREATE TABLE IF NOT EXISTS otel_traces_local ON CLUSTER forktrace (
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
) ENGINE = ReplicatedMergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS otel_traces ON CLUSTER forktrace AS otel_traces_local
ENGINE = Distributed(forktrace, currentDatabase(), otel_traces_local, cityHash64(TraceId));

CREATE TABLE IF NOT EXISTS otel_traces_trace_id_ts_local ON CLUSTER forktrace (
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = ReplicatedMergeTree
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS otel_traces_trace_id_ts ON CLUSTER forktrace AS otel_traces_trace_id_ts_local
ENGINE = Distributed(forktrace, currentDatabase(), otel_traces_trace_id_ts_local, cityHash64(TraceId));

CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_trace_id_ts_mv ON CLUSTER forktrace
TO otel_traces_trace_id_ts_local
AS SELECT
    TraceId,
    min(Timestamp) AS Start,
    max(Timestamp) AS End
FROM otel_traces_local
WHERE TraceId != ''
GROUP BY TraceId;

CREATE TABLE IF NOT EXISTS otel_traces_otlp_ingest ON CLUSTER forktrace (
    resource_spans Array(Tuple(
        resource Tuple(attributes Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))))))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String)))))))))))),
        scope_spans Array(Tuple(
            scope Tuple(name String, version String),
            spans Array(Tuple(
                trace_id String,
                span_id String,
                trace_state String,
                parent_span_id String,
                name String,
                kind Int8,
                start_time_unix_nano UInt64,
                end_time_unix_nano UInt64,
                attributes Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))))))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))))))))))),
                events Array(Tuple(time_unix_nano UInt64, name String, attributes Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))))))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))))))))))))),
                links Array(Tuple(trace_id String, span_id String, trace_state String, attributes Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))))))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String, array_value Tuple(values Array(Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))), kvlist_value Tuple(values Array(Tuple(key String, value Tuple(value Enum8('none' = 0, 'string_value' = 1, 'bool_value' = 2, 'int_value' = 3, 'double_value' = 4, 'array_value' = 5, 'kvlist_value' = 6, 'bytes_value' = 7, 'string_value_strindex' = 8), string_value String, bool_value Bool, int_value Int64, double_value Float64, bytes_value String))))))))))))),
                status Tuple(message String, code Int8)))))))
) ENGINE = Null;

CREATE FUNCTION IF NOT EXISTS forktrace_redact ON CLUSTER forktrace AS (v) -> v;

CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_otlp_ingest_mv ON CLUSTER forktrace
TO otel_traces
AS WITH
    s -> replaceAll(replaceAll(replaceAll(toJSONString(s), '<', '\\u003c'), '>', '\\u003e'), '&', '\\u0026') AS json_string,
    v -> multiIf(
        v.value = 'string_value', json_string(forktrace_redact(v.string_value)),
        v.value = 'bool_value', if(v.bool_value, 'true', 'false'),
        v.value = 'int_value', toString(v.int_value),
        v.value = 'double_value', toString(v.double_value),
        v.value = 'bytes_value', json_string(base64Encode(v.bytes_value)),
        'null') AS json_scalar,
    v -> multiIf(
        v.value = 'array_value', concat('[', arrayStringConcat(arrayMap(x -> json_scalar(x), v.array_value.values), ','), ']'),
        v.value = 'kvlist_value', concat('{', arrayStringConcat(arrayMap(kv -> concat(json_string(kv.key), ':', json_scalar(kv.value)), arraySort(kv -> kv.key, v.kvlist_value.values)), ','), '}'),
        json_scalar(v)) AS json_nested,
    kvs -> CAST(mapFromArrays(kvs.key, arrayMap((member, s, b, i, d, raw, list, kvlist) -> multiIf(
            member = 'string_value', forktrace_redact(s),
            member = 'bool_value', if(b, 'true', 'false'),
            member = 'int_value', toString(i),
            member = 'double_value', toString(d),
            member = 'bytes_value', base64Encode(raw),
            member = 'array_value', concat('[', arrayStringConcat(arrayMap(x -> json_nested(x), list.values), ','), ']'),
            member = 'kvlist_value', concat('{', arrayStringConcat(arrayMap(kv -> concat(json_string(kv.key), ':', json_nested(kv.value)), arraySort(kv -> kv.key, kvlist.values)), ','), '}'),
            ''),
        kvs.value.value, kvs.value.string_value, kvs.value.bool_value, kvs.value.int_value,
        kvs.value.double_value, kvs.value.bytes_value, kvs.value.array_value, kvs.value.kvlist_value)),
        'Map(LowCardinality(String), String)') AS attributes_map,
    id -> if(replaceAll(id, '\0', '') = '', '', lower(hex(id))) AS hex_id,
    ns -> fromUnixTimestamp64Nano(toInt64(ns)) AS nano_time
SELECT
    nano_time(span.start_time_unix_nano) AS Timestamp,
    hex_id(span.trace_id) AS TraceId,
    hex_id(span.span_id) AS SpanId,
    hex_id(span.parent_span_id) AS ParentSpanId,
    span.trace_state AS TraceState,
    span.name AS SpanName,
    ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'][span.kind + 1] AS SpanKind,
    service_name AS ServiceName,
    resource_attributes AS ResourceAttributes,
    scope_name AS ScopeName,
    scope_version AS ScopeVersion,
    attributes_map(span.attributes) AS SpanAttributes,
    span.end_time_unix_nano - span.start_time_unix_nano AS Duration,
    ['Unset', 'Ok', 'Error'][span.status.code + 1] AS StatusCode,
    forktrace_redact(span.status.message) AS StatusMessage,
    arrayMap(t -> nano_time(t), span.events.time_unix_nano) AS `Events.Timestamp`,
    span.events.name AS `Events.Name`,
    arrayMap(kvs -> attributes_map(kvs), span.events.attributes) AS `Events.Attributes`,
    arrayMap(id -> hex_id(id), span.links.trace_id) AS `Links.TraceId`,
    arrayMap(id -> hex_id(id), span.links.span_id) AS `Links.SpanId`,
    span.links.trace_state AS `Links.TraceState`,
    arrayMap(kvs -> attributes_map(kvs), span.links.attributes) AS `Links.Attributes`
FROM (
    SELECT
        attributes_map(resource_spans.resource.attributes) AS resource_attributes,
        resource_attributes['service.name'] AS service_name,
        scope_spans.scope.name AS scope_name,
        scope_spans.scope.version AS scope_version,
        scope_spans.spans AS spans
    FROM otel_traces_otlp_ingest
    ARRAY JOIN resource_spans
    ARRAY JOIN resource_spans.scope_spans AS scope_spans
)
ARRAY JOIN spans AS span;

ALTER TABLE otel_traces_local ON CLUSTER forktrace MODIFY SETTING non_replicated_deduplication_window = 10000;

ALTER TABLE otel_traces_trace_id_ts_local ON CLUSTER forktrace MODIFY SETTING non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS forktrace_spans_local ON CLUSTER forktrace (
    run_id String CODEC(ZSTD(1)),
    session_id String CODEC(ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(1)),
    is_root UInt8,
    kind LowCardinality(String),
    name LowCardinality(String),
    service_name LowCardinality(String),
    agent LowCardinality(String),
    fork_id String CODEC(ZSTD(1)),
    branch_id String CODEC(ZSTD(1)),
    branch_path String CODEC(ZSTD(1)),
    start DateTime64(9) CODEC(Delta, ZSTD(1)),
    end DateTime64(9) CODEC(Delta, ZSTD(1)),
    duration_ns UInt64 CODEC(ZSTD(1)),
    status LowCardinality(String),
    status_message String CODEC(ZSTD(1)),
    model LowCardinality(String),
    input_tokens UInt64 CODEC(ZSTD(1)),
    output_tokens UInt64 CODEC(ZSTD(1)),
    reasoning_tokens UInt64 CODEC(ZSTD(1)),
    tool_name LowCardinality(String),
    tool_call_id String CODEC(ZSTD(1)),
    tool_arguments String CODEC(ZSTD(1)),
    tool_result String CODEC(ZSTD(1)),
    tool_arguments_hash UInt64 CODEC(ZSTD(1)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    event_times Array(DateTime64(9)) CODEC(ZSTD(1)),
    event_names Array(LowCardinality(String)) CODEC(ZSTD(1)),
    event_attributes Array(Map(LowCardinality(String), String)) CODEC(ZSTD(1))
) ENGINE = ReplicatedMergeTree
PARTITION BY toDate(start)
ORDER BY (run_id, kind, start)
SETTINGS index_granularity = 2048, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS forktrace_spans ON CLUSTER forktrace AS forktrace_spans_local
ENGINE = Distributed(forktrace, currentDatabase(), forktrace_spans_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_spans_mv ON CLUSTER forktrace
TO forktrace_spans_local
AS WITH
    SpanAttributes['forktrace.kind'] AS forktrace_kind,
    SpanAttributes['gen_ai.operation.name'] AS operation,
    upper(SpanAttributes['openinference.span.kind']) AS openinference_kind,
    multiIf(
        forktrace_kind != '', forktrace_kind,
        operation IN ('chat', 'text_completion', 'generate_content'), 'llm',
        operation = 'execute_tool', 'tool',
        operation IN ('invoke_agent', 'create_agent'), 'agent',
        openinference_kind = 'LLM', 'llm',
        openinference_kind = 'TOOL', 'tool',
        openinference_kind = 'AGENT', 'agent',
        openinference_kind = 'CHAIN', 'chain',
        'other'
    ) AS normalised_kind,
    normalised_kind = 'llm' AS is_model_call,
    multiIf(
        SpanAttributes['gen_ai.tool.name'] != '', SpanAttributes['gen_ai.tool.name'],
        SpanAttributes['tool.name'] != '', SpanAttributes['tool.name'],
        normalised_kind = 'tool', SpanName,
        ''
    ) AS normalised_tool_name,
    multiIf(
        SpanAttributes['gen_ai.tool.call.arguments'] != '', SpanAttributes['gen_ai.tool.call.arguments'],
        openinference_kind = 'TOOL', SpanAttributes['input.value'],
        ''
    ) AS tool_arguments_full,
    multiIf(
        SpanAttributes['gen_ai.tool.call.result'] != '', SpanAttributes['gen_ai.tool.call.result'],
        openinference_kind = 'TOOL', SpanAttributes['output.value'],
        ''
    ) AS tool_result_full
SELECT
    if(SpanAttributes['forktrace.run.id'] != '', SpanAttributes['forktrace.run.id'], TraceId) AS run_id,
    multiIf(
        SpanAttributes['forktrace.session.id'] != '', SpanAttributes['forktrace.session.id'],
        SpanAttributes['gen_ai.conversation.id'] != '', SpanAttributes['gen_ai.conversation.id'],
        SpanAttributes['session.id']
    ) AS session_id,
    TraceId AS trace_id,
    SpanId AS span_id,
    ParentSpanId AS parent_span_id,
    ParentSpanId = '' AS is_root,
    normalised_kind AS kind,
    SpanName AS name,
    ServiceName AS service_name,
    multiIf(
        SpanAttributes['forktrace.agent.name'] != '', SpanAttributes['forktrace.agent.name'],
        SpanAttributes['gen_ai.agent.name'] != '', SpanAttributes['gen_ai.agent.name'],
        SpanAttributes['agent.name'] != '', SpanAttributes['agent.name'],
        normalised_kind = 'agent', SpanName,
        ''
    ) AS agent,
    SpanAttributes['forktrace.fork.id'] AS fork_id,
    SpanAttributes['forktrace.branch.id'] AS branch_id,
    SpanAttributes['forktrace.branch.path'] AS branch_path,
    Timestamp AS start,
    Timestamp + toIntervalNanosecond(Duration) AS end,
    Duration AS duration_ns,
    StatusCode AS status,
    if(
        StatusMessage != '',
        StatusMessage,
        Events.Attributes[indexOf(Events.Name, 'exception')]['exception.message']
    ) AS status_message,
    multiIf(
        SpanAttributes['gen_ai.response.model'] != '', SpanAttributes['gen_ai.response.model'],
        SpanAttributes['gen_ai.request.model'] != '', SpanAttributes['gen_ai.request.model'],
        SpanAttributes['llm.model_name']
    ) AS model,
    if(is_model_call, toUInt64OrZero(multiIf(
        SpanAttributes['gen_ai.usage.input_tokens'] != '', SpanAttributes['gen_ai.usage.input_tokens'],
        SpanAttributes['llm.token_count.prompt'])), 0) AS input_tokens,
    if(is_model_call, toUInt64OrZero(multiIf(
        SpanAttributes['gen_ai.usage.output_tokens'] != '', SpanAttributes['gen_ai.usage.output_tokens'],
        SpanAttributes['llm.token_count.completion'])), 0) AS output_tokens,
    if(is_model_call, toUInt64OrZero(multiIf(
        SpanAttributes['gen_ai.usage.reasoning.output_tokens'] != '',
        SpanAttributes['gen_ai.usage.reasoning.output_tokens'],
        SpanAttributes['llm.token_count.completion_details.reasoning'])), 0) AS reasoning_tokens,
    normalised_tool_name AS tool_name,
    SpanAttributes['gen_ai.tool.call.id'] AS tool_call_id,
    leftUTF8(tool_arguments_full, 500) AS tool_arguments,
    leftUTF8(tool_result_full, 500) AS tool_result,
    if(normalised_tool_name != '', cityHash64(normalised_tool_name, tool_arguments_full), 0)
        AS tool_arguments_hash,
    mapExtractKeyLike(SpanAttributes, 'forktrace.%') AS attributes,
    arrayFilter((t, n) -> startsWith(n, 'forktrace.'), Events.Timestamp, Events.Name) AS event_times,
    arrayFilter(n -> startsWith(n, 'forktrace.'), Events.Name) AS event_names,
    arrayFilter((a, n) -> startsWith(n, 'forktrace.'), Events.Attributes, Events.Name) AS event_attributes
FROM otel_traces_local
WHERE SpanAttributes['forktrace.run.id'] != ''
   OR forktrace_kind != ''
   OR operation != ''
   OR openinference_kind != '';

CREATE TABLE IF NOT EXISTS forktrace_run_totals_local ON CLUSTER forktrace (
    run_id String,
    session_id SimpleAggregateFunction(max, String),
    name SimpleAggregateFunction(max, String),
    goal SimpleAggregateFunction(max, String),
    service_name SimpleAggregateFunction(max, String),
    outcome SimpleAggregateFunction(max, String),
    trace_ids SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    agents SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    start SimpleAggregateFunction(min, DateTime64(9)),
    end SimpleAggregateFunction(max, DateTime64(9)),
    spans SimpleAggregateFunction(sum, UInt64),
    forks SimpleAggregateFunction(sum, UInt64),
    branches SimpleAggregateFunction(sum, UInt64),
    decisions SimpleAggregateFunction(sum, UInt64),
    tool_calls SimpleAggregateFunction(sum, UInt64),
    llm_calls SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    interventions SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    usage_by_model SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(UInt64), Array(UInt64)))
) ENGINE = ReplicatedAggregatingMergeTree
ORDER BY run_id
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS forktrace_run_totals ON CLUSTER forktrace AS forktrace_run_totals_local
ENGINE = Distributed(forktrace, currentDatabase(), forktrace_run_totals_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_run_totals_mv ON CLUSTER forktrace
TO forktrace_run_totals_local
AS SELECT
    run_id,
    max(session_id) AS session_id,
    max(multiIf(
        kind = 'run', if(attributes['forktrace.run.name'] != '', attributes['forktrace.run.name'], name),
        is_root, name,
        '')) AS name,
    max(attributes['forktrace.run.goal']) AS goal,
    max(toString(service_name)) AS service_name,
    max(if(kind = 'run' OR is_root,
        multiIf(attributes['forktrace.run.outcome'] != '', attributes['forktrace.run.outcome'],
                status = 'Error', 'failed',
                'succeeded'),
        '')) AS outcome,
    groupUniqArray(trace_id) AS trace_ids,
    groupUniqArrayIf(toString(agent), agent != '') AS agents,
    min(start) AS start,
    max(end) AS end,
    count() AS spans,
    countIf(kind = 'fork') AS forks,
    countIf(kind = 'branch') AS branches,
    countIf(kind = 'decision') AS decisions,
    countIf(kind = 'tool') AS tool_calls,
    countIf(kind = 'llm') AS llm_calls,
    countIf(status = 'Error' AND kind NOT IN ('run', 'agent', 'fork', 'branch')) AS errors,
    sum(countEqual(event_names, 'forktrace.intervention')) AS interventions,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sumMap(
        if(kind = 'llm', [lower(toString(model))], []),
        if(kind = 'llm', [span.input_tokens], []),
        if(kind = 'llm', [span.output_tokens], [])
    ) AS usage_by_model
FROM forktrace_spans_local AS span
GROUP BY run_id;

CREATE TABLE IF NOT EXISTS forktrace_usage_local ON CLUSTER forktrace (
    run_id String,
    branch_id String,
    agent String,
    model String,
    branch_path SimpleAggregateFunction(max, String),
    spans SimpleAggregateFunction(sum, UInt64),
    llm_calls SimpleAggregateFunction(sum, UInt64),
    tool_calls SimpleAggregateFunction(sum, UInt64),
    decisions SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    reasoning_tokens SimpleAggregateFunction(sum, UInt64)
) ENGINE = ReplicatedAggregatingMergeTree
ORDER BY (run_id, branch_id, agent, model)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS forktrace_usage ON CLUSTER forktrace AS forktrace_usage_local
ENGINE = Distributed(forktrace, currentDatabase(), forktrace_usage_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_usage_mv ON CLUSTER forktrace
TO forktrace_usage_local
AS SELECT
    run_id,
    branch_id,
    toString(agent) AS agent,
    if(kind = 'llm', lower(toString(model)), '') AS model,
    max(branch_path) AS branch_path,
    count() AS spans,
    countIf(kind = 'llm') AS llm_calls,
    countIf(kind = 'tool') AS tool_calls,
    countIf(kind = 'decision') AS decisions,
    countIf(status = 'Error' AND kind NOT IN ('run', 'agent', 'fork', 'branch')) AS errors,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens
FROM forktrace_spans_local
GROUP BY run_id, branch_id, agent, model;

CREATE TABLE IF NOT EXISTS forktrace_branch_facts_local ON CLUSTER forktrace (
    run_id String,
    branch_id String,
    fork_id SimpleAggregateFunction(max, String),
    branch_path SimpleAggregateFunction(max, String),
    branch_index SimpleAggregateFunction(max, Int64) DEFAULT -1,
    label SimpleAggregateFunction(max, String),
    agent SimpleAggregateFunction(max, String),
    start SimpleAggregateFunction(min, Nullable(DateTime64(9))),
    end SimpleAggregateFunction(max, Nullable(DateTime64(9))),
    failed SimpleAggregateFunction(max, UInt8),
    status_message SimpleAggregateFunction(max, String),
    own_outcome SimpleAggregateFunction(max, String),
    own_outcome_reason SimpleAggregateFunction(max, String),
    event_outcome SimpleAggregateFunction(max, String),
    event_outcome_reason SimpleAggregateFunction(max, String),
    spans SimpleAggregateFunction(sum, UInt64),
    llm_calls SimpleAggregateFunction(sum, UInt64),
    tool_calls SimpleAggregateFunction(sum, UInt64),
    decisions SimpleAggregateFunction(sum, UInt64),
    errors SimpleAggregateFunction(sum, UInt64),
    input_tokens SimpleAggregateFunction(sum, UInt64),
    output_tokens SimpleAggregateFunction(sum, UInt64),
    usage_by_model SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(UInt64), Array(UInt64)))
) ENGINE = ReplicatedAggregatingMergeTree
ORDER BY (run_id, branch_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS forktrace_branch_facts ON CLUSTER forktrace AS forktrace_branch_facts_local
ENGINE = Distributed(forktrace, currentDatabase(), forktrace_branch_facts_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_branch_spans_mv ON CLUSTER forktrace
TO forktrace_branch_facts_local
AS SELECT
    run_id,
    if(branch_id != '', branch_id, span_id) AS branch_id,
    fork_id,
    branch_path,
    toInt64OrDefault(attributes['forktrace.branch.index'], toInt64(-1)) AS branch_index,
    attributes['forktrace.branch.label'] AS label,
    toString(agent) AS agent,
    toNullable(start) AS start,
    toNullable(end) AS end,
    toUInt8(status = 'Error') AS failed,
    status_message,
    attributes['forktrace.branch.outcome'] AS own_outcome,
    attributes['forktrace.branch.outcome_reason'] AS own_outcome_reason,
    '' AS event_outcome,
    '' AS event_outcome_reason
FROM forktrace_spans_local
WHERE kind = 'branch';

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_branch_outcome_events_mv ON CLUSTER forktrace
TO forktrace_branch_facts_local
AS SELECT
    run_id,
    event['forktrace.branch.id'] AS branch_id,
    span_id AS fork_id,
    '' AS branch_path,
    toInt64(-1) AS branch_index,
    '' AS label,
    '' AS agent,
    CAST(NULL AS Nullable(DateTime64(9))) AS start,
    CAST(NULL AS Nullable(DateTime64(9))) AS end,
    toUInt8(0) AS failed,
    '' AS status_message,
    '' AS own_outcome,
    '' AS own_outcome_reason,
    event['forktrace.branch.outcome'] AS event_outcome,
    event['forktrace.branch.outcome_reason'] AS event_outcome_reason
FROM forktrace_spans_local
ARRAY JOIN arrayFilter((a, n) -> n = 'forktrace.branch.outcome', event_attributes, event_names) AS event
WHERE kind = 'fork' AND has(event_names, 'forktrace.branch.outcome');

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_branch_usage_mv ON CLUSTER forktrace
TO forktrace_branch_facts_local
AS SELECT
    run_id,
    branch_id,
    maxIf(fork_id, kind != 'fork') AS fork_id,
    max(branch_path) AS branch_path,
    count() AS spans,
    countIf(kind = 'llm') AS llm_calls,
    countIf(kind = 'tool') AS tool_calls,
    countIf(kind = 'decision') AS decisions,
    countIf(status = 'Error' AND kind NOT IN ('run', 'agent', 'fork', 'branch')) AS errors,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sumMap(
        if(kind = 'llm', [lower(toString(model))], []),
        if(kind = 'llm', [span.input_tokens], []),
        if(kind = 'llm', [span.output_tokens], [])
    ) AS usage_by_model
FROM forktrace_spans_local AS span
WHERE branch_id != ''
GROUP BY run_id, branch_id;

CREATE TABLE IF NOT EXISTS forktrace_fork_facts_local ON CLUSTER forktrace (
    run_id String,
    fork_id String,
    name String,
    strategy LowCardinality(String),
    branch_count Nullable(Int64),
    winner_branch_id String,
    criterion String,
    parent_branch_id String,
    parent_branch_path String,
    agent String,
    start DateTime64(9),
    end DateTime64(9),
    failed UInt8
) ENGINE = ReplicatedReplacingMergeTree(end)
ORDER BY (run_id, fork_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS forktrace_fork_facts ON CLUSTER forktrace AS forktrace_fork_facts_local
ENGINE = Distributed(forktrace, currentDatabase(), forktrace_fork_facts_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_fork_facts_mv ON CLUSTER forktrace
TO forktrace_fork_facts_local
AS SELECT
    run_id,
    if(fork_id != '', fork_id, span_id) AS fork_id,
    if(attributes['forktrace.fork.name'] != '', attributes['forktrace.fork.name'], toString(name)) AS name,
    attributes['forktrace.fork.strategy'] AS strategy,
    toInt64OrNull(attributes['forktrace.fork.branch_count']) AS branch_count,
    attributes['forktrace.fork.winner'] AS winner_branch_id,
    attributes['forktrace.fork.criterion'] AS criterion,
    branch_id AS parent_branch_id,
    branch_path AS parent_branch_path,
    toString(agent) AS agent,
    start,
    end,
    toUInt8(status = 'Error') AS failed
FROM forktrace_spans_local
WHERE kind = 'fork';

CREATE TABLE IF NOT EXISTS forktrace_intervention_events_local ON CLUSTER forktrace (
    run_id String,
    session_id String,
    time DateTime64(9),
    kind LowCardinality(String),
    author String,
    message String,
    agent String,
    fork_id String,
    branch_id String,
    branch_path String,
    span_id String,
    span_name String
) ENGINE = ReplicatedMergeTree
ORDER BY (run_id, time)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS forktrace_intervention_events ON CLUSTER forktrace AS forktrace_intervention_events_local
ENGINE = Distributed(forktrace, currentDatabase(), forktrace_intervention_events_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_intervention_events_mv ON CLUSTER forktrace
TO forktrace_intervention_events_local
AS SELECT
    run_id,
    session_id,
    event.1 AS time,
    event.2['kind'] AS kind,
    event.2['author'] AS author,
    event.2['message'] AS message,
    toString(agent) AS agent,
    fork_id,
    if(event.2['forktrace.branch.id'] != '', event.2['forktrace.branch.id'], branch_id) AS branch_id,
    if(event.2['forktrace.branch.path'] != '', event.2['forktrace.branch.path'], branch_path) AS branch_path,
    span_id,
    toString(name) AS span_name
FROM forktrace_spans_local
ARRAY JOIN arrayFilter(
    e -> e.3 = 'forktrace.intervention',
    arrayZip(event_times, event_attributes, event_names)) AS event
WHERE has(event_names, 'forktrace.intervention');

CREATE TABLE IF NOT EXISTS forktrace_model_prices ON CLUSTER forktrace (
    model String,
    provider LowCardinality(String),
    input_per_million Float64,
    output_per_million Float64,
    price_date Date,
    source String,
    updated DateTime64(3) DEFAULT now64(3)
) ENGINE = ReplicatedReplacingMergeTree(updated)
ORDER BY model;

INSERT INTO forktrace_model_prices (model, provider, input_per_million, output_per_million, price_date, source, updated)
SELECT model, provider, input, output, toDate(date), source, toDateTime64(date, 3)
FROM values(
    'model String, provider String, input Float64, output Float64, date String, source String',
    ('gpt-5', 'openai', 1.25, 10.0, '2025-11-24', 'openai.com/api/pricing'),
    ('gpt-5-mini', 'openai', 0.25, 2.0, '2025-11-24', 'openai.com/api/pricing'),
    ('gpt-5-nano', 'openai', 0.05, 0.4, '2025-11-24', 'openai.com/api/pricing'),
    ('gpt-4.1', 'openai', 2.0, 8.0, '2025-11-24', 'openai.com/api/pricing'),
    ('gpt-4.1-mini', 'openai', 0.4, 1.6, '2025-11-24', 'openai.com/api/pricing'),
    ('gpt-4.1-nano', 'openai', 0.1, 0.4, '2025-11-24', 'openai.com/api/pricing'),
    ('gpt-4o', 'openai', 2.5, 10.0, '2025-11-24', 'openai.com/api/pricing'),
    ('gpt-4o-mini', 'openai', 0.15, 0.6, '2025-11-24', 'openai.com/api/pricing'),
    ('o3', 'openai', 2.0, 8.0, '2025-11-24', 'openai.com/api/pricing'),
    ('o3-mini', 'openai', 1.1, 4.4, '2025-11-24', 'openai.com/api/pricing'),
    ('o4-mini', 'openai', 1.1, 4.4, '2025-11-24', 'openai.com/api/pricing'),
    ('o1', 'openai', 15.0, 60.0, '2025-11-24', 'openai.com/api/pricing'),
    ('claude-opus-4-5', 'anthropic', 5.0, 25.0, '2025-11-24', 'anthropic.com/pricing'),
    ('claude-opus-4-1', 'anthropic', 15.0, 75.0, '2025-11-24', 'anthropic.com/pricing'),
    ('claude-opus-4', 'anthropic', 15.0, 75.0, '2025-11-24', 'anthropic.com/pricing'),
    ('claude-sonnet-4-5', 'anthropic', 3.0, 15.0, '2025-11-24', 'anthropic.com/pricing'),
    ('claude-sonnet-4', 'anthropic', 3.0, 15.0, '2025-11-24', 'anthropic.com/pricing'),
    ('claude-3-7-sonnet', 'anthropic', 3.0, 15.0, '2025-11-24', 'anthropic.com/pricing'),
    ('claude-haiku-4-5', 'anthropic', 1.0, 5.0, '2025-11-24', 'anthropic.com/pricing'),
    ('claude-3-5-haiku', 'anthropic', 0.8, 4.0, '2025-11-24', 'anthropic.com/pricing'),
    ('gemini-2.5-pro', 'google', 1.25, 10.0, '2025-11-24', 'ai.google.dev/pricing'),
    ('gemini-2.5-flash', 'google', 0.3, 2.5, '2025-11-24', 'ai.google.dev/pricing'),
    ('gemini-2.5-flash-lite', 'google', 0.1, 0.4, '2025-11-24', 'ai.google.dev/pricing'),
    ('gemini-2.0-flash', 'google', 0.1, 0.4, '2025-11-24', 'ai.google.dev/pricing'),
    ('gemini-2.0-flash-lite', 'google', 0.075, 0.3, '2025-11-24', 'ai.google.dev/pricing')
);

CREATE OR REPLACE VIEW forktrace_prices ON CLUSTER forktrace AS
SELECT
    model,
    argMax(provider, updated) AS provider,
    argMax(input_per_million, updated) AS input_per_million,
    argMax(output_per_million, updated) AS output_per_million,
    argMax(price_date, updated) AS price_date,
    argMax(source, updated) AS source
FROM forktrace_model_prices
GROUP BY model;

CREATE OR REPLACE VIEW forktrace_price_list ON CLUSTER forktrace AS
SELECT
    groupArray(model) AS models,
    groupArray(input_per_million) AS input_per_million,
    groupArray(output_per_million) AS output_per_million
FROM (SELECT * FROM forktrace_prices ORDER BY length(model) DESC, model);

CREATE OR REPLACE VIEW forktrace_usage_cost ON CLUSTER forktrace AS
WITH (SELECT (models, input_per_million, output_per_million) FROM forktrace_price_list) AS prices
SELECT
    run_id, branch_id, agent, model,
    CAST(max(branch_path), 'String') AS branch_path,
    sum(spans) AS spans,
    sum(llm_calls) AS llm_calls,
    sum(tool_calls) AS tool_calls,
    sum(decisions) AS decisions,
    sum(errors) AS errors,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(reasoning_tokens) AS reasoning_tokens,
    arrayFirstIndex(m -> startsWith(model, m), prices.1) AS price_entry,
    prices.1[price_entry] AS priced_as,
    multiIf(
        input_tokens + output_tokens = 0, toNullable(toFloat64(0)),
        price_entry = 0, NULL,
        (input_tokens * prices.2[price_entry] + output_tokens * prices.3[price_entry]) / 1e6
    ) AS cost
FROM forktrace_usage
WHERE {run_id:String} = '' OR run_id = {run_id:String}
GROUP BY run_id, branch_id, agent, model;

CREATE OR REPLACE VIEW forktrace_branches ON CLUSTER forktrace AS
WITH
    mapFromArrays(
        groupArray(branch_id) OVER (PARTITION BY run_id),
        groupArray(parent_branch_id) OVER (PARTITION BY run_id)) AS parents,
    groupArrayIf(branch_id, is_waste) OVER (PARTITION BY run_id) AS losing,
    groupArray((branch_id, depth, direct)) OVER (PARTITION BY run_id) AS run_rows,
    arrayFilter(
        r -> has(arrayFold(
            (chain, step) -> if(parents[chain[-1]] != '', arrayPushBack(chain, parents[chain[-1]]), chain),
            range(greatest(r.2, 1)), [r.1]), branch_id),
        run_rows) AS subtree
SELECT
    * EXCEPT (direct, price_entries),
    arrayFold(
        (chain, step) -> if(parents[chain[-1]] != '', arrayPushBack(chain, parents[chain[-1]]), chain),
        range(greatest(depth, 1)), [branch_id]) AS ancestors,
    arrayExists(a -> has(losing, a), ancestors) AS in_waste,
    arraySum(r -> r.3.1, subtree) AS spans,
    arraySum(r -> r.3.2, subtree) AS llm_calls,
    arraySum(r -> r.3.3, subtree) AS tool_calls,
    arraySum(r -> r.3.4, subtree) AS decisions,
    arraySum(r -> r.3.5, subtree) AS errors,
    arraySum(r -> r.3.6, subtree) AS input_tokens,
    arraySum(r -> r.3.7, subtree) AS output_tokens,
    if(arrayExists(r -> r.3.9, subtree), NULL, round(arraySum(r -> r.3.8, subtree), 9)) AS cost,
    direct.6 AS own_input_tokens,
    direct.7 AS own_output_tokens,
    if(direct.9, NULL, round(direct.8, 9)) AS own_cost
    FROM (
        WITH (SELECT (models, input_per_million, output_per_million) FROM forktrace_price_list) AS prices
        SELECT
            b.run_id AS run_id,
            b.fork_id AS fork_id,
            f.name AS fork_name,
            f.strategy AS strategy,
            f.criterion AS criterion,
            f.parent_branch_id AS parent_branch_id,
            f.parent_branch_path AS fork_branch_path,
            b.branch_id AS branch_id,
            b.branch_path AS branch_path,
            if(b.branch_path = '', 0, length(splitByChar('.', b.branch_path))) AS depth,
            b.branch_index AS branch_index,
            b.label AS label,
            b.agent AS agent,
            multiIf(
                b.event_outcome != '', b.event_outcome,
                b.own_outcome != '', b.own_outcome,
                b.failed = 1, 'failed',
                f.winner_branch_id != '' AND f.winner_branch_id = b.branch_id, 'won',
                f.winner_branch_id != '', 'lost',
                b.end IS NULL, 'running',
                'completed'
            ) AS outcome,
            multiIf(
                b.event_outcome_reason != '', b.event_outcome_reason,
                b.own_outcome_reason != '', b.own_outcome_reason,
                b.failed = 1, b.status_message,
                ''
            ) AS outcome_reason,
            outcome = 'won' AS is_winner,
            outcome IN ('lost', 'abandoned', 'failed', 'cancelled') AS is_waste,
            b.start AS start,
            b.end AS end,
            intDiv(toUnixTimestamp64Nano(b.end) - toUnixTimestamp64Nano(b.start), 1000000) AS duration_ms,
            b.status_message AS error,
            arrayMap(m -> arrayFirstIndex(p -> startsWith(m, p), prices.1), b.usage.1) AS price_entries,
            (
                b.spans, b.llm_calls, b.tool_calls, b.decisions, b.errors,
                b.input_tokens, b.output_tokens,
                arraySum(arrayMap(
                    (e, i, o) -> if(e = 0, 0, (i * prices.2[e] + o * prices.3[e]) / 1e6),
                    price_entries, b.usage.2, b.usage.3)),
                arrayExists(e -> e = 0, price_entries)
            ) AS direct
        FROM (
            SELECT
                run_id,
                branch_id,
                CAST(max(fork_id), 'String') AS fork_id,
                CAST(max(branch_path), 'String') AS branch_path,
                CAST(max(branch_index), 'Int64') AS branch_index,
                CAST(max(label), 'String') AS label,
                CAST(max(agent), 'String') AS agent,
                min(start) AS start,
                max(end) AS end,
                max(failed) AS failed,
                CAST(max(status_message), 'String') AS status_message,
                CAST(max(own_outcome), 'String') AS own_outcome,
                CAST(max(own_outcome_reason), 'String') AS own_outcome_reason,
                CAST(max(event_outcome), 'String') AS event_outcome,
                CAST(max(event_outcome_reason), 'String') AS event_outcome_reason,
                sum(spans) AS spans,
                sum(llm_calls) AS llm_calls,
                sum(tool_calls) AS tool_calls,
                sum(decisions) AS decisions,
                sum(errors) AS errors,
                sum(input_tokens) AS input_tokens,
                sum(output_tokens) AS output_tokens,
                sumMap(usage_by_model) AS usage
            FROM forktrace_branch_facts
            WHERE {run_id:String} = '' OR run_id = {run_id:String}
            GROUP BY run_id, branch_id
        ) AS b
        LEFT JOIN (
            SELECT
                run_id,
                fork_id,
                argMax(name, end) AS name,
                argMax(strategy, end) AS strategy,
                argMax(criterion, end) AS criterion,
                argMax(winner_branch_id, end) AS winner_branch_id,
                argMax(parent_branch_id, end) AS parent_branch_id,
                argMax(parent_branch_path, end) AS parent_branch_path
            FROM forktrace_fork_facts
            WHERE {run_id:String} = '' OR run_id = {run_id:String}
            GROUP BY run_id, fork_id
        ) AS f ON f.run_id = b.run_id AND f.fork_id = b.fork_id
    )
ORDER BY run_id, start, branch_path;

CREATE OR REPLACE VIEW forktrace_forks ON CLUSTER forktrace AS
SELECT
    f.run_id AS run_id,
    f.fork_id AS fork_id,
    f.name AS name,
    f.strategy AS strategy,
    f.criterion AS criterion,
    f.parent_branch_id AS parent_branch_id,
    f.parent_branch_path AS parent_branch_path,
    f.agent AS agent,
    f.first_start AS start,
    f.last_end AS end,
    intDiv(toUnixTimestamp64Nano(f.last_end) - toUnixTimestamp64Nano(f.first_start), 1000000) AS duration_ms,
    f.failed AS failed,
    f.branch_count AS declared_branches,
    s.branches AS branches,
    if(s.winner_branch_id != '', s.winner_branch_id, f.winner_branch_id) AS winner_branch_id,
    s.winner_label AS winner_label,
    s.winner_path AS winner_path,
    s.branches_input_tokens AS input_tokens,
    s.branches_output_tokens AS output_tokens,
    s.branches_cost AS cost,
    s.wasted_tokens AS wasted_tokens,
    s.wasted_cost AS wasted_cost
FROM (
    SELECT
        run_id,
        fork_id,
        argMax(name, end) AS name,
        argMax(strategy, end) AS strategy,
        argMax(criterion, end) AS criterion,
        argMax(parent_branch_id, end) AS parent_branch_id,
        argMax(parent_branch_path, end) AS parent_branch_path,
        argMax(agent, end) AS agent,
        min(start) AS first_start,
        max(end) AS last_end,
        max(failed) AS failed,
        argMax(branch_count, end) AS branch_count,
        argMax(winner_branch_id, end) AS winner_branch_id
    FROM forktrace_fork_facts
    WHERE {run_id:String} = '' OR run_id = {run_id:String}
    GROUP BY run_id, fork_id
) AS f
LEFT JOIN (
    SELECT
        run_id,
        fork_id,
        count() AS branches,
        anyIf(branch_id, is_winner) AS winner_branch_id,
        anyIf(label, is_winner) AS winner_label,
        anyIf(branch_path, is_winner) AS winner_path,
        sum(input_tokens) AS branches_input_tokens,
        sum(output_tokens) AS branches_output_tokens,
        if(countIf(cost IS NULL) > 0, NULL, round(sum(cost), 9)) AS branches_cost,
        sumIf(input_tokens + output_tokens, is_waste) AS wasted_tokens,
        if(countIf(cost IS NULL AND is_waste) > 0, NULL, round(sumIf(cost, is_waste), 9)) AS wasted_cost
    FROM forktrace_branches(run_id = {run_id:String})
    GROUP BY run_id, fork_id
) AS s ON s.run_id = f.run_id AND s.fork_id = f.fork_id
ORDER BY f.run_id, f.first_start;

CREATE OR REPLACE VIEW forktrace_waste ON CLUSTER forktrace AS
SELECT
    run_id,
    countIf(is_waste) AS wasted_branches,
    sumIf(own_input_tokens + own_output_tokens, in_waste) AS wasted_tokens,
    if(countIf(in_waste AND own_cost IS NULL) > 0, NULL,
       round(sumIf(assumeNotNull(own_cost), in_waste), 9)) AS wasted_cost
FROM forktrace_branches(run_id = {run_id:String})
GROUP BY run_id
HAVING countIf(in_waste) > 0;

CREATE OR REPLACE VIEW forktrace_runs ON CLUSTER forktrace AS
SELECT
    r.session_id AS session_id,
    r.run_id AS run_id,
    r.name AS name,
    r.goal AS goal,
    r.service_name AS service_name,
    r.start AS start,
    r.end AS end,
    intDiv(toUnixTimestamp64Nano(r.end) - toUnixTimestamp64Nano(r.start), 1000000) AS duration_ms,
    if(r.outcome = '', 'running', r.outcome) AS status,
    arraySort(r.agents) AS agents,
    length(r.agents) AS agent_count,
    r.forks AS forks,
    r.branches AS branches,
    r.decisions AS decisions,
    r.tool_calls AS tool_calls,
    r.llm_calls AS llm_calls,
    r.errors AS errors,
    r.interventions AS interventions,
    r.input_tokens AS input_tokens,
    r.output_tokens AS output_tokens,
    if(has(r.price_entries, 0), NULL, round(arraySum(arrayMap(
        (e, i, o) -> (i * r.input_prices[e] + o * r.output_prices[e]) / 1e6,
        r.price_entries, r.usage.2, r.usage.3)), 9)) AS cost,
    arraySort(arrayFilter((m, e) -> e = 0, r.usage.1, r.price_entries)) AS unpriced_models,
    w.wasted_tokens AS wasted_tokens,
    if(w.run_id != '', w.wasted_cost, if(cost IS NULL, NULL, 0)) AS wasted_cost,
    w.wasted_tokens / nullIf(r.input_tokens + r.output_tokens, 0) AS waste_share,
    wasted_cost / nullIf(cost, 0) AS waste_cost_share,
    r.trace_ids AS trace_ids
FROM (
    WITH (SELECT (models, input_per_million, output_per_million) FROM forktrace_price_list) AS prices
    SELECT
        run_id,
        CAST(max(session_id), 'String') AS session_id,
        CAST(max(name), 'String') AS name,
        CAST(max(goal), 'String') AS goal,
        CAST(max(service_name), 'String') AS service_name,
        CAST(max(outcome), 'String') AS outcome,
        groupUniqArrayArray(trace_ids) AS trace_ids,
        groupUniqArrayArray(agents) AS agents,
        CAST(min(start), 'DateTime64(9)') AS start,
        CAST(max(end), 'DateTime64(9)') AS end,
        sum(forks) AS forks,
        sum(branches) AS branches,
        sum(decisions) AS decisions,
        sum(tool_calls) AS tool_calls,
        sum(llm_calls) AS llm_calls,
        sum(errors) AS errors,
        sum(interventions) AS interventions,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sumMap(usage_by_model) AS usage,
        arrayMap(m -> arrayFirstIndex(p -> startsWith(m, p), prices.1), usage.1) AS price_entries,
        prices.2 AS input_prices,
        prices.3 AS output_prices
    FROM forktrace_run_totals
    GROUP BY run_id
) AS r
LEFT JOIN forktrace_waste(run_id = '') AS w ON w.run_id = r.run_id;

CREATE OR REPLACE VIEW forktrace_decisions ON CLUSTER forktrace AS
SELECT
    run_id,
    start AS time,
    span_id,
    toString(agent) AS agent,
    branch_id,
    branch_path,
    attributes['forktrace.decision.question'] AS question,
    if(isValidJSON(attributes['forktrace.decision.options']),
        JSONExtract(attributes['forktrace.decision.options'], 'Array(String)'),
        arrayFilter(o -> o != '', [attributes['forktrace.decision.options']])) AS options,
    attributes['forktrace.decision.chosen'] AS chosen,
    attributes['forktrace.decision.reasoning'] AS reasoning,
    toFloat64OrNull(attributes['forktrace.decision.confidence']) AS confidence,
    attributes['forktrace.decision.maker'] AS maker,
    intDiv(duration_ns, 1000000) AS duration_ms
FROM forktrace_spans
WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'decision'
ORDER BY run_id, time;

CREATE OR REPLACE VIEW forktrace_tool_calls ON CLUSTER forktrace AS
SELECT
    run_id,
    start AS time,
    span_id,
    toString(tool_name) AS tool_name,
    tool_call_id AS call_id,
    tool_arguments AS arguments,
    tool_result AS result,
    tool_arguments_hash AS arguments_hash,
    intDiv(duration_ns, 1000000) AS duration_ms,
    if(status = 'Error', 'error', 'ok') AS status,
    status_message AS error,
    toString(agent) AS agent,
    branch_id,
    branch_path
FROM forktrace_spans
WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'tool'
ORDER BY run_id, time;

CREATE OR REPLACE VIEW forktrace_llm_calls ON CLUSTER forktrace AS
WITH (SELECT (models, input_per_million, output_per_million) FROM forktrace_price_list) AS prices
SELECT
    run_id,
    start AS time,
    span_id,
    toString(agent) AS agent,
    branch_id,
    branch_path,
    toString(model) AS model,
    input_tokens,
    output_tokens,
    reasoning_tokens,
    arrayFirstIndex(m -> startsWith(lower(model), m), prices.1) AS price_entry,
    if(price_entry = 0, NULL,
       (input_tokens * prices.2[price_entry] + output_tokens * prices.3[price_entry]) / 1e6) AS cost,
    intDiv(duration_ns, 1000000) AS duration_ms,
    if(status = 'Error', 'error', 'ok') AS status,
    status_message AS error,
    attributes['forktrace.llm.reasoning'] AS reasoning
FROM forktrace_spans
WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'llm'
ORDER BY run_id, time;

CREATE OR REPLACE VIEW forktrace_interventions ON CLUSTER forktrace AS
SELECT
    run_id,
    session_id,
    time,
    kind,
    author,
    message,
    agent,
    fork_id,
    branch_id,
    branch_path,
    span_id,
    span_name
FROM forktrace_intervention_events
WHERE {run_id:String} = '' OR run_id = {run_id:String}
ORDER BY run_id, time;

CREATE OR REPLACE VIEW forktrace_concurrency ON CLUSTER forktrace AS
SELECT
    lanes.run_id AS run_id,
    lanes.lane_kind AS lane_kind,
    lanes.lane AS lane,
    lanes.agent AS agent,
    lanes.branch_path AS branch_path,
    lanes.span_id AS span_id,
    lanes.start AS start,
    lanes.end AS end,
    intDiv(toUnixTimestamp64Nano(lanes.start) - toUnixTimestamp64Nano(r.start), 1000000) AS start_offset_ms,
    intDiv(toUnixTimestamp64Nano(lanes.end) - toUnixTimestamp64Nano(r.start), 1000000) AS end_offset_ms,
    intDiv(toUnixTimestamp64Nano(lanes.end) - toUnixTimestamp64Nano(lanes.start), 1000000) AS duration_ms,
    lanes.state AS state
FROM (
    SELECT
        run_id,
        'agent' AS lane_kind,
        toString(agent) AS lane,
        toString(agent) AS agent,
        branch_path,
        span_id,
        start,
        end,
        if(status = 'Error', 'failed', 'ok') AS state
    FROM forktrace_spans
    WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'agent'
    UNION ALL
    SELECT
        run_id,
        'branch' AS lane_kind,
        if(label != '', concat(branch_path, ' ', label), branch_path) AS lane,
        agent,
        branch_path,
        branch_id AS span_id,
        assumeNotNull(start) AS start,
        assumeNotNull(end) AS end,
        outcome AS state
    FROM forktrace_branches(run_id = {run_id:String})
    WHERE start IS NOT NULL AND end IS NOT NULL
) AS lanes
INNER JOIN (
    SELECT run_id, min(start) AS start
    FROM forktrace_run_totals
    WHERE {run_id:String} = '' OR run_id = {run_id:String}
    GROUP BY run_id
) AS r ON r.run_id = lanes.run_id
ORDER BY run_id, lane_kind, start;

CREATE OR REPLACE VIEW forktrace_peak_concurrency ON CLUSTER forktrace AS
SELECT
    run_id,
    maxIf(running, lane_kind = 'agent') AS peak_agents,
    argMaxIf(t, running, lane_kind = 'agent') AS peak_agents_at,
    maxIf(running, lane_kind = 'branch') AS peak_branches
FROM (
    SELECT
        run_id,
        lane_kind,
        t,
        sum(delta) OVER (
            PARTITION BY run_id, lane_kind ORDER BY t ASC, delta ASC
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS running
    FROM (
        SELECT run_id, lane_kind, edge.1 AS t, edge.2 AS delta
        FROM forktrace_concurrency(run_id = {run_id:String})
        ARRAY JOIN [(start, toInt32(1)), (end, toInt32(-1))] AS edge
    )
)
GROUP BY run_id;

CREATE OR REPLACE VIEW forktrace_agent_usage ON CLUSTER forktrace AS
SELECT
    run_id,
    agent,
    sum(llm_calls) AS llm_calls,
    sum(tool_calls) AS tool_calls,
    sum(decisions) AS decisions,
    sum(errors) AS errors,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    if(countIf(row_cost IS NULL) > 0, NULL, round(sum(row_cost), 9)) AS cost
FROM (SELECT *, cost AS row_cost FROM forktrace_usage_cost(run_id = {run_id:String}))
GROUP BY run_id, agent
ORDER BY run_id, agent;

CREATE OR REPLACE VIEW forktrace_session_runs ON CLUSTER forktrace AS
SELECT
    runs.*,
    intDiv(toUnixTimestamp64Nano(runs.start) - toUnixTimestamp64Nano(min(runs.start) OVER ()), 1000000) AS offset_ms
FROM forktrace_runs AS runs
WHERE runs.session_id = {session_id:String}
  AND runs.run_id IN (
      SELECT run_id FROM forktrace_run_totals
      GROUP BY run_id HAVING max(session_id) = {session_id:String})
ORDER BY runs.start;

CREATE OR REPLACE VIEW forktrace_fork_base ON CLUSTER forktrace AS
SELECT
    run_id,
    fork_id,
    name,
    strategy,
    criterion,
    parent_branch_id,
    parent_branch_path,
    agent,
    first_start AS start,
    last_end AS end,
    intDiv(toUnixTimestamp64Nano(last_end) - toUnixTimestamp64Nano(first_start), 1000000) AS duration_ms,
    failed,
    branch_count AS declared_branches,
    winner_branch_id
FROM (
    SELECT
        run_id,
        fork_id,
        argMax(name, end) AS name,
        argMax(strategy, end) AS strategy,
        argMax(criterion, end) AS criterion,
        argMax(parent_branch_id, end) AS parent_branch_id,
        argMax(parent_branch_path, end) AS parent_branch_path,
        argMax(agent, end) AS agent,
        min(start) AS first_start,
        max(end) AS last_end,
        max(failed) AS failed,
        argMax(branch_count, end) AS branch_count,
        argMax(winner_branch_id, end) AS winner_branch_id
    FROM forktrace_fork_facts
    WHERE {run_id:String} = '' OR run_id = {run_id:String}
    GROUP BY run_id, fork_id
)
ORDER BY run_id, start;

CREATE OR REPLACE VIEW forktrace_forks ON CLUSTER forktrace AS
SELECT
    f.* EXCEPT (winner_branch_id),
    s.branches AS branches,
    if(s.winner_branch_id != '', s.winner_branch_id, f.winner_branch_id) AS winner_branch_id,
    s.winner_label AS winner_label,
    s.winner_path AS winner_path,
    s.branches_input_tokens AS input_tokens,
    s.branches_output_tokens AS output_tokens,
    s.branches_cost AS cost,
    s.wasted_tokens AS wasted_tokens,
    s.wasted_cost AS wasted_cost
FROM forktrace_fork_base(run_id = {run_id:String}) AS f
LEFT JOIN (
    SELECT
        run_id,
        fork_id,
        count() AS branches,
        anyIf(branch_id, is_winner) AS winner_branch_id,
        anyIf(label, is_winner) AS winner_label,
        anyIf(branch_path, is_winner) AS winner_path,
        sum(input_tokens) AS branches_input_tokens,
        sum(output_tokens) AS branches_output_tokens,
        if(countIf(cost IS NULL) > 0, NULL, round(sum(cost), 9)) AS branches_cost,
        sumIf(input_tokens + output_tokens, is_waste) AS wasted_tokens,
        if(countIf(cost IS NULL AND is_waste) > 0, NULL, round(sumIf(cost, is_waste), 9)) AS wasted_cost
    FROM forktrace_branches(run_id = {run_id:String})
    GROUP BY run_id, fork_id
) AS s ON s.run_id = f.run_id AND s.fork_id = f.fork_id
ORDER BY f.run_id, f.start;

CREATE OR REPLACE VIEW forktrace_run_base ON CLUSTER forktrace AS
SELECT
    r.session_id AS session_id,
    r.run_id AS run_id,
    r.name AS name,
    r.goal AS goal,
    r.service_name AS service_name,
    r.start AS start,
    r.end AS end,
    intDiv(toUnixTimestamp64Nano(r.end) - toUnixTimestamp64Nano(r.start), 1000000) AS duration_ms,
    if(r.outcome = '', 'running', r.outcome) AS status,
    arraySort(r.agents) AS agents,
    length(r.agents) AS agent_count,
    r.forks AS forks,
    r.branches AS branches,
    r.decisions AS decisions,
    r.tool_calls AS tool_calls,
    r.llm_calls AS llm_calls,
    r.errors AS errors,
    r.interventions AS interventions,
    r.input_tokens AS input_tokens,
    r.output_tokens AS output_tokens,
    if(has(r.price_entries, 0), NULL, round(arraySum(arrayMap(
        (e, i, o) -> (i * r.input_prices[e] + o * r.output_prices[e]) / 1e6,
        r.price_entries, r.usage.2, r.usage.3)), 9)) AS cost,
    arraySort(arrayFilter((m, e) -> e = 0, r.usage.1, r.price_entries)) AS unpriced_models,
    r.trace_ids AS trace_ids
FROM (
    WITH (SELECT (models, input_per_million, output_per_million) FROM forktrace_price_list) AS prices
    SELECT
        run_id,
        CAST(max(session_id), 'String') AS session_id,
        CAST(max(name), 'String') AS name,
        CAST(max(goal), 'String') AS goal,
        CAST(max(service_name), 'String') AS service_name,
        CAST(max(outcome), 'String') AS outcome,
        groupUniqArrayArray(trace_ids) AS trace_ids,
        groupUniqArrayArray(agents) AS agents,
        CAST(min(start), 'DateTime64(9)') AS start,
        CAST(max(end), 'DateTime64(9)') AS end,
        sum(forks) AS forks,
        sum(branches) AS branches,
        sum(decisions) AS decisions,
        sum(tool_calls) AS tool_calls,
        sum(llm_calls) AS llm_calls,
        sum(errors) AS errors,
        sum(interventions) AS interventions,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sumMap(usage_by_model) AS usage,
        arrayMap(m -> arrayFirstIndex(p -> startsWith(m, p), prices.1), usage.1) AS price_entries,
        prices.2 AS input_prices,
        prices.3 AS output_prices
    FROM forktrace_run_totals
    GROUP BY run_id
) AS r;

CREATE OR REPLACE VIEW forktrace_runs ON CLUSTER forktrace AS
SELECT
    r.* EXCEPT (trace_ids),
    w.wasted_tokens AS wasted_tokens,
    if(w.run_id != '', w.wasted_cost, if(r.cost IS NULL, NULL, 0)) AS wasted_cost,
    w.wasted_tokens / nullIf(r.input_tokens + r.output_tokens, 0) AS waste_share,
    wasted_cost / nullIf(r.cost, 0) AS waste_cost_share,
    r.trace_ids AS trace_ids
FROM forktrace_run_base AS r
LEFT JOIN forktrace_waste(run_id = '') AS w ON w.run_id = r.run_id;

CREATE OR REPLACE VIEW forktrace_prices ON CLUSTER forktrace AS
SELECT model, provider, input_per_million, output_per_million, price_date, source
FROM forktrace_model_prices FINAL;

CREATE OR REPLACE VIEW forktrace_price_list ON CLUSTER forktrace AS
SELECT
    groupArray(model) AS models,
    groupArray(input_per_million) AS input_per_million,
    groupArray(output_per_million) AS output_per_million
FROM (
    SELECT model, input_per_million, output_per_million
    FROM forktrace_model_prices FINAL
    ORDER BY length(model) DESC, model
);

CREATE OR REPLACE VIEW forktrace_all_branches ON CLUSTER forktrace AS
SELECT
    * EXCEPT (direct, price_entries, parents, losing, subtree, at),
    hasAny(ancestors, losing) AS in_waste,
    subtree.2[at] AS spans,
    subtree.3[at] AS llm_calls,
    subtree.4[at] AS tool_calls,
    subtree.5[at] AS decisions,
    subtree.6[at] AS errors,
    subtree.7[at] AS input_tokens,
    subtree.8[at] AS output_tokens,
    if(subtree.10[at] > 0, NULL, round(subtree.9[at], 9)) AS cost,
    direct.6 AS own_input_tokens,
    direct.7 AS own_output_tokens,
    if(direct.9, NULL, round(direct.8, 9)) AS own_cost
FROM (
    SELECT
        *,
        sumMap(
            ancestors,
            arrayResize([direct.1], length(ancestors), direct.1),
            arrayResize([direct.2], length(ancestors), direct.2),
            arrayResize([direct.3], length(ancestors), direct.3),
            arrayResize([direct.4], length(ancestors), direct.4),
            arrayResize([direct.5], length(ancestors), direct.5),
            arrayResize([direct.6], length(ancestors), direct.6),
            arrayResize([direct.7], length(ancestors), direct.7),
            arrayResize([direct.8], length(ancestors), direct.8),
            arrayResize([toUInt64(direct.9)], length(ancestors), toUInt64(direct.9))
        ) OVER (PARTITION BY run_id) AS subtree,
        indexOf(subtree.1, branch_id) AS at
    FROM (
        SELECT
            *,
            mapFromArrays(
                groupArray(branch_id) OVER (PARTITION BY run_id),
                groupArray(parent_branch_id) OVER (PARTITION BY run_id)) AS parents,
            groupArrayIf(branch_id, is_waste) OVER (PARTITION BY run_id) AS losing,
            arrayFold(
                (chain, step) -> if(parents[chain[-1]] != '', arrayPushBack(chain, parents[chain[-1]]), chain),
                range(greatest(depth, 1)), [branch_id]) AS ancestors
        FROM (
            WITH (SELECT (models, input_per_million, output_per_million) FROM forktrace_price_list) AS prices
            SELECT
                b.run_id AS run_id,
                b.fork_id AS fork_id,
                f.name AS fork_name,
                f.strategy AS strategy,
                f.criterion AS criterion,
                f.parent_branch_id AS parent_branch_id,
                f.parent_branch_path AS fork_branch_path,
                b.branch_id AS branch_id,
                b.branch_path AS branch_path,
                if(b.branch_path = '', 0, length(splitByChar('.', b.branch_path))) AS depth,
                b.branch_index AS branch_index,
                b.label AS label,
                b.agent AS agent,
                multiIf(
                    b.event_outcome != '', b.event_outcome,
                    b.own_outcome != '', b.own_outcome,
                    b.failed = 1, 'failed',
                    f.winner_branch_id != '' AND f.winner_branch_id = b.branch_id, 'won',
                    f.winner_branch_id != '', 'lost',
                    b.end IS NULL, 'running',
                    'completed'
                ) AS outcome,
                multiIf(
                    b.event_outcome_reason != '', b.event_outcome_reason,
                    b.own_outcome_reason != '', b.own_outcome_reason,
                    b.failed = 1, b.status_message,
                    ''
                ) AS outcome_reason,
                outcome = 'won' AS is_winner,
                outcome IN ('lost', 'abandoned', 'failed', 'cancelled') AS is_waste,
                b.start AS start,
                b.end AS end,
                intDiv(toUnixTimestamp64Nano(b.end) - toUnixTimestamp64Nano(b.start), 1000000) AS duration_ms,
                b.status_message AS error,
                arrayMap(m -> arrayFirstIndex(p -> startsWith(m, p), prices.1), b.usage.1) AS price_entries,
                (
                    b.spans, b.llm_calls, b.tool_calls, b.decisions, b.errors,
                    b.input_tokens, b.output_tokens,
                    arraySum(arrayMap(
                        (e, i, o) -> if(e = 0, 0, (i * prices.2[e] + o * prices.3[e]) / 1e6),
                        price_entries, b.usage.2, b.usage.3)),
                    arrayExists(e -> e = 0, price_entries)
                ) AS direct
            FROM (
                SELECT
                    run_id,
                    branch_id,
                    CAST(max(fork_id), 'String') AS fork_id,
                    CAST(max(branch_path), 'String') AS branch_path,
                    CAST(max(branch_index), 'Int64') AS branch_index,
                    CAST(max(label), 'String') AS label,
                    CAST(max(agent), 'String') AS agent,
                    min(start) AS start,
                    max(end) AS end,
                    max(failed) AS failed,
                    CAST(max(status_message), 'String') AS status_message,
                    CAST(max(own_outcome), 'String') AS own_outcome,
                    CAST(max(own_outcome_reason), 'String') AS own_outcome_reason,
                    CAST(max(event_outcome), 'String') AS event_outcome,
                    CAST(max(event_outcome_reason), 'String') AS event_outcome_reason,
                    sum(spans) AS spans,
                    sum(llm_calls) AS llm_calls,
                    sum(tool_calls) AS tool_calls,
                    sum(decisions) AS decisions,
                    sum(errors) AS errors,
                    sum(input_tokens) AS input_tokens,
                    sum(output_tokens) AS output_tokens,
                    sumMap(usage_by_model) AS usage
                FROM forktrace_branch_facts
                GROUP BY run_id, branch_id
            ) AS b
            LEFT JOIN (
                SELECT
                    run_id,
                    fork_id,
                    argMax(name, end) AS name,
                    argMax(strategy, end) AS strategy,
                    argMax(criterion, end) AS criterion,
                    argMax(winner_branch_id, end) AS winner_branch_id,
                    argMax(parent_branch_id, end) AS parent_branch_id,
                    argMax(parent_branch_path, end) AS parent_branch_path
                FROM forktrace_fork_facts
                GROUP BY run_id, fork_id
            ) AS f ON f.run_id = b.run_id AND f.fork_id = b.fork_id
        )
    )
);

CREATE OR REPLACE VIEW forktrace_branches ON CLUSTER forktrace AS
SELECT *
FROM forktrace_all_branches
WHERE {run_id:String} = '' OR run_id = {run_id:String}
ORDER BY run_id, start, branch_path;

CREATE OR REPLACE VIEW forktrace_all_activity ON CLUSTER forktrace AS
WITH (SELECT (models, input_per_million, output_per_million) FROM forktrace_price_list) AS prices
SELECT
    run_id,
    toString(kind) AS kind,
    start AS time,
    span_id,
    toString(agent) AS agent,
    branch_id,
    branch_path,
    intDiv(duration_ns, 1000000) AS duration_ms,
    if(status = 'Error', 'error', 'ok') AS status,
    status_message AS error,
    attributes['forktrace.decision.question'] AS question,
    if(isValidJSON(attributes['forktrace.decision.options']),
        JSONExtract(attributes['forktrace.decision.options'], 'Array(String)'),
        arrayFilter(o -> o != '', [attributes['forktrace.decision.options']])) AS options,
    attributes['forktrace.decision.chosen'] AS chosen,
    attributes[if(kind = 'llm', 'forktrace.llm.reasoning', 'forktrace.decision.reasoning')] AS reasoning,
    toFloat64OrNull(attributes['forktrace.decision.confidence']) AS confidence,
    attributes['forktrace.decision.maker'] AS maker,
    toString(tool_name) AS tool_name,
    tool_call_id AS call_id,
    tool_arguments AS arguments,
    tool_result AS result,
    tool_arguments_hash AS arguments_hash,
    toString(model) AS model,
    input_tokens,
    output_tokens,
    reasoning_tokens,
    arrayFirstIndex(m -> startsWith(lower(model), m), prices.1) AS price_entry,
    if(price_entry = 0, NULL,
       (input_tokens * prices.2[price_entry] + output_tokens * prices.3[price_entry]) / 1e6) AS cost
FROM forktrace_spans
WHERE kind IN ('decision', 'tool', 'llm');

CREATE OR REPLACE VIEW forktrace_decisions ON CLUSTER forktrace AS
SELECT
    run_id, time, span_id, agent, branch_id, branch_path,
    question, options, chosen, reasoning, confidence, maker, duration_ms
FROM forktrace_all_activity
WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'decision'
ORDER BY run_id, time, span_id;

CREATE OR REPLACE VIEW forktrace_tool_calls ON CLUSTER forktrace AS
SELECT
    run_id, time, span_id, tool_name, call_id, arguments, result, arguments_hash,
    duration_ms, status, error, agent, branch_id, branch_path
FROM forktrace_all_activity
WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'tool'
ORDER BY run_id, time, span_id;

CREATE OR REPLACE VIEW forktrace_llm_calls ON CLUSTER forktrace AS
SELECT
    run_id, time, span_id, agent, branch_id, branch_path, model,
    input_tokens, output_tokens, reasoning_tokens, price_entry, cost,
    duration_ms, status, error, reasoning
FROM forktrace_all_activity
WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'llm'
ORDER BY run_id, time, span_id;

