//! Security behaviour against a real server (issue 4, "Bad input and attacks
//! that must be tested"): authentication and scopes, developer-bound tokens,
//! DNS rebinding, hostile tool arguments and bodies, query budgets, rate
//! limits, untrusted content, audit tampering, locked databases, and the
//! token and audit CLI. Every case asserts the concrete answer.
//!
//! This file holds the shared helpers (server start, OTLP/JSON builders,
//! audit file access, the CLI); the cases are grouped by theme under
//! `tests/security/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[path = "security/audit.rs"]
mod audit;
#[path = "security/auth.rs"]
mod auth;
#[path = "security/data.rs"]
mod data;
#[path = "security/limits.rs"]
mod limits;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::mcp::{Session, post, text_of};
use common::{TestServer, count};
use serde_json::{Value, json};
use tokentally::audit::{AuditLog, AuditReader, ProblemKind};
use tokentally::auth::{Scope, TokenStore};
use tokentally::config::{Config, IngestAuth};

const DEV_A: &str = "dev-a@example.com";
const DEV_B: &str = "dev-b@example.com";

/// Rate limits high enough that only the rate-limit test ever meets them.
fn generous_limits(c: &mut Config) {
    c.rate_limit.per_token_per_minute = 100_000;
    c.rate_limit.per_token_burst = 10_000;
    c.rate_limit.per_ip_per_minute = 100_000;
    c.rate_limit.per_ip_burst = 10_000;
}

async fn start() -> TestServer {
    TestServer::start_with(generous_limits).await
}

/// A token created in the server's data dir (the server reads the table on a
/// cache miss, so it is usable at once).
fn create_token(t: &TestServer, name: &str, scope: Scope, devs: &[&str]) -> String {
    let devs: Vec<String> = devs.iter().map(|d| d.to_string()).collect();
    TokenStore::open(t.dir.path())
        .unwrap()
        .create(name, scope, &devs, None)
        .unwrap()
        .1
}

fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

fn attr(key: &str, v: Value) -> Value {
    let value = match v {
        Value::String(s) => json!({"stringValue": s}),
        Value::Number(n) if n.is_i64() => json!({"intValue": n}),
        Value::Number(n) => json!({"doubleValue": n}),
        Value::Bool(b) => json!({"boolValue": b}),
        other => panic!("unsupported attribute {other}"),
    };
    json!({"key": key, "value": value})
}

/// One Claude Code log record (event) as OTLP/JSON.
fn event(
    name: &str,
    dev: &str,
    session: &str,
    t_ns: i64,
    seq: i64,
    extra: &[(&str, Value)],
) -> Value {
    let mut attrs = vec![
        attr("event.name", json!(name)),
        attr("user.email", json!(dev)),
        attr("session.id", json!(session)),
        attr("event.sequence", json!(seq)),
    ];
    attrs.extend(extra.iter().map(|(k, v)| attr(k, v.clone())));
    json!({
        "timeUnixNano": t_ns.to_string(),
        "body": {"stringValue": format!("claude_code.{name}")},
        "attributes": attrs,
    })
}

/// An `api_request` event with known tokens and cost.
fn api_request(
    dev: &str,
    session: &str,
    t_ns: i64,
    seq: i64,
    input: i64,
    output: i64,
    cost: f64,
) -> Value {
    event(
        "api_request",
        dev,
        session,
        t_ns,
        seq,
        &[
            ("model", json!("claude-sonnet-4-5")),
            ("input_tokens", json!(input)),
            ("output_tokens", json!(output)),
            ("cost_usd", json!(cost)),
            ("duration_ms", json!(1200)),
        ],
    )
}

fn logs_body(records: Vec<Value>) -> Vec<u8> {
    json!({"resourceLogs": [{
        "resource": {"attributes": [attr("service.name", json!("claude-code"))]},
        "scopeLogs": [{
            "scope": {"name": "com.anthropic.claude_code.events", "version": "2.1.330"},
            "logRecords": records
        }]
    }]})
    .to_string()
    .into_bytes()
}

async fn post_logs(t: &TestServer, body: Vec<u8>, token: Option<&str>) -> reqwest::Response {
    let mut req = t
        .http
        .post(t.otlp_url("/v1/logs"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(tok) = token {
        req = req.header("authorization", format!("Bearer {tok}"));
    }
    req.send().await.unwrap()
}

/// Two developers: dev-a has 2 requests (300 in, 30 out, $0.75) in session
/// sa-1; dev-b has 3 requests (3000 in, 300 out, $3.00) in session sb-1.
async fn ingest_two_developers(t: &TestServer) {
    let base = now_ns() - 3_600_000_000_000;
    let records = vec![
        api_request(DEV_A, "sa-1", base, 1, 100, 10, 0.5),
        api_request(DEV_A, "sa-1", base + 1_000_000_000, 2, 200, 20, 0.25),
        api_request(DEV_B, "sb-1", base + 2_000_000_000, 1, 1000, 100, 1.0),
        api_request(DEV_B, "sb-1", base + 3_000_000_000, 2, 1000, 100, 1.0),
        api_request(DEV_B, "sb-1", base + 4_000_000_000, 3, 1000, 100, 1.0),
    ];
    let resp = post_logs(t, logs_body(records), None).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
}

/// Every audit record, oldest first (a second, read-only connection).
fn audit_entries(dir: &Path) -> Vec<tokentally::audit::AuditEntry> {
    AuditLog::open_read_only(dir)
        .unwrap()
        .tail(100_000)
        .unwrap()
}

fn rpc_body(id: i64, method: &str, params: Value) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        .to_string()
        .into_bytes()
}

/// Stops the server but keeps its data dir for inspection.
async fn stop_keeping_files(t: &mut TestServer) {
    if let Some(s) = t.server.take() {
        s.shutdown().await.unwrap();
    }
}

/// The bytes of `audit.db` and its WAL/SHM files, if present.
fn audit_file_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            bytes.extend(b);
        }
    }
    assert!(bytes.len() > 4096, "audit.db is missing");
    bytes
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    // `--data-dir` belongs to the command group (`token`, `audit`).
    Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .arg(args[0])
        .arg("--data-dir")
        .arg(data_dir)
        .args(&args[1..])
        .output()
        .unwrap()
}
