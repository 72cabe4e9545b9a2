//! Test fixtures: typed rows written through the store's real write path
//! (raw rows plus the rollups and session totals in the same transaction),
//! a hand-built copy of the `v330_t3_json_tools_details` capture, and a
//! deterministic multi-developer data set whose expected numbers the tests
//! compute by iterating over the generated records in Rust.

// Test-only: not every test uses every field of the records.
#![allow(dead_code)]

use std::sync::Arc;

use rusqlite::Connection;
use serde_json::json;

use crate::rows::{
    Attrs, Batch, Context, ContextGroup, DedupKey, EventRow, IdentityKind, MetricKind,
    MetricPointRow, SpanRow, Temporality,
};

/// An event as the decoder produces it (the typed columns of `EventRow`).
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

/// A context (identity + resource) as the decoder produces it.
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

/// A span as the decoder produces it.
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

/// An in-memory store with the real schema, filled through the store's own
/// write path: each call hands a `rows::Batch` to the writer's transaction,
/// so rollups, sessions and histograms are exactly what ingest keeps.
pub struct Fx {
    pub conn: Connection,
    /// Every batch written, in order (to give another engine the same rows).
    pub batches: Vec<Batch>,
    cache: crate::store::WriterCache,
    contexts: Vec<Arc<Context>>,
    dedup: u64,
}

fn attrs_of(v: serde_json::Value) -> Attrs {
    match v {
        serde_json::Value::Object(m) => m,
        _ => Attrs::new(),
    }
}

impl Fx {
    pub fn new() -> Fx {
        let conn = Connection::open_in_memory().unwrap();
        crate::store::migrate(&conn).unwrap();
        Fx {
            conn,
            batches: Vec::new(),
            cache: Default::default(),
            contexts: Vec::new(),
            dedup: 0,
        }
    }

    fn next_dedup(&mut self) -> DedupKey {
        self.dedup += 1;
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&self.dedup.to_be_bytes());
        key
    }

    /// Writes one batch as the writer does. The hours of counted usage it
    /// marks are recomputed after every other batch, so answers read some
    /// hours from the per-developer rollup and others, still marked, from
    /// the context rollups, as they can on a live store.
    fn write(&mut self, batch: Batch) {
        crate::store::write_batches(&self.conn, &mut self.cache, &[&batch]).unwrap();
        self.batches.push(batch);
        if self.batches.len().is_multiple_of(2) {
            crate::store::counted::catch_up(&self.conn).unwrap();
        }
    }

    /// Decodes an OTLP/JSON body with the real decoder and writes what it
    /// yields (content capture off, as by default).
    pub fn ingest_json(&mut self, signal: crate::otlp::Signal, body: &serde_json::Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let opts = crate::otlp::DecodeOptions {
            max_body_bytes: 64 << 20,
            capture_content: false,
            ..Default::default()
        };
        let d = crate::otlp::decode(signal, &bytes, Some("application/json"), None, &opts).unwrap();
        assert_eq!(d.rejected, 0, "{:?}", d.message);
        self.write(d.batch);
    }

    /// Decodes generated team telemetry ([`crate::demo`]) with the real
    /// decoder and writes it, one request per transaction.
    pub fn ingest_demo(&mut self, sessions: &[crate::demo::Session]) {
        let opts = crate::otlp::DecodeOptions::default();
        for s in sessions {
            for r in &s.logs {
                let d = crate::otlp::logs_to_batch(r, &opts);
                assert_eq!(d.rejected, 0, "{:?}", d.message);
                self.write(d.batch);
            }
            for r in &s.metrics {
                let d = crate::otlp::metrics_to_batch(r, &opts);
                assert_eq!(d.rejected, 0, "{:?}", d.message);
                self.write(d.batch);
            }
        }
    }

    /// Registers a context (identity + resource) as the decoder builds it;
    /// returns a handle for the record methods.
    pub fn context(&mut self, spec: &CtxSpec, _first_ns: i64) -> i64 {
        let mut key = [0u8; 16];
        key.copy_from_slice(&blake3::hash(format!("{spec:?}").as_bytes()).as_bytes()[..16]);
        if let Some(i) = self.contexts.iter().position(|c| c.key == key) {
            return i as i64;
        }
        let (developer, kind) = spec.developer();
        let mut res = json!({"service.name": "claude-code"});
        if let Some(t) = &spec.team {
            res["team.id"] = json!(t);
        }
        if let Some(d) = &spec.department {
            res["department"] = json!(d);
        }
        let mut shared = res.clone();
        shared["terminal.type"] = json!("xterm-256color");
        if let Some(s) = &spec.session_id {
            shared["session.id"] = json!(s);
        }
        self.contexts.push(Arc::new(Context {
            key,
            agent: Some(crate::agent::Agent::ClaudeCode),
            agent_version: Some(spec.app_version.clone()),
            service_name: Some("claude-code".into()),
            scope_name: spec.scope_name.clone(),
            scope_version: spec.app_version.clone(),
            session_id: spec.session_id.clone(),
            developer,
            developer_kind: kind.map(|k| match k {
                "email" => IdentityKind::Email,
                "account_uuid" => IdentityKind::AccountUuid,
                _ => IdentityKind::UserId,
            }),
            user_email: spec.email.clone(),
            user_account_uuid: spec.account_uuid.clone(),
            user_id: spec.user_id.clone(),
            organization_id: None,
            terminal_type: Some("xterm-256color".into()),
            app_version: Some(spec.app_version.clone()),
            resource_attrs: attrs_of(res),
            shared_attrs: attrs_of(shared),
        }));
        self.contexts.len() as i64 - 1
    }

    fn ctx(&self, handle: i64) -> Arc<Context> {
        self.contexts[handle as usize].clone()
    }

    /// Writes one event through the writer.
    pub fn event(&mut self, ctx: i64, e: &Ev) {
        let row = EventRow {
            dedup: self.next_dedup(),
            time_ns: e.time_ns,
            observed_ns: e.time_ns,
            event_name: e.event_name.clone(),
            body: e.body.clone(),
            prompt_id: e.prompt_id.clone(),
            sequence: e.sequence,
            model: e.model.clone(),
            input_tokens: e.input_tokens,
            output_tokens: e.output_tokens,
            cache_read_tokens: e.cache_read_tokens,
            cache_creation_tokens: e.cache_creation_tokens,
            cost_usd: e.cost_usd,
            duration_ms: e.duration_ms,
            tool_name: e.tool_name.clone(),
            tool_use_id: e.tool_use_id.clone(),
            success: e.success,
            decision: e.decision.clone(),
            decision_source: e.decision_source.clone(),
            status_code: e.status_code,
            error: e.error.clone(),
            request_id: e.request_id.clone(),
            query_source: e.query_source.clone(),
            file_path: e.file_path.clone(),
            mcp_server: e.mcp_server.clone(),
            mcp_tool: e.mcp_tool.clone(),
            repository: e.repository.clone(),
            branch: e.branch.clone(),
            attrs: e.attrs.clone().map(attrs_of).unwrap_or_default(),
            ..EventRow::default()
        };
        let context = self.ctx(ctx);
        self.write(Batch {
            events: vec![ContextGroup {
                context,
                rows: vec![row],
            }],
            ..Batch::default()
        });
    }

    /// Writes one delta sum point (covering the second before `time_ns`).
    pub fn metric(
        &mut self,
        ctx: i64,
        name: &str,
        model: &str,
        kind_attr: Option<&str>,
        time_ns: i64,
        value: f64,
    ) {
        let row = MetricPointRow {
            dedup: self.next_dedup(),
            name: name.into(),
            unit: String::new(),
            description: String::new(),
            kind: MetricKind::Sum,
            temporality: Temporality::Delta,
            monotonic: true,
            start_ns: time_ns - 1_000_000_000,
            time_ns,
            value,
            count: None,
            detail: None,
            model: (!model.is_empty()).then(|| model.to_string()),
            model_variant: None,
            kind_attr: kind_attr.map(Into::into),
            attrs: Attrs::new(),
        };
        let context = self.ctx(ctx);
        self.write(Batch {
            metric_points: vec![ContextGroup {
                context,
                rows: vec![row],
            }],
            ..Batch::default()
        });
    }

    /// Writes one span.
    pub fn span(&mut self, ctx: i64, s: &SpanSpec) {
        let row = SpanRow {
            dedup: self.next_dedup(),
            trace_id: s.trace_id.clone(),
            span_id: s.span_id.clone(),
            parent_span_id: s.parent_span_id.clone().unwrap_or_default(),
            name: s.name.clone(),
            kind: 1,
            start_ns: s.start_ns,
            end_ns: s.end_ns,
            tool_name: s.tool_name.clone(),
            tool_use_id: s.tool_use_id.clone(),
            file_path: s.file_path.clone(),
            decision: s.decision.clone(),
            decision_source: s.decision_source.clone(),
            duration_ms: s.duration_ms,
            ..SpanRow::default()
        };
        let context = self.ctx(ctx);
        self.write(Batch {
            spans: vec![ContextGroup {
                context,
                rows: vec![row],
            }],
            ..Batch::default()
        });
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

/// Comparison of an amount of money in a tool reply (rounded to 6
/// decimals, the precision answers promise) with an exact sum.
pub fn close_usd(reply: f64, exact: f64) -> bool {
    (reply - exact).abs() <= 5e-7 + 1e-9 * exact.abs()
}

/// Float comparison for sums computed in a different order.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}
