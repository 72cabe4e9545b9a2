//! Answers on real Claude Code captures, written through the real decoder
//! and writer, checked against values read straight from the captured
//! OTLP/JSON (not through the code under test): a request is counted once
//! whichever signals report it, with or without a `session.id`, and one
//! model is one row whatever its spelling.
//!
//! The answers are asked through the [`Questions`] trait, so the same
//! checks apply to any backend; `backend` builds the SQLite one. The few
//! checks of what is stored (the model variant column, span attributes)
//! read the SQLite store itself.

use serde_json::Value;

use super::filter::Filter;
use super::fixture::{Fx, close, utc};
use super::questions::Questions;
use super::runner::Sqlite;
use super::visible::testing::visible;
use crate::otlp::Signal;

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

/// The backend under test, holding `bodies` as ingest would store them.
fn backend(bodies: &[(Signal, Value)]) -> Box<dyn Questions> {
    let fx = load(bodies);
    Box::new(Sqlite::over_connection(
        fx.conn,
        std::time::Duration::from_secs(30),
    ))
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
            let got = backend(bodies)
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

#[tokio::test]
async fn metrics_alone_without_session_ids_still_count() {
    let mut bodies: Vec<_> = capture("v330_t3_json_tools_details")
        .into_iter()
        .filter(|(s, _)| matches!(s, Signal::Metrics))
        .collect();
    bodies.iter_mut().for_each(|(_, b)| without_session_ids(b));
    let got = backend(&bodies)
        .cost_by_developer(utc(ALL_TIME.0, ALL_TIME.1), everyone())
        .await
        .unwrap();
    assert!(close(got.totals.cost_usd, metric_cost(&bodies)));
    assert_eq!(got.totals.source, "metrics");
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
        let (rows, _) = backend(bodies)
            .model_breakdown(utc(ALL_TIME.0, ALL_TIME.1), everyone())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].model, "claude-opus-4-8");
        assert_eq!(rows[0].requests, requests.len() as i64);
        assert!(close(rows[0].cost_usd, cost));
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
    let got = backend(&bodies)
        .cost_by_developer(utc(ALL_TIME.0, ALL_TIME.1), everyone())
        .await
        .unwrap();
    let fx = load(&bodies);
    let input: f64 = requests.iter().map(|r| r.2).sum();
    assert_eq!(got.totals.input_tokens as f64, input);
    assert_eq!(got.totals.api_requests, requests.len() as i64);
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
    let questions = backend(&bodies);
    let range = utc(ALL_TIME.0, ALL_TIME.1);
    let agent = super::attribution::find("subagent").unwrap();
    let (points, _) = questions
        .usage_over_time(
            range.clone(),
            everyone(),
            super::timeseries::Bucket::Total,
            super::timeseries::Split::Attribution(agent),
        )
        .await
        .unwrap();
    let got: std::collections::BTreeMap<Option<String>, f64> =
        points.iter().map(|p| (p.key.clone(), p.cost_usd)).collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, v) in &want {
        assert!(close(got[k], *v), "{k:?}: {} vs {v}", got[k]);
    }
    // The filter gives the subagent's part alone.
    let f = Filter {
        attribution: vec![(agent, "general-purpose".to_string())],
        ..everyone()
    };
    let got = questions.cost_by_developer(range, f).await.unwrap();
    assert!(close(
        got.totals.cost_usd,
        want[&Some("general-purpose".to_string())]
    ));
    assert_eq!(got.totals.api_requests, 3);
}
