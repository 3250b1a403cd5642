-- The decision layer, part 4: base views for `forktrace tree`. Planning the
-- views, not reading rows, is most of a run tree's time (benchmarks/results/
-- queries.md), and forktrace_runs and forktrace_forks each planned the whole
-- branch machinery (forktrace_branches) again. Both are split here into a base
-- view (the run's or fork's own facts) joined with what its branches add, with
-- the same columns and answers as before; the tree reads the base views and
-- the branches once, and adds the branch sums in Python (views.run_tree).

-- A fork's own facts, without what its branches spent: forktrace_forks is
-- these joined with the sums of forktrace_branches. `forktrace tree` reads
-- this and the branches, and sums the branches itself, so that the branch
-- machinery is planned once per tree, not once per view (planning is most
-- of a tree's time; benchmarks/results/queries.md). winner_branch_id here is
-- the one the fork declared.
CREATE OR REPLACE VIEW forktrace_fork_base${on_cluster} AS
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

-- A run's forks: strategy, winner and criterion, and what all its branches
-- and the losing ones spent. (views.fork_rows in Python computes the same
-- sums from a tree's branches; tests compare the two.)
CREATE OR REPLACE VIEW forktrace_forks${on_cluster} AS
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

-- A run's own facts: forktrace_runs without the waste (which needs the
-- branch tree). run_totals is read once (cost is priced in the same GROUP
-- BY). `forktrace tree` reads this and computes the waste from the run's
-- branches (views.run_row), so the branch machinery is planned once per tree.
CREATE OR REPLACE VIEW forktrace_run_base${on_cluster} AS
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

-- Every run: what it did, what it cost, and the waste. A filter on run_id
-- (= or IN) reaches every table read here, through the LEFT JOIN and the
-- window of forktrace_branches (PARTITION BY run_id), so one run costs one
-- run's rows; without one, every run's waste is computed. Most of a query's
-- time here is the engine planning these views, not reading rows
-- (benchmarks/results/queries.md).
CREATE OR REPLACE VIEW forktrace_runs${on_cluster} AS
SELECT
    r.* EXCEPT (trace_ids),
    w.wasted_tokens AS wasted_tokens,
    if(w.run_id != '', w.wasted_cost, if(r.cost IS NULL, NULL, 0)) AS wasted_cost,
    w.wasted_tokens / nullIf(r.input_tokens + r.output_tokens, 0) AS waste_share,
    wasted_cost / nullIf(r.cost, 0) AS waste_cost_share,
    r.trace_ids AS trace_ids
FROM forktrace_run_base AS r
LEFT JOIN forktrace_waste(run_id = '') AS w ON w.run_id = r.run_id;
