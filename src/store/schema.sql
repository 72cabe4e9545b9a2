-- tokentally store schema, version 1.
--
-- Layout, designed for fast answers at 10M+ events:
-- * contexts: resource + scope + the attributes Claude Code repeats on every
--   record of a session (identity, terminal, version, OTEL_RESOURCE_ATTRIBUTES
--   copies), stored once; events/points/spans reference them by id.
-- * sessions: one row per session.id with running totals kept in the same
--   transaction as the raw rows (list_sessions, session lookups).
-- * api_hourly, prompt_hourly, metric_hourly: additive rollups by UTC hour, context and model,
--   updated in the same transaction as the raw rows; queries take whole hours
--   from them and the partial edges of a range from the raw rows.
-- * tool_latency_hist, api_latency_hist: exact integer-millisecond histograms
--   (one row per distinct duration) so percentiles are exact, not bucketed.
-- * events: the typed columns of each event; attrs holds only what no column
--   or context holds (event.timestamp is an offset in event_timestamp_ms).
-- Times are integer nanoseconds since the Unix epoch; hour = time_ns / 3.6e12.

CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE,
    developer TEXT,
    developer_kind TEXT,
    first_ns INTEGER NOT NULL,
    last_ns INTEGER NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    prompts INTEGER NOT NULL DEFAULT 0,
    api_requests INTEGER NOT NULL DEFAULT 0,
    api_errors INTEGER NOT NULL DEFAULT 0,
    tool_calls INTEGER NOT NULL DEFAULT 0,
    tool_failures INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_creation_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    -- totals from the cost/token metrics, used only when api_requests = 0
    metric_cost_usd REAL NOT NULL DEFAULT 0,
    metric_input_tokens REAL NOT NULL DEFAULT 0,
    metric_output_tokens REAL NOT NULL DEFAULT 0,
    metric_cache_read_tokens REAL NOT NULL DEFAULT 0,
    metric_cache_creation_tokens REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_first ON sessions(first_ns);
CREATE INDEX IF NOT EXISTS sessions_developer ON sessions(developer, first_ns);

CREATE TABLE IF NOT EXISTS contexts (
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,
    session_ref INTEGER REFERENCES sessions(id),
    claude_code INTEGER NOT NULL,
    service_name TEXT,
    scope_name TEXT NOT NULL,
    scope_version TEXT NOT NULL,
    developer TEXT,
    developer_kind TEXT,
    user_email TEXT,
    user_account_uuid TEXT,
    user_id TEXT,
    organization_id TEXT,
    terminal_type TEXT,
    app_version TEXT,
    resource_attrs TEXT NOT NULL,
    shared_attrs TEXT NOT NULL,
    first_seen_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS contexts_developer ON contexts(developer);
CREATE INDEX IF NOT EXISTS contexts_session ON contexts(session_ref);

CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    dedup BLOB NOT NULL,
    context_id INTEGER NOT NULL REFERENCES contexts(id),
    time_ns INTEGER NOT NULL,
    observed_ns INTEGER NOT NULL,
    event_name TEXT NOT NULL,
    severity_number INTEGER NOT NULL DEFAULT 0,
    severity_text TEXT,
    body TEXT,
    trace_id BLOB,
    span_id BLOB,
    prompt_id TEXT,
    sequence INTEGER,
    model TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_creation_tokens INTEGER,
    cost_usd REAL,
    duration_ms INTEGER,
    ttft_ms INTEGER,
    tool_name TEXT,
    tool_use_id TEXT,
    success INTEGER,
    decision TEXT,
    decision_source TEXT,
    status_code INTEGER,
    error TEXT,
    request_id TEXT,
    query_source TEXT,
    file_path TEXT,
    mcp_server TEXT,
    mcp_tool TEXT,
    repository TEXT,
    branch TEXT,
    content_redacted INTEGER NOT NULL DEFAULT 0,
    attrs TEXT, -- JSON object of the remaining attributes; NULL when empty
    -- event.timestamp, when it is in the exact form Claude Code writes
    -- (2026-11-21T17:12:39.820Z): ms from time_ns's millisecond, and then
    -- not in attrs; NULL otherwise (see store::event_time)
    event_timestamp_ms INTEGER
);
-- Unique on (time_ns, dedup): a dedup key hashes the whole record, times
-- included, so equal keys have equal times and this is as strict as a
-- unique dedup key; it also serves every time-range scan, so events carry
-- two indexes rather than three.
CREATE UNIQUE INDEX IF NOT EXISTS events_time_dedup ON events(time_ns, dedup);
-- Only events naming an MCP server or tool (few): tool_latency's MCP
-- breakdown reads these instead of every event of the range.
CREATE INDEX IF NOT EXISTS events_mcp_time ON events(time_ns)
    WHERE mcp_server IS NOT NULL OR mcp_tool IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_context_time ON events(context_id, time_ns);

CREATE TABLE IF NOT EXISTS metric_series (
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,
    context_id INTEGER NOT NULL REFERENCES contexts(id),
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    description TEXT NOT NULL,
    kind TEXT NOT NULL,
    temporality INTEGER NOT NULL,
    monotonic INTEGER NOT NULL,
    model TEXT,
    kind_attr TEXT,
    attrs TEXT,
    -- last point seen, to turn cumulative totals into per-interval deltas
    last_start_ns INTEGER,
    last_time_ns INTEGER,
    last_value REAL
);
CREATE INDEX IF NOT EXISTS metric_series_name ON metric_series(name);

CREATE TABLE IF NOT EXISTS metric_points (
    id INTEGER PRIMARY KEY,
    dedup BLOB NOT NULL,
    series_id INTEGER NOT NULL REFERENCES metric_series(id),
    start_ns INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    value REAL NOT NULL,
    -- the value for (previous point, this point]: the value itself for delta
    -- and gauges; for cumulative sums the increase since the previous point of
    -- the series, or the whole value after a reset/restart (new start time or
    -- a lower total)
    delta REAL NOT NULL,
    count INTEGER,
    detail TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS metric_points_dedup ON metric_points(dedup);
CREATE INDEX IF NOT EXISTS metric_points_series_time ON metric_points(series_id, time_ns);
CREATE INDEX IF NOT EXISTS metric_points_time ON metric_points(time_ns);

CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    dedup BLOB NOT NULL,
    context_id INTEGER NOT NULL REFERENCES contexts(id),
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    parent_span_id BLOB,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status_code INTEGER NOT NULL,
    status_message TEXT,
    tool_name TEXT,
    tool_use_id TEXT,
    file_path TEXT,
    decision TEXT,
    decision_source TEXT,
    duration_ms INTEGER,
    success INTEGER,
    model TEXT,
    content_redacted INTEGER NOT NULL DEFAULT 0,
    attrs TEXT,
    detail TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS spans_dedup ON spans(dedup);
CREATE INDEX IF NOT EXISTS spans_start ON spans(start_ns);
CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id, span_id);

-- Rollup of api_request (requests, tokens, cost) and api_error (errors) events.
CREATE TABLE IF NOT EXISTS api_hourly (
    hour INTEGER NOT NULL,
    context_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    duration_ms INTEGER NOT NULL,
    PRIMARY KEY (hour, context_id, model)
) WITHOUT ROWID;

-- Rollup of user_prompt events (prompts per developer without scanning raw
-- events). Any context, Claude Code or not, as the raw count does.
CREATE TABLE IF NOT EXISTS prompt_hourly (
    hour INTEGER NOT NULL,
    context_id INTEGER NOT NULL,
    prompts INTEGER NOT NULL,
    PRIMARY KEY (hour, context_id)
) WITHOUT ROWID;

-- Rollup of metric sums: the per-interval delta summed by hour.
CREATE TABLE IF NOT EXISTS metric_hourly (
    hour INTEGER NOT NULL,
    context_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    model TEXT NOT NULL,
    kind_attr TEXT NOT NULL,
    value REAL NOT NULL,
    points INTEGER NOT NULL,
    PRIMARY KEY (hour, context_id, name, model, kind_attr)
) WITHOUT ROWID;

-- Exact latency histograms: one row per (hour, developer, tool, duration).
CREATE TABLE IF NOT EXISTS tool_latency_hist (
    hour INTEGER NOT NULL,
    developer TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (hour, developer, tool_name, duration_ms)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS api_latency_hist (
    hour INTEGER NOT NULL,
    developer TEXT NOT NULL,
    model TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (hour, developer, model, duration_ms)
) WITHOUT ROWID;

-- Access tokens: only a hash of the secret is stored.
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    developers TEXT NOT NULL DEFAULT '[]', -- JSON array; empty = all developers
    secret_hash BLOB NOT NULL UNIQUE,
    created_ns INTEGER NOT NULL,
    expires_ns INTEGER,
    revoked_ns INTEGER
);

-- Added by the store (v1): spans of one context in time order (session
-- timelines), and the index retention needs to find contexts no span uses.
-- Note on the dedup columns of metric_points and spans: they hold the
-- record's second since the epoch (4 bytes, big-endian) followed by the
-- 16-byte rows::DedupKey, so that new keys land together in the unique index.
-- events.dedup is the 16-byte key alone: its unique index leads with time_ns.
CREATE INDEX IF NOT EXISTS spans_context_start ON spans(context_id, start_ns);
-- Series of a context: retention deletes contexts, and the foreign key check
-- on metric_series.context_id would otherwise scan every series per context.
CREATE INDEX IF NOT EXISTS metric_series_context ON metric_series(context_id);
