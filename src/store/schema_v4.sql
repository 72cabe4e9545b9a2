-- tokentally store schema, version 4: every coding agent.
--
-- * contexts.agent / agent_version: which agent sent the records
--   (`claude_code`, `codex`, `gemini_cli`, `opencode`; NULL for any other
--   sender) and its version. Rows stored before were Claude Code's when
--   `claude_code = 1`.
-- * sessions.agent: the agent of the session's first record.
-- * events: the reasoning part of the output, the cost computed from the
--   price table, and whether `cost_usd` is that computed cost (the agent
--   sent none) rather than the agent's own estimate.
-- * api_hourly: the same sums, so reported and computed cost, and requests
--   priced by neither, are answered from the rollup.

ALTER TABLE contexts ADD COLUMN agent TEXT;
ALTER TABLE contexts ADD COLUMN agent_version TEXT;
UPDATE contexts SET agent = 'claude_code', agent_version = app_version WHERE claude_code = 1;
CREATE INDEX IF NOT EXISTS contexts_agent ON contexts(agent);
-- describe_data lists agents and their versions per developer from
-- context_values (kinds `agent` and `agent_version`, "<agent> <version>").
INSERT OR IGNORE INTO context_values
SELECT COALESCE(developer, ''), 'agent', agent FROM contexts WHERE agent IS NOT NULL;
INSERT OR IGNORE INTO context_values
SELECT COALESCE(developer, ''), 'agent_version', agent || ' ' || agent_version FROM contexts
WHERE agent IS NOT NULL AND agent_version IS NOT NULL;

ALTER TABLE sessions ADD COLUMN agent TEXT;
UPDATE sessions SET agent = 'claude_code'
    WHERE id IN (SELECT session_ref FROM contexts WHERE claude_code = 1);

ALTER TABLE events ADD COLUMN reasoning_tokens INTEGER;
ALTER TABLE events ADD COLUMN computed_cost_usd REAL;
ALTER TABLE events ADD COLUMN cost_computed INTEGER NOT NULL DEFAULT 0;

ALTER TABLE api_hourly ADD COLUMN reasoning_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_hourly ADD COLUMN reported_cost_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE api_hourly ADD COLUMN computed_cost_usd REAL NOT NULL DEFAULT 0;
ALTER TABLE api_hourly ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0;
UPDATE api_hourly SET reported_cost_usd = cost_usd;

-- Codex CLI edits files with `apply_patch` (the path read from the patch):
-- the edit tools' partial index takes it in. The list must stay exactly as
-- query::files writes it.
DROP INDEX IF EXISTS events_edit_time;
CREATE INDEX IF NOT EXISTS events_edit_time ON events(time_ns)
    WHERE event_name IN ('tool_decision', 'tool_result')
      AND tool_name IN ('Edit', 'MultiEdit', 'Write', 'NotebookEdit', 'apply_patch');

-- describe_data's one pass over sessions (per developer: sessions, how
-- many sent metrics only, per agent) reads this index alone instead of
-- every session row.
CREATE INDEX IF NOT EXISTS sessions_developer_summary
    ON sessions(developer, agent, api_requests, metric_cost_usd);
