-- The ingest path. The collector hands the raw OTLP ExportTraceServiceRequest
-- messages it spooled to the engine (FORMAT Protobuf, with the schema generated
-- from opentelemetry-proto), so decoding and flattening run inside ClickHouse on
-- whole batches instead of span by span in Python. Requests land in this Null
-- table, which stores nothing; the view below turns each one into otel_traces
-- rows exactly as the upstream OpenTelemetry Collector ClickHouse exporter
-- writes them.
--
-- Column names follow the protobuf fields (ClickHouse matches them by name).
-- ${otlp_key_values} is the type of a repeated KeyValue: its AnyValue carries an
-- Enum8 `value` column naming the member of the oneof that is set
-- (input_format_protobuf_oneof_presence), which tells 0, false and "" apart
-- from an absent value. Values are read three levels deep: a value, the members
-- of its array or key-value list, and their members' scalars; an array or list
-- on that third level is written as JSON null.
CREATE TABLE IF NOT EXISTS otel_traces_otlp_ingest${on_cluster} (
    resource_spans Array(Tuple(
        resource Tuple(attributes ${otlp_key_values}),
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
                attributes ${otlp_key_values},
                events Array(Tuple(time_unix_nano UInt64, name String, attributes ${otlp_key_values})),
                links Array(Tuple(trace_id String, span_id String, trace_state String, attributes ${otlp_key_values})),
                status Tuple(message String, code Int8)))))))
) ENGINE = Null;

-- Secrets in content: every string attribute value and the status message go
-- through forktrace_redact. Created here as the identity; the collector replaces
-- it with its redaction rules at start-up and re-sets this view's query, since
-- ClickHouse expands the function into the view when the view is created
-- (forktrace/collector/redaction.py).
CREATE FUNCTION IF NOT EXISTS forktrace_redact${on_cluster} AS (v) -> v;

-- Attribute values as the upstream exporter writes them (pdata's Value.AsString):
-- strings as they are, booleans and numbers in their string form, bytes as
-- base64, arrays and key-value lists as JSON (keys sorted, <>& escaped as Go's
-- encoding/json does). Ids are lowercase hex, all-zero ids empty.
CREATE MATERIALIZED VIEW IF NOT EXISTS otel_traces_otlp_ingest_mv${on_cluster}
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
    -- The oneof's members are passed to the lambda as separate subcolumn arrays
    -- (zero-copy reads of Array(Tuple)), not as whole tuples: a third cheaper.
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
    -- events and links by their subcolumns too, never as whole tuples
    arrayMap(t -> nano_time(t), span.events.time_unix_nano) AS `Events.Timestamp`,
    span.events.name AS `Events.Name`,
    arrayMap(kvs -> attributes_map(kvs), span.events.attributes) AS `Events.Attributes`,
    arrayMap(id -> hex_id(id), span.links.trace_id) AS `Links.TraceId`,
    arrayMap(id -> hex_id(id), span.links.span_id) AS `Links.SpanId`,
    span.links.trace_state AS `Links.TraceState`,
    arrayMap(kvs -> attributes_map(kvs), span.links.attributes) AS `Links.Attributes`
FROM (
    -- unnest resources and scopes first and keep only what each span needs from
    -- them, so the last ARRAY JOIN copies a small map per span, not the request,
    -- and service.name is looked up once per resource, not once per span
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

-- Exactly-once replay: the collector inserts each spool segment with its own
-- insert_deduplication_token, so a segment inserted just before a crash and
-- replayed after it is recognised and dropped, in otel_traces and in every
-- table a materialised view fills from it. (Replicated tables deduplicate by
-- default; this gives single-node MergeTree tables the same memory.)
ALTER TABLE otel_traces${local}${on_cluster} MODIFY SETTING non_replicated_deduplication_window = 10000;

ALTER TABLE otel_traces_trace_id_ts${local}${on_cluster} MODIFY SETTING non_replicated_deduplication_window = 10000;
