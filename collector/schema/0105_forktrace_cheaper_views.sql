-- The decision layer, part 5: cheaper views for `forktrace tree`, same
-- columns and answers. In the embedded engine a query's time is mostly the
-- engine analysing it, and that grows with every expression, lambda and
-- nested view it has to resolve (benchmarks/results/queries.md), so:

-- The prices, read with FINAL: forktrace_model_prices is a
-- ReplacingMergeTree(updated) keyed by model, so FINAL keeps the newest row
-- per model, as argMax(..., updated) did, with one view fewer to analyse
-- wherever a price is looked up.
CREATE OR REPLACE VIEW forktrace_prices${on_cluster} AS
SELECT model, provider, input_per_million, output_per_million, price_date, source
FROM forktrace_model_prices FINAL;

CREATE OR REPLACE VIEW forktrace_price_list${on_cluster} AS
SELECT
    groupArray(model) AS models,
    groupArray(input_per_million) AS input_per_million,
    groupArray(output_per_million) AS output_per_million
FROM (
    SELECT model, input_per_million, output_per_million
    FROM forktrace_model_prices FINAL
    ORDER BY length(model) DESC, model
);

-- Every run's branches: forktrace_branches (0103) for all runs, as a plain
-- view. Filter it with WHERE run_id = ... (or IN): the filter reaches both
-- tables it reads, through the LEFT JOIN and the windows (PARTITION BY
-- run_id), so one run costs one run's rows. A parameterised view costs the
-- engine more to analyse each time it is used, the more so the longer it is
-- (in chDB here: ~25 ms for this one, against ~5 ms through a plain view), so
-- the logic lives here and forktrace_branches(run_id) only filters it.
--
-- What a branch's whole subtree did is summed once per run rather than once
-- per branch: each branch lists its ancestors (itself included, through each
-- fork's parent branch), and one sumMap over the run adds the branch's own
-- work to every one of them. (0103 walked the chain of parents of every row
-- of the run for every branch: the same answer, and about a fifth of the
-- view's analysis time.) sumMap leaves out a key whose sums are all zero;
-- indexOf then gives 0, and [0] reads 0. The sums get their own subquery:
-- the engine's analyser copies an alias's expression into every place it is
-- used, and nine columns read them.
CREATE OR REPLACE VIEW forktrace_all_branches${on_cluster} AS
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
    -- rounded to a billionth of a dollar: float sums must not depend on row order
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
                -- the work done directly in this branch, and its cost
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

-- A run's branches (the tree): see 0103 for the columns, and forktrace_all_branches.
CREATE OR REPLACE VIEW forktrace_branches${on_cluster} AS
SELECT *
FROM forktrace_all_branches
WHERE {run_id:String} = '' OR run_id = {run_id:String}
ORDER BY run_id, start, branch_path;

-- What happened in every run, one row per decision, tool call and model call
-- (kind: decision, tool, llm), with the columns of forktrace_decisions,
-- forktrace_tool_calls and forktrace_llm_calls, which select from it. A plain
-- view: filter it with WHERE run_id = ... (the filter and kind reach the sort
-- key of forktrace_spans). `forktrace tree` reads a run's three kinds at once
-- here: the run's spans are read and decompressed once instead of three times
-- (on a run not read before, ~50 against ~90 ms in chDB at 10 million spans).
CREATE OR REPLACE VIEW forktrace_all_activity${on_cluster} AS
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
    -- decisions
    attributes['forktrace.decision.question'] AS question,
    if(isValidJSON(attributes['forktrace.decision.options']),
        JSONExtract(attributes['forktrace.decision.options'], 'Array(String)'),
        arrayFilter(o -> o != '', [attributes['forktrace.decision.options']])) AS options,
    attributes['forktrace.decision.chosen'] AS chosen,
    -- a decision's reasoning, or the model's
    attributes[if(kind = 'llm', 'forktrace.llm.reasoning', 'forktrace.decision.reasoning')] AS reasoning,
    toFloat64OrNull(attributes['forktrace.decision.confidence']) AS confidence,
    attributes['forktrace.decision.maker'] AS maker,
    -- tool calls
    toString(tool_name) AS tool_name,
    tool_call_id AS call_id,
    tool_arguments AS arguments,
    tool_result AS result,
    tool_arguments_hash AS arguments_hash,
    -- model calls
    toString(model) AS model,
    input_tokens,
    output_tokens,
    reasoning_tokens,
    arrayFirstIndex(m -> startsWith(lower(model), m), prices.1) AS price_entry,
    if(price_entry = 0, NULL,
       (input_tokens * prices.2[price_entry] + output_tokens * prices.3[price_entry]) / 1e6) AS cost
FROM forktrace_spans
WHERE kind IN ('decision', 'tool', 'llm');

-- The three views of 0103, with the same columns, now selections of
-- forktrace_all_activity, in a total order (spans that start together are
-- ordered by id, as `forktrace tree` orders them).
CREATE OR REPLACE VIEW forktrace_decisions${on_cluster} AS
SELECT
    run_id, time, span_id, agent, branch_id, branch_path,
    question, options, chosen, reasoning, confidence, maker, duration_ms
FROM forktrace_all_activity
WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'decision'
ORDER BY run_id, time, span_id;

CREATE OR REPLACE VIEW forktrace_tool_calls${on_cluster} AS
SELECT
    run_id, time, span_id, tool_name, call_id, arguments, result, arguments_hash,
    duration_ms, status, error, agent, branch_id, branch_path
FROM forktrace_all_activity
WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'tool'
ORDER BY run_id, time, span_id;

CREATE OR REPLACE VIEW forktrace_llm_calls${on_cluster} AS
SELECT
    run_id, time, span_id, agent, branch_id, branch_path, model,
    input_tokens, output_tokens, reasoning_tokens, price_entry, cost,
    duration_ms, status, error, reasoning
FROM forktrace_all_activity
WHERE ({run_id:String} = '' OR run_id = {run_id:String}) AND kind = 'llm'
ORDER BY run_id, time, span_id;
