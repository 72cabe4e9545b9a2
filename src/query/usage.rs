//! Usage (requests, errors, tokens, cost) grouped by allow-listed
//! dimensions: the one place where cost and tokens are summed. Which rows
//! answer (rollup hours or raw edges, events or metrics) is decided by
//! [`super::plan`]; this module turns that plan into SQL: whole hours from
//! `developer_usage_hourly` (already counted per developer, agent and model)
//! when the question groups and filters only by those, else from the
//! context rollups joined to their sessions; the partial hours at the edges
//! from raw rows; both parts added up by key.

use rusqlite::types::Value;

use super::QueryError;
use super::filter::{Filter, Sql, int};
use super::plan::{self, hour_of_sql};
use super::time::TimeRange;

/// A grouping dimension; each maps to a fixed SQL expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    /// `contexts.developer`
    Developer,
    /// `contexts.developer_kind`
    DeveloperKind,
    /// Model (`''` when unknown).
    Model,
    /// UTC hour number (`time_ns / 3600e9`).
    Hour,
    /// Resource attribute `team.id`, else `team`.
    Team,
    /// Repository (raw rows only).
    Repository,
    /// Branch (raw rows only).
    Branch,
    /// MCP server (raw rows only).
    McpServer,
    /// MCP tool (raw rows only).
    McpTool,
    /// An attribution dimension: subagent, skill, plugin... (raw rows only).
    Attribution(&'static super::attribution::Attribution),
    /// The coding agent (`contexts.agent`: `claude_code`, `codex`, ...).
    Agent,
}

impl Dim {
    fn expr(self) -> String {
        match self {
            Dim::Developer => "c.developer".into(),
            Dim::DeveloperKind => "c.developer_kind".into(),
            Dim::Model => "u.model".into(),
            Dim::Hour => "u.hour".into(),
            Dim::Team => super::filter::TEAM_EXPR.into(),
            Dim::Repository => {
                "COALESCE(u.repository, CAST(json_extract(c.resource_attrs, '$.\"repo.name\"') AS TEXT))".into()
            }
            Dim::Branch => "u.branch".into(),
            Dim::McpServer => "u.mcp_server".into(),
            Dim::McpTool => "u.mcp_tool".into(),
            Dim::Attribution(a) => a.expr("u.attrs"),
            Dim::Agent => "c.agent".into(),
        }
    }

    /// The column of `developer_usage_hourly` (alias `d`) holding this
    /// dimension, if it is one of its keys.
    fn counted_column(self) -> Option<&'static str> {
        match self {
            Dim::Developer => Some("d.developer"),
            Dim::DeveloperKind => Some("d.developer_kind"),
            Dim::Model => Some("d.model"),
            Dim::Hour => Some("d.hour"),
            Dim::Agent => Some("d.agent"),
            _ => None,
        }
    }

    fn needs_raw(self) -> bool {
        matches!(
            self,
            Dim::Repository | Dim::Branch | Dim::McpServer | Dim::McpTool | Dim::Attribution(_)
        )
    }
}

/// Summed usage of one group.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// `api_request` events.
    pub requests: i64,
    /// `api_error` events.
    pub errors: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache read tokens.
    pub cache_read_tokens: i64,
    /// Cache creation tokens.
    pub cache_creation_tokens: i64,
    /// The reasoning part of the output tokens.
    pub reasoning_tokens: i64,
    /// Cost in USD: what the agent reported where it did, else what the
    /// price table gives (see [`crate::pricing`]).
    pub cost_usd: f64,
    /// The part of `cost_usd` the agents reported (Claude Code's estimates).
    pub reported_cost_usd: f64,
    /// The cost the price table gives for the requests typed from events
    /// (whether or not the agent also reported one).
    pub computed_cost_usd: f64,
    /// Requests counted without a cost: the agent sent none and the model
    /// has no price.
    pub unpriced_requests: i64,
    /// Summed API request duration in ms.
    pub duration_ms: i64,
    /// Which sources the numbers came from.
    pub sources: Sources,
}

impl Usage {
    /// True when a group counted nothing (no request, error, cost or
    /// token): such a group is no row of an answer.
    pub fn is_nothing(&self) -> bool {
        self.requests == 0
            && self.errors == 0
            && self.cost_usd == 0.0
            && self.input_tokens == 0
            && self.output_tokens == 0
            && self.cache_read_tokens == 0
            && self.cache_creation_tokens == 0
    }

    /// Adds another group's sums (sources included).
    pub fn add(&mut self, o: &Usage) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.cache_creation_tokens += o.cache_creation_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.cost_usd += o.cost_usd;
        self.reported_cost_usd += o.reported_cost_usd;
        self.computed_cost_usd += o.computed_cost_usd;
        self.unpriced_requests += o.unpriced_requests;
        self.duration_ms += o.duration_ms;
        self.sources.events |= o.sources.events;
        self.sources.metrics |= o.sources.metrics;
        self.sources.sessionless |= o.sources.sessionless;
    }
}

/// Which sources an answer's numbers came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sources {
    /// Some numbers came from `api_request` events.
    pub events: bool,
    /// Some numbers came from cost/token metrics.
    pub metrics: bool,
    /// Some counted records carried no `session.id` (their events and
    /// metrics were told apart by developer and hour, see [`super::plan`]).
    pub sessionless: bool,
}

impl Sources {
    /// Adds the sources of one group.
    pub fn add(&mut self, u: &Usage) {
        self.events |= u.sources.events;
        self.metrics |= u.sources.metrics;
        self.sessionless |= u.sources.sessionless;
    }

    /// The short label of rows: `events`, `metrics` or `events+metrics`.
    pub fn label(&self) -> &'static str {
        match (self.events, self.metrics) {
            (true, true) => "events+metrics",
            (false, true) => "metrics",
            _ => "events",
        }
    }

    /// The `source` field of answers.
    pub fn describe(&self) -> &'static str {
        describe_sources(self.events, self.metrics)
    }

    /// The note an answer carries when records without a session id were counted.
    pub fn note(&self) -> Option<String> {
        self.sessionless.then(|| SESSIONLESS_NOTE.to_string())
    }
}

/// Said when records without a `session.id` were counted.
pub const SESSIONLESS_NOTE: &str = "some records carry no session.id (Claude Code sends none in some modes): \
    their cost/token metrics were counted only in hours where the same developer sent no api_request events, \
    so no request is counted twice";

/// One group: its dimension values (in the order asked) and usage.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UsageGroup {
    /// Dimension values (text, integer hour, or null).
    pub keys: Vec<serde_json::Value>,
    /// The sums.
    pub usage: Usage,
    /// The sessions (`sessions.id`) that contributed, only from
    /// [`grouped_with_sessions`] (empty otherwise).
    #[serde(skip)]
    pub session_refs: Vec<i64>,
}

const METRIC_NAMES: &str = "('claude_code.cost.usage', 'claude_code.token.usage')";

fn raw_events(sql: &mut Sql, from: i64, to: i64, f: &Filter) {
    sql.bind(
        &format!("SELECT e.context_id AS context_id, {} AS hour, \
         COALESCE(e.model, '') AS model, \
         (e.event_name = 'api_request') AS requests, (e.event_name = 'api_error') AS errors, \
         CASE WHEN e.event_name = 'api_request' THEN COALESCE(e.input_tokens, 0) ELSE 0 END AS input, \
         CASE WHEN e.event_name = 'api_request' THEN COALESCE(e.output_tokens, 0) ELSE 0 END AS output, \
         CASE WHEN e.event_name = 'api_request' THEN COALESCE(e.cache_read_tokens, 0) ELSE 0 END AS cache_read, \
         CASE WHEN e.event_name = 'api_request' THEN COALESCE(e.cache_creation_tokens, 0) ELSE 0 END AS cache_creation, \
         CASE WHEN e.event_name = 'api_request' THEN COALESCE(e.cost_usd, 0) ELSE 0 END AS cost, \
         CASE WHEN e.event_name = 'api_request' THEN COALESCE(e.duration_ms, 0) ELSE 0 END AS duration, \
         e.repository AS repository, e.branch AS branch, e.mcp_server AS mcp_server, \
         e.mcp_tool AS mcp_tool, 'events' AS source, e.attrs AS attrs, \
         CASE WHEN e.event_name = 'api_request' THEN COALESCE(e.reasoning_tokens, 0) ELSE 0 END AS reasoning, \
         CASE WHEN e.event_name = 'api_request' AND NOT e.cost_computed THEN COALESCE(e.cost_usd, 0) ELSE 0 END AS reported, \
         CASE WHEN e.event_name = 'api_request' THEN COALESCE(e.computed_cost_usd, 0) ELSE 0 END AS computed, \
         (e.event_name = 'api_request' AND e.cost_usd IS NULL) AS unpriced \
         FROM events e JOIN contexts c ON c.id = e.context_id \
         WHERE e.time_ns >= ? AND e.time_ns < ? AND e.event_name IN ('api_request', 'api_error')",
            hour_of_sql("e.time_ns")),
        [int(from), int(to)],
    );
    sql.push(plan::AGENT_RECORDS);
    f.event_only_conditions(sql);
}

/// Raw metric points of `[from, to)`: driven by the points' time index
/// (`CROSS JOIN` keeps that order; by series name the planner would probe
/// every series of the store).
fn raw_metrics(sql: &mut Sql, from: i64, to: i64, f: &Filter) {
    sql.bind(
        &format!("SELECT ms.context_id, {}, COALESCE(ms.model, ''), 0, 0, \
         CASE WHEN ms.name = 'claude_code.token.usage' AND ms.kind_attr = 'input' THEN p.delta ELSE 0 END, \
         CASE WHEN ms.name = 'claude_code.token.usage' AND ms.kind_attr = 'output' THEN p.delta ELSE 0 END, \
         CASE WHEN ms.name = 'claude_code.token.usage' AND ms.kind_attr = 'cacheRead' THEN p.delta ELSE 0 END, \
         CASE WHEN ms.name = 'claude_code.token.usage' AND ms.kind_attr = 'cacheCreation' THEN p.delta ELSE 0 END, \
         CASE WHEN ms.name = 'claude_code.cost.usage' THEN p.delta ELSE 0 END, 0, \
         CAST(json_extract(ms.attrs, '$.\"vcs.repository.name\"') AS TEXT), NULL, \
         CAST(json_extract(ms.attrs, '$.\"mcp_server.name\"') AS TEXT), \
         CAST(json_extract(ms.attrs, '$.\"mcp_tool.name\"') AS TEXT), 'metrics', ms.attrs, \
         0, CASE WHEN ms.name = 'claude_code.cost.usage' THEN p.delta ELSE 0 END, 0, 0 \
         FROM metric_points p CROSS JOIN metric_series ms ON ms.id = p.series_id \
         JOIN contexts c ON c.id = ms.context_id \
         WHERE p.time_ns >= ? AND p.time_ns < ? AND ms.name IN ", hour_of_sql("p.time_ns")),
        [int(from), int(to)],
    );
    sql.push(METRIC_NAMES);
    if let Some(r) = &f.repository {
        // OTEL_METRICS_INCLUDE_REPOSITORY puts the repository on each point.
        sql.bind(
            " AND (json_extract(ms.attrs, '$.\"vcs.repository.name\"') = ? \
             OR CAST(json_extract(c.resource_attrs, '$.\"repo.name\"') AS TEXT) = ? \
             OR CAST(json_extract(c.resource_attrs, '$.\"vcs.repository.name\"') AS TEXT) = ?)",
            [
                Value::Text(r.clone()),
                Value::Text(r.clone()),
                Value::Text(r.clone()),
            ],
        );
    }
    if f.branch.is_some() {
        // Metric points carry no branch.
        sql.push(" AND 0");
    }
    if let Some(s) = &f.mcp_server {
        sql.bind(
            " AND json_extract(ms.attrs, '$.\"mcp_server.name\"') = ?",
            [Value::Text(s.clone())],
        );
    }
    if let Some(t) = &f.mcp_tool {
        sql.bind(
            " AND json_extract(ms.attrs, '$.\"mcp_tool.name\"') = ?",
            [Value::Text(t.clone())],
        );
    }
    if let Some(q) = &f.query_source {
        sql.bind(
            " AND json_extract(ms.attrs, '$.query_source') = ?",
            [Value::Text(q.clone())],
        );
    }
    f.attribution_conditions(sql, "ms.attrs");
}

fn rollup_events(sql: &mut Sql, hs: i64, he: i64) {
    sql.bind(
        "SELECT context_id AS context_id, hour AS hour, model AS model, requests AS requests, \
         errors AS errors, input_tokens AS input, output_tokens AS output, \
         cache_read_tokens AS cache_read, cache_creation_tokens AS cache_creation, cost_usd AS cost, \
         duration_ms AS duration, NULL AS repository, NULL AS branch, NULL AS mcp_server, \
         NULL AS mcp_tool, 'events' AS source, NULL AS attrs, reasoning_tokens AS reasoning, \
         reported_cost_usd AS reported, computed_cost_usd AS computed, unpriced AS unpriced \
         FROM api_hourly WHERE hour >= ? AND hour < ?",
        [int(hs), int(he)],
    );
}

fn rollup_metrics(sql: &mut Sql, hs: i64, he: i64) {
    sql.push(
        "SELECT u.context_id, u.hour, u.model, 0, 0, u.input_tokens, u.output_tokens, \
         u.cache_read_tokens, u.cache_creation_tokens, u.cost_usd, 0, \
         NULL, NULL, NULL, NULL, 'metrics', NULL, 0, u.cost_usd, 0, 0 FROM (",
    );
    sql.push(plan::METRIC_COUNTED_CONTEXTS);
    sql.bind(
        ") AS m \
         CROSS JOIN metric_usage_hourly u ON u.context_id = m.cid \
         WHERE u.hour >= ? AND u.hour < ?",
        [int(hs), int(he)],
    );
}

/// The source rows of `seg`: context rollups for its whole hours, raw rows
/// for its raw spans.
fn source(seg: &plan::Segments, f: &Filter) -> Sql {
    let mut sql = Sql::default();
    if let Some((hs, he)) = seg.rollup_hours {
        rollup_events(&mut sql, hs, he);
        sql.push(" UNION ALL ");
        rollup_metrics(&mut sql, hs, he);
    }
    for &(from, to) in &seg.raw {
        if !sql.text.is_empty() {
            sql.push(" UNION ALL ");
        }
        raw_events(&mut sql, from, to, f);
        sql.push(" UNION ALL ");
        raw_metrics(&mut sql, from, to, f);
    }
    sql
}

/// Usage in `range` matching `f`, grouped by `dims` (in that order).
pub fn grouped(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    dims: &[Dim],
) -> Result<Vec<UsageGroup>, QueryError> {
    grouped_with(conn, range, f, dims, false)
}

/// [`grouped`], optionally forcing raw rows for the whole range (tests use
/// this to check the rollup path gives the same answer).
pub fn grouped_with(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    dims: &[Dim],
    force_raw: bool,
) -> Result<Vec<UsageGroup>, QueryError> {
    query_groups(conn, range, f, dims, force_raw, false)
}

/// [`grouped`], each group also listing the sessions that contributed, so
/// a caller can group finely (by hour) and still count distinct sessions
/// over coarser groups in one pass.
pub fn grouped_with_sessions(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    dims: &[Dim],
) -> Result<Vec<UsageGroup>, QueryError> {
    query_groups(conn, range, f, dims, false, true)
}

fn query_groups(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    dims: &[Dim],
    force_raw: bool,
    with_sessions: bool,
) -> Result<Vec<UsageGroup>, QueryError> {
    let force_raw = force_raw || dims.iter().any(|d| d.needs_raw());
    let seg = plan::segments(range, force_raw || f.needs_raw());
    let groups = match seg.rollup_hours {
        // Whole hours already counted per developer when nothing asked
        // needs a context's other attributes; the edges from raw rows.
        Some(hours)
            if f.by_developer_only() && dims.iter().all(|d| d.counted_column().is_some()) =>
        {
            // One snapshot for every part: an hour the writer recomputes
            // meanwhile is read from exactly one of them.
            let snapshot = conn
                .is_autocommit()
                .then(|| conn.unchecked_transaction())
                .transpose()?;
            let (counted, pending) = counted_groups(conn, hours, f, dims, with_sessions)?;
            let mut parts = vec![counted];
            let marked = pending.into_iter().map(|span| plan::Segments {
                rollup_hours: Some(span),
                raw: Vec::new(),
            });
            let edges = plan::Segments {
                rollup_hours: None,
                raw: seg.raw,
            };
            for part in marked.chain((!edges.raw.is_empty()).then_some(edges)) {
                parts.push(joined_groups(conn, &part, f, dims, with_sessions)?);
            }
            drop(snapshot);
            merge(parts)
        }
        _ => joined_groups(conn, &seg, f, dims, with_sessions)?,
    };
    Ok(groups
        .into_iter()
        .filter(|g| !g.usage.is_nothing())
        .collect())
}

/// [`plan::ROW_SUMS`] (what [`group_of`] reads after the keys) over
/// `developer_usage_hourly` rows `d`.
const COUNTED_SUMS: &str = "SUM(d.requests), SUM(d.errors), SUM(d.input_tokens), SUM(d.output_tokens), \
    SUM(d.cache_read_tokens), SUM(d.cache_creation_tokens), SUM(d.cost_usd), SUM(d.duration_ms), \
    MAX(d.from_events), MAX(d.from_metrics), MAX(d.sessionless), \
    SUM(d.reasoning_tokens), SUM(d.reported_cost_usd), SUM(d.computed_cost_usd), SUM(d.unpriced)";

/// Groups of `seg` from the context rollups and raw rows, each row joined
/// to its context and session and kept by [`plan::counted_condition`].
fn joined_groups(
    conn: &rusqlite::Connection,
    seg: &plan::Segments,
    f: &Filter,
    dims: &[Dim],
    with_sessions: bool,
) -> Result<Vec<UsageGroup>, QueryError> {
    let keys: Vec<String> = dims.iter().map(|d| d.expr()).collect();
    let mut sql = select_head(
        &keys,
        plan::ROW_SUMS,
        with_sessions.then_some("GROUP_CONCAT(DISTINCT c.session_ref)"),
    );
    sql.push(" FROM (");
    sql.append(source(seg, f));
    sql.push(
        ") AS u JOIN contexts c ON c.id = u.context_id LEFT JOIN sessions s ON s.id = c.session_ref \
         WHERE 1",
    );
    sql.push(&plan::counted_condition());
    f.context_conditions(&mut sql);
    if let Some(m) = &f.model {
        sql.bind(" AND u.model = ?", [Value::Text(m.clone())]);
    }
    if !keys.is_empty() {
        sql.push(" GROUP BY ");
        sql.push(&keys.join(", "));
    }
    run(conn, &sql, dims.len())
}

/// Whole hours `[first, end)` (hour numbers).
type HourSpan = (i64, i64);

/// Groups of the whole hours `[hs, he)` from `developer_usage_hourly`:
/// rows the store keeps already counted, so no join and no per-row rule.
/// Hours the writer has yet to recompute are left out and returned as
/// spans, for the caller to read from the context rollups.
fn counted_groups(
    conn: &rusqlite::Connection,
    (hs, he): (i64, i64),
    f: &Filter,
    dims: &[Dim],
    with_sessions: bool,
) -> Result<(Vec<UsageGroup>, Vec<HourSpan>), QueryError> {
    let marked = conn
        .prepare_cached(
            "SELECT hour FROM developer_usage_dirty WHERE hour >= ?1 AND hour < ?2 ORDER BY hour",
        )?
        .query_map([hs, he], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    let keys: Vec<&str> = dims.iter().filter_map(|d| d.counted_column()).collect();
    let mut sql = select_head(
        &keys,
        COUNTED_SUMS,
        with_sessions.then_some("GROUP_CONCAT(d.sessions)"),
    );
    sql.bind(
        " FROM developer_usage_hourly d WHERE d.hour >= ? AND d.hour < ?",
        [int(hs), int(he)],
    );
    if !marked.is_empty() {
        let marks = vec!["?"; marked.len()].join(", ");
        sql.bind(
            &format!(" AND d.hour NOT IN ({marks})"),
            marked.iter().map(|&h| int(h)),
        );
    }
    f.developer_conditions(&mut sql, "d.developer");
    if let Some(a) = f.agent {
        sql.bind(" AND d.agent = ?", [Value::Text(a.as_str().to_string())]);
    }
    if let Some(m) = &f.model {
        sql.bind(" AND d.model = ?", [Value::Text(m.clone())]);
    }
    if !keys.is_empty() {
        sql.push(" GROUP BY ");
        sql.push(&keys.join(", "));
    }
    Ok((
        run(conn, &sql, dims.len())?,
        crate::store::counted::spans(marked),
    ))
}

/// `SELECT keys..., sums, sessions` (NULL for no session list): the
/// columns [`group_of`] reads.
fn select_head(keys: &[impl AsRef<str>], sums: &str, sessions: Option<&str>) -> Sql {
    let mut sql = Sql::default();
    sql.push("SELECT ");
    for k in keys {
        sql.push(k.as_ref()).push(", ");
    }
    sql.push(sums).push(", ").push(sessions.unwrap_or("NULL"));
    sql
}

/// Runs a grouping statement whose columns are `n` keys, the sums and the
/// session list.
fn run(conn: &rusqlite::Connection, sql: &Sql, n: usize) -> Result<Vec<UsageGroup>, QueryError> {
    let mut stmt = conn.prepare(&sql.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |row| {
        group_of(row, n)
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// One group from a row of `n` keys, the sums and the session list.
fn group_of(row: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<UsageGroup> {
    let mut keys = Vec::with_capacity(n);
    for i in 0..n {
        let v: Value = row.get(i)?;
        keys.push(match v {
            Value::Integer(i) => serde_json::Value::from(i),
            Value::Text(s) => serde_json::Value::from(s),
            Value::Real(r) => serde_json::Value::from(r),
            _ => serde_json::Value::Null,
        });
    }
    let num = |i: usize| -> rusqlite::Result<i64> {
        Ok(row.get::<_, Option<f64>>(n + i)?.unwrap_or(0.0).round() as i64)
    };
    let mut session_refs: Vec<i64> = row
        .get::<_, Option<String>>(n + 15)?
        .map(|list| list.split(',').filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default();
    session_refs.sort_unstable();
    session_refs.dedup();
    Ok(UsageGroup {
        keys,
        usage: Usage {
            requests: num(0)?,
            errors: num(1)?,
            input_tokens: num(2)?,
            output_tokens: num(3)?,
            cache_read_tokens: num(4)?,
            cache_creation_tokens: num(5)?,
            cost_usd: row.get::<_, Option<f64>>(n + 6)?.unwrap_or(0.0),
            reasoning_tokens: num(11)?,
            reported_cost_usd: row.get::<_, Option<f64>>(n + 12)?.unwrap_or(0.0),
            computed_cost_usd: row.get::<_, Option<f64>>(n + 13)?.unwrap_or(0.0),
            unpriced_requests: num(14)?,
            duration_ms: num(7)?,
            sources: Sources {
                events: row.get::<_, Option<bool>>(n + 8)?.unwrap_or(false),
                metrics: row.get::<_, Option<bool>>(n + 9)?.unwrap_or(false),
                sessionless: row.get::<_, Option<bool>>(n + 10)?.unwrap_or(false),
            },
        },
        session_refs,
    })
}

/// The groups of the parts of one range added up by key.
fn merge(parts: Vec<Vec<UsageGroup>>) -> Vec<UsageGroup> {
    let mut by_key: std::collections::BTreeMap<String, UsageGroup> =
        std::collections::BTreeMap::new();
    for g in parts.into_iter().flatten() {
        let key = serde_json::Value::from(g.keys.clone()).to_string();
        match by_key.entry(key) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(g);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let e = o.get_mut();
                e.usage.add(&g.usage);
                e.session_refs.extend(g.session_refs);
                e.session_refs.sort_unstable();
                e.session_refs.dedup();
            }
        }
    }
    by_key.into_values().collect()
}

/// The models of the requests in `range` matching `f` that count without a
/// cost (the agent reported none and the price table has no price), so an
/// answer can name them rather than drop them silently.
pub fn unpriced_models(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
) -> Result<Vec<String>, QueryError> {
    let seg = plan::segments(range, f.needs_raw());
    let mut parts = Vec::new();
    if let Some((hs, he)) = seg.rollup_hours {
        let mut sql = Sql::default();
        sql.bind(
            "SELECT DISTINCT h.model FROM api_hourly h JOIN contexts c ON c.id = h.context_id \
             WHERE h.hour >= ? AND h.hour < ? AND h.unpriced > 0",
            [int(hs), int(he)],
        );
        f.context_conditions(&mut sql);
        if let Some(m) = &f.model {
            sql.bind(" AND h.model = ?", [Value::Text(m.clone())]);
        }
        parts.push(sql);
    }
    for (from, to) in seg.raw {
        let mut sql = Sql::default();
        sql.bind(
            "SELECT DISTINCT COALESCE(e.model, '') FROM events e JOIN contexts c ON c.id = e.context_id \
             WHERE e.time_ns >= ? AND e.time_ns < ? AND e.event_name = 'api_request' \
             AND e.cost_usd IS NULL",
            [int(from), int(to)],
        );
        sql.push(plan::AGENT_RECORDS);
        f.context_conditions(&mut sql);
        f.event_conditions(&mut sql);
        parts.push(sql);
    }
    let mut out = std::collections::BTreeSet::new();
    for sql in parts {
        let mut stmt = conn.prepare(&sql.text)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
            r.get::<_, String>(0)
        })?;
        for m in rows {
            out.insert(m?);
        }
    }
    Ok(out.into_iter().map(|m| super::model_label(&m)).collect())
}

/// Which sources an answer used, for the `source` field of answers.
fn describe_sources(from_events: bool, from_metrics: bool) -> &'static str {
    match (from_events, from_metrics) {
        (true, true) => {
            "api_request events where a session has them, claude_code.cost.usage/token.usage metrics for sessions without (never both for one session)"
        }
        (false, true) => {
            "claude_code.cost.usage/token.usage metrics (no api_request events for these sessions)"
        }
        _ => "api_request events",
    }
}

/// The note every cost answer carries.
pub const COST_NOTE: &str = "cost_usd is the agent's own estimate where it sends one (Claude Code), \
    else computed from the request's tokens and the price table (reported_cost_usd and \
    computed_cost_usd show both); neither is a bill";
