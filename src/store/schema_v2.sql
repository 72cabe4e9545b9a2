-- tokentally store schema, version 2: one model identity.
--
-- Claude Code names the 1M-context variant `claude-opus-4-8[1m]` on its
-- cost and token metrics and `claude-opus-4-8` on the api_request event of
-- the same request. The model columns now hold the model alone and the
-- variant is kept beside it (`model_variant`), so one model is one row in
-- every answer. Rows stored before are split the same way here
-- (`rows::split_model`: a non-empty model followed by `[variant]`), and the
-- rollups keyed by model are merged into the model's row.

ALTER TABLE events ADD COLUMN model_variant TEXT;
ALTER TABLE metric_series ADD COLUMN model_variant TEXT;
ALTER TABLE spans ADD COLUMN model_variant TEXT;

UPDATE events SET
    model_variant = substr(model, instr(model, '[') + 1, length(model) - instr(model, '[') - 1),
    model = substr(model, 1, instr(model, '[') - 1)
WHERE model LIKE '%[_%]' AND instr(model, '[') > 1;
UPDATE metric_series SET
    model_variant = substr(model, instr(model, '[') + 1, length(model) - instr(model, '[') - 1),
    model = substr(model, 1, instr(model, '[') - 1)
WHERE model LIKE '%[_%]' AND instr(model, '[') > 1;
UPDATE spans SET
    model_variant = substr(model, instr(model, '[') + 1, length(model) - instr(model, '[') - 1),
    model = substr(model, 1, instr(model, '[') - 1)
WHERE model LIKE '%[_%]' AND instr(model, '[') > 1;

INSERT INTO api_hourly (hour, context_id, model, requests, errors, input_tokens, output_tokens,
        cache_read_tokens, cache_creation_tokens, cost_usd, duration_ms)
    SELECT hour, context_id, substr(model, 1, instr(model, '[') - 1), requests, errors,
        input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cost_usd, duration_ms
    FROM api_hourly WHERE model LIKE '%[_%]' AND instr(model, '[') > 1
    ON CONFLICT (hour, context_id, model) DO UPDATE SET
        requests = requests + excluded.requests, errors = errors + excluded.errors,
        input_tokens = input_tokens + excluded.input_tokens,
        output_tokens = output_tokens + excluded.output_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
        cost_usd = cost_usd + excluded.cost_usd, duration_ms = duration_ms + excluded.duration_ms;
DELETE FROM api_hourly WHERE model LIKE '%[_%]' AND instr(model, '[') > 1;

INSERT INTO metric_hourly (hour, context_id, name, model, kind_attr, value, points)
    SELECT hour, context_id, name, substr(model, 1, instr(model, '[') - 1), kind_attr, value, points
    FROM metric_hourly WHERE model LIKE '%[_%]' AND instr(model, '[') > 1
    ON CONFLICT (hour, context_id, name, model, kind_attr) DO UPDATE SET
        value = value + excluded.value, points = points + excluded.points;
DELETE FROM metric_hourly WHERE model LIKE '%[_%]' AND instr(model, '[') > 1;

INSERT INTO api_latency_hist (hour, developer, model, duration_ms, requests)
    SELECT hour, developer, substr(model, 1, instr(model, '[') - 1), duration_ms, requests
    FROM api_latency_hist WHERE model LIKE '%[_%]' AND instr(model, '[') > 1
    ON CONFLICT (hour, developer, model, duration_ms) DO UPDATE SET
        requests = requests + excluded.requests;
DELETE FROM api_latency_hist WHERE model LIKE '%[_%]' AND instr(model, '[') > 1;
