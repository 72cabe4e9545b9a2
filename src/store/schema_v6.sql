-- tokentally store schema, version 6: usage per developer, already counted.
--
-- * developer_usage_hourly: per UTC hour, developer, agent and model, the
--   sums of the api_hourly and metric_usage_hourly rows that count (a
--   session from its events when it has any, else from its metrics; see
--   store::counted), with flags for which sources contributed and the
--   sessions that did (comma-separated sessions.id). The writer refreshes
--   every hour whose counting a transaction could change; cost, model and
--   usage questions over whole hours read these few rows per developer
--   instead of every context's rows joined to its session. Filled from the
--   context rollups when the migration runs.
-- * developer_usage_dirty: the hours a write transaction may have changed
--   the counting of; the writer recomputes them in a transaction of its
--   own soon after, and until then questions read those hours from the
--   context rollups.

CREATE TABLE IF NOT EXISTS developer_usage_hourly (
    hour INTEGER NOT NULL,
    developer TEXT,
    developer_kind TEXT,
    agent TEXT,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    input_tokens REAL NOT NULL,
    output_tokens REAL NOT NULL,
    cache_read_tokens REAL NOT NULL,
    cache_creation_tokens REAL NOT NULL,
    cost_usd REAL NOT NULL,
    duration_ms INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    reported_cost_usd REAL NOT NULL,
    computed_cost_usd REAL NOT NULL,
    unpriced INTEGER NOT NULL,
    from_events INTEGER NOT NULL,
    from_metrics INTEGER NOT NULL,
    sessionless INTEGER NOT NULL,
    sessions TEXT
);
CREATE INDEX IF NOT EXISTS developer_usage_hour ON developer_usage_hourly(hour);
CREATE TABLE IF NOT EXISTS developer_usage_dirty (hour INTEGER PRIMARY KEY);
