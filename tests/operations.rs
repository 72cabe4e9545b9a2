//! Day-to-day operations from the command line: `import` stores exactly the
//! records of a Collector-style JSON Lines file (a bad line reported with
//! its place, nothing else lost, a second import storing nothing new), and
//! `backup` makes a copy that answers every question as the original does;
//! `report`, `query --format`, `doctor` and `setup` state what the tools
//! and the store say.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Output;

use common::cli as tokentally;
use serde_json::Value;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Records in one OTLP/JSON export request, counted from the JSON itself.
fn records(v: &Value) -> u64 {
    let arr = |v: &Value, k: &str| v[k].as_array().cloned().unwrap_or_default();
    let mut n = 0;
    for rl in arr(v, "resourceLogs") {
        for sl in arr(&rl, "scopeLogs") {
            n += arr(&sl, "logRecords").len() as u64;
        }
    }
    for rm in arr(v, "resourceMetrics") {
        for sm in arr(&rm, "scopeMetrics") {
            for m in arr(&sm, "metrics") {
                for kind in [
                    "gauge",
                    "sum",
                    "histogram",
                    "exponentialHistogram",
                    "summary",
                ] {
                    n += arr(&m[kind], "dataPoints").len() as u64;
                }
            }
        }
    }
    for rs in arr(v, "resourceSpans") {
        for ss in arr(&rs, "scopeSpans") {
            n += arr(&ss, "spans").len() as u64;
        }
    }
    n
}

#[test]
fn import_stores_exactly_the_records_of_a_collector_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The Collector's file exporter: one export request a line, signals mixed.
    let mut lines = Vec::new();
    let mut expected = 0;
    let mut log_records = 0;
    for rel in common::CAPTURES.iter().filter(|f| f.ends_with(".json")) {
        let v: Value = serde_json::from_slice(&common::fixture(rel)).unwrap();
        expected += records(&v);
        log_records += records(&serde_json::json!({"resourceLogs": v["resourceLogs"]}));
        lines.push(v.to_string());
    }
    assert!(
        expected > 100 && log_records > 20,
        "{expected} {log_records}"
    );
    lines.insert(3, "{\"truncated\": ".to_string());
    let file = dir.path().join("otel-export.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let file = file.to_str().unwrap();

    let out = tokentally(&data, &["import", file]);
    assert!(!out.status.success(), "a bad line must fail the command");
    let err = stderr(&out);
    assert!(
        err.contains("otel-export.jsonl:4") && err.contains("not JSON"),
        "{err}"
    );
    let said = stdout(&out);
    assert!(
        said.contains(&format!(
            "stored {expected} record(s), 0 already stored, 0 refused"
        )),
        "{said}"
    );
    // The events are those of the file, by name.
    let described = tokentally(
        &data,
        &["query", "describe_data", r#"{"since":"2020-01-01"}"#],
    );
    let v: Value = serde_json::from_slice(&described.stdout).unwrap();
    assert_eq!(common::described_events(&v), log_records);

    // Again: nothing new.
    let again = tokentally(&data, &["import", file]);
    assert!(
        stdout(&again).contains(&format!("stored 0 record(s), {expected} already stored")),
        "{}",
        stdout(&again)
    );
    // A protobuf capture takes its signal from its name.
    let pb = common::fixture_path("claude-code/v330_t4_pb_write/otlp/002_v1_logs.pb");
    let out = tokentally(&data, &["import", pb.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let renamed = dir.path().join("dump.bin");
    std::fs::copy(&pb, &renamed).unwrap();
    let out = tokentally(&data, &["import", renamed.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--signal"), "{}", stderr(&out));
    let out = tokentally(
        &data,
        &["import", "--signal", "logs", renamed.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("stored 0 record(s)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_backup_answers_as_the_original_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = tokentally(&data, &["demo", "--events", "3000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Something in the audit log too.
    let out = tokentally(
        &data,
        &["token", "create", "--name", "r", "--scope", "read"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let copy = dir.path().join("copy");
    let out = tokentally(&data, &["backup", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("tokentally.db"), "{}", stdout(&out));
    let until = jiff::Timestamp::now().to_string();
    let args = format!(r#"{{"since":"2020-01-01","until":"{until}","limit":1000}}"#);
    for tool in [
        "cost_by_developer",
        "model_breakdown",
        "top_edited_files",
        "tool_latency",
    ] {
        let a = tokentally(&data, &["query", tool, &args]);
        let b = tokentally(&copy, &["query", tool, &args]);
        assert!(a.status.success() && b.status.success(), "{tool}");
        let (a, b): (Value, Value) = (
            serde_json::from_slice(&a.stdout).unwrap(),
            serde_json::from_slice(&b.stdout).unwrap(),
        );
        assert!(!a["rows"].as_array().unwrap().is_empty(), "{tool}");
        assert_eq!(a["rows"], b["rows"], "{tool}");
    }
    let tokens = tokentally(&copy, &["token", "list"]);
    assert!(
        stdout(&tokens).contains(r#""name":"r","scope":"read""#),
        "{}",
        stdout(&tokens)
    );
    // Never over an existing copy.
    let out = tokentally(&data, &["backup", copy.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
}

#[test]
fn the_report_states_the_tools_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = tokentally(&data, &["demo", "--events", "3000"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let until = jiff::Timestamp::now();
    let since = until - jiff::SignedDuration::from_hours(24 * 7);
    let (s, u) = (since.to_string(), until.to_string());
    let out = tokentally(
        &data,
        &["report", "--period", &s, "--until", &u, "--format", "json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let args = format!(r#"{{"since":"{s}","until":"{u}","limit":1000}}"#);
    let cost: Value =
        serde_json::from_slice(&tokentally(&data, &["query", "cost_by_developer", &args]).stdout)
            .unwrap();
    assert_eq!(report["total"]["cost_usd"], cost["totals"]["cost_usd"]);
    let rows = cost["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert_eq!(report["developers"].as_array().unwrap().len(), rows.len());
    for (r, t) in report["developers"].as_array().unwrap().iter().zip(rows) {
        assert_eq!(r["key"], t["developer"]);
        assert_eq!(r["cost_usd"], t["cost_usd"]);
        assert_eq!(r["requests"], t["api_requests"]);
    }
    // The week before, asked the same way.
    let before = since - jiff::SignedDuration::from_hours(24 * 7);
    let args = format!(r#"{{"since":"{before}","until":"{s}","limit":1000}}"#);
    let prev: Value =
        serde_json::from_slice(&tokentally(&data, &["query", "cost_by_developer", &args]).stdout)
            .unwrap();
    assert_eq!(
        report["total"]["previous_cost_usd"],
        prev["totals"]["cost_usd"]
    );
    let models: Value = serde_json::from_slice(
        &tokentally(
            &data,
            &[
                "query",
                "model_breakdown",
                &format!(r#"{{"since":"{s}","until":"{u}","limit":1000}}"#),
            ],
        )
        .stdout,
    )
    .unwrap();
    let m0 = &models["rows"][0];
    let r0 = report["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == m0["model"])
        .unwrap();
    assert_eq!(r0["cost_usd"], m0["cost_usd"]);

    // The same answer for people and spreadsheets, arguments given one by one.
    let csv = tokentally(
        &data,
        &[
            "query",
            "cost_by_developer",
            "--arg",
            &format!("since={s}"),
            "--arg",
            &format!("until={u}"),
            "--arg",
            "limit=1000",
            "--format",
            "csv",
        ],
    );
    assert!(csv.status.success(), "{}", stderr(&csv));
    let csv = stdout(&csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), rows.len() + 1, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let dev_col = header.iter().position(|h| *h == "developer").unwrap();
    let cost_col = header.iter().position(|h| *h == "cost_usd").unwrap();
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[dev_col], rows[0]["developer"].as_str().unwrap());
    assert_eq!(
        first[cost_col].parse::<f64>().unwrap(),
        rows[0]["cost_usd"].as_f64().unwrap()
    );
    let two = tokentally(
        &data,
        &[
            "query",
            "cost_by_developer",
            &format!(r#"{{"since":"{s}"}}"#),
            "--arg",
            "limit=2",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(stdout(&two).lines().count(), 4, "{}", stdout(&two));
    let bad = tokentally(&data, &["query", "cost_by_developer", "--arg", "since"]);
    assert!(!bad.status.success() && stderr(&bad).contains("name=value"));

    // Markdown and HTML say the same numbers.
    let md = tokentally(&data, &["report", "--period", &s, "--until", &u]);
    let md = stdout(&md);
    let top = &rows[0];
    let spend = tokentally::format::money(top["cost_usd"].as_f64().unwrap());
    assert!(
        md.contains(&format!(
            "| {} | {spend} |",
            top["developer"].as_str().unwrap()
        )),
        "{md}"
    );
    assert!(md.contains("## Spend by model") && md.contains("## Slowest tools"));
    let html_file = dir.path().join("r.html");
    let out = tokentally(
        &data,
        &[
            "report",
            "--period",
            &s,
            "--until",
            &u,
            "--format",
            "html",
            "--out",
            html_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&html_file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains(&spend));
    assert!(!html.contains("<script"));
}

#[tokio::test]
async fn the_report_is_offered_over_mcp_as_a_prompt() {
    let server = common::TestServer::start().await;
    let token = server.bootstrap_token("read");
    let mut s = common::mcp::Session::open(&server.mcp_url(), &token).await;
    let list = s.request("prompts/list", serde_json::json!({})).await;
    let names: Vec<String> = list.result()["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["weekly_report", "cost_spike_investigation"]);
    let got = s
        .request(
            "prompts/get",
            serde_json::json!({"name": "weekly_report", "arguments": {"period": "last_month"}}),
        )
        .await;
    let text = got.result()["messages"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("cost_by_developer") && text.contains("last_month"),
        "{text}"
    );
    let bad = s
        .request("prompts/get", serde_json::json!({"name": "nope"}))
        .await;
    assert!(
        bad.json.as_ref().unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("weekly_report")
    );
    server.stop().await;
}

#[tokio::test]
async fn doctor_says_what_works_and_what_to_fix() {
    let server = common::TestServer::start().await;
    server
        .post_fixture("claude-code/v330_t3_json_tools_details/otlp/002_v1_logs.json")
        .await;
    let tokens = tokentally::auth::TokenStore::open(server.dir.path()).unwrap();
    tokens
        .create(
            "short-lived",
            tokentally::auth::Scope::Read,
            &[],
            Some(std::time::Duration::from_secs(86_400)),
        )
        .unwrap();
    let mut config = server.config.clone();
    let r = server.running();
    config.otlp_http_addr = r.otlp_http_addr;
    config.otlp_grpc_addr = r.otlp_grpc_addr;
    config.mcp_addr = r.mcp_addr;
    let checks = tokentally::doctor::run(&config).await;
    let find = |what: &str| {
        checks
            .iter()
            .filter(|c| c.what == what)
            .cloned()
            .collect::<Vec<_>>()
    };
    use tokentally::doctor::Level;
    for what in ["OTLP/HTTP", "MCP", "OTLP/gRPC", "store", "agents"] {
        assert!(
            find(what).iter().all(|c| c.level == Level::Ok) && !find(what).is_empty(),
            "{what}: {checks:?}"
        );
    }
    assert!(
        find("agents")[0].detail.contains("claude_code 2.1.330"),
        "{checks:?}"
    );
    // The capture's events, the last of them as stamped, and old enough to warn.
    let sent: Value = serde_json::from_slice(&common::fixture(
        "claude-code/v330_t3_json_tools_details/otlp/002_v1_logs.json",
    ))
    .unwrap();
    let events = &find("events")[0];
    assert!(
        events.detail.starts_with(&format!(
            "{} stored, the last at 2026-11-21T17:12:40.869+00:00",
            records(&sent)
        )),
        "{events:?}"
    );
    assert_eq!(
        events.level,
        Level::Warn,
        "a day without events is worth a look"
    );
    assert!(
        find("tokens")
            .iter()
            .any(|c| c.level == Level::Warn && c.detail.contains("short-lived")),
        "{checks:?}"
    );
    assert!(find("metrics").iter().all(|c| c.level == Level::Warn));

    // Stopped (its data dir kept): the listeners fail, the store does not.
    let mut server = server;
    server.server.take().unwrap().shutdown().await.unwrap();
    let checks = tokentally::doctor::run(&config).await;
    let down: Vec<_> = checks
        .iter()
        .filter(|c| c.level == Level::Fail)
        .map(|c| c.what.as_str())
        .collect();
    assert_eq!(down, vec!["OTLP/HTTP", "MCP", "OTLP/gRPC"], "{checks:?}");
}

#[tokio::test]
async fn setup_writes_claude_codes_settings_and_a_working_token() {
    let server = common::TestServer::start().await;
    let settings = server.dir.path().join("home/.claude/settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, r#"{"model": "opus"}"#).unwrap();
    let out = tokentally(
        server.dir.path(),
        &[
            "setup",
            "claude-code",
            "--create-tokens",
            "alice",
            "--mcp-scope",
            "user",
            "--write",
            settings.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let written: Value = serde_json::from_slice(&std::fs::read(&settings).unwrap()).unwrap();
    assert_eq!(written["model"], "opus");
    assert_eq!(written["env"]["CLAUDE_CODE_ENABLE_TELEMETRY"], "1");
    assert_eq!(
        written["env"]["OTEL_EXPORTER_OTLP_PROTOCOL"],
        "http/protobuf"
    );
    assert_eq!(
        written["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"],
        "http://127.0.0.1:4318"
    );
    // The printed block is the same JSON.
    let start = text.find("{\n").unwrap();
    let end = text.find("\n}\n").unwrap();
    let block: Value = serde_json::from_str(&text[start..end + 2]).unwrap();
    assert_eq!(block["env"], written["env"]);
    // The claude mcp add line carries a fresh read token that the server takes.
    let line = text
        .lines()
        .find(|l| l.starts_with("claude mcp add --transport http --scope user tokentally "))
        .unwrap();
    let secret = line
        .split("Bearer ")
        .nth(1)
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    assert!(secret.starts_with("tt_"), "{line}");
    let mut s = common::mcp::Session::open(&server.mcp_url(), &secret).await;
    let r = s.call_ok("describe_data", serde_json::json!({})).await;
    assert!(r.get("rows").is_some(), "{r}");
    server.stop().await;
}
