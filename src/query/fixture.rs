//! Test fixtures: rows inserted the way the store's writer stores them
//! (raw rows plus the rollups and session totals in the same transaction),
//! a hand-built copy of the `v330_t3_json_tools_details` capture, and a
//! deterministic multi-developer data set whose expected numbers the tests
//! compute by iterating over the generated records in Rust.

// Test-only: not every test uses every field of the records.
#![allow(dead_code)]

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::HOUR_NS;

/// An event as the writer stores it (`events` columns).
#[derive(Debug, Clone, Default)]
pub struct Ev {
    pub time_ns: i64,
    pub event_name: String,
    pub body: Option<String>,
    pub prompt_id: Option<String>,
    pub sequence: Option<i64>,
    pub model: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_creation_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
    pub duration_ms: Option<i64>,
    pub tool_name: Option<String>,
    pub tool_use_id: Option<String>,
    pub success: Option<bool>,
    pub decision: Option<String>,
    pub decision_source: Option<String>,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub request_id: Option<String>,
    pub query_source: Option<String>,
    pub file_path: Option<String>,
    pub mcp_server: Option<String>,
    pub mcp_tool: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub attrs: Option<serde_json::Value>,
}

/// A context (identity + resource) as the writer stores it.
#[derive(Debug, Clone, Default)]
pub struct CtxSpec {
    pub session_id: Option<String>,
    pub email: Option<String>,
    pub account_uuid: Option<String>,
    pub user_id: Option<String>,
    pub team: Option<String>,
    pub department: Option<String>,
    pub scope_name: String,
    pub app_version: String,
}

impl CtxSpec {
    /// Developer by precedence and its kind.
    pub fn developer(&self) -> (Option<String>, Option<&'static str>) {
        if let Some(e) = &self.email {
            (Some(e.clone()), Some("email"))
        } else if let Some(a) = &self.account_uuid {
            (Some(a.clone()), Some("account_uuid"))
        } else if let Some(u) = &self.user_id {
            (Some(u.clone()), Some("user_id"))
        } else {
            (None, None)
        }
    }
}

/// A span as the writer stores it.
#[derive(Debug, Clone, Default)]
pub struct SpanSpec {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub parent_span_id: Option<Vec<u8>>,
    pub name: String,
    pub start_ns: i64,
    pub end_ns: i64,
    pub tool_name: Option<String>,
    pub tool_use_id: Option<String>,
    pub file_path: Option<String>,
    pub decision: Option<String>,
    pub decision_source: Option<String>,
    pub duration_ms: Option<i64>,
}

/// An in-memory store with the real schema.
pub struct Fx {
    pub conn: Connection,
    dedup: u64,
}

impl Fx {
    pub fn new() -> Fx {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("../store/schema.sql"))
            .unwrap();
        Fx { conn, dedup: 0 }
    }

    fn next_dedup(&mut self) -> Vec<u8> {
        self.dedup += 1;
        self.dedup.to_be_bytes().to_vec()
    }

    fn session_ref(&self, spec: &CtxSpec, t: i64) -> Option<i64> {
        let sid = spec.session_id.as_ref()?;
        let (dev, kind) = spec.developer();
        self.conn
            .execute(
                "INSERT INTO sessions (session_id, developer, developer_kind, first_ns, last_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(session_id) DO NOTHING",
                params![sid, dev, kind, t],
            )
            .unwrap();
        self.conn
            .query_row(
                "SELECT id FROM sessions WHERE session_id = ?1",
                [sid],
                |r| r.get(0),
            )
            .ok()
    }

    /// Inserts (or finds) a context; returns its id.
    pub fn context(&mut self, spec: &CtxSpec, first_ns: i64) -> i64 {
        let key = format!("{spec:?}");
        if let Some(id) = self
            .conn
            .query_row(
                "SELECT id FROM contexts WHERE key = ?1",
                [key.as_bytes()],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
        {
            return id;
        }
        let sref = self.session_ref(spec, first_ns);
        let (dev, kind) = spec.developer();
        let mut res = serde_json::Map::new();
        res.insert("service.name".into(), json!("claude-code"));
        if let Some(t) = &spec.team {
            res.insert("team.id".into(), json!(t));
        }
        if let Some(d) = &spec.department {
            res.insert("department".into(), json!(d));
        }
        let mut shared = res.clone();
        if let Some(s) = &spec.session_id {
            shared.insert("session.id".into(), json!(s));
        }
        self.conn
            .execute(
                "INSERT INTO contexts (key, session_ref, claude_code, service_name, scope_name, scope_version, \
                 developer, developer_kind, user_email, user_account_uuid, user_id, organization_id, \
                 terminal_type, app_version, resource_attrs, shared_attrs, first_seen_ns) \
                 VALUES (?1, ?2, 1, 'claude-code', ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, 'xterm-256color', ?4, ?10, ?11, ?12)",
                params![
                    key.as_bytes(),
                    sref,
                    spec.scope_name,
                    spec.app_version,
                    dev,
                    kind,
                    spec.email,
                    spec.account_uuid,
                    spec.user_id,
                    serde_json::Value::Object(res).to_string(),
                    serde_json::Value::Object(shared).to_string(),
                    first_ns
                ],
            )
            .unwrap();
        self.conn.last_insert_rowid()
    }

    fn ctx_info(&self, ctx: i64) -> (Option<i64>, String) {
        self.conn
            .query_row(
                "SELECT session_ref, COALESCE(developer, '') FROM contexts WHERE id = ?1",
                [ctx],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
    }

    /// Inserts an event and maintains rollups and session totals.
    pub fn event(&mut self, ctx: i64, e: &Ev) -> i64 {
        let dedup = self.next_dedup();
        self.conn
            .execute(
                "INSERT INTO events (dedup, context_id, time_ns, observed_ns, event_name, body, prompt_id, sequence, \
                 model, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, cost_usd, duration_ms, \
                 tool_name, tool_use_id, success, decision, decision_source, status_code, error, request_id, \
                 query_source, file_path, mcp_server, mcp_tool, repository, branch, attrs) \
                 VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
                 ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
                rusqlite::params![
                    dedup,
                    ctx,
                    e.time_ns,
                    e.event_name,
                    e.body,
                    e.prompt_id,
                    e.sequence,
                    e.model,
                    e.input_tokens,
                    e.output_tokens,
                    e.cache_read_tokens,
                    e.cache_creation_tokens,
                    e.cost_usd,
                    e.duration_ms,
                    e.tool_name,
                    e.tool_use_id,
                    e.success,
                    e.decision,
                    e.decision_source,
                    e.status_code,
                    e.error,
                    e.request_id,
                    e.query_source,
                    e.file_path,
                    e.mcp_server,
                    e.mcp_tool,
                    e.repository,
                    e.branch,
                    e.attrs.as_ref().map(|a| a.to_string()),
                ],
            )
            .unwrap();
        let id = self.conn.last_insert_rowid();
        let (sref, dev) = self.ctx_info(ctx);
        let hour = e.time_ns / HOUR_NS;
        let is = |n: &str| e.event_name == n;
        let (i, o, cr, cc) = (
            e.input_tokens.unwrap_or(0),
            e.output_tokens.unwrap_or(0),
            e.cache_read_tokens.unwrap_or(0),
            e.cache_creation_tokens.unwrap_or(0),
        );
        let cost = e.cost_usd.unwrap_or(0.0);
        if let Some(s) = sref {
            let api = is("api_request");
            self.conn
                .execute(
                    "UPDATE sessions SET first_ns = MIN(first_ns, ?2), last_ns = MAX(last_ns, ?2), events = events + 1, \
                     prompts = prompts + ?3, api_requests = api_requests + ?4, api_errors = api_errors + ?5, \
                     tool_calls = tool_calls + ?6, tool_failures = tool_failures + ?7, \
                     input_tokens = input_tokens + ?8, output_tokens = output_tokens + ?9, \
                     cache_read_tokens = cache_read_tokens + ?10, cache_creation_tokens = cache_creation_tokens + ?11, \
                     cost_usd = cost_usd + ?12 WHERE id = ?1",
                    params![
                        s,
                        e.time_ns,
                        is("user_prompt") as i64,
                        api as i64,
                        is("api_error") as i64,
                        is("tool_result") as i64,
                        (is("tool_result") && e.success == Some(false)) as i64,
                        if api { i } else { 0 },
                        if api { o } else { 0 },
                        if api { cr } else { 0 },
                        if api { cc } else { 0 },
                        if api { cost } else { 0.0 },
                    ],
                )
                .unwrap();
        }
        if is("user_prompt") {
            self.conn
                .execute(
                    "INSERT INTO prompt_hourly VALUES (?1, ?2, 1) \
                     ON CONFLICT(hour, context_id) DO UPDATE SET prompts = prompts + 1",
                    params![hour, ctx],
                )
                .unwrap();
        }
        if is("api_request") || is("api_error") {
            let api = is("api_request");
            let model = e.model.clone().unwrap_or_default();
            self.conn
                .execute(
                    "INSERT INTO api_hourly VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                     ON CONFLICT(hour, context_id, model) DO UPDATE SET requests = requests + excluded.requests, \
                     errors = errors + excluded.errors, input_tokens = input_tokens + excluded.input_tokens, \
                     output_tokens = output_tokens + excluded.output_tokens, \
                     cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens, \
                     cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens, \
                     cost_usd = cost_usd + excluded.cost_usd, duration_ms = duration_ms + excluded.duration_ms",
                    params![
                        hour,
                        ctx,
                        model,
                        api as i64,
                        (!api) as i64,
                        if api { i } else { 0 },
                        if api { o } else { 0 },
                        if api { cr } else { 0 },
                        if api { cc } else { 0 },
                        if api { cost } else { 0.0 },
                        if api { e.duration_ms.unwrap_or(0) } else { 0 },
                    ],
                )
                .unwrap();
            if api && let Some(d) = e.duration_ms {
                self.conn
                    .execute(
                        "INSERT INTO api_latency_hist VALUES (?1, ?2, ?3, ?4, 1) ON CONFLICT(hour, developer, model, duration_ms) \
                         DO UPDATE SET requests = requests + 1",
                        params![hour, dev, model, d],
                    )
                    .unwrap();
            }
        }
        if is("tool_result")
            && let Some(d) = e.duration_ms
        {
            self.conn
                .execute(
                    "INSERT INTO tool_latency_hist VALUES (?1, ?2, ?3, ?4, 1, ?5) ON CONFLICT(hour, developer, tool_name, duration_ms) \
                     DO UPDATE SET calls = calls + 1, failures = failures + excluded.failures",
                    params![
                        hour,
                        dev,
                        e.tool_name.clone().unwrap_or_default(),
                        d,
                        (e.success == Some(false)) as i64
                    ],
                )
                .unwrap();
        }
        id
    }

    /// Inserts one delta sum point and maintains `metric_hourly` and the
    /// session's metric totals.
    pub fn metric(
        &mut self,
        ctx: i64,
        name: &str,
        model: &str,
        kind_attr: Option<&str>,
        time_ns: i64,
        value: f64,
    ) {
        let key = format!("{ctx}/{name}/{model}/{kind_attr:?}");
        let series: i64 = match self
            .conn
            .query_row(
                "SELECT id FROM metric_series WHERE key = ?1",
                [key.as_bytes()],
                |r| r.get(0),
            )
            .optional()
            .unwrap()
        {
            Some(id) => id,
            None => {
                self.conn
                    .execute(
                        "INSERT INTO metric_series (key, context_id, name, unit, description, kind, temporality, monotonic, model, kind_attr) \
                         VALUES (?1, ?2, ?3, '', '', 'sum', 1, 1, ?4, ?5)",
                        params![key.as_bytes(), ctx, name, model, kind_attr],
                    )
                    .unwrap();
                self.conn.last_insert_rowid()
            }
        };
        let dedup = self.next_dedup();
        self.conn
            .execute(
                "INSERT INTO metric_points (dedup, series_id, start_ns, time_ns, value, delta) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![dedup, series, time_ns - 1_000_000_000, time_ns, value],
            )
            .unwrap();
        self.conn
            .execute(
                "INSERT INTO metric_hourly VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1) \
                 ON CONFLICT(hour, context_id, name, model, kind_attr) DO UPDATE SET value = value + excluded.value, points = points + 1",
                params![time_ns / HOUR_NS, ctx, name, model, kind_attr.unwrap_or(""), value],
            )
            .unwrap();
        let (sref, _) = self.ctx_info(ctx);
        if let Some(s) = sref {
            let col = match (name, kind_attr) {
                ("claude_code.cost.usage", _) => Some("metric_cost_usd"),
                ("claude_code.token.usage", Some("input")) => Some("metric_input_tokens"),
                ("claude_code.token.usage", Some("output")) => Some("metric_output_tokens"),
                ("claude_code.token.usage", Some("cacheRead")) => Some("metric_cache_read_tokens"),
                ("claude_code.token.usage", Some("cacheCreation")) => {
                    Some("metric_cache_creation_tokens")
                }
                _ => None,
            };
            if let Some(col) = col {
                self.conn
                    .execute(
                        &format!(
                            "UPDATE sessions SET {col} = {col} + ?2, first_ns = MIN(first_ns, ?3), last_ns = MAX(last_ns, ?3) WHERE id = ?1"
                        ),
                        params![s, value, time_ns],
                    )
                    .unwrap();
            }
        }
    }

    /// Inserts a span.
    pub fn span(&mut self, ctx: i64, s: &SpanSpec) {
        let dedup = self.next_dedup();
        self.conn
            .execute(
                "INSERT INTO spans (dedup, context_id, trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, \
                 status_code, tool_name, tool_use_id, file_path, decision, decision_source, duration_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, 0, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    dedup,
                    ctx,
                    s.trace_id,
                    s.span_id,
                    s.parent_span_id,
                    s.name,
                    s.start_ns,
                    s.end_ns,
                    s.tool_name,
                    s.tool_use_id,
                    s.file_path,
                    s.decision,
                    s.decision_source,
                    s.duration_ms
                ],
            )
            .unwrap();
    }
}

pub mod capture;
pub mod generated;

/// A UTC range for tests.
pub fn utc(since_ns: i64, until_ns: i64) -> super::time::TimeRange {
    super::time::TimeRange {
        since_ns,
        until_ns,
        tz: jiff::tz::TimeZone::UTC,
        tz_name: "UTC".into(),
        asked: None,
    }
}

/// Float comparison for sums computed in a different order.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}
