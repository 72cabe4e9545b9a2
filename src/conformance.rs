//! Answers on real Claude Code captures, written through the real decoder
//! and writer, checked against values read straight from the captured
//! OTLP/JSON (not through the code under test): a request is counted once
//! whichever signals report it, with or without a `session.id`, and one
//! model is one row whatever its spelling.
//!
//! The answers are asked through the [`Questions`] trait, so the same
//! checks apply to every engine: `backends` builds the SQLite store, one
//! ClickHouse server and two ClickHouse shards, each written through its
//! own ingest path. The few checks of what is stored (the model variant
//! column, span attributes) read the SQLite store itself. This module sits
//! above `query` and `clickhouse`, the two engines it compares.

use serde_json::Value;

use crate::otlp::Signal;
use crate::query::filter::Filter;
use crate::query::fixture::{Fx, close, utc};
use crate::query::questions::Questions;
use crate::query::runner::Sqlite;
use crate::query::visible::testing::visible;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude-code/");

/// The capture's request bodies, by signal, in the order they were sent.
fn capture(run: &str) -> Vec<(Signal, Value)> {
    let dir = format!("{DIR}{run}/otlp");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.ends_with(".meta.json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let signal = if n.contains("_logs") {
                Signal::Logs
            } else if n.contains("_metrics") {
                Signal::Metrics
            } else {
                Signal::Traces
            };
            let body =
                serde_json::from_slice(&std::fs::read(format!("{dir}/{n}")).unwrap()).unwrap();
            (signal, body)
        })
        .collect()
}

/// Removes every `session.id` attribute, as Claude Code does in the modes
/// that send none.
fn without_session_ids(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(kvs)) = m.get_mut("attributes") {
                kvs.retain(|kv| kv["key"] != "session.id");
            }
            for (_, x) in m.iter_mut() {
                without_session_ids(x);
            }
        }
        Value::Array(xs) => xs.iter_mut().for_each(without_session_ids),
        _ => {}
    }
}

fn attr<'a>(kvs: &'a Value, key: &str) -> Option<&'a Value> {
    kvs.as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

fn number(v: &Value) -> f64 {
    let x = v
        .get("doubleValue")
        .or_else(|| v.get("intValue"))
        .or_else(|| v.get("stringValue"))
        .unwrap();
    match x {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

/// (model, cost, input tokens) of every `api_request` event in the bodies.
fn api_requests(bodies: &[(Signal, Value)]) -> Vec<(String, f64, f64)> {
    api_requests_with(bodies, "model")
        .into_iter()
        .map(|(m, c, i)| (m.unwrap_or_default(), c, i))
        .collect()
}

/// (the attribute `key`, cost, input tokens) of every `api_request` event.
fn api_requests_with(bodies: &[(Signal, Value)], key: &str) -> Vec<(Option<String>, f64, f64)> {
    let mut out = Vec::new();
    for (signal, body) in bodies {
        if !matches!(signal, Signal::Logs) {
            continue;
        }
        for rl in body["resourceLogs"].as_array().unwrap() {
            for sl in rl["scopeLogs"].as_array().unwrap() {
                for r in sl["logRecords"].as_array().unwrap() {
                    let a = &r["attributes"];
                    if attr(a, "event.name").and_then(|v| v["stringValue"].as_str())
                        == Some("api_request")
                    {
                        out.push((
                            attr(a, key)
                                .and_then(|v| v["stringValue"].as_str())
                                .map(str::to_string),
                            number(attr(a, "cost_usd").unwrap()),
                            number(attr(a, "input_tokens").unwrap()),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// Sum of the `claude_code.cost.usage` points in the bodies.
fn metric_cost(bodies: &[(Signal, Value)]) -> f64 {
    let mut sum = 0.0;
    for (signal, body) in bodies {
        if !matches!(signal, Signal::Metrics) {
            continue;
        }
        for rm in body["resourceMetrics"].as_array().unwrap() {
            for sm in rm["scopeMetrics"].as_array().unwrap() {
                for m in sm["metrics"].as_array().unwrap() {
                    if m["name"] == "claude_code.cost.usage" {
                        for p in m["sum"]["dataPoints"].as_array().unwrap() {
                            sum += p["asDouble"]
                                .as_f64()
                                .or_else(|| p["asInt"].as_str().and_then(|s| s.parse().ok()))
                                .unwrap();
                        }
                    }
                }
            }
        }
    }
    sum
}

fn load(bodies: &[(Signal, Value)]) -> Fx {
    let mut fx = Fx::new();
    for (signal, body) in bodies {
        fx.ingest_json(*signal, body);
    }
    fx
}

/// Every backend under test, each holding `bodies` as its ingest would
/// store them: the embedded SQLite store, and ClickHouse (a new database
/// on a real server, written through the batching sink).
async fn backends(bodies: &[(Signal, Value)]) -> Vec<(&'static str, Box<dyn Questions>)> {
    let fx = load(bodies);
    let sqlite = Sqlite::over_connection(fx.conn, std::time::Duration::from_secs(30));
    let mut out: Vec<(&'static str, Box<dyn Questions>)> = vec![("sqlite", Box::new(sqlite))];
    for (name, ch) in [
        ("clickhouse", crate::clickhouse::test_store().await),
        (
            "clickhouse, two shards",
            crate::clickhouse::test_cluster_store().await,
        ),
    ] {
        out.push((name, Box::new(clickhouse_holding(ch, bodies).await)));
    }
    out
}

/// ClickHouse questions over `ch` once `bodies` are written through the
/// batching sink.
async fn clickhouse_holding(
    ch: crate::clickhouse::ClickHouse,
    bodies: &[(Signal, Value)],
) -> crate::clickhouse::questions::ClickHouseQuestions {
    let sink = crate::clickhouse::sink::Sink::start(ch.clone(), Default::default());
    let opts = crate::otlp::DecodeOptions {
        max_body_bytes: 64 << 20,
        capture_content: false,
        ..Default::default()
    };
    let writes = bodies.iter().map(|(signal, body)| {
        let bytes = serde_json::to_vec(body).unwrap();
        let d =
            crate::otlp::decode(*signal, &bytes, Some("application/json"), None, &opts).unwrap();
        sink.write(d.batch)
    });
    for receipt in futures::future::join_all(writes).await {
        receipt.unwrap();
    }
    let limits = crate::clickhouse::ReadLimits::of(&crate::config::QueryLimits::default());
    crate::clickhouse::questions::ClickHouseQuestions::new(ch, limits)
}

const ALL_TIME: (i64, i64) = (1_700_000_000_000_000_000, 1_900_000_000_000_000_000);

fn everyone() -> Filter {
    Filter::new(visible(&[]))
}

#[tokio::test]
async fn cost_counts_each_request_once_with_and_without_session_ids() {
    for run in [
        "t1_json_text",
        "v330_t1_json_text",
        "v330_t3_json_tools_details",
        "v2100_t3_json_tools",
        "v332_subagent_sync_json",
    ] {
        let bodies = capture(run);
        let requests = api_requests(&bodies);
        assert!(!requests.is_empty(), "{run}");
        let cost: f64 = requests.iter().map(|r| r.1).sum();
        let input: f64 = requests.iter().map(|r| r.2).sum();
        // The metrics report the same cost: counting both would double it.
        assert!(close(metric_cost(&bodies), cost), "{run}");
        let mut stripped = bodies.clone();
        stripped
            .iter_mut()
            .for_each(|(_, b)| without_session_ids(b));
        for (label, bodies, sessionless) in [
            ("as sent", &bodies, false),
            ("no session.id", &stripped, true),
        ] {
            for (engine, backend) in backends(bodies).await {
                let label = format!("{label} on {engine}");
                let got = backend
                    .cost_by_developer(utc(ALL_TIME.0, ALL_TIME.1), everyone())
                    .await
                    .unwrap();
                assert_eq!(got.developers.len(), 1, "{run} {label}");
                assert!(
                    close(got.totals.cost_usd, cost),
                    "{run} {label}: {} vs {cost}",
                    got.totals.cost_usd
                );
                assert_eq!(got.totals.input_tokens as f64, input, "{run} {label}");
                assert_eq!(
                    got.totals.api_requests,
                    requests.len() as i64,
                    "{run} {label}"
                );
                assert_eq!(got.sources.sessionless, sessionless, "{run} {label}");
            }
        }
    }
}

#[tokio::test]
async fn metrics_alone_without_session_ids_still_count() {
    let mut bodies: Vec<_> = capture("v330_t3_json_tools_details")
        .into_iter()
        .filter(|(s, _)| matches!(s, Signal::Metrics))
        .collect();
    bodies.iter_mut().for_each(|(_, b)| without_session_ids(b));
    for (engine, backend) in backends(&bodies).await {
        let got = backend
            .cost_by_developer(utc(ALL_TIME.0, ALL_TIME.1), everyone())
            .await
            .unwrap();
        assert!(close(got.totals.cost_usd, metric_cost(&bodies)), "{engine}");
        assert_eq!(got.totals.source, "metrics", "{engine}");
    }
}

#[tokio::test]
async fn a_model_and_its_context_variant_are_one_row() {
    // 2.1.197: api_request says claude-opus-4-8, the metrics claude-opus-4-8[1m].
    let bodies = capture("t1_json_text");
    let requests = api_requests(&bodies);
    assert!(requests.iter().all(|r| r.0 == "claude-opus-4-8"));
    let cost: f64 = requests.iter().map(|r| r.1).sum();
    let mut stripped = bodies.clone();
    stripped
        .iter_mut()
        .for_each(|(_, b)| without_session_ids(b));
    for bodies in [&bodies, &stripped] {
        for (engine, backend) in backends(bodies).await {
            let (rows, _) = backend
                .model_breakdown(utc(ALL_TIME.0, ALL_TIME.1), everyone())
                .await
                .unwrap();
            assert_eq!(rows.len(), 1, "{engine}: {rows:?}");
            assert_eq!(rows[0].model, "claude-opus-4-8", "{engine}");
            assert_eq!(rows[0].requests, requests.len() as i64, "{engine}");
            assert!(close(rows[0].cost_usd, cost), "{engine}");
        }
        let fx = load(bodies);
        let variants: Vec<Option<String>> = fx
            .conn
            .prepare("SELECT DISTINCT model_variant FROM metric_series WHERE name = 'claude_code.cost.usage'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(variants, vec![Some("1m".to_string())]);
    }
}

#[tokio::test]
async fn gen_ai_usage_on_spans_is_kept_and_never_added_to_totals() {
    // 2.1.332 puts gen_ai.usage.* on llm_request spans (input including
    // cache reads and writes): stored, but the totals come from api_request.
    let bodies = capture("v332_subagent_sync_json");
    let requests = api_requests(&bodies);
    let input: f64 = requests.iter().map(|r| r.2).sum();
    for (engine, backend) in backends(&bodies).await {
        let got = backend
            .cost_by_developer(utc(ALL_TIME.0, ALL_TIME.1), everyone())
            .await
            .unwrap();
        assert_eq!(got.totals.input_tokens as f64, input, "{engine}");
        assert_eq!(got.totals.api_requests, requests.len() as i64, "{engine}");
    }
    let fx = load(&bodies);
    let spans: Vec<(i64, i64, String)> = fx
        .conn
        .prepare(
            "SELECT json_extract(attrs, '$.\"gen_ai.usage.input_tokens\"'), \
             json_extract(attrs, '$.\"gen_ai.usage.cache_read.input_tokens\"'), \
             json_extract(attrs, '$.\"gen_ai.response.model\"') \
             FROM spans WHERE name = 'claude_code.llm_request' ORDER BY start_ns",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(spans.len(), requests.len());
    assert!(spans.iter().all(|s| s.0 == 200 && s.1 == 30), "{spans:?}");
    let span_input: i64 = spans.iter().map(|s| s.0).sum();
    assert!(span_input as f64 > input, "span input includes the cache");
}

#[tokio::test]
async fn cost_splits_and_filters_by_subagent() {
    // 2.1.332: the subagent's api_request events and cost metrics carry
    // agent.name; the main thread's carry none.
    let bodies = capture("v332_subagent_sync_json");
    let mut want: std::collections::BTreeMap<Option<String>, f64> = Default::default();
    for (agent, cost, _) in api_requests_with(&bodies, "agent.name") {
        *want.entry(agent).or_default() += cost;
    }
    assert_eq!(want.len(), 2, "{want:?}");
    for (engine, questions) in backends(&bodies).await {
        subagent_split_and_filter(engine, questions.as_ref(), &want).await;
    }
}

async fn subagent_split_and_filter(
    engine: &str,
    questions: &dyn Questions,
    want: &std::collections::BTreeMap<Option<String>, f64>,
) {
    let range = utc(ALL_TIME.0, ALL_TIME.1);
    let agent = crate::query::attribution::find("subagent").unwrap();
    let (points, _) = questions
        .usage_over_time(
            range.clone(),
            everyone(),
            crate::query::timeseries::Bucket::Total,
            crate::query::timeseries::Split::Attribution(agent),
        )
        .await
        .unwrap();
    let got: std::collections::BTreeMap<Option<String>, f64> =
        points.iter().map(|p| (p.key.clone(), p.cost_usd)).collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{engine}"
    );
    for (k, v) in want {
        assert!(close(got[k], *v), "{engine} {k:?}: {} vs {v}", got[k]);
    }
    // The filter gives the subagent's part alone.
    let f = Filter {
        attribution: vec![(agent, "general-purpose".to_string())],
        ..everyone()
    };
    let got = questions.cost_by_developer(range, f).await.unwrap();
    assert!(
        close(
            got.totals.cost_usd,
            want[&Some("general-purpose".to_string())]
        ),
        "{engine}"
    );
    assert_eq!(got.totals.api_requests, 3, "{engine}");
}

/// The event filters the engines are compared under.
fn event_filters() -> Vec<crate::query::events::EventFilter> {
    use crate::query::events::EventFilter;
    vec![
        EventFilter::default(),
        EventFilter {
            event_name: Some("claude_code.tool_result".into()),
            success: Some(true),
            ..Default::default()
        },
        EventFilter {
            tool_name: Some("Edit".into()),
            ..Default::default()
        },
        EventFilter {
            event_name: Some("api_error".into()),
            error_contains: Some("OVERLOADED".into()),
            ..Default::default()
        },
        EventFilter {
            status_code: Some(529),
            ..Default::default()
        },
    ]
}

/// True when two answers are equal, numbers to within 1e-6 (relative for
/// large ones): sums may be added up in another order.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn assert_same<T: serde::Serialize + std::fmt::Debug>(what: &str, a: &T, b: &T) {
    let (x, y) = (
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
    );
    assert!(same(&x, &y), "{what}:\nsqlite:     {x}\nclickhouse: {y}");
}

#[tokio::test]
async fn the_generated_team_answers_the_same_on_clickhouse() {
    generated_team_on(crate::clickhouse::test_store().await).await;
}

#[tokio::test]
async fn the_generated_team_answers_the_same_on_two_clickhouse_shards() {
    generated_team_on(crate::clickhouse::test_cluster_store().await).await;
}

/// The generated team on SQLite and on `ch` (half its batches sent twice):
/// every question over ranges, filters, sorts and pages, answer for answer.
async fn generated_team_on(ch: crate::clickhouse::ClickHouse) {
    use crate::query::fixture::generated::{self, DAY_NS, START_NS};
    use crate::query::timeseries::{Bucket, Split};
    let ds = generated::build();
    let sink = crate::clickhouse::sink::Sink::start(ch.clone(), Default::default());
    // Half the batches twice, as retries through another node would send
    // them: counted once.
    let copies: Vec<&crate::rows::Batch> = ds
        .fx
        .batches
        .iter()
        .enumerate()
        .flat_map(|(i, b)| std::iter::repeat_n(b, if i % 2 == 0 { 2 } else { 1 }))
        .collect();
    // Many exporters at once (within the sink's queue): few large inserts.
    for chunk in copies.chunks(500) {
        let writes = chunk.iter().map(|b| sink.write((*b).clone()));
        for receipt in futures::future::join_all(writes).await {
            receipt.unwrap();
        }
    }
    let sqlite = Sqlite::over_connection(ds.fx.conn, std::time::Duration::from_secs(30));
    let limits = crate::clickhouse::ReadLimits::of(&crate::config::QueryLimits::default());
    let chq = crate::clickhouse::questions::ClickHouseQuestions::new(ch, limits);
    let engines: [&dyn Questions; 2] = [&sqlite, &chq];
    let h = crate::query::HOUR_NS;
    let ranges = [
        (START_NS - DAY_NS, START_NS + 11 * DAY_NS),
        (
            START_NS + 2 * DAY_NS + 17 * 60 * 1_000_000_000 + 3,
            START_NS + 7 * DAY_NS + 5 * h,
        ),
        (
            START_NS + 3 * DAY_NS + 10 * h,
            START_NS + 3 * DAY_NS + 11 * h + 7,
        ),
    ];
    let subagent = crate::query::attribution::find("subagent").unwrap();
    let filters = [
        everyone(),
        Filter::new(visible(&["alice@example.com", "7f3a9c1e-acct-dave"])),
        Filter::new(visible(&["nobody@example.com"])),
        Filter {
            team: Some("web".into()),
            ..everyone()
        },
        Filter {
            model: Some("claude-sonnet-5".into()),
            ..everyone()
        },
        Filter {
            developer: Some("bob@example.com".into()),
            mcp_server: Some("github".into()),
            ..everyone()
        },
        Filter {
            attribute: Some(("department".into(), "eng".into())),
            query_source: Some("repl_main_thread".into()),
            ..everyone()
        },
        Filter {
            session_id: Some("sess-4-6".into()),
            ..everyone()
        },
        Filter {
            repository: Some("webapp".into()),
            ..everyone()
        },
        Filter {
            attribution: vec![(subagent, "general-purpose".into())],
            ..everyone()
        },
    ];
    let mut nonempty = 0;
    let mut edits = 0;
    let mut sessions = 0;
    // Timelines, for each caller: sessions with events, the metrics-only
    // one, one that does not exist; two pages each.
    let timelines = [
        "sess-0-0",
        "sess-4-6",
        "sess-2-3",
        ds.metrics_only_sessions[0].as_str(),
        "none",
    ];
    for f in &filters[..3] {
        for id in timelines {
            for offset in [0, 6] {
                let [a, b] = engines.map(|e| {
                    e.session_timeline(
                        utc(ALL_TIME.0, ALL_TIME.1),
                        f.visible.clone(),
                        id.to_string(),
                        offset,
                        6,
                        offset == 0,
                    )
                });
                let what = format!("session_timeline {id} from {offset}, {:?}", f.visible);
                match (a.await, b.await) {
                    (Ok(a), Ok(b)) => assert_same(&what, &a, &b),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
                    (a, b) => panic!("{what}: {a:?} / {b:?}"),
                }
            }
        }
    }
    for (since, until) in ranges {
        let range = utc(since, until);
        for (i, f) in filters.iter().enumerate() {
            let what = |q: &str| format!("{q}, range {since}..{until}, filter #{i}");
            let [a, b] = engines.map(|e| e.cost_by_developer(range.clone(), f.clone()));
            let (a, b) = (a.await.unwrap(), b.await.unwrap());
            nonempty += usize::from(!a.developers.is_empty());
            assert_same(&what("cost_by_developer"), &a, &b);
            let [a, b] = engines.map(|e| e.model_breakdown(range.clone(), f.clone()));
            assert_same(
                &what("model_breakdown"),
                &a.await.unwrap(),
                &b.await.unwrap(),
            );
            for tool in [None, Some("Edit".to_string()), Some("Write".to_string())] {
                // All files, and the first three (the cut's order is the
                // answer's: most edits, then path).
                for top in [usize::MAX, 3] {
                    let [a, b] = engines
                        .map(|e| e.top_edited_files(range.clone(), f.clone(), tool.clone(), top));
                    let (a, b) = (a.await.unwrap(), b.await.unwrap());
                    if top == usize::MAX {
                        edits += a.total_edits;
                    }
                    assert_same(&what("top_edited_files"), &a, &b);
                }
                let [a, b] =
                    engines.map(|e| e.tool_latency(range.clone(), f.clone(), tool.clone()));
                assert_same(&what("tool_latency"), &a.await.unwrap(), &b.await.unwrap());
            }
            for (bucket, split) in [
                (Bucket::Day, Split::Model),
                (Bucket::Hour, Split::None),
                (Bucket::Total, Split::Team),
                (Bucket::Total, Split::Repository),
                (Bucket::Total, Split::McpTool),
            ] {
                let [a, b] =
                    engines.map(|e| e.usage_over_time(range.clone(), f.clone(), bucket, split));
                assert_same(
                    &what("usage_over_time"),
                    &a.await.unwrap(),
                    &b.await.unwrap(),
                );
            }
            for (k, ef) in event_filters().into_iter().enumerate() {
                let mut after = [None, None];
                for page in 0..2 {
                    let mut got = Vec::new();
                    for (e, engine) in engines.iter().enumerate() {
                        let p = engine
                            .search_events(
                                range.clone(),
                                f.clone(),
                                ef.clone(),
                                after[e],
                                7,
                                k % 2 == 0,
                            )
                            .await
                            .unwrap();
                        after[e] = match p.positions.last() {
                            Some(crate::query::page::Position::After(t, id)) => Some((*t, *id)),
                            _ => None,
                        };
                        got.push((p.rows, p.more));
                    }
                    assert_same(
                        &what(&format!("search_events #{k} page {page}")),
                        &got[0],
                        &got[1],
                    );
                }
            }
            // Every sort key on the first range, the common ones after.
            let sorts = if since == ranges[0].0 {
                &crate::query::sessions::SORT_KEYS[..]
            } else {
                &crate::query::sessions::SORT_KEYS[..2]
            };
            for sort in sorts {
                for offset in [0, 5] {
                    let [a, b] = engines.map(|e| {
                        e.list_sessions(range.clone(), f.clone(), sort.to_string(), offset, 5)
                    });
                    let (a, b) = (a.await.unwrap(), b.await.unwrap());
                    sessions += a.0.len();
                    assert_same(
                        &what(&format!("list_sessions by {sort} from {offset}")),
                        &a,
                        &b,
                    );
                }
            }
            let [a, b] = engines.map(|e| e.describe_data(range.clone(), f.clone()));
            assert_same(&what("describe_data"), &a.await.unwrap(), &b.await.unwrap());
            let [a, b] = engines.map(|e| e.data_extent(f.visible.clone()));
            assert_eq!(
                a.await.unwrap(),
                b.await.unwrap(),
                "{}",
                what("data_extent")
            );
        }
    }
    assert!(
        nonempty >= 10,
        "the cases must mostly hold data: {nonempty}"
    );
    assert!(edits > 100, "edits compared: {edits}");
    assert!(sessions > 100, "sessions compared: {sessions}");
}

/// One `claude_code.cost.usage` point of a cumulative series, in a request
/// of its own.
fn cumulative_cost(start_s: i64, time_s: i64, value: f64) -> (Signal, Value) {
    let s = |k: &str, v: &str| serde_json::json!({"key": k, "value": {"stringValue": v}});
    let body = serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [s("service.name", "claude-code")]},
        "scopeMetrics": [{
            "scope": {"name": "com.anthropic.claude_code", "version": "2.1.330"},
            "metrics": [{
                "name": "claude_code.cost.usage",
                "unit": "USD",
                "sum": {
                    "aggregationTemporality": 2,
                    "isMonotonic": true,
                    "dataPoints": [{
                        "attributes": [
                            s("session.id", "cumulative-session"),
                            s("user.email", "cum@example.com"),
                            s("model", "claude-sonnet-4-6"),
                        ],
                        "startTimeUnixNano": (start_s * 1_000_000_000).to_string(),
                        "timeUnixNano": (time_s * 1_000_000_000).to_string(),
                        "asDouble": value,
                    }],
                },
            }],
        }],
    }]});
    (Signal::Metrics, body)
}

#[tokio::test]
async fn cumulative_metrics_count_their_rises_on_every_engine() {
    let t0 = 1_795_000_000;
    // Running totals 0.10, 0.30, 0.30, then a restart (new start time) at 0.05.
    let bodies = vec![
        cumulative_cost(t0, t0 + 60, 0.10),
        cumulative_cost(t0, t0 + 120, 0.30),
        cumulative_cost(t0, t0 + 180, 0.30),
        cumulative_cost(t0 + 200, t0 + 240, 0.05),
    ];
    let want = 0.10 + 0.20 + 0.0 + 0.05;
    // From the second point on: its rise over the first, and the restart.
    let since = (t0 + 90) * 1_000_000_000;
    for (engine, backend) in backends(&bodies).await {
        let got = backend
            .cost_by_developer(utc(ALL_TIME.0, ALL_TIME.1), everyone())
            .await
            .unwrap();
        assert!(
            close(got.totals.cost_usd, want),
            "{engine}: {}",
            got.totals.cost_usd
        );
        assert_eq!(got.totals.source, "metrics", "{engine}");
        let got = backend
            .cost_by_developer(utc(since, ALL_TIME.1), everyone())
            .await
            .unwrap();
        assert!(
            close(got.totals.cost_usd, 0.25),
            "{engine}: {}",
            got.totals.cost_usd
        );
    }
}

/// One Claude Code event of `developer` in session `session`, in a request
/// of its own.
fn event(
    developer: &str,
    session: &str,
    time_s: i64,
    name: &str,
    attrs: &[(&str, &str)],
) -> (Signal, Value) {
    let s = |k: &str, v: &str| serde_json::json!({"key": k, "value": {"stringValue": v}});
    let mut attributes = vec![
        s("event.name", name),
        s("session.id", session),
        s("user.email", developer),
        s("prompt.id", &format!("{session}-p1")),
    ];
    attributes.extend(attrs.iter().map(|(k, v)| s(k, v)));
    let body = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [s("service.name", "claude-code")]},
        "scopeLogs": [{
            "scope": {"name": "com.anthropic.claude_code.events", "version": "2.1.330"},
            "logRecords": [{
                "timeUnixNano": (time_s * 1_000_000_000).to_string(),
                "body": {"stringValue": format!("claude_code.{name}")},
                "attributes": attributes,
            }],
        }],
    }]});
    (Signal::Logs, body)
}

#[tokio::test]
async fn a_shared_session_shows_each_viewer_its_own_part_on_every_engine() {
    let t0 = 1_795_100_000;
    let api = |dev: &str, t: i64, model: &str, cost: &str, input: &str| {
        event(
            dev,
            "shared-1",
            t,
            "api_request",
            &[
                ("model", model),
                ("cost_usd", cost),
                ("input_tokens", input),
                ("output_tokens", "10"),
            ],
        )
    };
    let bodies = vec![
        event(
            "ann@example.com",
            "shared-1",
            t0,
            "user_prompt",
            &[("prompt_length", "12")],
        ),
        api("ann@example.com", t0 + 5, "claude-haiku-4-5", "0.5", "100"),
        // Another developer writes under the same session id, later.
        api("ben@example.com", t0 + 60, "claude-opus-4-6", "2.0", "300"),
        api("ben@example.com", t0 + 70, "claude-opus-4-6", "1.0", "200"),
        event(
            "ben@example.com",
            "shared-1",
            t0 + 80,
            "tool_result",
            &[
                ("tool_name", "Bash"),
                ("success", "false"),
                ("duration_ms", "40"),
            ],
        ),
        event("ann@example.com", "solo-1", t0 + 500, "user_prompt", &[]),
    ];
    let all = utc(ALL_TIME.0, ALL_TIME.1);
    let mut answers = Vec::new();
    for (engine, backend) in backends(&bodies).await {
        let mut seen = Vec::new();
        for devs in [
            vec![],
            vec!["ann@example.com"],
            vec!["ben@example.com"],
            vec!["cat@example.com"],
        ] {
            let f = Filter::new(visible(&devs));
            let (list, more) = backend
                .list_sessions(all.clone(), f.clone(), "cost".into(), 0, 10)
                .await
                .unwrap();
            assert!(!more, "{engine}");
            let shared = list.iter().find(|s| s.session_id == "shared-1").cloned();
            let timeline = backend
                .session_timeline(
                    all.clone(),
                    f.visible.clone(),
                    "shared-1".into(),
                    0,
                    50,
                    false,
                )
                .await
                .ok();
            let described = backend.describe_data(all.clone(), f.clone()).await.unwrap();
            // What each viewer gets, from the bodies above.
            match devs.first().copied() {
                None => {
                    let s = shared.as_ref().unwrap();
                    assert!(close(s.cost_usd, 3.5), "{engine}: {s:?}");
                    assert_eq!(
                        (s.api_requests, s.input_tokens, s.tool_failures),
                        (3, 600, 1)
                    );
                    assert_eq!(s.developer.as_deref(), Some("ann@example.com"), "{engine}");
                    assert_eq!(s.main_model.as_deref(), Some("claude-opus-4-6"), "{engine}");
                    assert!(!s.shared, "{engine}");
                    assert_eq!(described.sessions, 2, "{engine}");
                }
                Some("ann@example.com") => {
                    let s = shared.as_ref().unwrap();
                    assert!(close(s.cost_usd, 0.5), "{engine}: {s:?}");
                    assert_eq!(
                        (s.api_requests, s.prompts, s.tool_calls),
                        (1, 1, 0),
                        "{engine}"
                    );
                    assert_eq!(
                        s.main_model.as_deref(),
                        Some("claude-haiku-4-5"),
                        "{engine}"
                    );
                    assert!(s.shared, "{engine}");
                    let t = timeline.as_ref().unwrap();
                    assert_eq!(t.events.rows.len(), 2, "{engine}");
                    assert!(
                        t.events
                            .rows
                            .iter()
                            .all(|e| e.developer.as_deref() == Some("ann@example.com"))
                    );
                }
                Some("ben@example.com") => {
                    let s = shared.as_ref().unwrap();
                    assert!(close(s.cost_usd, 3.0), "{engine}: {s:?}");
                    assert_eq!(s.developer.as_deref(), Some("ben@example.com"), "{engine}");
                    assert_eq!(
                        (s.api_requests, s.tool_failures, s.prompts),
                        (2, 1, 0),
                        "{engine}"
                    );
                    assert_eq!(s.duration_s, 20.0, "{engine}");
                    let t = timeline.as_ref().unwrap();
                    assert_eq!(t.turns.len(), 1, "{engine}");
                    assert_eq!(t.turns[0].api_requests, 2, "{engine}");
                    assert_eq!(t.turns[0].tokens, 520, "{engine}");
                }
                _ => {
                    assert!(list.is_empty() && timeline.is_none(), "{engine}");
                    assert_eq!(described.sessions, 0, "{engine}");
                }
            }
            seen.push(serde_json::json!({
                "list": list,
                "timeline": timeline,
                "described": serde_json::to_value(&described.names).unwrap(),
                "developers": serde_json::to_value(&described.developers).unwrap(),
                "agents": serde_json::to_value(&described.agents).unwrap(),
                "sessions": described.sessions,
            }));
        }
        answers.push(seen);
    }
    for other in &answers[1..] {
        assert_same("shared session", &answers[0], other);
    }
}
