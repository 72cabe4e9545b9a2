//! The writer's rollups, histograms and session totals equal a recomputation
//! from the raw rows, after random batches written in random groups, with
//! retries of earlier batches and cumulative metric series (resets
//! included). The recomputation is SQL over the raw tables plus, for
//! cumulative series, the delta rule restated here: nothing of the writer's
//! in-memory sums is reused.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rusqlite::Connection;

use super::*;
use crate::store::{WriterCache, write_batches};

/// One generated record: (kind, context, hour, minute, model, amount, success).
type Op = (u8, usize, i64, i64, usize, i64, bool);

fn contexts() -> Vec<Arc<Context>> {
    vec![
        context(1, "s1", Some("alice@example.com"), true),
        context(2, "s2", Some("bob@example.com"), true),
        // A second context of session s1 (another scope), same developer.
        context(3, "s1", Some("alice@example.com"), true),
        // Not Claude Code: stored, and counted only where raw counts count it.
        context(4, "s4", None, false),
    ]
}

const MODELS: [&str; 3] = ["opus", "sonnet", "haiku"];

fn event_of(n: u32, op: &Op) -> EventRow {
    let (kind, _, hour, minute, model, amount, success) = *op;
    let t = T0 + hour * H + minute * MIN + i64::from(n % 1000);
    match kind {
        0 => api_request(
            n,
            t,
            MODELS[model],
            [amount, amount * 2, amount % 7, amount % 3],
            amount as f64 / 1024.0,
            amount % 50,
        ),
        1 => EventRow {
            model: Some(MODELS[model].into()),
            status_code: Some(529),
            ..event(n, t, "api_error")
        },
        2 => event(n, t, "user_prompt"),
        _ => tool_result(n, t, ["Read", "Edit", "Bash"][model], success, amount % 40),
    }
}

/// Cumulative totals of one series: each step adds `amount`, and every
/// fifth point restarts the series (new start time, total from zero).
fn cumulative_points(first: u32, steps: &[i64]) -> Vec<MetricPointRow> {
    let mut out = Vec::new();
    let (mut start, mut total) = (T0 - MIN, 0.0);
    for (i, amount) in steps.iter().enumerate() {
        if i % 5 == 4 {
            start = T0 + i as i64 * MIN;
            total = 0.0;
        }
        total += *amount as f64;
        let time = T0 + (i as i64 + 1) * MIN;
        let mut p = point(
            first + i as u32,
            "claude_code.cost.usage",
            Temporality::Cumulative,
            start,
            time,
            total,
        );
        p.model = Some("opus".into());
        out.push(p);
    }
    out
}

fn rows(conn: &Connection, sql: &str) -> Vec<Vec<String>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                    rusqlite::types::Value::Real(x) => format!("{x:.6}"),
                    // Numbers compare by value (SUM gives integers or reals).
                    rusqlite::types::Value::Integer(x) => format!("{:.6}", x as f64),
                    rusqlite::types::Value::Text(s) => s,
                    rusqlite::types::Value::Null => "null".into(),
                    rusqlite::types::Value::Blob(b) => format!("{b:?}"),
                })
            })
            .collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn same(conn: &Connection, kept: &str, recomputed: &str) {
    assert_eq!(rows(conn, kept), rows(conn, recomputed), "{kept}");
}

/// `developer_usage_hourly` as kept by the writer equals a recomputation
/// in every hour not marked for one (its session lists compared as sets).
fn check_counted(conn: &Connection) {
    let marked: Vec<String> = rows(conn, "SELECT hour FROM developer_usage_dirty")
        .into_iter()
        .flatten()
        .collect();
    let read = |conn: &Connection| -> Vec<Vec<String>> {
        let mut out = rows(
            conn,
            "SELECT hour, developer, developer_kind, agent, model, requests, errors, input_tokens, \
             output_tokens, cache_read_tokens, cache_creation_tokens, cost_usd, duration_ms, \
             reasoning_tokens, reported_cost_usd, computed_cost_usd, unpriced, from_events, \
             from_metrics, sessionless, COALESCE(sessions, '') FROM developer_usage_hourly \
             ORDER BY 1, 2, 3, 4, 5",
        );
        out.retain(|r| !marked.contains(&r[0]));
        for r in &mut out {
            if let Some(list) = r.last_mut() {
                let mut ids: Vec<&str> = list.split(',').collect();
                ids.sort_unstable();
                *list = ids.join(",");
            }
        }
        out
    };
    let kept = read(conn);
    crate::store::counted::refresh_all(conn).unwrap();
    assert_eq!(kept, read(conn), "developer_usage_hourly");
}

fn check(conn: &Connection) {
    check_counted(conn);
    same(
        conn,
        "SELECT hour, context_id, model, requests, errors, input_tokens, output_tokens, \
         cache_read_tokens, cache_creation_tokens, cost_usd, duration_ms FROM api_hourly \
         WHERE requests + errors > 0 ORDER BY 1, 2, 3",
        "SELECT e.time_ns / 3600000000000, e.context_id, COALESCE(e.model, ''), \
         SUM(e.event_name = 'api_request'), SUM(e.event_name = 'api_error'), \
         SUM(CASE WHEN e.event_name = 'api_request' THEN e.input_tokens ELSE 0 END), \
         SUM(CASE WHEN e.event_name = 'api_request' THEN e.output_tokens ELSE 0 END), \
         SUM(CASE WHEN e.event_name = 'api_request' THEN e.cache_read_tokens ELSE 0 END), \
         SUM(CASE WHEN e.event_name = 'api_request' THEN e.cache_creation_tokens ELSE 0 END), \
         SUM(CASE WHEN e.event_name = 'api_request' THEN e.cost_usd ELSE 0 END), \
         SUM(CASE WHEN e.event_name = 'api_request' THEN e.duration_ms ELSE 0 END) \
         FROM events e JOIN contexts c ON c.id = e.context_id \
         WHERE c.agent IS NOT NULL AND e.event_name IN ('api_request', 'api_error') \
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    );
    same(
        conn,
        "SELECT hour, context_id, prompts FROM prompt_hourly ORDER BY 1, 2",
        "SELECT time_ns / 3600000000000, context_id, COUNT(*) FROM events \
         WHERE event_name = 'user_prompt' GROUP BY 1, 2 ORDER BY 1, 2",
    );
    // Hour and day histograms (text form): the writer's merges equal the
    // raw records grouped by hour or day and duration.
    for (table, bucket, ns) in [
        ("latency_hourly", "hour", 3_600_000_000_000_i64),
        ("latency_daily", "day", 86_400_000_000_000),
    ] {
        for (kind, key, event, failures) in [
            ("tool", "tool_name", "tool_result", "SUM(e.success = 0)"),
            ("api", "model", "api_request", "0"),
        ] {
            same(
                conn,
                &format!(
                    "SELECT {bucket}, developer, {key}, hist FROM {kind}_{table} ORDER BY 1, 2, 3"
                ),
                &format!(
                    "SELECT b, d, k, group_concat(ms || ':' || n || ':' || f, ',' ORDER BY ms) \
                     FROM (SELECT e.time_ns / {ns} AS b, COALESCE(c.developer, '') AS d, \
                           COALESCE(e.{key}, '') AS k, e.duration_ms AS ms, COUNT(*) AS n, {failures} AS f \
                           FROM events e JOIN contexts c ON c.id = e.context_id \
                           WHERE c.agent IS NOT NULL AND e.event_name = '{event}' AND e.duration_ms IS NOT NULL \
                           GROUP BY 1, 2, 3, 4) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
                ),
            );
        }
    }
    same(
        conn,
        "SELECT s.session_id, s.events, s.prompts, s.api_requests, s.api_errors, s.tool_calls, \
         s.tool_failures, s.input_tokens, s.output_tokens, s.cost_usd \
         FROM sessions s WHERE s.events > 0 ORDER BY 1",
        "SELECT s.session_id, COUNT(*), \
         SUM(c.agent IS NOT NULL AND e.event_name = 'user_prompt'), \
         SUM(c.agent IS NOT NULL AND e.event_name = 'api_request'), \
         SUM(c.agent IS NOT NULL AND e.event_name = 'api_error'), \
         SUM(c.agent IS NOT NULL AND e.event_name = 'tool_result'), \
         SUM(c.agent IS NOT NULL AND e.event_name = 'tool_result' AND e.success = 0), \
         SUM(CASE WHEN c.agent IS NOT NULL AND e.event_name = 'api_request' THEN e.input_tokens ELSE 0 END), \
         SUM(CASE WHEN c.agent IS NOT NULL AND e.event_name = 'api_request' THEN e.output_tokens ELSE 0 END), \
         SUM(CASE WHEN c.agent IS NOT NULL AND e.event_name = 'api_request' THEN e.cost_usd ELSE 0 END) \
         FROM events e JOIN contexts c ON c.id = e.context_id JOIN sessions s ON s.id = c.session_ref \
         GROUP BY s.id ORDER BY 1",
    );
    // The usage metrics side by side, as summed in metric_hourly (checked
    // against the raw points below).
    same(
        conn,
        "SELECT hour, context_id, model, round(cost_usd, 9), round(input_tokens, 9), round(output_tokens, 9), \
         round(cache_read_tokens, 9), round(cache_creation_tokens, 9) FROM metric_usage_hourly ORDER BY 1, 2, 3",
        "SELECT hour, context_id, model, \
         round(SUM(CASE WHEN name = 'claude_code.cost.usage' THEN value ELSE 0 END), 9), \
         round(SUM(CASE WHEN name = 'claude_code.token.usage' AND kind_attr = 'input' THEN value ELSE 0 END), 9), \
         round(SUM(CASE WHEN name = 'claude_code.token.usage' AND kind_attr = 'output' THEN value ELSE 0 END), 9), \
         round(SUM(CASE WHEN name = 'claude_code.token.usage' AND kind_attr = 'cacheRead' THEN value ELSE 0 END), 9), \
         round(SUM(CASE WHEN name = 'claude_code.token.usage' AND kind_attr = 'cacheCreation' THEN value ELSE 0 END), 9) \
         FROM metric_hourly WHERE name = 'claude_code.cost.usage' OR (name = 'claude_code.token.usage' \
         AND kind_attr IN ('input', 'output', 'cacheRead', 'cacheCreation')) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    );
    // Developer hours with API requests, as the sessionless rule reads them.
    same(
        conn,
        "SELECT developer, hour FROM api_developer_hours ORDER BY 1, 2",
        "SELECT DISTINCT COALESCE(c.developer, ''), e.time_ns / 3600000000000 FROM events e \
         JOIN contexts c ON c.id = e.context_id WHERE c.agent IS NOT NULL AND e.event_name = 'api_request' \
         ORDER BY 1, 2",
    );
    // The catalog: every record by hour (and by day), developer and name.
    let recount = "SELECT b, dev, kind, signal, name, COUNT(*) AS n, MIN(t) AS f, MAX(t) AS l, \
         SUM(path) AS p, SUM(txt) AS x, SUM(red) AS r FROM (\
         SELECT e.time_ns / 3600000000000 AS b, COALESCE(c.developer, '') AS dev, \
           COALESCE(c.developer_kind, '') AS kind, 'event' AS signal, e.event_name AS name, e.time_ns AS t, \
           e.file_path IS NOT NULL AS path, \
           (e.event_name = 'user_prompt' AND json_extract(e.attrs, '$.prompt') IS NOT NULL) AS txt, \
           e.content_redacted AS red FROM events e JOIN contexts c ON c.id = e.context_id \
         UNION ALL SELECT p.time_ns / 3600000000000, COALESCE(c.developer, ''), \
           COALESCE(c.developer_kind, ''), 'metric', ms.name, p.time_ns, 0, 0, 0 FROM metric_points p \
           JOIN metric_series ms ON ms.id = p.series_id JOIN contexts c ON c.id = ms.context_id) \
         GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5";
    same(
        conn,
        "SELECT hour, developer, developer_kind, signal, name, records, first_ns, last_ns, \
         with_path, with_text, redacted FROM catalog_hourly ORDER BY 1, 2, 3, 4, 5",
        recount,
    );
    same(
        conn,
        "SELECT day, developer, developer_kind, signal, name, records, first_ns, last_ns, \
         with_path, with_text, redacted FROM catalog_daily ORDER BY 1, 2, 3, 4, 5",
        &format!(
            "SELECT b / 24, dev, kind, signal, name, SUM(n), MIN(f), MAX(l), SUM(p), SUM(x), SUM(r) \
             FROM ({}) GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
            recount.trim_end_matches(" ORDER BY 1, 2, 3, 4, 5")
        ),
    );
    // A session spans its events and its metric points.
    same(
        conn,
        "SELECT session_id, first_ns, last_ns, metric_cost_usd FROM sessions ORDER BY 1",
        "SELECT s.session_id, MIN(t.time_ns), MAX(t.time_ns), \
         (SELECT COALESCE(SUM(p.delta), 0.0) FROM metric_points p JOIN metric_series ms ON ms.id = p.series_id \
          JOIN contexts c ON c.id = ms.context_id WHERE c.session_ref = s.id AND ms.name = 'claude_code.cost.usage') \
         FROM sessions s JOIN (SELECT c.session_ref AS sref, e.time_ns FROM events e \
           JOIN contexts c ON c.id = e.context_id \
           UNION ALL SELECT c.session_ref, p.time_ns FROM metric_points p \
           JOIN metric_series ms ON ms.id = p.series_id JOIN contexts c ON c.id = ms.context_id) t \
         ON t.sref = s.id GROUP BY s.id ORDER BY 1",
    );
    // Metric sums: the per-interval value restated from the stored points.
    let mut stmt = conn
        .prepare(
            "SELECT ms.id, ms.context_id, ms.name, COALESCE(ms.model, ''), COALESCE(ms.kind_attr, ''), \
             ms.temporality, p.start_ns, p.time_ns, p.value FROM metric_points p \
             JOIN metric_series ms ON ms.id = p.series_id ORDER BY ms.id, p.time_ns",
        )
        .unwrap();
    type Key = (i64, i64, String, String, String);
    let mut want: BTreeMap<Key, f64> = BTreeMap::new();
    let mut last: BTreeMap<i64, (i64, f64)> = BTreeMap::new();
    let points = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, i64>(7)?,
                r.get::<_, f64>(8)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>();
    for (series, ctx, name, model, kind, temporality, start, time, value) in points {
        let delta = if temporality == Temporality::Cumulative.as_i32() as i64 {
            let d = match last.get(&series) {
                Some(&(s, v)) if s == start && value >= v => value - v,
                _ => value,
            };
            last.insert(series, (start, value));
            d
        } else {
            value
        };
        *want.entry((time / H, ctx, name, model, kind)).or_default() += delta;
    }
    let mut stmt = conn
        .prepare("SELECT hour, context_id, name, model, kind_attr, value FROM metric_hourly")
        .unwrap();
    let got: BTreeMap<Key, f64> = stmt
        .query_map([], |r| {
            Ok((
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &got {
        assert!((v - want[k]).abs() < 1e-9, "{k:?}: {v} vs {}", want[k]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn rollups_and_sessions_equal_a_recomputation_from_raw_rows(
        ops in proptest::collection::vec(
            (0u8..4, 0usize..4, 0i64..3, 0i64..60, 0usize..3, 1i64..500, any::<bool>()),
            1..60,
        ),
        steps in proptest::collection::vec(0i64..100, 0..12),
        deltas in proptest::collection::vec(1i64..100, 0..6),
        groups in proptest::collection::vec(1usize..6, 1..20),
        retries in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let ctxs = contexts();
        let mut batches: Vec<Batch> = Vec::new();
        let mut n = 0u32;
        let mut rest = &ops[..];
        for size in groups.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at((*size).min(rest.len()));
            rest = later;
            let mut batch = Batch::default();
            for op in now {
                n += 1;
                batch.events.push(group(&ctxs[op.1], vec![event_of(n, op)]));
            }
            batches.push(batch);
        }
        // A cumulative series in its own batches, one point each, in time order.
        for p in cumulative_points(10_000, &steps) {
            batches.push(Batch {
                metric_points: vec![group(&ctxs[0], vec![p])],
                ..Batch::default()
            });
        }
        // Delta points of a token series of another session.
        let points: Vec<MetricPointRow> = deltas
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut p = point(20_000 + i as u32, "claude_code.token.usage", Temporality::Delta,
                    T0 + i as i64 * MIN, T0 + (i as i64 + 1) * MIN, *d as f64);
                p.kind_attr = Some("input".into());
                p
            })
            .collect();
        if !points.is_empty() {
            batches.push(Batch {
                metric_points: vec![group(&ctxs[1], points)],
                ..Batch::default()
            });
        }
        let conn = Connection::open_in_memory().unwrap();
        crate::store::migrate(&conn).unwrap();
        let mut cache = WriterCache::default();
        // Written in groups of up to three batches per transaction, the way
        // the writer groups whatever is queued, recomputing the marked hours
        // of counted usage now and then as the writer does; then earlier
        // batches again.
        for (i, chunk) in batches.chunks(3).enumerate() {
            let refs: Vec<&Batch> = chunk.iter().collect();
            write_batches(&conn, &mut cache, &refs).unwrap();
            if i % 2 == 1 {
                crate::store::counted::catch_up(&conn).unwrap();
            }
        }
        for r in &retries {
            if batches.is_empty() {
                break;
            }
            let b = &batches[r.index(batches.len())];
            let receipts = write_batches(&conn, &mut cache, &[b]).unwrap();
            prop_assert_eq!(receipts[0].inserted, 0);
        }
        check(&conn);
    }
}

/// The per-developer rollup follows every change of what counts: a
/// session's metrics count until its first request, then its events do,
/// in every hour it has rows; a sessionless metric counts until its
/// developer sends a request in that hour or the hour before.
#[test]
fn counted_rollup_follows_a_session_turning_to_events_and_sessionless_metrics() {
    let conn = Connection::open_in_memory().unwrap();
    crate::store::migrate(&conn).unwrap();
    let mut cache = WriterCache::default();
    let alice = context(1, "s1", Some("alice@example.com"), true);
    let mut none = (*context(2, "x", Some("alice@example.com"), true)).clone();
    none.session_id = None;
    let none = Arc::new(none);
    let cost = |n: u32, t: i64, v: f64| {
        let mut p = point(
            n,
            "claude_code.cost.usage",
            Temporality::Delta,
            t - MIN,
            t,
            v,
        );
        p.model = Some("opus".into());
        p
    };
    let total = |conn: &Connection| -> f64 {
        conn.query_row(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM developer_usage_hourly",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    // Hour 0: session s1 sends only metrics ($2); hour 2: a sessionless $5.
    let batches = [
        Batch {
            metric_points: vec![group(&alice, vec![cost(1, T0 + 10 * MIN, 2.0)])],
            ..Batch::default()
        },
        Batch {
            metric_points: vec![group(&none, vec![cost(2, T0 + 2 * H + 10 * MIN, 5.0)])],
            ..Batch::default()
        },
    ];
    for b in &batches {
        write_batches(&conn, &mut cache, &[b]).unwrap();
    }
    crate::store::counted::catch_up(&conn).unwrap();
    check_counted(&conn);
    assert!((total(&conn) - 7.0).abs() < 1e-9);
    // Hour 1: s1's first request ($0.25): its hour-0 metrics stop counting;
    // the same developer now has a request in hour 1, so the sessionless
    // metric of hour 2 (the hour after) stops counting too.
    let request = Batch {
        events: vec![group(
            &alice,
            vec![api_request(
                3,
                T0 + H + 5 * MIN,
                "opus",
                [1, 2, 0, 0],
                0.25,
                10,
            )],
        )],
        ..Batch::default()
    };
    write_batches(&conn, &mut cache, &[&request]).unwrap();
    let hour = T0 / H;
    let marked: Vec<i64> = conn
        .prepare("SELECT hour - ?1 FROM developer_usage_dirty ORDER BY hour")
        .unwrap()
        .query_map([hour], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(marked, vec![0, 1, 2]);
    check_counted(&conn);
    assert_eq!(crate::store::counted::catch_up(&conn).unwrap(), 0);
    assert!((total(&conn) - 0.25).abs() < 1e-9, "{}", total(&conn));
}
