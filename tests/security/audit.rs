//! The audit log: tampering reported by `verify`, the audit CLI, and the
//! audit tools through the official MCP client.

use super::*;

/// Copies the audit files of `from` into a fresh dir.
fn copy_audit(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["audit.db", "audit.db-wal"] {
        if from.join(name).exists() {
            std::fs::copy(from.join(name), dir.path().join(name)).unwrap();
        }
    }
    dir
}

/// Tampers with a copy of the audit log the way someone with file access
/// would (triggers dropped first), then runs `verify` in-process and through
/// the CLI. Returns the in-process problems and the CLI's stdout.
fn tamper_and_verify(from: &Path, sql: &str) -> (Vec<(u64, ProblemKind)>, String) {
    let dir = copy_audit(from);
    {
        let raw = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
        raw.execute_batch(
            "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;",
        )
        .unwrap();
        raw.execute_batch(sql).unwrap();
    }
    let report = AuditLog::open_read_only(dir.path())
        .unwrap()
        .verify()
        .unwrap();
    assert!(!report.ok, "{sql}: not detected");
    let out = cli(dir.path(), &["audit", "verify"]);
    assert!(!out.status.success(), "{sql}: CLI exited 0");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the audit log has been tampered with"),
        "{stderr}"
    );
    // Verifying changed nothing: the dropped triggers are still gone.
    let raw = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
    assert_eq!(
        count(
            &raw,
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
        ),
        0
    );
    (
        report.problems.iter().map(|p| (p.seq, p.kind)).collect(),
        stdout,
    )
}

// (9) Editing, deleting or reordering audit rows is reported with the
// sequence number, in-process and by `tokentally audit verify` (non-zero
// exit). Calls to the audit tools are audited too.
#[tokio::test]
async fn audit_tampering_is_reported_where_it_happened() {
    let mut t = start().await;
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    for _ in 0..4 {
        s.call_ok("describe_data", json!({})).await;
    }
    let _ = post(
        &t.http,
        &t.mcp_url(),
        Some("tt_wrong"),
        None,
        &[],
        b"{}".to_vec(),
        None,
    )
    .await;
    let mut auditor = Session::open(&t.mcp_url(), &t.bootstrap_token("audit")).await;
    let log = auditor.call_ok("audit_log", json!({"token": "read"})).await;
    assert_eq!(log["rows"].as_array().unwrap().len(), 4, "{log}");
    assert!(
        log["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["tool"] == "describe_data" && r["outcome"] == "ok")
    );
    // Each record names the caller as the request showed it.
    let first = &log["rows"][0];
    assert_eq!(first["scope"], "read");
    assert_eq!(first["method"], "tools/call");
    assert_eq!(
        first["peer"].as_str().unwrap().split(':').next(),
        Some("127.0.0.1")
    );
    assert_eq!(first["user_agent"], "tokentally-security-test/1.0");
    assert_eq!(first["client_name"], "security-test");
    assert_eq!(first["client_version"], "1.0");
    assert_eq!(first["arguments"], json!({}));
    assert_eq!(first["rows"], 0, "an empty store has no names to describe");
    assert!(first["duration_ms"].is_u64() && first["bytes"].as_u64().unwrap() > 100);
    let summary = auditor
        .call_ok("audit_summary", json!({"since": "1h"}))
        .await;
    assert_eq!(summary["total"], 6, "{summary}");
    assert_eq!(summary["denied"], 1);
    assert_eq!(
        summary["by_tool"][0],
        json!({"tool": "describe_data", "calls": 4, "not_ok": 0})
    );
    stop_keeping_files(&mut t).await;
    let dir = t.dir.path();

    let report = AuditLog::open_read_only(dir).unwrap().verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 7);
    let tools: Vec<Option<String>> = audit_entries(dir)
        .into_iter()
        .map(|e| e.record.tool)
        .collect();
    assert_eq!(tools[5].as_deref(), Some("audit_log"));
    assert_eq!(tools[6].as_deref(), Some("audit_summary"));
    let out = cli(dir, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"ok\": true"));

    // Edited: a denial rewritten as a success.
    let (problems, stdout) =
        tamper_and_verify(dir, "UPDATE audit_log SET outcome = 'ok' WHERE seq = 5;");
    assert_eq!(problems, vec![(5, ProblemKind::Edited)]);
    assert!(
        stdout.contains("\"seq\": 5") && stdout.contains("\"kind\": \"edited\""),
        "{stdout}"
    );
    // Deleted from the middle.
    let (problems, stdout) = tamper_and_verify(dir, "DELETE FROM audit_log WHERE seq = 3;");
    assert_eq!(problems[0], (3, ProblemKind::Missing));
    assert_eq!(problems[1], (4, ProblemKind::ChainBroken));
    assert!(stdout.contains("records 3..3 are missing"), "{stdout}");
    // The newest record deleted.
    let (problems, stdout) = tamper_and_verify(dir, "DELETE FROM audit_log WHERE seq = 7;");
    assert_eq!(problems, vec![(7, ProblemKind::HeadMismatch)]);
    assert!(stdout.contains("\"kind\": \"head_mismatch\""), "{stdout}");
    // Two records swapped.
    let (problems, _) = tamper_and_verify(
        dir,
        "UPDATE audit_log SET seq = -1 WHERE seq = 2;
         UPDATE audit_log SET seq = 2 WHERE seq = 6;
         UPDATE audit_log SET seq = 6 WHERE seq = -1;",
    );
    assert_eq!(problems[0].0, 2);
    assert!(problems.contains(&(2, ProblemKind::Edited)), "{problems:?}");
    assert!(problems.contains(&(6, ProblemKind::Edited)), "{problems:?}");
    // The original is untouched.
    assert!(AuditLog::open_read_only(dir).unwrap().verify().unwrap().ok);
}

// `audit tail` and `audit export --format jsonl`: one JSON object per
// record, chained by hash, arguments redacted, no secrets.
#[tokio::test]
async fn audit_cli_tails_and_exports_the_chain() {
    let t = start().await;
    let dir = t.dir.path();
    let read = t.bootstrap_token("read");
    let mut s = Session::open(&t.mcp_url(), &read).await;
    s.call_ok(
        "search_events",
        json!({"since": "1d", "error_contains": "secret words"}),
    )
    .await;
    s.call_ok("describe_data", json!({})).await;
    let _ = post(
        &t.http,
        &t.mcp_url(),
        Some("tt_not_a_real_one"),
        None,
        &[],
        b"{}".to_vec(),
        None,
    )
    .await;

    let out = cli(dir, &["audit", "tail", "-n", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["seq"].as_u64(), lines[1]["seq"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(lines[0]["tool"], "describe_data");
    assert_eq!(lines[1]["outcome"], "unauthenticated");
    assert_eq!(lines[1]["detail"], "unknown token");
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);

    let out = cli(dir, &["audit", "export", "--format", "jsonl"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let all: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["prev_hash"], "0".repeat(64));
    assert_eq!(all[1]["prev_hash"], all[0]["hash"]);
    assert_eq!(all[2]["prev_hash"], all[1]["hash"]);
    assert_eq!(all[0]["tool"], "search_events");
    assert_eq!(all[0]["token_name"], "read");
    assert_eq!(all[0]["arguments"]["error_contains"], "[redacted]");
    assert_eq!(all[0]["arguments"]["since"], "1d");
    assert!(
        !text.contains(&read)
            && !text.contains("secret words")
            && !text.contains("tt_not_a_real_one")
    );
    let later = cli(
        dir,
        &[
            "audit",
            "export",
            "--format",
            "jsonl",
            "--since",
            "2100-01-01T00:00:00Z",
        ],
    );
    assert!(later.status.success());
    assert!(later.stdout.is_empty());
    // A directory without an audit log is an error, not an empty "ok" log.
    let empty = tempfile::tempdir().unwrap();
    for args in [&["audit", "verify"][..], &["audit", "tail"][..]] {
        let out = cli(empty.path(), args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cannot open the audit log in"), "{stderr}");
    }
    assert!(!empty.path().join("audit.db").exists());
    assert!(
        !cli(dir, &["audit", "export", "--format", "csv"])
            .status
            .success()
    );
    t.stop().await;
}

// The audit tools through the official MCP TypeScript SDK client, which
// checks structuredContent against each tool's outputSchema: listed with
// readOnlyHint and documented arguments for audit tokens only, answering
// what the log holds.
#[tokio::test]
async fn official_client_sees_and_calls_the_audit_tools_only_with_audit_scope() {
    let t = start().await;
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    s.call_ok("describe_data", json!({})).await;
    s.call_ok("list_sessions", json!({})).await;
    let calls = json!([
        {"name": "audit_log", "arguments": {"limit": 2, "token": "read"}},
        {"name": "audit_summary", "arguments": {"since": "1h"}},
        {"name": "audit_log", "arguments": {"outcome": "exploded"}},
    ]);
    let out = common::run_node(
        vec![
            "mcp_client.mjs".into(),
            t.mcp_url(),
            t.bootstrap_token("audit"),
            calls.to_string(),
        ],
        vec![],
    )
    .await;
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let tools = v["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 11);
    for name in ["audit_log", "audit_summary"] {
        let tool = tools.iter().find(|x| x["name"] == name).unwrap();
        assert_eq!(tool["readOnlyHint"], true);
        assert_eq!(tool["hasOutputSchema"], true);
        assert_eq!(tool["described"], true);
    }
    let r = &v["results"];
    assert_eq!(r[0]["isError"], false, "{v}");
    let rows = r[0]["structuredContent"]["rows"].as_array().unwrap();
    let tools_called: Vec<&str> = rows.iter().map(|x| x["tool"].as_str().unwrap()).collect();
    assert_eq!(tools_called, ["list_sessions", "describe_data"]);
    assert!(
        rows.iter()
            .all(|x| x["token_name"] == "read" && x["outcome"] == "ok")
    );
    assert_eq!(r[1]["isError"], false, "{v}");
    assert_eq!(r[1]["structuredContent"]["total"], 3);
    assert_eq!(
        r[1]["structuredContent"]["rows"],
        json!([
            {"token_id": 2, "token_name": "read", "calls": 2, "denied": 0},
            {"token_id": 1, "token_name": "admin", "calls": 1, "denied": 0},
        ])
    );
    assert_eq!(r[2]["isError"], true);
    assert!(
        r[2]["text"]
            .as_str()
            .unwrap()
            .starts_with("unknown outcome \"exploded\"")
    );

    let calls = json!([{"name": "audit_summary", "arguments": {}}]);
    let out = common::run_node(
        vec![
            "mcp_client.mjs".into(),
            t.mcp_url(),
            t.bootstrap_token("read"),
            calls.to_string(),
        ],
        vec![],
    )
    .await;
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["tools"].as_array().unwrap().len(), 9);
    assert_eq!(v["results"][0]["isError"], true, "{v}");
    assert_eq!(
        v["results"][0]["text"],
        "audit_summary needs a token with scope audit; this token's scope is read"
    );
    t.stop().await;
}
