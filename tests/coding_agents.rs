//! Codex CLI, Gemini CLI and OpenCode beside Claude Code, against a real
//! server: each real capture replayed over OTLP/HTTP exactly as its CLI sent
//! it (headers included), then every tool asked per agent and in total.
//!
//! Expected values come from the raw requests, read here independently of
//! the server: how many model answers each run holds (Codex's counted
//! `response.completed` records, Gemini's `api_response` events, OpenCode's
//! `ai.streamText.doStream` spans), and the scenario's fixed usage per
//! answer (1,200 input of which 300 cached, 45 output of which 10 reasoning;
//! Gemini reports its 10 thought tokens beside its 45).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::mcp::{Session, text_of};
use common::{TestServer, fixture, fixture_path};
use serde_json::{Value, json};

const RUNS: [&str; 4] = [
    "codex_0.171.0_tools_http-protobuf",
    "codex_0.171.0_tools_http-json",
    "gemini_0.61.0_tools_http-json",
    "opencode_1.18.33_tools_http-json",
];

const RANGE: (&str, &str) = ("2026-11-01", "2026-12-03");

/// Replays one run's requests in arrival order with their captured headers.
async fn replay(t: &TestServer, run: &str) {
    let dir = fixture_path(&format!("coding-agents/{run}/otlp"));
    let mut bodies: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    bodies.sort();
    for body in bodies {
        let meta: Value =
            serde_json::from_slice(&std::fs::read(body.with_extension("meta.json")).unwrap())
                .unwrap();
        let mut req = t.http.post(t.otlp_url(meta["path"].as_str().unwrap()));
        for (k, v) in meta["headers"].as_object().unwrap() {
            let k = k.to_ascii_lowercase();
            if matches!(
                k.as_str(),
                "content-type" | "content-encoding" | "user-agent"
            ) {
                req = req.header(k, v.as_str().unwrap());
            }
        }
        let resp = req
            .body(std::fs::read(&body).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            200,
            "{}: {:?}",
            body.display(),
            resp.text().await
        );
    }
}

/// Model answers in one run, counted from the raw JSON requests.
fn answers_in_json_run(run: &str) -> i64 {
    let dir = fixture_path(&format!("coding-agents/{run}/otlp"));
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.to_string_lossy().into_owned();
        if !name.ends_with(".json") || name.ends_with(".meta.json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let attr = |r: &Value, key: &str| -> Option<Value> {
            r["attributes"]
                .as_array()?
                .iter()
                .find(|kv| kv["key"] == key)
                .map(|kv| kv["value"].clone())
        };
        for rl in v["resourceLogs"].as_array().into_iter().flatten() {
            for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
                for r in sl["logRecords"].as_array().into_iter().flatten() {
                    let name = attr(r, "event.name").map(|v| v["stringValue"].clone());
                    let completed_with_counts = name == Some(json!("codex.sse_event"))
                        && attr(r, "event.kind").map(|v| v["stringValue"].clone())
                            == Some(json!("response.completed"))
                        && attr(r, "input_token_count").is_some();
                    if completed_with_counts || name == Some(json!("gemini_cli.api_response")) {
                        n += 1;
                    }
                }
            }
        }
        for rs in v["resourceSpans"].as_array().into_iter().flatten() {
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for s in ss["spans"].as_array().into_iter().flatten() {
                    if s["name"] == "ai.streamText.doStream" {
                        n += 1;
                    }
                }
            }
        }
    }
    n
}

struct Fixture {
    t: TestServer,
    read: Session,
    _prices: tempfile::TempDir,
}

async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.toml");
    // A negotiated rate for the Codex captures' model; OpenCode's model
    // (`fake-gpt`) stays without a price.
    std::fs::write(
        &prices,
        "[models.\"gpt-5.5\"]\ninput = 1.25\ncached_input = 0.125\noutput = 10.0\n",
    )
    .unwrap();
    let t = TestServer::start_with(|c| {
        c.pricing.file = Some(prices.clone());
        c.identity
            .0
            .insert("team=capture".into(), "opencode-team".into());
    })
    .await;
    t.replay_captures().await;
    for run in RUNS {
        replay(&t, run).await;
    }
    let read = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    Fixture {
        t,
        read,
        _prices: dir,
    }
}

fn range(extra: Value) -> Value {
    let mut args = json!({"since": RANGE.0, "until": RANGE.1});
    args.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    args
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// Per answer, in the shared convention (input without cache, output with reasoning).
fn usage(answers: i64, output_per_answer: i64) -> (i64, i64, i64, i64) {
    (
        answers * 900,
        answers * 300,
        answers * output_per_answer,
        answers * 10,
    )
}

#[tokio::test]
async fn every_agent_is_answered_by_every_tool() {
    let mut f = start().await;
    let codex = answers_in_json_run("codex_0.171.0_tools_http-json");
    let gemini = answers_in_json_run("gemini_0.61.0_tools_http-json");
    let opencode = answers_in_json_run("opencode_1.18.33_tools_http-json");
    assert_eq!((codex, gemini, opencode), (3, 3, 4));
    // The protobuf run of Codex is the same scenario: as many answers.
    let codex = 2 * codex;
    let codex_cost = codex as f64 * (900.0 * 1.25 + 300.0 * 0.125 + 45.0 * 10.0) / 1e6;
    // gemini-2.5-flash list prices: 0.30 input, 0.075 cached, 2.50 output.
    let gemini_cost = gemini as f64 * (900.0 * 0.30 + 300.0 * 0.075 + 55.0 * 2.50) / 1e6;

    // --- cost_by_developer, per agent -------------------------------------
    for (agent, developer, kind, answers, output, cost) in [
        ("codex", "host-redacted", "host", codex, 45, codex_cost),
        (
            "gemini_cli",
            "07a1417e-d4d0-47c6-9225-9e7bb1d33c39",
            "installation_id",
            gemini,
            55,
            gemini_cost,
        ),
        ("opencode", "opencode-team", "mapped", opencode, 45, 0.0),
    ] {
        let r = f
            .read
            .call_ok("cost_by_developer", range(json!({"agent": agent})))
            .await;
        let rows = r["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{agent}: {r}");
        let d = &rows[0];
        assert_eq!(d["developer"], developer, "{agent}");
        assert_eq!(d["developer_kind"], kind, "{agent}");
        assert_eq!(d["agents"], json!([agent]));
        let (input, cache_read, out, reasoning) = usage(answers, output);
        assert_eq!(d["api_requests"], answers, "{agent}");
        assert_eq!(d["input_tokens"], input, "{agent}");
        assert_eq!(d["cache_read_tokens"], cache_read, "{agent}");
        assert_eq!(d["output_tokens"], out, "{agent}");
        assert_eq!(d["reasoning_tokens"], reasoning, "{agent}");
        assert!(close(d["cost_usd"].as_f64().unwrap(), cost), "{agent}: {d}");
        assert!(
            close(d["computed_cost_usd"].as_f64().unwrap(), cost),
            "{agent}"
        );
        assert_eq!(
            d["reported_cost_usd"], 0.0,
            "{agent}: none of them reports a cost"
        );
    }
    // OpenCode's model has no price: counted, named, never silently dropped.
    let r = f
        .read
        .call("cost_by_developer", range(json!({"agent": "opencode"})))
        .await;
    assert_eq!(
        r["structuredContent"]["unpriced_models"],
        json!(["fake-gpt"])
    );
    assert_eq!(
        r["structuredContent"]["totals"]["unpriced_requests"],
        opencode
    );
    assert!(text_of(&r).contains("fake-gpt"), "{}", text_of(&r));

    // --- totals across agents: Claude Code's reported cost plus the rest ----
    let cc = f
        .read
        .call_ok(
            "cost_by_developer",
            range(json!({"agent": "claude_code", "limit": 100})),
        )
        .await;
    let all = f
        .read
        .call_ok("cost_by_developer", range(json!({"limit": 100})))
        .await;
    let cc_t = &cc["totals"];
    let all_t = &all["totals"];
    assert!(cc_t["api_requests"].as_i64().unwrap() > 0);
    assert_eq!(
        all_t["api_requests"].as_i64().unwrap(),
        cc_t["api_requests"].as_i64().unwrap() + codex + gemini + opencode
    );
    assert!(close(
        all_t["cost_usd"].as_f64().unwrap(),
        cc_t["cost_usd"].as_f64().unwrap() + codex_cost + gemini_cost
    ));
    assert!(close(
        all_t["reported_cost_usd"].as_f64().unwrap(),
        cc_t["reported_cost_usd"].as_f64().unwrap()
    ));
    assert!(close(
        cc_t["cost_usd"].as_f64().unwrap(),
        cc_t["reported_cost_usd"].as_f64().unwrap()
    ));
    assert_eq!(
        all_t["agents"],
        json!(["claude_code", "codex", "gemini_cli", "opencode"])
    );

    // --- model_breakdown ----------------------------------------------------
    let r = f
        .read
        .call_ok("model_breakdown", range(json!({"limit": 100})))
        .await;
    let model = |m: &str| {
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["model"] == m)
            .cloned()
            .unwrap_or_else(|| panic!("{m}: {r}"))
    };
    let g = model("gemini-2.5-flash");
    assert_eq!(g["agents"], json!(["gemini_cli"]));
    assert_eq!(g["requests"], gemini);
    assert!(close(g["cost_usd"].as_f64().unwrap(), gemini_cost));
    // Gemini's api_response durations 349, 71 and 46 ms: nearest-rank p95.
    assert_eq!(g["p95_latency_ms"], 349);
    let c = model("gpt-5.5");
    assert_eq!(c["agents"], json!(["codex"]));
    assert_eq!(c["requests"], codex);
    let o = model("fake-gpt");
    assert_eq!(o["agents"], json!(["opencode"]));
    assert_eq!(o["unpriced_requests"], opencode);
    assert_eq!(o["cost_usd"], 0.0);

    // --- usage_over_time split by agent -------------------------------------
    let r = f
        .read
        .call_ok(
            "usage_over_time",
            range(json!({"bucket": "total", "split_by": "agent", "limit": 100})),
        )
        .await;
    let point = |k: &str| {
        r["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == k)
            .cloned()
            .unwrap_or_else(|| panic!("{k}: {r}"))
    };
    assert_eq!(point("codex")["requests"], codex);
    assert!(close(
        point("codex")["cost_usd"].as_f64().unwrap(),
        codex_cost
    ));
    assert!(close(
        point("gemini_cli")["computed_part_usd"].as_f64().unwrap(),
        gemini_cost
    ));
    assert_eq!(point("opencode")["unpriced_requests"], opencode);
    assert_eq!(point("claude_code")["requests"], cc_t["api_requests"]);

    // --- tool_latency per agent ---------------------------------------------
    let r = f
        .read
        .call_ok("tool_latency", range(json!({"agent": "gemini_cli"})))
        .await;
    let tools: Vec<(String, i64, i64)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tool_name"].as_str().unwrap().to_string(),
                t["calls"].as_i64().unwrap(),
                t["max_ms"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tools,
        [
            ("run_shell_command".to_string(), 1, 221),
            ("write_file".to_string(), 1, 94)
        ]
    );

    // --- top_edited_files: Codex's apply_patch names its file ---------------
    let r = f
        .read
        .call_ok("top_edited_files", range(json!({"agent": "codex"})))
        .await;
    let row = &r["rows"][0];
    assert_eq!(row["file_path"], "hello.txt", "{r}");
    assert_eq!(row["edits"], 2);
    assert_eq!(row["accepted"], 2);

    // --- sessions, events, describe -----------------------------------------
    let r = f
        .read
        .call_ok("list_sessions", range(json!({"agent": "codex"})))
        .await;
    let sessions = r["rows"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(
        sessions
            .iter()
            .all(|s| s["agent"] == "codex" && s["api_requests"] == 3)
    );
    let r = f
        .read
        .call_ok(
            "search_events",
            range(json!({"agent": "gemini_cli", "event_name": "api_request"})),
        )
        .await;
    let hits = r["rows"].as_array().unwrap();
    assert_eq!(hits.len() as i64, gemini);
    for h in hits {
        assert_eq!(h["agent"], "gemini_cli");
        assert_eq!(h["cost_computed"], true);
        assert_eq!(h["attrs"]["event.name"], "gemini_cli.api_response");
    }
    let r = f.read.call_ok("describe_data", range(json!({}))).await;
    let agents = r["agents"].as_array().unwrap();
    let info = |a: &str| agents.iter().find(|x| x["agent"] == a).cloned().unwrap();
    assert_eq!(info("codex")["versions"], json!(["0.171.0"]));
    assert_eq!(info("codex")["sessions"], 2);
    assert_eq!(info("gemini_cli")["versions"], json!([]));
    assert_eq!(info("gemini_cli")["sessions"], 1);
    assert_eq!(info("opencode")["versions"], json!(["1.18.33"]));
    assert!(
        !info("claude_code")["versions"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A bad agent name is a clear error.
    let r = f
        .read
        .call("cost_by_developer", range(json!({"agent": "copilot"})))
        .await;
    assert_eq!(r["isError"], true);
    assert!(text_of(&r).contains("claude_code, codex, gemini_cli, opencode"));

    // Exporters retry: the same requests again change nothing.
    for run in RUNS {
        replay(&f.t, run).await;
    }
    let again = f
        .read
        .call_ok("cost_by_developer", range(json!({"limit": 100})))
        .await;
    assert_eq!(again["totals"], all["totals"]);
    f.t.stop().await;
}

#[tokio::test]
async fn content_of_other_agents_never_reaches_the_store() {
    let t = TestServer::start().await;
    for run in RUNS {
        replay(&t, run).await;
    }
    let db = t.db();
    // The prompt text sits in Gemini's process.command_args and inside
    // Codex's patch; OpenCode's prompt is on its AI SDK spans.
    let needle = "Create a file hello.txt";
    let raw = String::from_utf8_lossy(&fixture(
        "coding-agents/gemini_0.61.0_tools_http-json/otlp/002_v1_logs.json",
    ))
    .contains(needle);
    assert!(raw, "the capture holds the prompt");
    for (table, columns) in [
        ("contexts", "resource_attrs || shared_attrs"),
        ("events", "COALESCE(attrs, '') || COALESCE(body, '')"),
        ("spans", "COALESCE(attrs, '') || COALESCE(detail, '')"),
    ] {
        let n: i64 = db
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE instr({columns}, ?1) > 0"),
                [needle],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "{table} holds prompt text");
    }
    for patch_line in ["+line one", "*** Begin Patch"] {
        let n: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM events WHERE instr(COALESCE(attrs, ''), ?1) > 0",
                [patch_line],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "{patch_line}");
    }
    t.stop().await;
}

#[test]
fn setup_prints_each_agents_configuration_for_the_configured_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tokentally.toml");
    std::fs::write(&config, "otlp_http_addr = \"127.0.0.1:24318\"\n").unwrap();
    let run = |agent: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tokentally"))
            .arg("--config")
            .arg(&config)
            .args(["setup", agent])
            .output()
            .unwrap();
        assert!(out.status.success(), "{agent}: {:?}", out);
        String::from_utf8(out.stdout).unwrap()
    };
    let codex: toml::Value = toml::from_str(&run("codex")).unwrap();
    assert_eq!(
        codex["otel"]["exporter"]["otlp-http"]["endpoint"].as_str(),
        Some("http://127.0.0.1:24318/v1/logs")
    );
    let gemini = run("gemini");
    let json: Value =
        serde_json::from_str(&gemini[gemini.find('{').unwrap()..=gemini.rfind('}').unwrap()])
            .unwrap();
    assert_eq!(json["telemetry"]["otlpEndpoint"], "http://127.0.0.1:24318");
    assert!(run("opencode").contains("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24318"));
    assert!(run("claude-code").contains("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24318"));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .args(["setup", "copilot"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}
