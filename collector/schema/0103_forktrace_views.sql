-- The forktrace decision layer, part 3: the views, forktrace's stable query
-- API. The CLI, the HTML report and the Grafana panels select from these, so
-- each question is answered by SQL written once. docs/sql.md documents every
-- column.
--
-- Views about one run are parameterised: SELECT * FROM forktrace_branches(run_id = '...').
-- Passing run_id = '' gives every run (for questions across runs). Names and
-- columns are kept stable: a change is a new schema file and a release note.

-- The price of each model, latest row per model.
CREATE OR REPLACE VIEW forktrace_prices${on_cluster} AS
SELECT
    model,
    argMax(provider, updated) AS provider,
    argMax(input_per_million, updated) AS input_per_million,
    argMax(output_per_million, updated) AS output_per_million,
    argMax(price_date, updated) AS price_date,
    argMax(source, updated) AS source
FROM forktrace_model_prices
GROUP BY model;

-- The price table as one row of arrays, longest model name first, so that
-- arrayFirstIndex(m -> startsWith(model, m), models) finds the entry a model
-- is charged at: the longest one its name starts with (0: unpriced). Views
-- read it as a scalar subquery, which costs no join.
CREATE OR REPLACE VIEW forktrace_price_list${on_cluster} AS
SELECT
    groupArray(model) AS models,
    groupArray(input_per_million) AS input_per_million,
    groupArray(output_per_million) AS output_per_million
FROM (SELECT * FROM forktrace_prices ORDER BY length(model) DESC, model);

-- Work and cost per (run, innermost branch, agent, model): the work done
-- directly in a branch ('' outside any). cost is NULL when the model has no
-- price; price_entry is the forktrace_price_list entry used (0: none).
CREATE OR REPLACE VIEW forktrace_usage_cost${on_cluster} AS
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

-- A run's branches (the tree): each with its fork, its outcome, and the work
-- of its whole subtree (nested forks included). cost is NULL when a model in
-- the subtree is unpriced.
--
-- The outcome is, in order: the fork's outcome event for the branch, the
-- branch span's own outcome, failed if the branch span ended in error, won or
-- lost against the fork's winner, running while the branch span has not
-- arrived, else completed. ancestors lists the branch and the branches around
-- it (innermost first, through each fork's parent branch, not the path: two
-- forks in a row number their branches alike); in_waste is 1 when any of them
-- did not win (lost, abandoned, failed, cancelled).
CREATE OR REPLACE VIEW forktrace_branches${on_cluster} AS
WITH
    mapFromArrays(
        groupArray(branch_id) OVER (PARTITION BY run_id),
        groupArray(parent_branch_id) OVER (PARTITION BY run_id)) AS parents,
    groupArrayIf(branch_id, is_waste) OVER (PARTITION BY run_id) AS losing,
    groupArray((branch_id, depth, direct)) OVER (PARTITION BY run_id) AS run_rows,
    -- the rows of the branches inside this one (this one included): those whose
    -- chain of parents reaches it
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
    -- rounded to a billionth of a dollar: float sums must not depend on row order
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

-- A run's forks: strategy, winner and criterion, and what all its branches
-- and the losing ones spent.
CREATE OR REPLACE VIEW forktrace_forks${on_cluster} AS
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

-- Waste per run: the work in branches that did not win (lost, abandoned,
-- failed, cancelled) and everything nested in them, each token once. Runs
-- without waste have no row. (sumIf over every branch rather than WHERE
-- in_waste: a filter on a window-function result cannot be pushed down, so
-- it only adds a step to plan.)
CREATE OR REPLACE VIEW forktrace_waste${on_cluster} AS
SELECT
    run_id,
    countIf(is_waste) AS wasted_branches,
    sumIf(own_input_tokens + own_output_tokens, in_waste) AS wasted_tokens,
    if(countIf(in_waste AND own_cost IS NULL) > 0, NULL,
       round(sumIf(assumeNotNull(own_cost), in_waste), 9)) AS wasted_cost
FROM forktrace_branches(run_id = {run_id:String})
GROUP BY run_id
HAVING countIf(in_waste) > 0;

-- Every run: what it did, what it cost, and the waste. run_totals is read
-- once (cost is priced in the same GROUP BY). A filter on run_id (= or IN)
-- reaches every table read here, through the LEFT JOIN and the window of
-- forktrace_branches (PARTITION BY run_id), so one run costs one run's rows;
-- without one, every run's waste is computed. Most of a query's time here is
-- the engine planning these views, not reading rows (benchmarks/results/queries.md).
CREATE OR REPLACE VIEW forktrace_runs${on_cluster} AS
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

-- Decision points: question, options, the choice and why.
CREATE OR REPLACE VIEW forktrace_decisions${on_cluster} AS
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

-- Tool calls, with previews of arguments and result (500 characters).
-- arguments_hash is over the tool name and the full arguments: equal hashes
-- in one run are repeated identical calls.
CREATE OR REPLACE VIEW forktrace_tool_calls${on_cluster} AS
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

-- Model calls, with tokens, cost and the model's reasoning.
CREATE OR REPLACE VIEW forktrace_llm_calls${on_cluster} AS
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

-- Human interventions: who, when, what kind, where.
CREATE OR REPLACE VIEW forktrace_interventions${on_cluster} AS
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

-- Who worked when, on one time axis: one interval per agent invocation
-- (lane_kind = 'agent') and per branch (lane_kind = 'branch'); offsets are
-- milliseconds from the run's first span.
CREATE OR REPLACE VIEW forktrace_concurrency${on_cluster} AS
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

-- The most agents (and branches) working at once in a run, and when. An
-- interval ending at the instant another starts does not overlap it.
CREATE OR REPLACE VIEW forktrace_peak_concurrency${on_cluster} AS
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

-- Work and cost per agent.
CREATE OR REPLACE VIEW forktrace_agent_usage${on_cluster} AS
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

-- One session's runs side by side, on one time axis: offset_ms is each
-- run's start after the session's first. session_id is an aggregate of the
-- run's pieces, so a filter on it alone is applied after every run is
-- computed; the IN list of the session's run ids (read from run_totals) is
-- pushed down to every table instead.
CREATE OR REPLACE VIEW forktrace_session_runs${on_cluster} AS
SELECT
    runs.*,
    intDiv(toUnixTimestamp64Nano(runs.start) - toUnixTimestamp64Nano(min(runs.start) OVER ()), 1000000) AS offset_ms
FROM forktrace_runs AS runs
WHERE runs.session_id = {session_id:String}
  AND runs.run_id IN (
      SELECT run_id FROM forktrace_run_totals
      GROUP BY run_id HAVING max(session_id) = {session_id:String})
ORDER BY runs.start;
