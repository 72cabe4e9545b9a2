//! Transport and resource limits: DNS rebinding, query time budgets, rate
//! limits, and locked databases.

use super::*;

// (4) DNS rebinding: a foreign Host or Origin is refused with 403 on both
// HTTP listeners, and nothing is stored.
#[tokio::test]
async fn foreign_host_and_origin_are_refused_on_both_listeners() {
    let t = start().await;
    let read = t.bootstrap_token("read");
    let body = logs_body(vec![api_request(DEV_A, "s-1", now_ns(), 1, 1, 1, 0.5)]);
    let init = rpc_body(
        1,
        "initialize",
        json!({
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "page", "version": "0"}}),
    );
    let evil: [(&str, &str, &str); 3] = [
        ("host", "evil.example", "forbidden: Host not allowed\n"),
        ("host", "evil.example:4318", "forbidden: Host not allowed\n"),
        (
            "origin",
            "http://evil.example",
            "forbidden: Origin not allowed\n",
        ),
    ];
    for (name, value, answer) in evil {
        let resp = t
            .http
            .post(t.otlp_url("/v1/logs"))
            .header("content-type", "application/json")
            .header(name, value)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "OTLP {name}: {value}");
        assert_eq!(resp.text().await.unwrap(), answer);
        let r = post(
            &t.http,
            &t.mcp_url(),
            Some(&read),
            None,
            &[(name, value)],
            init.clone(),
            None,
        )
        .await;
        assert_eq!(r.status, 403, "MCP {name}: {value}");
        assert_eq!(r.text, answer);
    }
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 0);
    // The /mcp refusals are audited with the offending value, no token.
    let refused: Vec<(Option<String>, Option<String>, Option<i64>)> = audit_entries(t.dir.path())
        .into_iter()
        .filter(|e| e.record.outcome == "forbidden")
        .map(|e| (e.record.method, e.record.detail, e.record.token_id))
        .collect();
    let post_mcp = Some("POST /mcp".to_string());
    assert_eq!(
        refused,
        vec![
            (
                post_mcp.clone(),
                Some(r#"Host not allowed: "evil.example""#.into()),
                None
            ),
            (
                post_mcp.clone(),
                Some(r#"Host not allowed: "evil.example:4318""#.into()),
                None
            ),
            (
                post_mcp,
                Some(r#"Origin not allowed: "http://evil.example""#.into()),
                None
            ),
        ]
    );
    // The same requests from a local page pass.
    let resp = t
        .http
        .post(t.otlp_url("/v1/logs"))
        .header("content-type", "application/json")
        .header("origin", "http://localhost:3000")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 1);
    let r = post(
        &t.http,
        &t.mcp_url(),
        Some(&read),
        None,
        &[("origin", "http://127.0.0.1:8080")],
        init,
        Some(&json!(1)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    t.stop().await;
}

/// Ingests `n` api_request events over the last day, in requests of 5,000.
async fn ingest_many(t: &TestServer, n: i64) {
    let start = now_ns() - 86_000_000_000_000;
    let step = 86_000_000_000_000 / n;
    let mut i = 0;
    while i < n {
        let end = (i + 5_000).min(n);
        let records = (i..end)
            .map(|k| {
                api_request(
                    &format!("dev{}@example.com", k % 50),
                    &format!("bulk-{}", k % 500),
                    start + k * step,
                    k,
                    100,
                    10,
                    0.001,
                )
            })
            .collect();
        let resp = post_logs(t, logs_body(records), None).await;
        assert_eq!(resp.status(), 200);
        i = end;
    }
}

// (6) A query that would run long is stopped at the time budget inside
// SQLite; the (single) read connection is reusable and the server answers
// the next call.
#[tokio::test]
async fn long_query_is_stopped_at_the_budget_and_the_connection_is_reused() {
    let t = TestServer::start_with(|c| {
        generous_limits(c);
        c.query.time_budget_ms = 10;
        c.query.readers = 1;
    })
    .await;
    const EVENTS: i64 = 200_000;
    ingest_many(&t, EVENTS).await;
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), EVENTS);
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    // A filter that matches nothing scans every event of the day.
    let started = Instant::now();
    let r = s
        .call(
            "search_events",
            json!({"since": "2d", "error_contains": "no such error text"}),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(r["isError"], true, "{r}");
    assert!(
        text_of(&r).starts_with("The query ran past its 10 ms time budget and was stopped."),
        "{r}"
    );
    assert!(took < Duration::from_secs(5), "not stopped: {took:?}");
    // The same (only) read connection answers a narrow question.
    for _ in 0..3 {
        let r = s
            .call_ok(
                "search_events",
                json!({"since": "2020-01-01", "until": "2020-01-02"}),
            )
            .await;
        assert_eq!(r["rows"], json!([]));
    }
    let entries = audit_entries(t.dir.path());
    let timed_out: Vec<_> = entries
        .iter()
        .filter(|e| e.record.outcome == "timed_out")
        .collect();
    assert_eq!(timed_out.len(), 1);
    assert_eq!(timed_out[0].record.tool.as_deref(), Some("search_events"));
    // Ingest kept working.
    let resp = post_logs(
        &t,
        logs_body(vec![api_request(DEV_A, "s", now_ns(), 1, 1, 1, 0.5)]),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    t.stop().await;
}

// (7) 1000 rapid calls from one token: 429 with Retry-After past the burst,
// each audited; a second token is still served.
#[tokio::test]
async fn rapid_calls_are_rate_limited_per_token() {
    let t = TestServer::start_with(|c| {
        c.rate_limit.per_token_per_minute = 60;
        c.rate_limit.per_token_burst = 5;
        c.rate_limit.per_ip_per_minute = 100_000;
        c.rate_limit.per_ip_burst = 10_000;
    })
    .await;
    let noisy = create_token(&t, "noisy", Scope::Read, &[]);
    // Protocol messages (initialize, notifications, tools/list) do not count.
    let mut s = Session::open(&t.mcp_url(), &noisy).await;
    for _ in 0..10 {
        assert_eq!(s.request("tools/list", json!({})).await.status, 200);
    }
    let started = Instant::now();
    let mut ok = 0;
    let mut limited = 0;
    for chunk in 0..20 {
        let calls = (0..50).map(|i| {
            let id = json!(1000 + chunk * 50 + i);
            let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "describe_data", "arguments": {}}});
            let s = &s;
            async move { s.send_raw(body.to_string().into_bytes(), Some(&id)).await }
        });
        for r in futures::future::join_all(calls).await {
            assert_eq!(r.status, 200, "{}", r.text);
            let result = r.result();
            if result["isError"] == true {
                limited += 1;
                let text = text_of(result);
                assert!(text.contains("too many tool calls"), "{text}");
                let wait: u64 = text
                    .rsplit("retry in ")
                    .next()
                    .and_then(|w| w.trim_end_matches(" s").parse().ok())
                    .unwrap();
                assert!((1..=60).contains(&wait), "retry in {wait}");
            } else {
                ok += 1;
            }
        }
    }
    let elapsed = started.elapsed().as_secs() as i64;
    assert_eq!(ok + limited, 1000);
    // The burst of 5, plus one per second of refill.
    assert!(ok >= 5 && ok <= 5 + elapsed + 1, "ok {ok} in {elapsed}s");
    // Another token is served meanwhile.
    let mut other = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    other.call_ok("describe_data", json!({})).await;
    let entries = audit_entries(t.dir.path());
    let audited = entries
        .iter()
        .filter(|e| {
            e.record.outcome == "rate_limited" && e.record.token_name.as_deref() == Some("noisy")
        })
        .count();
    assert_eq!(audited as i64, limited);
    t.stop().await;
}

// (Usability) One normal agent session: 100 tool calls and the protocol
// messages around them are never rate limited by the defaults.
#[tokio::test]
async fn a_normal_session_is_not_rate_limited() {
    let t = TestServer::start().await;
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    s.request("tools/list", json!({})).await;
    for i in 0..100 {
        let tool = ["describe_data", "cost_by_developer", "list_sessions"][i % 3];
        let r = s.call(tool, json!({})).await;
        assert_ne!(r["isError"], true, "call {i}: {r}");
    }
    t.stop().await;
}

// (10) A locked database: ingest answers 503 with Retry-After and stores
// nothing for it, loses nothing it acknowledged, and recovers; queries keep
// answering meanwhile (WAL readers are not blocked). A locked audit log
// fails tool calls closed (a JSON-RPC error, no data) and denials with 503.
#[tokio::test]
async fn locked_databases_refuse_cleanly_and_lose_nothing_acknowledged() {
    let t = start().await;
    let base = now_ns() - 60_000_000_000;
    let a = logs_body(vec![api_request(DEV_A, "lock-1", base, 1, 10, 1, 0.5)]);
    let b = logs_body(vec![api_request(
        DEV_A,
        "lock-1",
        base + 1_000_000_000,
        2,
        20,
        2,
        0.25,
    )]);
    let c = logs_body(vec![api_request(
        DEV_A,
        "lock-1",
        base + 2_000_000_000,
        3,
        40,
        4,
        0.125,
    )]);
    assert_eq!(post_logs(&t, a, None).await.status(), 200);
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;

    let locker = rusqlite::Connection::open(t.dir.path().join("tokentally.db")).unwrap();
    locker.busy_timeout(Duration::from_secs(10)).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let resp = post_logs(&t, b.clone(), None).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "2");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 14);
    // Queries still answer while the writer is locked out.
    let cost = s.call_ok("cost_by_developer", json!({})).await;
    assert_eq!(cost["totals"]["api_requests"], 1);
    // Readiness says the store cannot take writes, and why.
    let ready = t.http.get(t.otlp_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    for url in [
        t.otlp_url("/readyz"),
        t.mcp_url().replace("/mcp", "/readyz"),
    ] {
        let ready = t.http.get(&url).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{url}");
        assert_eq!(ready.text().await.unwrap(), "ready");
    }

    assert_eq!(
        count(&t.db(), "SELECT count(*) FROM events"),
        1,
        "the refused request was stored"
    );
    assert_eq!(post_logs(&t, c, None).await.status(), 200);
    assert_eq!(post_logs(&t, b, None).await.status(), 200);
    let db = t.db();
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 3);
    assert_eq!(count(&db, "SELECT sum(input_tokens) FROM events"), 70);

    // The audit log locked: a tool call fails closed, a denial gets 503.
    let locker = rusqlite::Connection::open(t.dir.path().join("audit.db")).unwrap();
    locker.busy_timeout(Duration::from_secs(10)).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let r = s.call_raw("cost_by_developer", json!({})).await;
    let answer = r.json.as_ref().unwrap();
    assert!(
        answer.get("result").is_none(),
        "data returned unaudited: {answer}"
    );
    assert_eq!(
        answer["error"]["message"],
        "the audit log is unavailable, so the call was not answered"
    );
    assert!(!r.text.contains("api_requests"));
    let denial = post(
        &t.http,
        &t.mcp_url(),
        Some("tt_nope"),
        None,
        &[],
        b"{}".to_vec(),
        None,
    )
    .await;
    assert_eq!(denial.status, 503);
    assert_eq!(denial.header("retry-after").as_deref(), Some("5"));
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    let cost = s.call_ok("cost_by_developer", json!({})).await;
    assert_eq!(cost["totals"]["api_requests"], 3);
    let report = AuditLog::open_read_only(t.dir.path())
        .unwrap()
        .verify()
        .unwrap();
    assert!(report.ok, "{report:?}");
    t.stop().await;
}

// A flood of guessed tokens from one address meets the per-address limit
// before any token lookup: 429 with Retry-After past the burst, even for a
// valid token from that address, while only a sample of those 429s is
// audited so the flood cannot become a stream of audit writes.
#[tokio::test]
async fn a_flood_of_guessed_tokens_meets_the_per_address_limit() {
    let t = TestServer::start_with(|c| {
        c.rate_limit.per_ip_per_minute = 60;
        c.rate_limit.per_ip_burst = 10;
        c.rate_limit.per_token_per_minute = 100_000;
        c.rate_limit.per_token_burst = 10_000;
    })
    .await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let (mut unauthorized, mut limited) = (0i64, 0i64);
    for i in 0..200 {
        let guess = format!("tt_{i:064x}");
        let r = post(
            &http,
            &t.mcp_url(),
            Some(&guess),
            None,
            &[],
            b"{}".to_vec(),
            None,
        )
        .await;
        match r.status {
            401 => unauthorized += 1,
            429 => {
                limited += 1;
                let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
                assert!((1..=60).contains(&wait), "Retry-After {wait}");
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    let elapsed = started.elapsed().as_secs() as i64;
    assert_eq!(unauthorized + limited, 200);
    // The burst of 10, plus one per second of refill.
    assert!(
        (10..=10 + elapsed + 1).contains(&unauthorized),
        "{unauthorized} guesses looked up in {elapsed}s"
    );
    // The address is over its limit: a valid token from it waits too.
    let r = post(
        &http,
        &t.mcp_url(),
        Some(&t.bootstrap_token("read")),
        None,
        &[],
        b"{}".to_vec(),
        None,
    )
    .await;
    assert_eq!(r.status, 429);

    let entries = audit_entries(t.dir.path());
    let looked_up = entries
        .iter()
        .filter(|e| e.record.outcome == "unauthenticated")
        .count() as i64;
    assert_eq!(looked_up, unauthorized);
    let sampled = entries
        .iter()
        .filter(|e| e.record.detail.as_deref() == Some("per-address rate limit"))
        .count() as i64;
    assert!(
        (1..=10 + elapsed / 6 + 1).contains(&sampled),
        "{sampled} of {} per-address 429s audited",
        limited + 1
    );
    assert!(entries.iter().all(|e| e.record.token_id.is_none()));
    t.stop().await;
}

// Hardening (7): a client sending its headers a byte at a time is closed
// after the header timeout, one address cannot hold more than its share of
// connections, and a normal client is still served meanwhile.
#[tokio::test]
async fn slow_headers_are_timed_out_and_connections_per_address_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestServer::start_with(|c| {
        c.connections.header_read_timeout_ms = 300;
        c.connections.max_per_ip = 4;
    })
    .await;
    for addr in [t.running().otlp_http_addr, t.running().mcp_addr] {
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"POST /v1/logs HTTP/1.1\r\nHo")
            .await
            .unwrap();
        // The server closes it; a bounded wait keeps the test from hanging.
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let _ = slow.write_all(b"s").await;
                match slow.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "{addr}: a slow-header client was never closed"
        );
    }
    // Four idle connections from this address fill its share; a fifth is
    // closed at once, without an answer.
    let addr = t.running().otlp_http_addr;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut fifth = tokio::net::TcpStream::connect(addr).await.unwrap();
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .ok();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), fifth.read_to_end(&mut answer)).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    drop(held);
    // Once they are gone (closed by the header timeout or by us), a normal
    // client is served.
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = t.http.get(t.otlp_url("/healthz")).send().await
            && r.status() == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "a normal client was not served");
    t.stop().await;
}

/// A request with both `Content-Length` and `Transfer-Encoding` (the shape
/// of request smuggling) is refused on every HTTP listener, and nothing of
/// it is stored.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = start().await;
    let body = br#"{"resourceLogs":[]}"#;
    let chunked = format!(
        "{:x}\r\n{}\r\n0\r\n\r\n",
        body.len(),
        String::from_utf8_lossy(body)
    );
    for (addr, path) in [
        (t.running().otlp_http_addr, "/v1/logs"),
        (t.running().mcp_addr, "/mcp"),
    ] {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n{chunked}"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        let head = String::from_utf8_lossy(&buf);
        assert!(head.starts_with("HTTP/1.1 400"), "{addr}{path}: {head}");
    }
}
