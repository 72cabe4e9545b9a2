//! Store tests: hand-built batches, sums computed by hand. Shared builders
//! here; writes and rollups in `write`, reads, failures, retention and
//! restarts in `lifecycle`.

mod lifecycle;
mod recompute;
mod reprice;
mod write;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::rows::{
    Attrs, Batch, Context, ContextGroup, DedupKey, EventRow, IdentityKind, MetricKind,
    MetricPointRow, SpanRow, Temporality,
};

const H: i64 = 3_600_000_000_000;
const MIN: i64 = 60_000_000_000;
const SEC: i64 = 1_000_000_000;
/// A whole UTC hour (2025-11-23T16:00:00Z).
const T0: i64 = 490_000 * H;
const BUDGET: Duration = Duration::from_secs(10);

fn attrs(v: serde_json::Value) -> Attrs {
    match v {
        serde_json::Value::Object(m) => m,
        _ => Attrs::new(),
    }
}

fn context(key: u8, session: &str, developer: Option<&str>, claude_code: bool) -> Arc<Context> {
    Arc::new(Context {
        key: [key; 16],
        agent: claude_code.then_some(crate::agent::Agent::ClaudeCode),
        agent_version: None,
        service_name: Some("claude-code".into()),
        scope_name: "com.anthropic.claude_code.events".into(),
        scope_version: "2.1.330".into(),
        session_id: Some(session.into()),
        developer: developer.map(Into::into),
        developer_kind: developer.map(|_| IdentityKind::Email),
        user_email: developer.map(Into::into),
        user_account_uuid: None,
        user_id: Some("anon-1".into()),
        organization_id: Some("org-1".into()),
        terminal_type: Some("vscode".into()),
        app_version: Some("2.1.330".into()),
        resource_attrs: attrs(json!({"service.name": "claude-code", "team.id": "platform"})),
        shared_attrs: attrs(json!({"terminal.type": "vscode"})),
    })
}

fn dedup(n: u32) -> DedupKey {
    let mut key = [0xA5; 16];
    key[..4].copy_from_slice(&n.to_le_bytes());
    key
}

fn event(n: u32, time_ns: i64, name: &str) -> EventRow {
    EventRow {
        dedup: dedup(n),
        time_ns,
        observed_ns: time_ns + 1,
        event_name: name.into(),
        ..EventRow::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn api_request(
    n: u32,
    time_ns: i64,
    model: &str,
    tokens: [i64; 4],
    cost: f64,
    ms: i64,
) -> EventRow {
    EventRow {
        model: Some(model.into()),
        input_tokens: Some(tokens[0]),
        output_tokens: Some(tokens[1]),
        cache_read_tokens: Some(tokens[2]),
        cache_creation_tokens: Some(tokens[3]),
        cost_usd: Some(cost),
        duration_ms: Some(ms),
        ..event(n, time_ns, "api_request")
    }
}

fn tool_result(n: u32, time_ns: i64, tool: &str, success: bool, ms: i64) -> EventRow {
    EventRow {
        tool_name: Some(tool.into()),
        success: Some(success),
        duration_ms: Some(ms),
        ..event(n, time_ns, "tool_result")
    }
}

fn group<T>(context: &Arc<Context>, rows: Vec<T>) -> ContextGroup<T> {
    ContextGroup {
        context: context.clone(),
        rows,
    }
}

fn point(
    n: u32,
    name: &str,
    temporality: Temporality,
    start: i64,
    time: i64,
    value: f64,
) -> MetricPointRow {
    MetricPointRow {
        dedup: dedup(n),
        name: name.into(),
        unit: "USD".into(),
        description: String::new(),
        kind: MetricKind::Sum,
        temporality,
        monotonic: true,
        start_ns: start,
        time_ns: time,
        value,
        count: None,
        detail: None,
        model: Some("opus".into()),
        model_variant: None,
        kind_attr: None,
        attrs: Attrs::new(),
    }
}

fn span(n: u32, start_ns: i64) -> SpanRow {
    SpanRow {
        dedup: dedup(n),
        trace_id: vec![7; 16],
        span_id: n.to_le_bytes().repeat(2),
        name: "claude_code.tool".into(),
        start_ns,
        end_ns: start_ns + 5 * SEC,
        tool_name: Some("Edit".into()),
        file_path: Some("/src/main.rs".into()),
        ..SpanRow::default()
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        readers: 2,
        queue_requests: 1024,
        max_transaction_records: 50_000,
        queue_deadline: Duration::from_secs(2),
    }
}

async fn query<T: Send + 'static>(
    store: &Store,
    sql: &'static str,
    map: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    store
        .read(BUDGET, move |c| {
            let mut stmt = c.prepare(sql)?;
            stmt.query_map([], map)?
                .collect::<rusqlite::Result<Vec<T>>>()
        })
        .await
        .unwrap()
}

async fn count(store: &Store, table: &'static str) -> i64 {
    let sql: &'static str = match table {
        "events" => "SELECT count(*) FROM events",
        "metric_points" => "SELECT count(*) FROM metric_points",
        "spans" => "SELECT count(*) FROM spans",
        "sessions" => "SELECT count(*) FROM sessions",
        "contexts" => "SELECT count(*) FROM contexts",
        "metric_series" => "SELECT count(*) FROM metric_series",
        other => panic!("no count for {other}"),
    };
    query(store, sql, |r| r.get(0)).await[0]
}

fn rollup_batch() -> Batch {
    let a = context(1, "s1", Some("alice@example.com"), true);
    let b = context(2, "s2", Some("bob@example.com"), true);
    let other = context(3, "s3", None, false);
    Batch {
        events: vec![
            group(
                &a,
                vec![
                    api_request(1, T0 + 10 * MIN, "opus", [100, 200, 300, 400], 0.5, 1000),
                    api_request(2, T0 + 20 * MIN, "opus", [10, 20, 30, 40], 0.25, 1000),
                    api_request(3, T0 + H + 5 * MIN, "sonnet", [1, 2, 3, 4], 0.125, 500),
                    EventRow {
                        model: Some("opus".into()),
                        status_code: Some(529),
                        ..event(4, T0 + 30 * MIN, "api_error")
                    },
                    tool_result(5, T0 + 31 * MIN, "Read", true, 30),
                    tool_result(6, T0 + 32 * MIN, "Read", false, 30),
                    tool_result(7, T0 + 33 * MIN, "Edit", true, 12),
                    event(8, T0 + 9 * MIN, "user_prompt"),
                    event(9, T0 + 34 * MIN, "tool_decision"),
                ],
            ),
            group(
                &b,
                vec![
                    api_request(10, T0 + 40 * MIN, "opus", [1000, 0, 0, 0], 1.0, 2000),
                    tool_result(11, T0 + 41 * MIN, "Read", true, 30),
                ],
            ),
            group(
                &other,
                vec![api_request(12, T0 + 42 * MIN, "opus", [5, 5, 5, 5], 9.0, 1)],
            ),
        ],
        ..Batch::default()
    }
}

async fn assert_rollups(store: &Store) {
    let hour = T0 / H;
    type ApiHourly = (i64, i64, String, i64, i64, i64, i64, i64, i64, f64, i64);
    let api: Vec<ApiHourly> = query(
        store,
        "SELECT hour, context_id, model, requests, errors, input_tokens, output_tokens,
            cache_read_tokens, cache_creation_tokens, cost_usd, duration_ms
         FROM api_hourly ORDER BY hour, context_id, model",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        },
    )
    .await;
    assert_eq!(
        api,
        vec![
            (hour, 1, "opus".into(), 2, 1, 110, 220, 330, 440, 0.75, 2000),
            (hour, 2, "opus".into(), 1, 0, 1000, 0, 0, 0, 1.0, 2000),
            (hour + 1, 1, "sonnet".into(), 1, 0, 1, 2, 3, 4, 0.125, 500),
        ]
    );
    let tools: Vec<(i64, String, String, String)> = query(
        store,
        "SELECT hour, developer, tool_name, hist FROM tool_latency_hourly
         ORDER BY developer, tool_name",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .await;
    assert_eq!(
        tools,
        vec![
            (
                hour,
                "alice@example.com".into(),
                "Edit".into(),
                "12:1:0".into()
            ),
            (
                hour,
                "alice@example.com".into(),
                "Read".into(),
                "30:2:1".into()
            ),
            (
                hour,
                "bob@example.com".into(),
                "Read".into(),
                "30:1:0".into()
            ),
        ]
    );
    let latency: Vec<(i64, String, String, String)> = query(
        store,
        "SELECT hour, developer, model, hist FROM api_latency_hourly
         ORDER BY hour, developer",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .await;
    assert_eq!(
        latency,
        vec![
            (
                hour,
                "alice@example.com".into(),
                "opus".into(),
                "1000:2:0".into()
            ),
            (
                hour,
                "bob@example.com".into(),
                "opus".into(),
                "2000:1:0".into()
            ),
            (
                hour + 1,
                "alice@example.com".into(),
                "sonnet".into(),
                "500:1:0".into()
            ),
        ]
    );
    type SessionRow = (String, Option<String>, i64, i64, [i64; 6], [i64; 4], f64);
    let sessions: Vec<SessionRow> = query(
        store,
        "SELECT session_id, developer, first_ns, last_ns, events, prompts, api_requests,
            api_errors, tool_calls, tool_failures, input_tokens, output_tokens,
            cache_read_tokens, cache_creation_tokens, cost_usd
         FROM sessions ORDER BY session_id",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                [
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ],
                [r.get(10)?, r.get(11)?, r.get(12)?, r.get(13)?],
                r.get(14)?,
            ))
        },
    )
    .await;
    assert_eq!(
        sessions,
        vec![
            (
                "s1".into(),
                Some("alice@example.com".into()),
                T0 + 9 * MIN,
                T0 + H + 5 * MIN,
                [9, 1, 3, 1, 3, 1],
                [111, 222, 333, 444],
                0.875
            ),
            (
                "s2".into(),
                Some("bob@example.com".into()),
                T0 + 40 * MIN,
                T0 + 41 * MIN,
                [2, 0, 1, 0, 1, 0],
                [1000, 0, 0, 0],
                1.0
            ),
            (
                "s3".into(),
                None,
                T0 + 42 * MIN,
                T0 + 42 * MIN,
                [1, 0, 0, 0, 0, 0],
                [0; 4],
                0.0
            ),
        ]
    );
}
