-- The forktrace decision layer, part 2: small tables kept up to date from
-- forktrace_spans as rows arrive.
--
-- A run's spans arrive over many inserts and in any order (children end, and
-- are exported, before their parents), so every table here is keyed by run and
-- merges pieces: AggregatingMergeTree with SimpleAggregateFunction columns
-- (sum, min, max), which give the same answer whatever the order. The views
-- of 0103 always aggregate again (GROUP BY the key), so pieces not yet merged
-- by the engine are merged by the query.
--
-- Every table here has a deduplication window, as otel_traces has: a spool
-- segment replayed after a crash (same insert_deduplication_token) must add
-- nothing to the tables the views fill from it either.

-- One row per run: what the runs list shows.
CREATE TABLE IF NOT EXISTS forktrace_run_totals${local}${on_cluster} (
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
    -- (models, input tokens, output tokens): what the cost is computed from
    usage_by_model SimpleAggregateFunction(sumMap, Tuple(Array(String), Array(UInt64), Array(UInt64)))
) ENGINE = ${replicated}AggregatingMergeTree
ORDER BY run_id
SETTINGS non_replicated_deduplication_window = 10000;

-- cluster-only
CREATE TABLE IF NOT EXISTS forktrace_run_totals${on_cluster} AS forktrace_run_totals_local
ENGINE = Distributed(${cluster}, currentDatabase(), forktrace_run_totals_local, cityHash64(run_id));

-- errors counts the work that failed (model calls, tools, decisions, other
-- spans), not the run, agent, fork and branch spans an exception passed
-- through on its way out: one failure is one error.
CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_run_totals_mv${on_cluster}
TO forktrace_run_totals${local}
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
FROM forktrace_spans${local} AS span
GROUP BY run_id;

-- Work per (run, innermost branch, agent, model). A branch's whole subtree
-- is its own rows plus its descendants' (see forktrace_branches.ancestors),
-- and cost is tokens times the price of model, at query time. Keyed by the
-- branch's id, not its path: two forks one after the other in the same scope
-- number their branches alike.
CREATE TABLE IF NOT EXISTS forktrace_usage${local}${on_cluster} (
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
) ENGINE = ${replicated}AggregatingMergeTree
ORDER BY (run_id, branch_id, agent, model)
SETTINGS non_replicated_deduplication_window = 10000;

-- cluster-only
CREATE TABLE IF NOT EXISTS forktrace_usage${on_cluster} AS forktrace_usage_local
ENGINE = Distributed(${cluster}, currentDatabase(), forktrace_usage_local, cityHash64(run_id));

-- A fork span carries the lineage of the branch it was opened in, so it counts
-- there, not in its own branches.
CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_usage_mv${on_cluster}
TO forktrace_usage${local}
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
FROM forktrace_spans${local}
GROUP BY run_id, branch_id, agent, model;

-- One row per branch, from pieces that arrive apart: the branch span (label,
-- timing, its own outcome), the outcome event its fork span carries when the
-- fork ends (which wins: the losers are known only then), and the work done
-- directly in the branch (by the spans whose innermost branch it is, which
-- also make a branch still running visible).
CREATE TABLE IF NOT EXISTS forktrace_branch_facts${local}${on_cluster} (
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
) ENGINE = ${replicated}AggregatingMergeTree
ORDER BY (run_id, branch_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- cluster-only
CREATE TABLE IF NOT EXISTS forktrace_branch_facts${on_cluster} AS forktrace_branch_facts_local
ENGINE = Distributed(${cluster}, currentDatabase(), forktrace_branch_facts_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_branch_spans_mv${on_cluster}
TO forktrace_branch_facts${local}
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
FROM forktrace_spans${local}
WHERE kind = 'branch';

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_branch_outcome_events_mv${on_cluster}
TO forktrace_branch_facts${local}
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
FROM forktrace_spans${local}
ARRAY JOIN arrayFilter((a, n) -> n = 'forktrace.branch.outcome', event_attributes, event_names) AS event
WHERE kind = 'fork' AND has(event_names, 'forktrace.branch.outcome');

-- A fork span carries the lineage of the branch it was opened in: it is work
-- in that branch, but its fork id is its own, not the branch's fork.
CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_branch_usage_mv${on_cluster}
TO forktrace_branch_facts${local}
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
FROM forktrace_spans${local} AS span
WHERE branch_id != ''
GROUP BY run_id, branch_id;

-- One row per fork (a fork is one span: the engine keeps the latest copy of
-- a span exported twice).
CREATE TABLE IF NOT EXISTS forktrace_fork_facts${local}${on_cluster} (
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
) ENGINE = ${replicated}ReplacingMergeTree(end)
ORDER BY (run_id, fork_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- cluster-only
CREATE TABLE IF NOT EXISTS forktrace_fork_facts${on_cluster} AS forktrace_fork_facts_local
ENGINE = Distributed(${cluster}, currentDatabase(), forktrace_fork_facts_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_fork_facts_mv${on_cluster}
TO forktrace_fork_facts${local}
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
FROM forktrace_spans${local}
WHERE kind = 'fork';

-- Human interventions: span events, one row each.
CREATE TABLE IF NOT EXISTS forktrace_intervention_events${local}${on_cluster} (
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
) ENGINE = ${replicated}MergeTree
ORDER BY (run_id, time)
SETTINGS non_replicated_deduplication_window = 10000;

-- cluster-only
CREATE TABLE IF NOT EXISTS forktrace_intervention_events${on_cluster} AS forktrace_intervention_events_local
ENGINE = Distributed(${cluster}, currentDatabase(), forktrace_intervention_events_local, cityHash64(run_id));

CREATE MATERIALIZED VIEW IF NOT EXISTS forktrace_intervention_events_mv${on_cluster}
TO forktrace_intervention_events${local}
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
FROM forktrace_spans${local}
ARRAY JOIN arrayFilter(
    e -> e.3 = 'forktrace.intervention',
    arrayZip(event_times, event_attributes, event_names)) AS event
WHERE has(event_names, 'forktrace.intervention');
