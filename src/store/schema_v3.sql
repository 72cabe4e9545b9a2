-- tokentally store schema, version 3: what describe_data reads, kept at
-- ingest so it never scans raw rows, and the indexes that let a session's
-- rollup rows be found without scanning the rollups.
--
-- * catalog_hourly / catalog_daily: per UTC hour (day) and developer, the
--   records of each signal and name with their first and last time, and
--   for events how many carry a file path, prompt text or lost content.
--   Written in the same transaction as the raw rows; describe_data answers
--   whole days from catalog_daily, whole hours from catalog_hourly and the
--   partial hours at the edges from raw rows. Developer '' = none.
-- * api_developer_hours: the UTC hours in which each developer sent
--   api_request events (Claude Code contexts): the rule for metrics without
--   a session id asks it once per metric row.
-- * metric_usage_hourly: the cost and token metrics per hour, context and
--   model in one row (cost and the four token types side by side), so
--   usage reads a fifth of metric_hourly's rows for the same sums.
-- * api_latency_daily / tool_latency_daily: the exact latency histograms
--   per UTC day, developer and model (tool), one text row each
--   (`ms:count:failures,...`, see store::hist), for whole days of
--   model_breakdown and tool_latency.
-- * context_values: per developer, the Claude Code versions and resource
--   attribute keys its contexts carry (written when a context is created).

CREATE TABLE IF NOT EXISTS catalog_hourly (
    hour INTEGER NOT NULL,
    developer TEXT NOT NULL,
    developer_kind TEXT NOT NULL,
    signal TEXT NOT NULL,
    name TEXT NOT NULL,
    records INTEGER NOT NULL,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    with_path INTEGER NOT NULL,
    with_text INTEGER NOT NULL,
    redacted INTEGER NOT NULL,
    PRIMARY KEY (hour, developer, developer_kind, signal, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS catalog_daily (
    day INTEGER NOT NULL,
    developer TEXT NOT NULL,
    developer_kind TEXT NOT NULL,
    signal TEXT NOT NULL,
    name TEXT NOT NULL,
    records INTEGER NOT NULL,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    with_path INTEGER NOT NULL,
    with_text INTEGER NOT NULL,
    redacted INTEGER NOT NULL,
    PRIMARY KEY (day, developer, developer_kind, signal, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS context_values (
    developer TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (developer, kind, value)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS api_developer_hours (
    developer TEXT NOT NULL,
    hour INTEGER NOT NULL,
    PRIMARY KEY (developer, hour)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS metric_usage_hourly (
    hour INTEGER NOT NULL,
    context_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    input_tokens REAL NOT NULL,
    output_tokens REAL NOT NULL,
    cache_read_tokens REAL NOT NULL,
    cache_creation_tokens REAL NOT NULL,
    PRIMARY KEY (hour, context_id, model)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS metric_usage_context ON metric_usage_hourly(context_id, hour);

INSERT INTO metric_usage_hourly
SELECT hour, context_id, model,
       SUM(CASE WHEN name = 'claude_code.cost.usage' THEN value ELSE 0 END),
       SUM(CASE WHEN name = 'claude_code.token.usage' AND kind_attr = 'input' THEN value ELSE 0 END),
       SUM(CASE WHEN name = 'claude_code.token.usage' AND kind_attr = 'output' THEN value ELSE 0 END),
       SUM(CASE WHEN name = 'claude_code.token.usage' AND kind_attr = 'cacheRead' THEN value ELSE 0 END),
       SUM(CASE WHEN name = 'claude_code.token.usage' AND kind_attr = 'cacheCreation' THEN value ELSE 0 END)
FROM metric_hourly
WHERE name = 'claude_code.cost.usage'
   OR (name = 'claude_code.token.usage' AND kind_attr IN ('input', 'output', 'cacheRead', 'cacheCreation'))
GROUP BY 1, 2, 3;

CREATE TABLE IF NOT EXISTS api_latency_daily (
    day INTEGER NOT NULL,
    developer TEXT NOT NULL,
    model TEXT NOT NULL,
    hist TEXT NOT NULL,
    PRIMARY KEY (day, developer, model)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS tool_latency_daily (
    day INTEGER NOT NULL,
    developer TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    hist TEXT NOT NULL,
    PRIMARY KEY (day, developer, tool_name)
) WITHOUT ROWID;

INSERT INTO api_latency_daily
SELECT d, developer, model, group_concat(duration_ms || ':' || n || ':0', ',' ORDER BY duration_ms)
FROM (SELECT hour / 24 AS d, developer, model, duration_ms, SUM(requests) AS n
      FROM api_latency_hist GROUP BY 1, 2, 3, 4)
GROUP BY d, developer, model;

INSERT INTO tool_latency_daily
SELECT d, developer, tool_name, group_concat(duration_ms || ':' || n || ':' || f, ',' ORDER BY duration_ms)
FROM (SELECT hour / 24 AS d, developer, tool_name, duration_ms, SUM(calls) AS n, SUM(failures) AS f
      FROM tool_latency_hist GROUP BY 1, 2, 3, 4)
GROUP BY d, developer, tool_name;

CREATE INDEX IF NOT EXISTS api_hourly_context ON api_hourly(context_id);
CREATE INDEX IF NOT EXISTS metric_hourly_context ON metric_hourly(context_id, hour);
-- Edit tool events only (about a tenth of all events): top_edited_files
-- reads these instead of every event of the range. The lists must stay
-- exactly as query::files writes them.
CREATE INDEX IF NOT EXISTS events_edit_time ON events(time_ns)
    WHERE event_name IN ('tool_decision', 'tool_result')
      AND tool_name IN ('Edit', 'MultiEdit', 'Write', 'NotebookEdit');
-- Sessions counted from their metrics (usage reads only their metric rows).
CREATE INDEX IF NOT EXISTS sessions_metrics_only ON sessions(id) WHERE api_requests = 0;

INSERT OR IGNORE INTO api_developer_hours
SELECT DISTINCT COALESCE(c.developer, ''), h.hour FROM api_hourly h
JOIN contexts c ON c.id = h.context_id WHERE h.requests > 0;
CREATE INDEX IF NOT EXISTS prompt_hourly_context ON prompt_hourly(context_id);

INSERT INTO catalog_hourly
SELECT e.time_ns / 3600000000000, COALESCE(c.developer, ''), COALESCE(c.developer_kind, ''),
       'event', e.event_name, COUNT(*), MIN(e.time_ns), MAX(e.time_ns),
       SUM(e.file_path IS NOT NULL),
       SUM(e.event_name = 'user_prompt' AND json_extract(e.attrs, '$.prompt') IS NOT NULL),
       SUM(e.content_redacted)
FROM events e JOIN contexts c ON c.id = e.context_id GROUP BY 1, 2, 3, 4, 5;

INSERT INTO catalog_hourly
SELECT p.time_ns / 3600000000000, COALESCE(c.developer, ''), COALESCE(c.developer_kind, ''),
       'metric', ms.name, COUNT(*), MIN(p.time_ns), MAX(p.time_ns), 0, 0, 0
FROM metric_points p JOIN metric_series ms ON ms.id = p.series_id
JOIN contexts c ON c.id = ms.context_id GROUP BY 1, 2, 3, 4, 5;

INSERT INTO catalog_hourly
SELECT s.start_ns / 3600000000000, COALESCE(c.developer, ''), COALESCE(c.developer_kind, ''),
       'span', s.name, COUNT(*), MIN(s.start_ns), MAX(s.start_ns), 0, 0, 0
FROM spans s JOIN contexts c ON c.id = s.context_id GROUP BY 1, 2, 3, 4, 5;

INSERT INTO catalog_daily
SELECT hour / 24, developer, developer_kind, signal, name, SUM(records), MIN(first_ns),
       MAX(last_ns), SUM(with_path), SUM(with_text), SUM(redacted)
FROM catalog_hourly GROUP BY 1, 2, 3, 4, 5;

INSERT OR IGNORE INTO context_values
SELECT COALESCE(developer, ''), 'version', app_version FROM contexts WHERE app_version IS NOT NULL;

INSERT OR IGNORE INTO context_values
SELECT COALESCE(c.developer, ''), 'resource_key', j.key FROM contexts c, json_each(c.resource_attrs) j;
