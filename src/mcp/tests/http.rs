//! The MCP service over HTTP: rmcp in an in-process axum server on 127.0.0.1:0.

use super::*;

/// Serves `/mcp` on 127.0.0.1:0 behind a test auth layer mapping
/// `Authorization: Bearer <scope>` to a principal.
async fn serve_mcp(ctx: ToolContext, sink: Arc<dyn AuditSink>) -> (String, CancellationToken) {
    let cancel = CancellationToken::new();
    let svc = mcp_service(
        Registry::new(ctx),
        sink,
        cancel.clone(),
        McpHttpConfig::default(),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", svc)
        .layer(axum::middleware::from_fn(
            |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
                let scope = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .and_then(Scope::parse);
                if let Some(s) = scope {
                    req.extensions_mut().insert(principal(s, &[]));
                }
                next.run(req).await
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { c2.cancelled().await })
            .await
            .unwrap();
    });
    (format!("http://{addr}/mcp"), cancel)
}

/// Sends one JSON-RPC message; returns (session id header, JSON answer if any).
async fn rpc(
    url: &str,
    token: &str,
    session: Option<&str>,
    body: Value,
) -> (Option<String>, Option<Value>) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("user-agent", "claude-code/2.1.330 (test)")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string());
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let resp = req.send().await.unwrap();
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let is_sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    if body.get("id").is_none() {
        return (sid, None);
    }
    if !is_sse {
        let text = resp.text().await.unwrap();
        return (sid, serde_json::from_str(&text).ok());
    }
    // Read SSE events until the answer to our id arrives.
    let mut resp = resp;
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        for line in buf.lines() {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                && v.get("id") == body.get("id")
            {
                return (sid, Some(v));
            }
        }
    }
    (sid, None)
}

async fn open_session(url: &str, token: &str) -> String {
    let (sid, init) = rpc(
        url,
        token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "claude-code", "version": "2.1.330"}
        }}),
    )
    .await;
    let init = init.unwrap();
    assert_eq!(init["result"]["serverInfo"]["name"], "tokentally", "{init}");
    assert!(
        init["result"]["instructions"]
            .as_str()
            .unwrap()
            .contains("describe_data")
    );
    let sid = sid.unwrap();
    rpc(
        url,
        token,
        Some(&sid),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    sid
}

#[tokio::test]
async fn over_http_tools_are_listed_by_scope_called_and_audited() {
    let (ctx, ds) = generated_ctx();
    let sink = Arc::new(VecSink::default());
    let (url, cancel) = serve_mcp(ctx, sink.clone()).await;

    let sid = open_session(&url, "read").await;
    let (_, list) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let tools = list.unwrap()["result"]["tools"].as_array().unwrap().clone();
    assert_eq!(tools.len(), 9);
    assert!(
        tools
            .iter()
            .all(|t| t["annotations"]["readOnlyHint"] == true && t["outputSchema"].is_object())
    );

    let (_, call) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "cost_by_developer", "arguments": {"since": ALL}}}),
    )
    .await;
    let result = &call.unwrap()["result"];
    assert_ne!(result["isError"], true, "{result}");
    let expected = ds
        .records
        .iter()
        .filter(|r| r.ev.event_name == "api_request")
        .count() as i64;
    assert_eq!(
        result["structuredContent"]["totals"]["api_requests"],
        expected
    );
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("developer(s)")
    );

    // A caller mistake is a tool result with isError, not a protocol error.
    let (_, bad) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "model_breakdown", "arguments": {"limit": -1}}}),
    )
    .await;
    assert_eq!(bad.unwrap()["result"]["isError"], true);

    {
        let recs = sink.0.lock().unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].outcome, "ok");
        assert_eq!(
            recs[0].user_agent.as_deref(),
            Some("claude-code/2.1.330 (test)")
        );
        assert_eq!(recs[0].client_name.as_deref(), Some("claude-code"));
        assert_eq!(recs[1].outcome, "tool_error");
    }

    // An ingest token sees no tools.
    let sid = open_session(&url, "ingest").await;
    let (_, list) = rpc(
        &url,
        "ingest",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(list.unwrap()["result"]["tools"], json!([]));
    cancel.cancel();
}

#[tokio::test]
async fn over_http_a_failing_audit_sink_refuses_the_answer() {
    let (ctx, _) = generated_ctx();
    let sink: Arc<dyn AuditSink> = Arc::new(VecSink(Mutex::new(Vec::new()), true));
    let (url, cancel) = serve_mcp(ctx, sink).await;
    let sid = open_session(&url, "read").await;
    let (_, call) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "cost_by_developer", "arguments": {"since": ALL}}}),
    )
    .await;
    let v = call.unwrap();
    assert!(v.get("result").is_none(), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("audit"));
    cancel.cancel();
}

/// Claude Code 2.1.330 first probes with `server/discover` (2026-07-28).
#[tokio::test]
async fn over_http_answers_claude_code_discover_probe() {
    let (ctx, _) = generated_ctx();
    let sink = Arc::new(VecSink::default());
    let (url, cancel) = serve_mcp(ctx, sink).await;
    let body = r#"{"jsonrpc":"2.0","id":"server-discover-probe-1","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"claude-code","title":"Claude Code","version":"2.1.330","description":"Anthropic's agentic coding tool","websiteUrl":"https://claude.com/claude-code"},"io.modelcontextprotocol/clientCapabilities":{"roots":{"listChanged":true},"elicitation":{"form":{},"url":{}}}}}}"#;
    let resp = reqwest::Client::new()
        .post(&url)
        .header("authorization", "Bearer read")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-method", "server/discover")
        .header("mcp-protocol-version", "2026-07-28")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{status} {text}");
    assert!(text.contains("tokentally"), "{text}");
    cancel.cancel();
}

#[tokio::test]
async fn over_http_unknown_tool_is_a_protocol_error_and_audited() {
    let (ctx, _) = generated_ctx();
    let sink = Arc::new(VecSink::default());
    let (url, cancel) = serve_mcp(ctx, sink.clone()).await;
    let sid = open_session(&url, "read").await;
    let (_, call) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "drop_tables", "arguments": {}}}),
    )
    .await;
    let v = call.unwrap();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    let recs = sink.0.lock().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].tool.as_deref(), Some("drop_tables"));
    assert_eq!(recs[0].request_id.as_deref(), Some("9"));
    drop(recs);
    cancel.cancel();
}
