//! `/metrics`: the server's own Prometheus counters, served only as the
//! configuration says (here: to an audit token), counting what ingest
//! stored, refused and saw twice, the tool calls by tool and outcome, and
//! refused requests — with nothing of the data in them. One test in its
//! own binary: the counters are the process's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestServer;
use serde_json::{Value, json};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_ingest_tool_calls_and_refusals_without_user_data() {
    let t = TestServer::start_with(|c| c.metrics = tokentally::config::MetricsAccess::Token).await;
    let url = format!("http://{}/metrics", t.running().mcp_addr);
    let audit = t.bootstrap_token("audit");
    let read = t.bootstrap_token("read");
    assert_eq!(t.http.get(&url).send().await.unwrap().status(), 401);
    let r = t.http.get(&url).bearer_auth(&read).send().await.unwrap();
    assert_eq!(r.status(), 403);

    let rel = "claude-code/v330_t3_json_tools_details/otlp/002_v1_logs.json";
    let sent: Value = serde_json::from_slice(&common::fixture(rel)).unwrap();
    let records: u64 = sent["resourceLogs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["scopeLogs"].as_array().unwrap().iter())
        .map(|s| s["logRecords"].as_array().unwrap().len() as u64)
        .sum();
    assert_eq!(t.post_fixture(rel).await.status(), 200);
    assert_eq!(t.post_fixture(rel).await.status(), 200); // a retry
    let mut s = common::mcp::Session::open(&t.mcp_url(), &read).await;
    s.call_ok("describe_data", json!({})).await;
    s.call_ok("cost_by_developer", json!({"since": "2020-01-01"}))
        .await;
    let bad = s
        .call("cost_by_developer", json!({"since": "yesteryear"}))
        .await;
    assert_eq!(bad["isError"], true);
    // A refused request: a wrong token.
    let refused = common::mcp::Session::try_open(&t.mcp_url(), "tt_0000").await;
    assert!(refused.is_err());

    let r = t.http.get(&url).bearer_auth(&audit).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    let stored = value(
        &text,
        r#"tokentally_ingest_records_total{signal="logs",result="stored"}"#,
    );
    let again = value(
        &text,
        r#"tokentally_ingest_records_total{signal="logs",result="duplicate"}"#,
    );
    assert_eq!((stored, again), (records as f64, records as f64), "{text}");
    assert_eq!(
        value(
            &text,
            r#"tokentally_tool_calls_total{tool="describe_data",outcome="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"tokentally_tool_calls_total{tool="cost_by_developer",outcome="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"tokentally_tool_calls_total{tool="cost_by_developer",outcome="tool_error"}"#
        ),
        1.0
    );
    assert!(
        value(
            &text,
            r#"tokentally_denied_requests_total{outcome="unauthenticated"}"#
        ) >= 1.0,
        "{text}"
    );
    // Nothing of the data: no developer, session id or token in it.
    let sent_text = String::from_utf8(common::fixture(rel)).unwrap();
    let session = sent_text.split("\"session.id\"").nth(1).unwrap();
    let session_id = session.split("\"stringValue\":").nth(1).unwrap();
    let session_id = session_id
        .trim()
        .trim_start_matches('"')
        .split('"')
        .next()
        .unwrap();
    assert!(session_id.len() > 8, "{session_id}");
    assert!(
        !text.contains(session_id) && !text.contains('@') && !text.contains(&read[3..]),
        "{text}"
    );
    t.stop().await;
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let t = TestServer::start().await;
    let url = format!("http://{}/metrics", t.running().mcp_addr);
    let r = t
        .http
        .get(&url)
        .bearer_auth(t.bootstrap_token("audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    t.stop().await;
}
