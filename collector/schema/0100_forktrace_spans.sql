-- The forktrace decision layer, part 1: forktrace_spans.
--
-- Every span that belongs to agent work, read once from otel_traces and
-- normalised in this one place: its kind (forktrace.kind, else the GenAI
-- operation name, else OpenInference's span kind), its run (forktrace.run.id,
-- else the trace: a trace written by another tool is a run), its agent, model,
-- tokens and tool name whichever convention wrote them. Tokens are kept on
-- model calls only, so an agent span that also reports its total usage is not
-- counted twice. Only otel_traces columns are read, so rows written by the
-- upstream OpenTelemetry Collector work the same.
--
-- Ordered by run, a run's spans are one narrow range: the run views read here
-- (and the small tables of 0101), never scan otel_traces.
CREATE TABLE IF NOT EXISTS forktrace_spans${local}${on_cluster} (
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
) ENGINE = ${replicated}MergeTree
PARTITION BY toDate(start)
ORDER BY (run_id, kind, start)
${ttl_start}
SETTINGS index_granularity = 2048, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000;

-- cluster-only
CREATE TABLE IF NOT EXISTS forktrace_spans${on_cluster} AS forktrace_spans_local
ENGINE = Distributed(${cluster}, currentDatabase(), forktrace_spans_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_spans_mv${on_cluster}
TO forktrace_spans${local}
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
FROM otel_traces${local}
WHERE SpanAttributes['forktrace.run.id'] != ''
   OR forktrace_kind != ''
   OR operation != ''
   OR openinference_kind != '';
