//! End to end over HTTP with the official MCP TypeScript SDK client: the real
//! Claude Code captures are ingested, then the client initializes, lists the
//! tools and calls every one of them; the structured results must hold the
//! numbers an independent script computed from the captures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, run_node};
use serde_json::{Value, json};

const TOOLS: [&str; 9] = [
    "search_events",
    "cost_by_developer",
    "model_breakdown",
    "top_edited_files",
    "tool_latency",
    "session_timeline",
    "list_sessions",
    "usage_over_time",
    "describe_data",
];

const SESSION_T3: &str = "8632fb29-f2bb-4135-b72f-e225ad4d7105";
const DEV_T3: &str = "f96a16fce6e69dbe8ca711f4e1167894838c92055f9878479416480b2dc7ddbe";

fn range() -> Value {
    json!({"since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"})
}

fn with_range(extra: Value) -> Value {
    let mut v = range();
    v.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    v
}

async fn call_all(t: &TestServer, token: &str, calls: Value) -> Value {
    let out = run_node(
        vec![
            "mcp_client.mjs".into(),
            t.mcp_url(),
            token.into(),
            calls.to_string(),
        ],
        vec![],
    )
    .await;
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn result<'a>(out: &'a Value, name: &str) -> &'a Value {
    let r = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no result for {name}"));
    assert_eq!(r["isError"], false, "{name}: {r}");
    assert!(
        !r["text"].as_str().unwrap_or_default().is_empty(),
        "{name} has no text summary"
    );
    &r["structuredContent"]
}

/// Money in replies is rounded to 6 decimals.
fn close(a: &Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() <= 5.01e-7
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_client_calls_every_tool() {
    let t = TestServer::start().await;
    t.replay_captures().await;
    let calls = json!([
        {"name": "cost_by_developer", "arguments": range()},
        {"name": "model_breakdown", "arguments": range()},
        {"name": "search_events", "arguments": with_range(json!({"event_name": "api_error"}))},
        {"name": "tool_latency", "arguments": range()},
        {"name": "top_edited_files", "arguments": range()},
        {"name": "list_sessions", "arguments": range()},
        {"name": "session_timeline", "arguments": {"session_id": SESSION_T3}},
        {"name": "usage_over_time", "arguments": with_range(json!({"bucket": "day"}))},
        {"name": "describe_data", "arguments": range()},
        {"name": "cost_by_developer", "arguments": {"since": "not a time"}},
    ]);
    let out = call_all(&t, &t.bootstrap_token("read"), calls).await;

    assert_eq!(out["serverInfo"]["name"], "tokentally");
    let tools = out["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for tool in TOOLS {
        assert!(names.contains(&tool), "{tool} missing from {names:?}");
    }
    // A read token does not see the audit tools.
    assert!(!names.iter().any(|n| n.starts_with("audit")));
    for tool in tools {
        assert_eq!(tool["readOnlyHint"], true, "{tool}");
        assert_eq!(tool["hasOutputSchema"], true, "{tool}");
        assert_eq!(tool["described"], true, "every argument documented: {tool}");
    }

    // Figures computed from the captures by an independent script: 19
    // api_requests over 7 developers (anonymous user.id), $0.0178375.
    let cost = result(&out, "cost_by_developer");
    assert_eq!(cost["totals"]["api_requests"], 19);
    assert_eq!(cost["totals"]["input_tokens"], 2280);
    assert!(close(&cost["totals"]["cost_usd"], 0.0178375));
    assert_eq!(cost["rows"].as_array().unwrap().len(), 7);
    let top = &cost["rows"][0];
    assert_eq!(top["developer"], DEV_T3);
    assert_eq!(top["developer_kind"], "user_id");
    assert_eq!(top["api_requests"], 7);
    assert!(close(&top["cost_usd"], 7.0 * 0.000976));
    assert_eq!(cost["range"]["timezone"], "UTC");

    let models = result(&out, "model_breakdown");
    let by_model: Vec<(String, i64)> = models["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["model"].as_str().unwrap().to_string(),
                r["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_model,
        vec![
            ("claude-opus-5-5".to_string(), 14),
            ("claude-sonnet-4-6".to_string(), 4),
            ("claude-opus-4-8".to_string(), 1)
        ]
    );

    let errors = result(&out, "search_events");
    assert_eq!(errors["rows"].as_array().unwrap().len(), 1);
    assert_eq!(errors["rows"][0]["error"], "Repeated 529 Overloaded errors");
    assert_eq!(errors["truncated"], false);

    // Bash: 5 calls, durations 32, 34, 35, 74, 91 ms, one failure.
    let latency = result(&out, "tool_latency");
    let bash = latency["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tool_name"] == "Bash")
        .unwrap();
    assert_eq!(
        (
            &bash["calls"],
            &bash["failures"],
            &bash["p50_ms"],
            &bash["max_ms"]
        ),
        (&json!(5), &json!(1), &json!(35), &json!(91))
    );

    let files = result(&out, "top_edited_files");
    assert_eq!(files["rows"][0]["file_path"], "/home/dev/webapp/hello.txt");
    assert_eq!(files["rows"][0]["rejected"], 0);

    let sessions = result(&out, "list_sessions");
    assert_eq!(sessions["rows"].as_array().unwrap().len(), 8);

    let timeline = result(&out, "session_timeline");
    assert_eq!(timeline["session"]["api_requests"], 7);
    assert_eq!(timeline["session"]["tool_calls"], 6);

    let usage = result(&out, "usage_over_time");
    assert!(close(&usage["total_cost_usd"], 0.0178375));

    let described = result(&out, "describe_data");
    let api_requests = described["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "api_request")
        .unwrap();
    assert_eq!(api_requests["count"], 19);

    // A caller mistake is a tool error that says what to fix, not a protocol error.
    let bad = out["results"].as_array().unwrap().last().unwrap();
    assert_eq!(bad["isError"], true, "{bad}");
    assert!(bad["text"].as_str().unwrap().contains("since"), "{bad}");

    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_clients_are_refused() {
    let t = TestServer::start().await;
    let resp = t
        .http
        .post(t.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        r#"Bearer realm="tokentally""#
    );
    t.stop().await;
}
