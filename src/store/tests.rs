//! Store tests: hand-built batches, sums computed by hand.

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
        claude_code,
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

#[tokio::test]
async fn typed_values_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let ctx = context(1, "sess-1", Some("alice@example.com"), true);
    let mut e = api_request(
        1,
        T0 + SEC,
        "claude-opus-4-1",
        [12, 34, 56, 78],
        0.015625,
        2345,
    );
    e.ttft_ms = Some(456);
    e.prompt_id = Some("prompt-1".into());
    e.sequence = Some(7);
    e.request_id = Some("req_1".into());
    e.trace_id = Some(vec![1; 16]);
    e.attrs = attrs(json!({"speed": "fast", "effort": 3}));
    let mut t = tool_result(2, T0 + 2 * SEC, "Edit", false, 88);
    t.file_path = Some("/repo/src/lib.rs".into());
    t.decision = Some("accept".into());
    t.content_redacted = true;
    let batch = Batch {
        events: vec![group(&ctx, vec![e, t])],
        ..Batch::default()
    };
    let receipt = store.write(batch).await.unwrap();
    assert_eq!(
        receipt,
        WriteReceipt {
            inserted: 2,
            duplicates: 0
        }
    );

    type ApiRow = (
        String,
        String,
        [i64; 4],
        f64,
        [i64; 3],
        String,
        Option<String>,
        Vec<u8>,
    );
    let rows: Vec<ApiRow> = query(
        &store,
        "SELECT event_name, model, input_tokens, output_tokens, cache_read_tokens,
            cache_creation_tokens, cost_usd, duration_ms, ttft_ms, sequence, prompt_id, attrs,
            trace_id
         FROM events WHERE event_name = 'api_request'",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
                r.get(6)?,
                [r.get(7)?, r.get(8)?, r.get(9)?],
                r.get(10)?,
                r.get(11)?,
                r.get(12)?,
            ))
        },
    )
    .await;
    assert_eq!(
        rows,
        vec![(
            "api_request".into(),
            "claude-opus-4-1".into(),
            [12, 34, 56, 78],
            0.015625,
            [2345, 456, 7],
            "prompt-1".into(),
            Some(r#"{"effort":3,"speed":"fast"}"#.into()),
            vec![1; 16],
        )]
    );
    type ToolRow = (String, bool, i64, String, String, bool, Option<String>);
    let tool: Vec<ToolRow> = query(
        &store,
        "SELECT tool_name, success, duration_ms, file_path, decision, content_redacted, attrs
         FROM events WHERE event_name = 'tool_result'",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        },
    )
    .await;
    assert_eq!(
        tool,
        vec![(
            "Edit".into(),
            false,
            88,
            "/repo/src/lib.rs".into(),
            "accept".into(),
            true,
            None
        )]
    );
    let contexts: Vec<(String, String, String, bool, String)> = query(
        &store,
        "SELECT c.developer, c.developer_kind, resource_attrs, claude_code, s.session_id
         FROM contexts c JOIN sessions s ON s.id = c.session_ref",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .await;
    assert_eq!(
        contexts,
        vec![(
            "alice@example.com".into(),
            "email".into(),
            r#"{"service.name":"claude-code","team.id":"platform"}"#.into(),
            true,
            "sess-1".into()
        )]
    );
    store.close().await.unwrap();
}

/// Events across two hours, two developers, and one non-Claude-Code context.
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
    let tools: Vec<(i64, String, String, i64, i64, i64)> = query(
        store,
        "SELECT hour, developer, tool_name, duration_ms, calls, failures FROM tool_latency_hist
         ORDER BY developer, tool_name",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )
    .await;
    assert_eq!(
        tools,
        vec![
            (hour, "alice@example.com".into(), "Edit".into(), 12, 1, 0),
            (hour, "alice@example.com".into(), "Read".into(), 30, 2, 1),
            (hour, "bob@example.com".into(), "Read".into(), 30, 1, 0),
        ]
    );
    let latency: Vec<(i64, String, String, i64, i64)> = query(
        store,
        "SELECT hour, developer, model, duration_ms, requests FROM api_latency_hist
         ORDER BY hour, developer",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .await;
    assert_eq!(
        latency,
        vec![
            (hour, "alice@example.com".into(), "opus".into(), 1000, 2),
            (hour, "bob@example.com".into(), "opus".into(), 2000, 1),
            (
                hour + 1,
                "alice@example.com".into(),
                "sonnet".into(),
                500,
                1
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

#[tokio::test]
async fn rollups_hold_hand_sums_and_a_retry_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let first = store.write(rollup_batch()).await.unwrap();
    assert_eq!(
        first,
        WriteReceipt {
            inserted: 12,
            duplicates: 0
        }
    );
    assert_rollups(&store).await;
    let retry = store.write(rollup_batch()).await.unwrap();
    assert_eq!(
        retry,
        WriteReceipt {
            inserted: 0,
            duplicates: 12
        }
    );
    assert_rollups(&store).await;
    assert_eq!(count(&store, "events").await, 12);
    assert_eq!(count(&store, "contexts").await, 3);
    store.close().await.unwrap();
}

fn cost_points(ctx: &Arc<Context>, points: Vec<MetricPointRow>) -> Batch {
    Batch {
        metric_points: vec![group(ctx, points)],
        ..Batch::default()
    }
}

#[tokio::test]
async fn cumulative_metrics_become_deltas_across_restart_reset_and_late_points() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(1, "s1", Some("alice@example.com"), true);
    let cost = "claude_code.cost.usage";
    let c = Temporality::Cumulative;
    let first = cost_points(
        &ctx,
        vec![
            point(1, cost, c, T0, T0 + 10 * SEC, 1.0), // first point: 1.0
            point(2, cost, c, T0, T0 + 20 * SEC, 1.5), // increase: 0.5
            point(3, cost, c, T0, T0 + 15 * SEC, 1.25), // out of order: 0
        ],
    );
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.write(first).await.unwrap().inserted, 3);
    // The series position must survive a restart of the server.
    store.close().await.unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let mut tokens_a = point(
        7,
        "claude_code.token.usage",
        Temporality::Delta,
        T0,
        T0 + 10 * SEC,
        100.0,
    );
    tokens_a.kind_attr = Some("input".into());
    let mut tokens_b = point(
        8,
        "claude_code.token.usage",
        Temporality::Delta,
        T0,
        T0 + 5 * SEC,
        50.0,
    );
    tokens_b.kind_attr = Some("input".into());
    let second = || {
        cost_points(
            &ctx,
            vec![
                point(4, cost, c, T0 + 30 * SEC, T0 + 40 * SEC, 0.25), // restart: 0.25
                point(5, cost, c, T0 + 30 * SEC, T0 + 50 * SEC, 0.125), // reset: 0.125
                point(6, cost, c, T0 + 30 * SEC, T0 + 60 * SEC, 0.625), // increase: 0.5
                tokens_a.clone(),                                      // delta: 100
                tokens_b.clone(),                                      // delta, older: still 50
            ],
        )
    };
    assert_eq!(store.write(second()).await.unwrap().inserted, 5);
    let retry = store.write(second()).await.unwrap();
    assert_eq!(
        retry,
        WriteReceipt {
            inserted: 0,
            duplicates: 5
        }
    );

    let deltas: Vec<(i64, f64, f64)> = query(
        &store,
        "SELECT p.time_ns, p.value, p.delta FROM metric_points p
         JOIN metric_series s ON s.id = p.series_id
         WHERE s.name = 'claude_code.cost.usage' ORDER BY p.id",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .await;
    assert_eq!(
        deltas,
        vec![
            (T0 + 10 * SEC, 1.0, 1.0),
            (T0 + 20 * SEC, 1.5, 0.5),
            (T0 + 15 * SEC, 1.25, 0.0),
            (T0 + 40 * SEC, 0.25, 0.25),
            (T0 + 50 * SEC, 0.125, 0.125),
            (T0 + 60 * SEC, 0.625, 0.5),
        ]
    );
    let token_deltas: Vec<f64> = query(
        &store,
        "SELECT p.delta FROM metric_points p JOIN metric_series s ON s.id = p.series_id
         WHERE s.name = 'claude_code.token.usage' ORDER BY p.id",
        |r| r.get(0),
    )
    .await;
    assert_eq!(token_deltas, vec![100.0, 50.0]);
    let hourly: Vec<(String, String, String, f64, i64)> = query(
        &store,
        "SELECT name, model, kind_attr, value, points FROM metric_hourly ORDER BY name",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .await;
    assert_eq!(
        hourly,
        vec![
            (cost.into(), "opus".into(), "".into(), 2.375, 6),
            (
                "claude_code.token.usage".into(),
                "opus".into(),
                "input".into(),
                150.0,
                2
            ),
        ]
    );
    let session: Vec<(f64, f64, f64, i64, i64, i64)> = query(
        &store,
        "SELECT metric_cost_usd, metric_input_tokens, metric_output_tokens, events, first_ns, last_ns
         FROM sessions",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    )
    .await;
    assert_eq!(
        session,
        vec![(2.375, 150.0, 0.0, 0, T0 + 5 * SEC, T0 + 60 * SEC)]
    );
    let last: Vec<(i64, i64, f64)> = query(
        &store,
        "SELECT last_start_ns, last_time_ns, last_value FROM metric_series
         WHERE name = 'claude_code.cost.usage'",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .await;
    assert_eq!(last, vec![(T0 + 30 * SEC, T0 + 60 * SEC, 0.625)]);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_all_acknowledged_and_present() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let mut tasks = Vec::new();
    for req in 0..200u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = context((req % 7) as u8, &format!("s{}", req % 7), Some("dev"), true);
            let rows = (0..5)
                .map(|i| tool_result(req * 10 + i, T0 + i64::from(req) * SEC, "Bash", true, 3))
                .collect();
            store
                .write(Batch {
                    events: vec![group(&ctx, rows)],
                    ..Batch::default()
                })
                .await
        }));
    }
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap(),
            WriteReceipt {
                inserted: 5,
                duplicates: 0
            }
        );
    }
    assert_eq!(count(&store, "events").await, 1000);
    assert_eq!(count(&store, "sessions").await, 7);
    let calls: Vec<(i64, i64)> = query(
        &store,
        "SELECT (SELECT sum(tool_calls) FROM sessions), (SELECT sum(calls) FROM tool_latency_hist)",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .await;
    assert_eq!(calls, vec![(1000, 1000)]);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_query_is_interrupted_at_its_budget_and_the_connection_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            readers: 1,
            ..options()
        },
    )
    .unwrap();
    let started = Instant::now();
    let slow = store
        .read(Duration::from_millis(100), |c| {
            c.query_row(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000)
                 SELECT count(*) FROM n",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .await;
    assert!(matches!(slow, Err(ReadError::TimedOut)), "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The only connection answers the next query normally.
    let next = store
        .read(Duration::from_millis(500), |c| {
            c.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        })
        .await
        .unwrap();
    assert_eq!(next, 0);
    // A closure of several statements stops too (the interrupt repeats).
    let many = store
        .read(Duration::from_millis(100), |c| {
            for _ in 0..1_000_000 {
                c.query_row(
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000)
                     SELECT count(*) FROM n",
                    [],
                    |r| r.get::<_, i64>(0),
                )?;
            }
            Ok(())
        })
        .await;
    assert!(matches!(many, Err(ReadError::TimedOut)), "{many:?}");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_past_the_queue_deadline_are_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            readers: 1,
            queue_deadline: Duration::from_millis(50),
            ..options()
        },
    )
    .unwrap();
    let holder = store.clone();
    let held = tokio::spawn(async move {
        holder
            .read(BUDGET, |_| {
                std::thread::sleep(Duration::from_millis(600));
                Ok(1)
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let busy = store.read(BUDGET, |_| Ok(2)).await;
    assert!(matches!(busy, Err(ReadError::Busy)), "{busy:?}");
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(store.read(BUDGET, |_| Ok(3)).await.unwrap(), 3);
    // Ingest is independent of the readers.
    let ctx = context(1, "s", None, true);
    let batch = Batch {
        events: vec![group(&ctx, vec![event(1, T0, "user_prompt")])],
        ..Batch::default()
    };
    let holder = store.clone();
    let held = tokio::spawn(async move {
        holder
            .read(BUDGET, |_| {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.write(batch).await.unwrap().inserted, 1);
    held.await.unwrap().unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_full_disk_is_unavailable_and_stores_nothing_partial() {
    let dir = tempfile::tempdir().unwrap();
    // Cap the database at its current size: the next new page fails with SQLITE_FULL.
    let store = Store::open_with(dir.path(), options(), |c| {
        let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
    })
    .unwrap();
    let ctx = context(1, "s1", Some("alice@example.com"), true);
    let rows = (0..3000)
        .map(|n| api_request(n, T0 + i64::from(n), "opus", [1, 2, 3, 4], 0.5, 10))
        .collect();
    let batch = Batch {
        events: vec![group(&ctx, rows)],
        ..Batch::default()
    };
    let err = store.write(batch.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(count(&store, "events").await, 0);
    assert_eq!(count(&store, "sessions").await, 0);
    // The writer keeps running and answers again.
    let err = store.write(batch).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    store.close().await.unwrap();
}

#[tokio::test]
async fn an_unusable_data_dir_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("data"), options()).err().unwrap();
    assert!(matches!(err, StoreError::Open(_)), "{err:?}");
    // A database path that is a directory.
    std::fs::create_dir_all(dir.path().join("d").join(DB_FILE_NAME)).unwrap();
    let err = Store::open(&dir.path().join("d"), options()).err().unwrap();
    assert!(matches!(err, StoreError::Open(_)), "{err:?}");
    // A file that is not a database.
    let junk = dir.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join(DB_FILE_NAME), vec![0x42; 8192]).unwrap();
    let err = Store::open(&junk, options()).err().unwrap();
    assert!(matches!(err, StoreError::Open(_)), "{err:?}");
    let io = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
        None,
    );
    assert!(matches!(StoreError::from(io), StoreError::Unavailable(_)));
}

#[tokio::test]
async fn prune_cuts_at_the_aligned_hour_with_rollups_sessions_and_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let old = context(1, "old", Some("alice@example.com"), true);
    let mid = context(2, "mid", Some("bob@example.com"), true);
    let c = Temporality::Cumulative;
    let batch = Batch {
        events: vec![
            group(
                &old,
                vec![
                    api_request(1, T0 + 10 * MIN, "opus", [1, 1, 1, 1], 0.5, 10),
                    tool_result(2, T0 + 11 * MIN, "Read", true, 5),
                ],
            ),
            group(
                &mid,
                vec![
                    api_request(3, T0 + 20 * MIN, "opus", [1, 1, 1, 1], 0.5, 10),
                    api_request(4, T0 + H + 50 * MIN, "opus", [2, 2, 2, 2], 0.25, 20),
                    api_request(5, T0 + 2 * H, "opus", [3, 3, 3, 3], 0.125, 30),
                ],
            ),
        ],
        metric_points: vec![
            group(
                &old,
                vec![point(6, "claude_code.cost.usage", c, T0, T0 + MIN, 1.0)],
            ),
            group(
                &mid,
                vec![point(7, "claude_code.cost.usage", c, T0, T0 + H + MIN, 1.0)],
            ),
        ],
        spans: vec![
            group(&old, vec![span(8, T0 + MIN)]),
            group(&mid, vec![span(9, T0 + H)]),
        ],
    };
    assert_eq!(store.write(batch).await.unwrap().inserted, 9);
    // Cutoff 01:59:59 → aligned to 01:00: the 01:50 event stays.
    let receipt = store.prune(T0 + 2 * H - 1).await.unwrap();
    assert_eq!(
        (receipt.events, receipt.metric_points, receipt.spans),
        (3, 1, 1)
    );
    let events: Vec<u32> = query(&store, "SELECT dedup FROM events ORDER BY time_ns", |r| {
        let key: Vec<u8> = r.get(0)?;
        Ok(u32::from_le_bytes([key[0], key[1], key[2], key[3]]))
    })
    .await;
    assert_eq!(events, vec![4, 5]);
    let hours: Vec<(i64, i64)> = query(
        &store,
        "SELECT hour, requests FROM api_hourly ORDER BY hour",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .await;
    assert_eq!(hours, vec![(T0 / H + 1, 1), (T0 / H + 2, 1)]);
    let latency: Vec<i64> = query(
        &store,
        "SELECT hour FROM api_latency_hist ORDER BY hour",
        |r| r.get(0),
    )
    .await;
    assert_eq!(latency, vec![T0 / H + 1, T0 / H + 2]);
    assert_eq!(
        query(&store, "SELECT count(*) FROM tool_latency_hist", |r| r
            .get::<_, i64>(0))
        .await,
        vec![0]
    );
    let sessions: Vec<String> =
        query(&store, "SELECT session_id FROM sessions", |r| r.get(0)).await;
    assert_eq!(sessions, vec!["mid".to_string()]);
    assert_eq!(count(&store, "contexts").await, 1);
    assert_eq!(count(&store, "metric_series").await, 1);
    assert_eq!(count(&store, "spans").await, 1);
    // A session that comes back after its rows were pruned starts afresh.
    let again = Batch {
        events: vec![group(&old, vec![event(10, T0 + 3 * H, "user_prompt")])],
        ..Batch::default()
    };
    assert_eq!(store.write(again).await.unwrap().inserted, 1);
    let back: Vec<(String, i64, i64)> = query(
        &store,
        "SELECT s.session_id, s.events, s.prompts FROM contexts c JOIN sessions s ON s.id = c.session_ref
         WHERE s.session_id = 'old'",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .await;
    assert_eq!(back, vec![("old".into(), 1, 1)]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn close_then_reopen_keeps_everything_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.write(rollup_batch()).await.unwrap().inserted, 12);
    store.close().await.unwrap();
    assert!(matches!(
        store.write(rollup_batch()).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.read(BUDGET, |_| Ok(())).await,
        Err(ReadError::Closed)
    ));
    store.close().await.unwrap();
    let wal = dir.path().join(format!("{DB_FILE_NAME}-wal"));
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);

    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.db_path(), dir.path().join(DB_FILE_NAME));
    assert_rollups(&store).await;
    let check: Vec<String> = query(&store, "PRAGMA integrity_check", |r| r.get(0)).await;
    assert_eq!(check, vec!["ok".to_string()]);
    let version: Vec<i64> = query(&store, "PRAGMA user_version", |r| r.get(0)).await;
    assert_eq!(version, vec![migrate::SCHEMA_VERSION]);
    // An admin connection opens the same file while the server runs.
    let admin = open_admin_connection(dir.path()).unwrap();
    let events: i64 = admin
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, 12);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_overloaded_and_a_locked_database_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            queue_requests: 1,
            ..options()
        },
    )
    .unwrap();
    let ctx = context(1, "s1", None, true);
    let one = |n: u32| Batch {
        events: vec![group(&ctx, vec![event(n, T0, "user_prompt")])],
        ..Batch::default()
    };
    // Another process (an admin command) holds the write lock: the writer
    // waits on its first request, the queue's one slot fills, the next is refused.
    let admin = open_admin_connection(dir.path()).unwrap();
    admin.execute_batch("BEGIN IMMEDIATE").unwrap();
    let first = tokio::spawn({
        let (store, batch) = (store.clone(), one(1));
        async move { store.write(batch).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = tokio::spawn({
        let (store, batch) = (store.clone(), one(2));
        async move { store.write(batch).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = store.write(one(3)).await;
    assert!(matches!(third, Err(StoreError::Overloaded)), "{third:?}");
    admin.execute_batch("ROLLBACK").unwrap();
    assert_eq!(first.await.unwrap().unwrap().inserted, 1);
    assert_eq!(second.await.unwrap().unwrap().inserted, 1);

    // A lock held past the busy timeout: 503, nothing stored, writer still alive.
    admin.execute_batch("BEGIN IMMEDIATE").unwrap();
    let locked = store.write(one(4)).await;
    assert!(
        matches!(locked, Err(StoreError::Unavailable(_))),
        "{locked:?}"
    );
    admin.execute_batch("ROLLBACK").unwrap();
    assert_eq!(store.write(one(4)).await.unwrap().inserted, 1);
    assert_eq!(count(&store, "events").await, 3);
    store.close().await.unwrap();
}
