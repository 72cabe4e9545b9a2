//! tokentally nodes in front of a real ClickHouse server (started by this
//! test binary on loopback ports of its own, stopped by PID): several nodes
//! on one database answer alike and count a retried export once, and a
//! server that goes away is said clearly and recovered from without help.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/clickhouse_server.rs"]
mod clickhouse_server;
mod common;

use clickhouse_server::ClickHouseServer;
use common::mcp::{Session, text_of};
use common::{CAPTURES, TestServer, cli, fixture, serve_binary, sigkill_during_ingest};
use serde_json::{Value, json};

const ALL: &str = "2020-01-01";

/// A server of this test's own (started off the async threads).
async fn start_clickhouse() -> ClickHouseServer {
    tokio::task::spawn_blocking(|| ClickHouseServer::start(""))
        .await
        .unwrap()
}

async fn node(url: &str) -> TestServer {
    node_with(url, |_| {}).await
}

/// A node on the store at `url`, `[store]` then changed by `more`.
async fn node_with(
    url: &str,
    more: impl FnOnce(&mut tokentally::config::StoreConfig) + Send + 'static,
) -> TestServer {
    let url = url.to_string();
    TestServer::start_with(move |c| {
        c.store.url = Some(url);
        more(&mut c.store);
    })
    .await
}

/// The database a store URL names.
fn database_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

/// `database` on `ch` as `user` with `password`.
fn user_url(ch: &ClickHouseServer, user: &str, password: &str, database: &str) -> String {
    format!(
        "clickhouse://{user}:{password}@127.0.0.1:{}/{database}",
        ch.http_port
    )
}

/// The answers compared across nodes and engines.
async fn answers(t: &TestServer, token: &str) -> Vec<Value> {
    let mut s = Session::open(&t.mcp_url(), token).await;
    let mut out = Vec::new();
    for (tool, args) in [
        ("cost_by_developer", json!({"since": ALL})),
        ("model_breakdown", json!({"since": ALL})),
        ("tool_latency", json!({"since": ALL})),
        (
            "usage_over_time",
            json!({"since": ALL, "bucket": "day", "split_by": "model"}),
        ),
    ] {
        let mut r = s.call_ok(tool, args).await;
        // The reply's own clock and paging are not part of the answer.
        if let Some(o) = r.as_object_mut() {
            o.remove("generated_at");
            o.remove("range");
        }
        out.push(r);
    }
    out
}

#[tokio::test]
async fn nodes_on_one_database_answer_alike_and_count_retries_once() {
    let ch = start_clickhouse().await;
    let url = ch.fresh_database_url();
    let a = node(&url).await;
    let b = node(&url).await;
    // Half the captures to each node; then every capture again to the
    // other node, as an exporter retrying through a load balancer would.
    for (i, f) in CAPTURES.iter().enumerate() {
        let (first, retry) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        for t in [first, retry] {
            let resp = t.post_fixture(f).await;
            assert_eq!(resp.status(), 200, "{f}: {:?}", resp.text().await);
        }
    }
    // The embedded store given each capture once is the reference.
    let reference = TestServer::start().await;
    reference.replay_captures().await;
    let want = answers(&reference, &reference.bootstrap_token("read")).await;
    assert!(
        want[0]["totals"]["api_requests"].as_i64().unwrap() > 0,
        "{}",
        want[0]
    );
    // The tokens are the cluster's: node B, started on a database that
    // had them, made none, and takes node A's.
    assert!(b.running().bootstrap_tokens.is_empty());
    let read = a.bootstrap_token("read");
    for (name, t) in [("node A", &a), ("node B", &b)] {
        let got = answers(t, &read).await;
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(
                serde_json::to_string(w).unwrap(),
                serde_json::to_string(g).unwrap(),
                "{name}"
            );
        }
    }
    // The CLI asks the same database (`--store`), through the same tools.
    let out = cli(
        a.dir.path(),
        &[
            "--store",
            &url,
            "query",
            "cost_by_developer",
            &json!({"since": ALL}).to_string(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["totals"], want[0]["totals"], "{answer}");

    // The audit log is the cluster's too: each node records the calls it
    // answered in a chain of its own, and any node reads every chain.
    let mut s = Session::open(&b.mcp_url(), &a.bootstrap_token("audit")).await;
    let log = s
        .call_ok(
            "audit_log",
            json!({"since": ALL, "tool": "cost_by_developer", "limit": 50}),
        )
        .await;
    let rows = log["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{log}");
    let nodes: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["node"].as_str().unwrap()).collect();
    assert_eq!(nodes.len(), 2, "one record from each node: {log}");
    let summary = s.call_ok("audit_summary", json!({"since": ALL})).await;
    // Four tools on each node, and the audit_log call just answered.
    assert_eq!(summary["total"], 9, "{summary}");
    let out = cli(a.dir.path(), &["--store", &url, "audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        report["records"], 10,
        "and the audit_summary call: {report}"
    );
    let chains = report["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 2, "{report}");
    for c in chains {
        assert_eq!(c["records"], c["head_seq"], "{report}");
    }
    // Node A's newest record deleted: verify names its chain.
    let database = database_of(&url);
    let a_node = rows
        .iter()
        .map(|r| r["node"].as_str().unwrap())
        .find(|n| chains.iter().any(|c| c["node"] == *n && c["records"] == 4))
        .unwrap()
        .to_string();
    ch.sql(&format!(
        "ALTER TABLE {database}.audit_log DELETE WHERE node = '{a_node}' AND seq = 4"
    ));
    let mut report = Value::Null;
    for _ in 0..100 {
        let out = cli(a.dir.path(), &["--store", &url, "audit", "verify"]);
        report = serde_json::from_slice(&out.stdout).unwrap();
        if report["ok"] == false {
            assert!(!out.status.success());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(report["problems"][0]["node"], a_node.as_str(), "{report}");
    assert_eq!(report["problems"][0]["kind"], "head_mismatch", "{report}");
    a.stop().await;
    b.stop().await;
    reference.stop().await;
}

#[tokio::test]
async fn a_token_made_anywhere_works_on_every_node_and_a_revocation_reaches_all() {
    let ch = start_clickhouse().await;
    let url = ch.fresh_database_url();
    let a = node(&url).await;
    let b = node(&url).await;
    // Made by the CLI against the cluster, as an operator would.
    let out = cli(
        a.dir.path(),
        &[
            "--store",
            &url,
            "token",
            "create",
            "--name",
            "team-lead",
            "--scope",
            "read",
            "--developer",
            "ann@example.com",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    for t in [&a, &b] {
        let mut s = Session::open(&t.mcp_url(), &secret).await;
        let r = s.call_ok("cost_by_developer", json!({"since": ALL})).await;
        // Bound to a developer with no data yet: an answer, empty, saying so.
        assert_eq!(r["rows"], json!([]), "{r}");
        assert_eq!(r["totals"]["api_requests"], 0, "{r}");
        assert!(
            r["notes"][0]
                .as_str()
                .unwrap()
                .starts_with("nothing is stored that this token may see yet"),
            "{r}"
        );
    }
    // A name is one token across the cluster.
    let again = cli(
        b.dir.path(),
        &[
            "--store",
            &url,
            "token",
            "create",
            "--name",
            "team-lead",
            "--scope",
            "audit",
        ],
    );
    assert!(!again.status.success(), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{again:?}"
    );
    let listed = cli(b.dir.path(), &["--store", &url, "token", "list"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    let names: Vec<String> = listed
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["admin", "read", "team-lead"], "{listed}");
    assert!(!listed.contains(&secret[3..]));
    // Revoked through node B's side (its data dir, the same cluster): both
    // nodes refuse it once their caches (5 s) have expired.
    let out = cli(
        b.dir.path(),
        &["--store", &url, "token", "revoke", "team-lead"],
    );
    assert!(out.status.success(), "{out:?}");
    tokio::time::sleep(std::time::Duration::from_millis(5_500)).await;
    for t in [&a, &b] {
        let refused = Session::try_open(&t.mcp_url(), &secret)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.status, 401, "{}", refused.text);
    }
    // Before any node has started on a database, the CLI sets it up.
    let fresh = ch.fresh_database_url();
    let out = cli(
        a.dir.path(),
        &[
            "--store", &fresh, "token", "create", "--name", "first", "--scope", "read",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_clickhouse_that_goes_away_is_said_clearly_and_recovered_from() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let mut ch = tokio::task::spawn_blocking(move || ClickHouseServer::start_in(&path, ""))
        .await
        .unwrap();
    let (http_port, tcp_port) = (ch.http_port, ch.tcp_port);
    let t = node(&ch.fresh_database_url()).await;
    let logs = "claude-code/v330_t1_json_text/otlp/002_v1_logs.json";
    assert_eq!(t.post_fixture(logs).await.status(), 200);
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    let before = s.call_ok("cost_by_developer", json!({"since": ALL})).await["totals"].clone();
    // The capture's own api_request records, read from its JSON.
    let capture: Value = serde_json::from_slice(&fixture(logs)).unwrap();
    let records = capture["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array()
        .unwrap();
    let requests = records
        .iter()
        .filter(|r| r["body"]["stringValue"] == "claude_code.api_request")
        .count();
    assert!(requests > 0);
    assert_eq!(before["api_requests"], requests as i64, "{before}");

    let ch = tokio::task::spawn_blocking(move || {
        ch.stop();
        ch
    })
    .await
    .unwrap();
    // Not ready, for a load balancer to route around this node.
    let ready = t.http.get(t.otlp_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    // OTLP/HTTP: 503 with Retry-After, so exporters keep the batch.
    let metrics = "claude-code/v330_t1_json_text/otlp/003_v1_metrics.json";
    let resp = t.post_fixture(metrics).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    // OTLP/gRPC: UNAVAILABLE (retryable).
    let req =
        tokentally::otlp::decode_logs(&fixture(logs), tokentally::otlp::Encoding::Json).unwrap();
    let err = LogsServiceClient::new(t.grpc_channel().await)
        .export(req)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    // A tool: a clear error, not a wrong answer. The tokens are in the
    // same ClickHouse: a token verified in the last 5 s (the cache) reaches
    // the tool, which says the store cannot be reached; any other is
    // neither accepted nor refused but answered 503 + Retry-After.
    let r = s.call_raw("cost_by_developer", json!({"since": ALL})).await;
    if r.status == 503 {
        assert!(r.header("retry-after").is_some(), "{}", r.text);
    } else {
        let r = r.result();
        assert_eq!(r["isError"], true, "{r}");
        assert!(text_of(r).contains("cannot be reached"), "{r}");
    }
    let unverified = Session::try_open(&t.mcp_url(), &t.bootstrap_token("audit"))
        .await
        .err()
        .unwrap();
    assert_eq!(unverified.status, 503, "{}", unverified.text);
    assert!(unverified.header("retry-after").is_some());

    // The same server back (same data, same ports): the node carries on.
    drop(ch);
    let path = dir.path().to_path_buf();
    let _ch = tokio::task::spawn_blocking(move || {
        ClickHouseServer::start_with_ports(&path, "", http_port, tcp_port)
    })
    .await
    .unwrap();
    let ready = t.http.get(t.otlp_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(t.post_fixture(metrics).await.status(), 200);
    let after = s.call_ok("cost_by_developer", json!({"since": ALL})).await["totals"].clone();
    // Nothing acknowledged was lost; the metrics of a session with events
    // add nothing (never both sources for one session).
    assert_eq!(after, before);
    t.stop().await;
}

#[tokio::test]
async fn store_init_creates_the_schema_once_and_schema_prints_it() {
    let ch = start_clickhouse().await;
    let url = ch.fresh_database_url();
    let database = database_of(&url);
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = cli(dir.path(), &["store", "init", &url]);
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("schema version 3"));
    }
    let tables = ch.sql(&format!(
        "SELECT name FROM system.tables WHERE database = '{database}' ORDER BY name"
    ));
    assert_eq!(
        tables,
        "audit_heads\naudit_heads_mv\naudit_log\nevents\nmetric_points\nschema_version\nspans\ntokens\n"
    );
    assert_eq!(
        ch.sql(&format!("SELECT count() FROM {database}.schema_version")),
        "1\n"
    );
    let out = cli(dir.path(), &["store", "schema", "tally"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CREATE TABLE IF NOT EXISTS tally.events ("),
        "{text}"
    );
    // An unreachable server is named, the password is not.
    let out = cli(
        dir.path(),
        &["store", "init", "clickhouse://u:hunter2@127.0.0.1:1/db"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("http://127.0.0.1:1") && !err.contains("hunter2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_a_node_during_ingest_loses_no_acknowledged_record() {
    let ch = start_clickhouse().await;
    let url = ch.fresh_database_url();
    let database = database_of(&url);
    let dir = tempfile::tempdir().unwrap();
    let mut node = serve_binary(dir.path(), &["--store", &url]);
    let acked = sigkill_during_ingest(&mut node, 6, 400, 100, 5_000).await;
    let stored: i64 = ch
        .sql(&format!("SELECT count() FROM {database}.events FINAL"))
        .trim()
        .parse()
        .unwrap();
    assert!(acked >= 5_000);
    assert!(stored >= acked, "stored {stored} < acknowledged {acked}");
}

#[tokio::test]
async fn a_read_only_user_on_the_query_path_answers_and_cannot_write() {
    let ch = start_clickhouse().await;
    let url = ch.fresh_database_url();
    let database = database_of(&url);
    let read_url = user_url(&ch, "reader", "reader-secret", &database);
    let t = node_with(&url, |s| s.read_url = Some(read_url)).await;
    t.replay_captures().await;
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    let answer = s.call_ok("cost_by_developer", json!({"since": ALL})).await;
    let reference = TestServer::start().await;
    reference.replay_captures().await;
    let mut r = Session::open(&reference.mcp_url(), &reference.bootstrap_token("read")).await;
    let want = r.call_ok("cost_by_developer", json!({"since": ALL})).await;
    assert_eq!(answer["totals"], want["totals"], "{answer}");
    reference.stop().await;
    // The same user, asked to write directly: refused by ClickHouse itself.
    let resp = t
        .http
        .post(format!(
            "{}/?user=reader&password=reader-secret",
            ch.http_url
        ))
        .body(format!(
            "INSERT INTO {database}.schema_version (version, applied_ns) VALUES (99, 0)"
        ))
        .send()
        .await
        .unwrap();
    assert_ne!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("Code: 164"), "{text}");
    t.stop().await;
    // The query path signs in as the read user: with its password wrong,
    // ingest still works and the tools cannot read.
    let url = ch.fresh_database_url();
    let bad = user_url(&ch, "reader", "wrong", &database_of(&url));
    let t = node_with(&url, |s| s.read_url = Some(bad)).await;
    t.replay_captures().await;
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    let r = s.call("cost_by_developer", json!({"since": ALL})).await;
    assert_eq!(r["isError"], true, "{r}");
    t.stop().await;
}

#[tokio::test]
async fn the_ingest_path_signs_in_as_its_own_user() {
    let ch = start_clickhouse().await;
    // Its password wrong: exports are kept by the exporter (503), the
    // node is not ready, and the rest of the node (tokens, tools) works
    // as the owner's and reader's users.
    let url = ch.fresh_database_url();
    let database = database_of(&url);
    let bad = user_url(&ch, "ingester", "wrong", &database);
    let t = node_with(&url, |s| s.ingest_url = Some(bad)).await;
    let resp = t.post_fixture(CAPTURES[0]).await;
    assert_eq!(resp.status(), 503, "{:?}", resp.text().await);
    let ready = t.http.get(t.otlp_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    let answer = s.call_ok("cost_by_developer", json!({"since": ALL})).await;
    assert_eq!(answer["totals"]["api_requests"], 0, "{answer}");
    let stored = |table: &str| -> i64 {
        ch.sql(&format!("SELECT count() FROM {database}.{table}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(stored("events") + stored("metric_points"), 0);
    t.stop().await;
    // With its password right, the same node writes the captures through it
    // and answers as a node writing as the owner.
    let url = ch.fresh_database_url();
    let good = user_url(&ch, "ingester", "ingester-secret", &database_of(&url));
    let t = node_with(&url, |s| s.ingest_url = Some(good)).await;
    t.replay_captures().await;
    let ready = t.http.get(t.otlp_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let reference = TestServer::start().await;
    reference.replay_captures().await;
    let token = t.bootstrap_token("read");
    let want = answers(&reference, &reference.bootstrap_token("read")).await;
    assert_eq!(answers(&t, &token).await, want);
    reference.stop().await;
    t.stop().await;
}

/// `tokentally doctor --json` against the `[store]` of `store_toml`: the
/// checks named `what`, as (level, detail).
fn doctor(dir: &std::path::Path, store_toml: &str, what: &str) -> Vec<(String, String)> {
    let config = dir.join("doctor.toml");
    std::fs::write(&config, format!("[store]\n{store_toml}")).unwrap();
    let out = cli(
        dir,
        &["--config", config.to_str().unwrap(), "doctor", "--json"],
    );
    let checks: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["what"] == what)
        .map(|c| {
            (
                c["level"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn doctor_checks_a_clickhouse_store_and_its_users() {
    let ch = start_clickhouse().await;
    let dir = tempfile::tempdir().unwrap();
    // A database no node has set up yet.
    let empty = ch.fresh_database_url();
    let store = doctor(dir.path(), &format!("url = {empty:?}"), "store");
    assert_eq!(store.len(), 1, "{store:?}");
    assert_eq!(store[0].0, "fail");
    assert!(store[0].1.contains("no tokentally tables"), "{store:?}");
    // Set up and fed by a node.
    let url = ch.fresh_database_url();
    let database = database_of(&url);
    let store_url = url.clone();
    let t = TestServer::start_with(move |c| {
        c.store.url = Some(store_url);
        c.metrics = tokentally::config::MetricsAccess::Token;
    })
    .await;
    t.replay_captures().await;
    // Its ingest queue is in /metrics, as the embedded writer's is.
    let metrics = t
        .http
        .get(format!("http://{}/metrics", t.running().mcp_addr))
        .bearer_auth(t.bootstrap_token("audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\ntokentally_store_queue_requests 0\n"),
        "{metrics}"
    );
    // A node on ClickHouse keeps nothing of the store in its data directory.
    let kept: Vec<_> = std::fs::read_dir(t.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("tokentally.db") || n.starts_with("audit.db"))
        .collect();
    assert!(kept.is_empty(), "{kept:?}");
    t.stop().await;
    let reader = user_url(&ch, "reader", "reader-secret", &database);
    let ingester = user_url(&ch, "ingester", "ingester-secret", &database);
    let good = format!("url = {url:?}\nread_url = {reader:?}\ningest_url = {ingester:?}");
    let store = doctor(dir.path(), &good, "store");
    assert_eq!(store[0].0, "ok", "{store:?}");
    assert!(store[0].1.contains("schema version 3"), "{store:?}");
    assert_eq!(doctor(dir.path(), &good, "ingest user")[0].0, "ok");
    let query = doctor(dir.path(), &good, "query user");
    assert_eq!(query[0], ("ok".into(), "read-only at the server".into()));
    // The data and the shared tokens, read from ClickHouse.
    let agents = doctor(dir.path(), &good, "agents");
    assert_eq!(agents[0].0, "ok", "{agents:?}");
    assert!(agents[0].1.contains("claude_code"), "{agents:?}");
    let tokens = doctor(dir.path(), &good, "tokens");
    assert!(
        tokens.contains(&("ok".into(), "2 active of 2".into())),
        "{tokens:?}"
    );
    // A query user the server lets write, and an ingest user who cannot sign in.
    let bad_ingest = user_url(&ch, "ingester", "wrong", &database);
    let bad = format!("url = {url:?}\nread_url = {ingester:?}\ningest_url = {bad_ingest:?}");
    let query = doctor(dir.path(), &bad, "query user");
    assert_eq!(query[0].0, "warn", "{query:?}");
    assert!(query[0].1.contains("readonly = 2"), "{query:?}");
    let ingest = doctor(dir.path(), &bad, "ingest user");
    assert_eq!(ingest[0].0, "fail", "{ingest:?}");
    // `query` and `report` on the ClickHouse store open nothing locally.
    let nowhere = dir.path().join("no-data-dir");
    let out = cli(
        &nowhere,
        &[
            "--store",
            &url,
            "query",
            "cost_by_developer",
            &json!({"since": ALL}).to_string(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        answer["totals"]["api_requests"].as_i64().unwrap() > 0,
        "{answer}"
    );
    let out = cli(&nowhere, &["--store", &url, "report", "--period", ALL]);
    assert!(out.status.success(), "{out:?}");
    assert!(!nowhere.exists(), "a data directory was created");
}

#[tokio::test]
async fn import_writes_files_into_clickhouse_and_a_second_import_counts_once() {
    let ch = start_clickhouse().await;
    let url = ch.fresh_database_url();
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no-data-dir");
    let files: Vec<String> = CAPTURES
        .iter()
        .map(|f| common::fixture_path(f).to_str().unwrap().to_string())
        .collect();
    let mut args = vec!["--store", url.as_str(), "import"];
    args.extend(files.iter().map(String::as_str));
    let reference = TestServer::start().await;
    reference.replay_captures().await;
    let mut r = Session::open(&reference.mcp_url(), &reference.bootstrap_token("read")).await;
    let want = r.call_ok("cost_by_developer", json!({"since": ALL})).await;
    reference.stop().await;
    for _ in 0..2 {
        let out = cli(&nowhere, &args);
        assert!(out.status.success(), "{out:?}");
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            said.contains(&format!("read {} file(s)", files.len())),
            "{said}"
        );
        assert!(said.contains("to ClickHouse"), "{said}");
        let out = cli(
            &nowhere,
            &[
                "--store",
                &url,
                "query",
                "cost_by_developer",
                &json!({"since": ALL}).to_string(),
            ],
        );
        assert!(out.status.success(), "{out:?}");
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["totals"], want["totals"], "{answer}");
    }
    assert!(!nowhere.exists(), "a data directory was created");
}

#[tokio::test]
async fn two_shards_answer_as_one_server_and_a_stopped_shard_loses_nothing() {
    use clickhouse_server::Cluster;
    let mut cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let database = format!("sharded_{}", std::process::id());
    // One node on each shard's server, both on the cluster's tables.
    let mut nodes = Vec::new();
    for shard in &cluster.shards {
        let url = format!(
            "clickhouse://default@127.0.0.1:{}/{database}",
            shard.http_port
        );
        nodes.push(node_with(&url, |s| s.cluster = Some(Cluster::NAME.into())).await);
    }
    let read = nodes[0].bootstrap_token("read");
    // All but the last three captures, each to one node and again to the
    // other (a retry through the load balancer).
    let (first, held) = CAPTURES.split_at(CAPTURES.len() - 3);
    for (i, f) in first.iter().enumerate() {
        for t in [&nodes[i % 2], &nodes[1 - i % 2]] {
            let resp = t.post_fixture(f).await;
            assert_eq!(resp.status(), 200, "{f}: {:?}", resp.text().await);
        }
    }
    // The records are spread over both shards' local tables.
    for shard in &cluster.shards {
        let n: i64 = shard
            .sql(&format!("SELECT count() FROM {database}.events_local"))
            .trim()
            .parse()
            .unwrap();
        assert!(n > 0, "a shard holds no events");
    }
    // One shard stopped: nothing is acknowledged that it cannot hold.
    let mut shard = cluster.shards.remove(1);
    let shard = tokio::task::spawn_blocking(move || {
        shard.stop();
        shard
    })
    .await
    .unwrap();
    cluster.shards.insert(1, shard);
    let resp = nodes[0].post_fixture(held[0]).await;
    assert_eq!(resp.status(), 503, "{:?}", resp.text().await);
    assert!(resp.headers().get("retry-after").is_some());
    let mut s = Session::open(&nodes[0].mcp_url(), &read).await;
    let r = s.call("cost_by_developer", json!({"since": ALL})).await;
    assert_eq!(r["isError"], true, "no answer from half the data: {r}");
    assert!(text_of(&r).contains("cannot be reached"), "{r}");
    // The shard back: the exporters' retries are stored, and both nodes
    // answer as the embedded store given every capture once.
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart(1);
        cluster
    })
    .await
    .unwrap();
    for f in held {
        let resp = nodes[0].post_fixture(f).await;
        assert_eq!(resp.status(), 200, "{f}: {:?}", resp.text().await);
    }
    let reference = TestServer::start().await;
    reference.replay_captures().await;
    let want = answers(&reference, &reference.bootstrap_token("read")).await;
    for (i, t) in nodes.iter().enumerate() {
        let got = answers(t, &read).await;
        for (w, g) in want.iter().zip(&got) {
            assert_eq!(
                serde_json::to_string(w).unwrap(),
                serde_json::to_string(g).unwrap(),
                "node on shard {}",
                i + 1
            );
        }
    }
    // Every event once, split over the shards: their local tables add up
    // to the embedded store's event count.
    let stored: i64 = reference
        .db()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    let on_shards: i64 = cluster
        .shards
        .iter()
        .map(|shard| {
            shard
                .sql(&format!(
                    "SELECT count() FROM {database}.events_local FINAL"
                ))
                .trim()
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(on_shards, stored);
    for t in nodes {
        t.stop().await;
    }
    reference.stop().await;
    drop(cluster);
}

/// One Claude Code `api_request` of `developer` at `time_ns` costing `cost`,
/// as an OTLP/JSON logs body.
fn api_request(developer: &str, time_ns: i64, cost: &str) -> Value {
    let s = |k: &str, v: &str| json!({"key": k, "value": {"stringValue": v}});
    json!({"resourceLogs": [{
        "resource": {"attributes": [s("service.name", "claude-code")]},
        "scopeLogs": [{
            "scope": {"name": "com.anthropic.claude_code.events", "version": "2.1.330"},
            "logRecords": [{
                "timeUnixNano": time_ns.to_string(),
                "body": {"stringValue": "claude_code.api_request"},
                "attributes": [
                    s("event.name", "api_request"),
                    s("session.id", &format!("s-{time_ns}")),
                    s("user.email", developer),
                    s("model", "claude-sonnet-4-6"),
                    s("cost_usd", cost),
                ],
            }],
        }],
    }]})
}

#[tokio::test]
async fn retention_drops_whole_months_older_than_the_period() {
    let ch = start_clickhouse().await;
    let url = ch.fresh_database_url();
    let database = database_of(&url);
    let t = node(&url).await;
    let now = jiff::Timestamp::now();
    let ns = |days_ago: i64| {
        (now - jiff::SignedDuration::from_hours(24 * days_ago)).as_nanosecond() as i64
    };
    // 100 and 75 days ago (months wholly past a 40-day period), 1 day ago.
    for (days, cost) in [(100, "1.0"), (75, "2.0"), (1, "4.0")] {
        let body = serde_json::to_vec(&api_request("ret@example.com", ns(days), cost)).unwrap();
        let resp = t
            .http
            .post(t.otlp_url("/v1/logs"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let out = cli(
        t.dir.path(),
        &["--store", &url, "prune", "--retention", "40d"],
    );
    assert!(out.status.success(), "{out:?}");
    // What a 40-day period drops: the months that ended before the cutoff.
    let cutoff = now - jiff::SignedDuration::from_hours(24 * 40);
    let month_start = |t: jiff::Timestamp| {
        let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
        jiff::civil::date(d.year(), d.month(), 1)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp()
    };
    let kept_from = month_start(cutoff);
    let want: f64 = [(100, 1.0), (75, 2.0), (1, 4.0)]
        .iter()
        .filter(|(d, _)| ns(*d) >= kept_from.as_nanosecond() as i64)
        .map(|(_, c)| c)
        .sum();
    let dropped = [(100, 1_u64), (75, 1)]
        .iter()
        .filter(|(d, _)| ns(*d) < kept_from.as_nanosecond() as i64)
        .count();
    assert!(
        dropped >= 1,
        "100 days ago is always a whole month before a 40-day cutoff"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("pruned {dropped} events")),
        "{out:?}"
    );
    let mut s = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    let r = s.call_ok("cost_by_developer", json!({"since": ALL})).await;
    let cost = r["totals"]["cost_usd"].as_f64().unwrap();
    assert!((cost - want).abs() < 1e-9, "{cost} != {want}: {r}");
    let left = ch.sql(&format!("SELECT count() FROM {database}.events"));
    assert_eq!(left.trim(), (3 - dropped).to_string());
    t.stop().await;
}
