//! Typed rows, rollups, metric deltas and group commit.

use super::*;

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
    // All 1000 calls lasted 3 ms, in one hour: one histogram entry.
    let calls: Vec<(i64, String)> = query(
        &store,
        "SELECT (SELECT sum(tool_calls) FROM sessions), (SELECT group_concat(hist) FROM tool_latency_hourly)",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .await;
    assert_eq!(calls, vec![(1000, "3:1000:0".into())]);
    store.close().await.unwrap();
}

/// A session's start moves back to its earliest record whenever that
/// arrives, and its developer is the first one seen, kept afterwards.
#[tokio::test]
async fn a_session_keeps_its_earliest_start_and_first_developer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let write = |ctx: Arc<Context>, n: u32, t: i64| Batch {
        events: vec![group(&ctx, vec![event(n, t, "user_prompt")])],
        ..Batch::default()
    };
    let session = || {
        query(
            &store,
            "SELECT first_ns, last_ns, developer, developer_kind, events FROM sessions",
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
    };
    store
        .write(write(context(1, "s1", None, true), 1, T0 + 10 * SEC))
        .await
        .unwrap();
    assert_eq!(
        session().await,
        vec![(T0 + 10 * SEC, T0 + 10 * SEC, None, None, 1)]
    );
    // A later record with a developer names the session; the start stays.
    let alice = context(2, "s1", Some("alice@example.com"), true);
    store.write(write(alice, 2, T0 + 20 * SEC)).await.unwrap();
    let named = (
        Some("alice@example.com".to_string()),
        Some("email".to_string()),
    );
    assert_eq!(
        session().await,
        vec![(
            T0 + 10 * SEC,
            T0 + 20 * SEC,
            named.0.clone(),
            named.1.clone(),
            2
        )]
    );
    // An earlier record from another developer moves the start back only.
    let bob = context(3, "s1", Some("bob@example.com"), true);
    store.write(write(bob, 3, T0 + SEC)).await.unwrap();
    assert_eq!(
        session().await,
        vec![(T0 + SEC, T0 + 20 * SEC, named.0, named.1, 3)]
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn events_are_unique_by_time_and_dedup_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let ctx = context(1, "s1", None, true);
    // Two distinct records in the same second, and a retry of one of them.
    let batch = || Batch {
        events: vec![group(
            &ctx,
            vec![
                event(1, T0 + 5, "user_prompt"),
                event(2, T0 + 5, "user_prompt"),
            ],
        )],
        ..Batch::default()
    };
    assert_eq!(store.write(batch()).await.unwrap().inserted, 2);
    assert_eq!(store.write(batch()).await.unwrap().duplicates, 2);
    let keys: Vec<(i64, Vec<u8>)> = query(
        &store,
        "SELECT time_ns, dedup FROM events ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .await;
    assert_eq!(
        keys,
        vec![(T0 + 5, dedup(1).to_vec()), (T0 + 5, dedup(2).to_vec())]
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn an_exact_event_timestamp_is_stored_as_an_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let ctx = context(1, "s1", None, true);
    let stamped = |n: u32, text: &str, extra: Option<(&str, &str)>| {
        let mut e = event(n, T0 + 2_345_678, "user_prompt");
        e.attrs
            .insert("event.timestamp".into(), serde_json::Value::from(text));
        if let Some((k, v)) = extra {
            e.attrs.insert(k.into(), serde_json::Value::from(v));
        }
        e
    };
    let at = |ms: i64| crate::store::event_time::text(T0 + 2_345_678, ms).unwrap();
    let batch = Batch {
        events: vec![group(
            &ctx,
            vec![
                stamped(1, &at(0), None),
                stamped(2, &at(-7), Some(("speed", "fast"))),
                stamped(3, "2025-11-23T16:00:00.002+00:00", None),
            ],
        )],
        ..Batch::default()
    };
    assert_eq!(store.write(batch).await.unwrap().inserted, 3);
    let rows: Vec<(Option<String>, Option<i64>)> = query(
        &store,
        "SELECT attrs, event_timestamp_ms FROM events ORDER BY id",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .await;
    assert_eq!(
        rows,
        vec![
            (None, Some(0)),
            (Some(r#"{"speed":"fast"}"#.into()), Some(-7)),
            (
                Some(r#"{"event.timestamp":"2025-11-23T16:00:00.002+00:00"}"#.into()),
                None
            ),
        ]
    );
    // Returned events carry the attribute exactly as it was received.
    let texts = store
        .read(BUDGET, move |c| {
            let range = crate::query::time::TimeRange {
                since_ns: T0,
                until_ns: T0 + H,
                tz: jiff::tz::TimeZone::UTC,
                tz_name: "UTC".into(),
                asked: None,
            };
            let page = crate::query::events::search_events(
                c,
                &range,
                &crate::query::filter::Filter::new(crate::query::visible::testing::visible(&[])),
                &crate::query::events::EventFilter::default(),
                None,
                10,
                false,
            )
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            Ok(page
                .rows
                .into_iter()
                .map(|hit| hit.attrs.get("event.timestamp").cloned())
                .collect::<Vec<_>>())
        })
        .await
        .unwrap();
    let mut texts: Vec<String> = texts
        .into_iter()
        .map(|v| v.unwrap().as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    let mut expected = vec![at(0), at(-7), "2025-11-23T16:00:00.002+00:00".to_owned()];
    expected.sort();
    assert_eq!(texts, expected);
    store.close().await.unwrap();
}

#[tokio::test]
async fn spans_keep_ids_parents_and_detail() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let ctx = context(1, "s1", Some("alice@example.com"), true);
    let root = SpanRow {
        name: "claude_code.interaction".into(),
        detail: Some(json!({"events": [{"name": "start"}]})),
        ..span(1, T0)
    };
    let child = SpanRow {
        parent_span_id: root.span_id.clone(),
        decision: Some("reject".into()),
        duration_ms: Some(1500),
        success: Some(false),
        attrs: attrs(json!({"span.type": "tool"})),
        ..span(2, T0 + SEC)
    };
    let batch = Batch {
        spans: vec![group(&ctx, vec![root, child])],
        ..Batch::default()
    };
    assert_eq!(store.write(batch).await.unwrap().inserted, 2);
    type SpanOut = (
        String,
        Option<Vec<u8>>,
        Option<String>,
        Option<i64>,
        Option<bool>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<SpanOut> = query(
        &store,
        "SELECT name, parent_span_id, decision, duration_ms, success, attrs, detail FROM spans ORDER BY start_ns",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
    )
    .await;
    assert_eq!(
        rows,
        vec![
            (
                "claude_code.interaction".into(),
                None,
                None,
                None,
                None,
                None,
                Some(r#"{"events":[{"name":"start"}]}"#.into())
            ),
            (
                "claude_code.tool".into(),
                Some(1u32.to_le_bytes().repeat(2)),
                Some("reject".into()),
                Some(1500),
                Some(false),
                Some(r#"{"span.type":"tool"}"#.into()),
                None
            ),
        ]
    );
    let session: Vec<(i64, i64, i64)> = query(
        &store,
        "SELECT first_ns, last_ns, events FROM sessions",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .await;
    assert_eq!(session, vec![(T0, T0 + 6 * SEC, 0)]);
    store.close().await.unwrap();
}
