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

/// One run's request bodies (not their `.meta.json`), in arrival order.
fn bodies(run: &str) -> Vec<std::path::PathBuf> {
    let dir = fixture_path(&format!("coding-agents/{run}/otlp"));
    let mut bodies: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    bodies.sort();
    bodies
}

/// Replays one run's requests in arrival order with their captured headers.
async fn replay(t: &TestServer, run: &str) {
    for body in bodies(run) {
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
    let mut n = 0;
    for p in bodies(run) {
        if p.extension().is_none_or(|e| e != "json") {
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

/// The row of `reply` whose `key` is `value` (panics naming both if none).
fn row_where(reply: &Value, key: &str, value: &str) -> Value {
    reply["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r[key] == value))
        .cloned()
        .unwrap_or_else(|| panic!("no row with {key} = {value}: {reply}"))
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
    // Claude Code's requests as stored (every capture lies inside RANGE).
    let cc_requests = common::count(
        &f.t.db(),
        "SELECT count(*) FROM events e JOIN contexts c ON c.id = e.context_id \
         WHERE c.agent = 'claude_code' AND e.event_name = 'api_request'",
    );
    assert_eq!(cc_t["api_requests"], cc_requests);
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
    let model = |m: &str| row_where(&r, "model", m);
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
    let point = |k: &str| row_where(&r, "key", k);
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
    // Walking through a Gemini session: its prompt, requests and tools.
    let r = f
        .read
        .call_ok(
            "session_timeline",
            json!({"session_id": "9547e3d0-c56b-4ef4-bc8d-6dfa8d9f6d9f"}),
        )
        .await;
    assert_eq!(r["session"]["agent"], "gemini_cli", "{r}");
    assert_eq!(r["session"]["api_requests"], gemini);
    assert_eq!(r["session"]["prompts"], 1);
    assert_eq!(r["session"]["tool_calls"], 2);
    assert!(close(
        r["session"]["cost_usd"].as_f64().unwrap(),
        gemini_cost
    ));
    let turns = r["turns"].as_array().unwrap();
    let requests: i64 = turns
        .iter()
        .map(|t| t["api_requests"].as_i64().unwrap())
        .sum();
    assert_eq!(requests, gemini);
    let r = f.read.call_ok("describe_data", range(json!({}))).await;
    let agents = r["agents"].as_array().unwrap();
    let info = |a: &str| agents.iter().find(|x| x["agent"] == a).cloned().unwrap();
    assert_eq!(info("codex")["versions"], json!(["0.171.0"]));
    assert_eq!(info("codex")["sessions"], 2);
    assert_eq!(info("gemini_cli")["versions"], json!([]));
    assert_eq!(info("gemini_cli")["sessions"], 1);
    assert_eq!(info("opencode")["versions"], json!(["1.18.33"]));
    // The Claude Code captures are of versions 2.1.100, 2.1.197 and 2.1.330.
    assert_eq!(
        info("claude_code")["versions"],
        json!(["2.1.330", "2.1.197", "2.1.100"])
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

/// A small deterministic generator (xorshift), so the generated team is the
/// same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

fn kv(key: &str, v: Value) -> Value {
    json!({"key": key, "value": v})
}
fn s(v: &str) -> Value {
    json!({"stringValue": v})
}
fn i(v: i64) -> Value {
    json!({"intValue": v.to_string()})
}

/// Expected sums of one agent, computed while generating.
#[derive(Default, Debug)]
struct Want {
    requests: i64,
    input: i64,
    cache_read: i64,
    output: i64,
    reasoning: i64,
    cost: f64,
    tool_calls: i64,
    tool_max_ms: i64,
}

/// USD per million tokens of the generated models, as the shipped table
/// lists them: (input, cached input, cache write, output).
fn price(model: &str) -> (f64, f64, f64, f64) {
    match model {
        "gpt-5" | "gpt-5-codex" => (1.25, 0.125, 1.25, 10.0),
        "gemini-2.5-pro" => (1.25, 0.31, 1.25, 10.0),
        "gemini-2.5-flash" => (0.30, 0.075, 0.30, 2.50),
        "claude-sonnet-4-5" => (3.0, 0.30, 3.75, 15.0),
        other => panic!("{other}"),
    }
}

fn add_request(
    w: &mut Want,
    model: &str,
    input: i64,
    cache_read: i64,
    output: i64,
    reasoning: i64,
) {
    let (pi, pc, _, po) = price(model);
    w.requests += 1;
    w.input += input;
    w.cache_read += cache_read;
    w.output += output;
    w.reasoning += reasoning;
    w.cost += (input as f64 * pi + cache_read as f64 * pc + output as f64 * po) / 1e6;
}

const T0: i64 = 1_796_126_400_000_000_000; // 2026-12-01T12:00:00Z

#[tokio::test]
async fn a_generated_multi_agent_team_is_answered_exactly_per_agent_and_in_total() {
    let t = TestServer::start().await;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut codex, mut gemini, mut opencode) = (Want::default(), Want::default(), Want::default());
    let post = |path: &'static str, body: Value| {
        let req = t
            .http
            .post(t.otlp_url(path))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap());
        async move {
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
        }
    };
    // Codex: counts as strings, timeUnixNano 0, a count-less twin of every
    // response.completed, a tool result per response.
    for n in 0..12 {
        let host = format!("ci-runner-{}", n % 3);
        let model = if n % 2 == 0 { "gpt-5" } else { "gpt-5-codex" };
        let conv = format!("codex-session-{n}");
        let mut records = Vec::new();
        for k in 0..rng.between(1, 5) {
            let at = T0 + (n * 600 + k * 10) * 1_000_000_000;
            let total_in = rng.between(500, 5000);
            let cached = rng.between(0, total_in);
            let out = rng.between(10, 800);
            let reasoning = rng.between(0, out);
            add_request(&mut codex, model, total_in - cached, cached, out, reasoning);
            let common = |name: &str| {
                vec![
                    kv("event.name", s(name)),
                    kv("conversation.id", s(&conv)),
                    kv("model", s(model)),
                    kv("app.version", s("0.171.0")),
                ]
            };
            let mut twin = common("codex.sse_event");
            twin.push(kv("event.kind", s("response.completed")));
            let mut counted = twin.clone();
            for (key, v) in [
                ("input_token_count", total_in),
                ("cached_token_count", cached),
                ("output_token_count", out),
                ("reasoning_token_count", reasoning),
            ] {
                counted.push(kv(key, s(&v.to_string())));
            }
            let ms = rng.between(1, 900);
            codex.tool_calls += 1;
            codex.tool_max_ms = codex.tool_max_ms.max(ms);
            let mut tool = common("codex.tool_result");
            tool.extend([
                kv("tool_name", s("exec_command")),
                kv("call_id", s(&format!("call-{n}-{k}"))),
                kv("duration_ms", s(&ms.to_string())),
                kv("success", s("true")),
            ]);
            for (offset, attrs) in [(0, twin), (1, counted), (2, tool)] {
                records.push(json!({
                    "timeUnixNano": "0",
                    "observedTimeUnixNano": (at + offset).to_string(),
                    "eventName": "event otel/src/events/session_telemetry.rs:1",
                    "attributes": attrs,
                }));
            }
        }
        post(
            "/v1/logs",
            json!({"resourceLogs": [{
                "resource": {"attributes": [kv("service.name", s("codex_exec")),
                    kv("service.version", s("0.171.0")), kv("host.name", s(&host))]},
                "scopeLogs": [{"scope": {"name": "codex_otel.log_only"}, "logRecords": records}]}]}),
        )
        .await;
    }
    // Gemini CLI: ints, session on the resource, thoughts beside the output.
    for n in 0..8 {
        let model = if n % 2 == 0 {
            "gemini-2.5-pro"
        } else {
            "gemini-2.5-flash"
        };
        let session = format!("gemini-session-{n}");
        let mut records = Vec::new();
        for k in 0..rng.between(1, 6) {
            let at = T0 + (n * 700 + k * 10) * 1_000_000_000;
            let total_in = rng.between(800, 9000);
            let cached = rng.between(0, total_in);
            let out = rng.between(5, 600);
            let thoughts = rng.between(0, 300);
            add_request(
                &mut gemini,
                model,
                total_in - cached,
                cached,
                out + thoughts,
                thoughts,
            );
            let ms = rng.between(20, 4000);
            gemini.tool_calls += 1;
            gemini.tool_max_ms = gemini.tool_max_ms.max(ms);
            records.push(json!({"timeUnixNano": at.to_string(), "attributes": [
                kv("event.name", s("gemini_cli.api_response")), kv("session.id", s(&session)),
                kv("installation.id", s(&format!("install-{}", n % 2))), kv("model", s(model)),
                kv("input_token_count", i(total_in)), kv("cached_content_token_count", i(cached)),
                kv("output_token_count", i(out)), kv("thoughts_token_count", i(thoughts)),
                kv("tool_token_count", i(0)), kv("duration_ms", i(rng.between(50, 3000))),
                kv("status_code", i(200))]}));
            records.push(json!({"timeUnixNano": (at + 1).to_string(), "attributes": [
                kv("event.name", s("gemini_cli.tool_call")), kv("session.id", s(&session)),
                kv("installation.id", s(&format!("install-{}", n % 2))),
                kv("function_name", s("run_shell_command")), kv("duration_ms", i(ms)),
                kv("success", json!({"boolValue": true})), kv("decision", s("accept"))]}));
        }
        post(
            "/v1/logs",
            json!({"resourceLogs": [{
                "resource": {"attributes": [kv("service.name", s("gemini-cli")),
                    kv("service.version", s("v20.20.2")), kv("process.runtime.version", s("20.20.2")),
                    kv("session.id", s(&session))]},
                "scopeLogs": [{"scope": {"name": "gemini-cli"}, "logRecords": records}]}]}),
        )
        .await;
    }
    // OpenCode: AI SDK model-call spans and Tool.execute spans only.
    for n in 0..5 {
        let session = format!("ses_{n}");
        let mut spans = Vec::new();
        for k in 0..rng.between(1, 4) {
            let start = T0 + (n * 800 + k * 10) * 1_000_000_000;
            let total_in = rng.between(1000, 20000);
            let cached = rng.between(0, total_in);
            let out = rng.between(20, 900);
            let reasoning = rng.between(0, out);
            add_request(
                &mut opencode,
                "claude-sonnet-4-5",
                total_in - cached,
                cached,
                out,
                reasoning,
            );
            let ms = rng.between(5, 2000);
            opencode.tool_calls += 1;
            opencode.tool_max_ms = opencode.tool_max_ms.max(ms);
            let id = |x: i64| format!("{:016x}", (n * 1000 + k * 10 + x) as u64 + 1);
            spans.push(json!({"traceId": format!("{:032x}", n + 1), "spanId": id(0),
                "name": "ai.streamText.doStream", "kind": 1,
                "startTimeUnixNano": start.to_string(),
                "endTimeUnixNano": (start + 900_000_000).to_string(),
                "attributes": [kv("session.id", s(&session)), kv("ai.model.id", s("claude-sonnet-4-5")),
                    kv("ai.usage.inputTokens", i(total_in)), kv("ai.usage.cachedInputTokens", i(cached)),
                    kv("ai.usage.outputTokens", i(out)), kv("ai.usage.reasoningTokens", i(reasoning)),
                    kv("ai.prompt.messages", s("secret prompt text"))],
                "status": {"code": 1}}));
            spans.push(
                json!({"traceId": format!("{:032x}", n + 1), "spanId": id(1),
                "name": "Tool.execute", "kind": 1,
                "startTimeUnixNano": (start + 1_000_000_000).to_string(),
                "endTimeUnixNano": (start + 1_000_000_000 + ms * 1_000_000).to_string(),
                "attributes": [kv("session.id", s(&session)), kv("tool.name", s("bash")),
                    kv("tool.call_id", s(&format!("c{n}{k}")))],
                "status": {"code": 1}}),
            );
        }
        post(
            "/v1/traces",
            json!({"resourceSpans": [{
                "resource": {"attributes": [kv("service.name", s("opencode")),
                    kv("service.version", s("1.18.33")), kv("user.email", s("oc@example.com"))]},
                "scopeSpans": [{"scope": {"name": "opencode", "version": "1.18.33"}, "spans": spans}]}]}),
        )
        .await;
    }

    let mut read = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    let args = |extra: Value| range(extra);
    let mut total = Want::default();
    for (agent, w) in [
        ("codex", &codex),
        ("gemini_cli", &gemini),
        ("opencode", &opencode),
    ] {
        let r = read
            .call_ok(
                "cost_by_developer",
                args(json!({"agent": agent, "limit": 100})),
            )
            .await;
        let got = &r["totals"];
        assert_eq!(got["api_requests"], w.requests, "{agent}");
        assert_eq!(got["input_tokens"], w.input, "{agent}");
        assert_eq!(got["cache_read_tokens"], w.cache_read, "{agent}");
        assert_eq!(got["output_tokens"], w.output, "{agent}");
        assert_eq!(got["reasoning_tokens"], w.reasoning, "{agent}");
        assert!(
            (got["cost_usd"].as_f64().unwrap() - w.cost).abs() < 1e-6,
            "{agent}: {got} {w:?}"
        );
        assert!((got["computed_cost_usd"].as_f64().unwrap() - w.cost).abs() < 1e-6);
        assert_eq!(got["reported_cost_usd"], 0.0);
        let l = read
            .call_ok("tool_latency", args(json!({"agent": agent})))
            .await;
        assert_eq!(l["rows"][0]["calls"], w.tool_calls, "{agent}: {l}");
        assert_eq!(l["rows"][0]["max_ms"], w.tool_max_ms, "{agent}");
        total.requests += w.requests;
        total.cost += w.cost;
        total.output += w.output;
    }
    // Codex's developers are its hosts, Gemini's its installs, OpenCode's
    // the user.email put on its resource.
    let r = read
        .call_ok(
            "cost_by_developer",
            args(json!({"agent": "codex", "limit": 100})),
        )
        .await;
    let devs: Vec<(String, String)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["developer"].as_str().unwrap().into(),
                d["developer_kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut devs_sorted = devs.clone();
    devs_sorted.sort();
    assert_eq!(
        devs_sorted,
        (0..3)
            .map(|n| (format!("ci-runner-{n}"), "host".to_string()))
            .collect::<Vec<_>>()
    );
    let r = read
        .call_ok("cost_by_developer", args(json!({"agent": "opencode"})))
        .await;
    assert_eq!(r["rows"][0]["developer"], "oc@example.com");
    assert_eq!(r["rows"][0]["developer_kind"], "email");

    let all = read
        .call_ok("cost_by_developer", args(json!({"limit": 100})))
        .await;
    assert_eq!(all["totals"]["api_requests"], total.requests);
    assert_eq!(all["totals"]["output_tokens"], total.output);
    assert!((all["totals"]["cost_usd"].as_f64().unwrap() - total.cost).abs() < 1e-6);

    let m = read
        .call_ok("model_breakdown", args(json!({"limit": 100})))
        .await;
    let models: f64 = m["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cost_usd"].as_f64().unwrap())
        .sum();
    assert!((models - total.cost).abs() < 1e-6);
    let sonnet = row_where(&m, "model", "claude-sonnet-4-5");
    assert_eq!(sonnet["agents"], json!(["opencode"]));
    assert_eq!(sonnet["requests"], opencode.requests);

    let u = read
        .call_ok(
            "usage_over_time",
            args(json!({"bucket": "total", "split_by": "agent", "limit": 100})),
        )
        .await;
    for (agent, w) in [
        ("codex", &codex),
        ("gemini_cli", &gemini),
        ("opencode", &opencode),
    ] {
        let p = row_where(&u, "key", agent);
        assert_eq!(p["requests"], w.requests, "{agent}");
        assert!(
            (p["cost_usd"].as_f64().unwrap() - w.cost).abs() < 1e-6,
            "{agent}"
        );
    }
    // Hourly buckets add up to the same per-agent totals.
    let h = read
        .call_ok(
            "usage_over_time",
            args(json!({"bucket": "hour", "split_by": "agent", "limit": 1000})),
        )
        .await;
    let hourly: i64 = h["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["key"] == "codex")
        .map(|p| p["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(hourly, codex.requests);
    t.stop().await;
}

/// Gemini CLI's gRPC exporter gzips every request, Codex's uses tonic: the
/// same captures sent over OTLP/gRPC store the same typed requests as over
/// OTLP/HTTP.
#[tokio::test]
async fn grpc_with_gzip_stores_what_http_stores() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use tokentally::otlp::{Encoding, decode_logs, decode_traces};
    use tonic::codec::CompressionEncoding;

    let (http, grpc) = (TestServer::start().await, TestServer::start().await);
    let channel = grpc.grpc_channel().await;
    let mut logs =
        LogsServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Gzip);
    let mut traces = TraceServiceClient::new(channel).send_compressed(CompressionEncoding::Gzip);
    for run in [
        "gemini_0.61.0_tools_http-json",
        "opencode_1.18.33_tools_http-json",
        "codex_0.171.0_tools_http-json",
    ] {
        replay(&http, run).await;
        for p in bodies(run) {
            let body = std::fs::read(&p).unwrap();
            let name = p.to_string_lossy().into_owned();
            if name.contains("_logs.") {
                logs.export(decode_logs(&body, Encoding::Json).unwrap())
                    .await
                    .unwrap();
            } else if name.contains("_traces.") {
                traces
                    .export(decode_traces(&body, Encoding::Json).unwrap())
                    .await
                    .unwrap();
            }
        }
    }
    let typed = |t: &TestServer| -> Vec<(String, String, i64, i64, i64)> {
        let db = t.db();
        let mut stmt = db
            .prepare(
                "SELECT c.agent, e.event_name, COALESCE(e.input_tokens, -1), \
                 COALESCE(e.output_tokens, -1), COALESCE(e.duration_ms, -1) \
                 FROM events e JOIN contexts c ON c.id = e.context_id \
                 WHERE e.event_name IN ('api_request', 'tool_result', 'user_prompt') \
                 ORDER BY e.time_ns, e.event_name",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    };
    let over_http = typed(&http);
    assert_eq!(
        over_http.iter().filter(|r| r.1 == "api_request").count(),
        3 + 4 + 3
    );
    assert_eq!(typed(&grpc), over_http);
    http.stop().await;
    grpc.stop().await;
}

/// A record of no known agent that happens to be named `api_request` is
/// stored and searchable, but is usage of nobody's: neither the rollups
/// (whole hours) nor the raw edges of a range count it.
#[tokio::test]
async fn other_senders_records_are_not_usage() {
    let t = TestServer::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    // Two hours ago (a whole hour of the range) and a minute ago (its edge).
    let records: Vec<Value> = [now - 7_200_000_000_000, now - 60_000_000_000]
        .iter()
        .map(|at| {
            json!({"timeUnixNano": at.to_string(), "attributes": [
                kv("event.name", s("api_request")), kv("user.email", s("x@example.com")),
                kv("model", s("claude-sonnet-4-5")), kv("input_tokens", i(100)),
                kv("cost_usd", json!({"doubleValue": 0.5}))]})
        })
        .collect();
    let resp = t
        .http
        .post(t.otlp_url("/v1/logs"))
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(&json!({"resourceLogs": [{
                "resource": {"attributes": [kv("service.name", s("my-app"))]},
                "scopeLogs": [{"scope": {"name": "my.app.telemetry"}, "logRecords": records}]}]}))
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut read = Session::open(&t.mcp_url(), &t.bootstrap_token("read")).await;
    let r = read
        .call_ok("model_breakdown", json!({"since": "3h"}))
        .await;
    assert_eq!(r["rows"], json!([]), "{r}");
    let r = read
        .call_ok("usage_over_time", json!({"since": "3h", "bucket": "total"}))
        .await;
    let requests: i64 = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(
        (requests, r["total_cost_usd"].as_f64()),
        (0, Some(0.0)),
        "{r}"
    );
    let r = read
        .call_ok("cost_by_developer", json!({"since": "3h"}))
        .await;
    assert_eq!(r["totals"]["api_requests"], 0, "{r}");
    let r = read
        .call_ok(
            "search_events",
            json!({"since": "3h", "event_name": "api_request"}),
        )
        .await;
    assert_eq!(r["rows"].as_array().unwrap().len(), 2);
    assert!(r["rows"][0].get("agent").is_none());
    t.stop().await;
}
