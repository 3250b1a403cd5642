-- Model prices, in US dollars per million tokens. Cost is computed when a
-- view is queried (tokens x the price of the model), so updating this table
-- reprices every run, past ones included. A model is priced by the longest
-- entry its name starts with ("gpt-4o-2024-08-06" takes "gpt-4o", and
-- "gpt-4o-mini" its own entry). A model with no entry costs NULL, not 0.
--
-- To change or add a price, insert a row: the newest `updated` per model wins.
--   INSERT INTO forktrace_model_prices (model, provider, input_per_million, output_per_million, price_date, source)
--   VALUES ('my-model', 'me', 1.0, 2.0, today(), 'contract')
CREATE TABLE IF NOT EXISTS forktrace_model_prices${on_cluster} (
    model String,
    provider LowCardinality(String),
    input_per_million Float64,
    output_per_million Float64,
    price_date Date,
    source String,
    updated DateTime64(3) DEFAULT now64(3)
) ENGINE = ${replicated}ReplacingMergeTree(updated)
ORDER BY model;

-- Shipped list prices (standard tier, no caching or batch discounts, prompts
-- under 200k tokens), as published by each provider and taken on price_date.
-- Their `updated` is price_date, so any row a user inserts later wins.
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
