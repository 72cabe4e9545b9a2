//! Replays the MCP requests Claude Code 2.1.330 actually sends (recorded in
//! `fixtures/claude-code/v330_t5_json_mcp/mcp/`): a `server/discover` probe
//! with protocol 2026-07-28, the fallback `initialize` with 2025-11-25, the
//! `initialized` notification, the GET stream, `tools/list` and a
//! `tools/call` carrying Claude Code's `_meta`. Headers are sent as recorded,
//! with a real token and this server's address.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, fixture};
use serde_json::Value;

/// The JSON-RPC message in a response body, plain JSON or SSE `data:` lines.
fn jsonrpc(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str(body) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {body:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_2_1_330_mcp_handshake_and_calls() {
    let t = TestServer::start().await;
    t.replay_captures().await;
    let token = t.bootstrap_token("read");
    let mut session: Option<String> = None;

    for n in 1..=6 {
        let rec: Value = serde_json::from_slice(&fixture(&format!(
            "claude-code/v330_t5_json_mcp/mcp/{n:03}.json"
        )))
        .unwrap();
        let method = rec["method"].as_str().unwrap();
        let mut body = rec["body"].as_str().unwrap().to_string();
        // The recorded server offered an `echo` tool; ask ours for a real one.
        if body.contains("\"tools/call\"") {
            let mut v: Value = serde_json::from_str(&body).unwrap();
            v["params"]["name"] = "describe_data".into();
            v["params"]["arguments"] = serde_json::json!({"since": "2026-11-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"});
            body = v.to_string();
        }
        let mut req = t
            .http
            .request(method.parse().unwrap(), t.mcp_url())
            .header("authorization", format!("Bearer {token}"));
        for (name, value) in rec["headers"].as_object().unwrap() {
            let lname = name.to_ascii_lowercase();
            if [
                "authorization",
                "host",
                "content-length",
                "connection",
                "mcp-session-id",
            ]
            .contains(&lname.as_str())
            {
                continue;
            }
            req = req.header(name.as_str(), value.as_str().unwrap());
        }
        if rec["headers"].get("mcp-session-id").is_some() {
            req = req.header(
                "mcp-session-id",
                session.clone().expect("session from initialize"),
            );
        }
        if method == "POST" {
            req = req.body(body.clone());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        match n {
            1 => {
                // server/discover: answered (a result or method-not-found), so
                // Claude Code can fall back to initialize.
                assert_eq!(status, 200, "discover");
                let v = jsonrpc(&resp.text().await.unwrap());
                assert_eq!(v["id"], "server-discover-probe-1");
                assert!(
                    v.get("result").is_some() || v["error"]["code"] == -32601,
                    "{v}"
                );
            }
            2 => {
                assert_eq!(status, 200, "initialize");
                session = resp
                    .headers()
                    .get("mcp-session-id")
                    .map(|v| v.to_str().unwrap().to_string());
                assert!(session.is_some(), "initialize must open a session");
                let v = jsonrpc(&resp.text().await.unwrap());
                assert_eq!(v["result"]["protocolVersion"], "2025-11-25");
                assert_eq!(v["result"]["serverInfo"]["name"], "tokentally");
                assert!(v["result"]["capabilities"]["tools"].is_object());
            }
            3 => assert_eq!(status, 202, "initialized notification"),
            4 => {
                // The standalone GET stream: a stream (200) or 405, both fine for Claude Code.
                assert!(status == 200 || status == 405, "GET stream: {status}");
            }
            5 => {
                assert_eq!(status, 200);
                let v = jsonrpc(&resp.text().await.unwrap());
                let names: Vec<&str> = v["result"]["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].as_str().unwrap())
                    .collect();
                assert!(names.contains(&"cost_by_developer"), "{names:?}");
            }
            6 => {
                assert_eq!(status, 200);
                let v = jsonrpc(&resp.text().await.unwrap());
                assert_eq!(v["result"]["isError"], false, "{v}");
                let rows = v["result"]["structuredContent"]["rows"].as_array().unwrap();
                let api = rows.iter().find(|r| r["name"] == "api_request").unwrap();
                assert_eq!(api["count"], 19);
            }
            _ => unreachable!(),
        }
    }
    t.stop().await;
}
