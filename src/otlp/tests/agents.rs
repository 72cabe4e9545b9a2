//! Decoding the real Codex CLI, Gemini CLI and OpenCode captures in
//! `tests/fixtures/coding-agents`: each agent recognised, its requests,
//! prompts and tool calls typed in the shared model, tokens normalised,
//! content kept out, cost computed.
//!
//! Every capture is one run of the same scenario: one prompt, the model
//! answers with two tool calls (write `hello.txt`, run a shell command) and
//! then text; every model answer reports 1,200 input tokens (300 cached)
//! and 45 output tokens (10 of them reasoning).

use super::*;
use crate::agent::Agent;
use crate::rows::Batch;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/coding-agents/");

/// Every request body of one run, decoded as its headers say, in arrival order.
fn run(name: &str, opts: &DecodeOptions) -> Vec<Decoded> {
    let opts = &DecodeOptions {
        max_body_bytes: 16 << 20,
        ..opts.clone()
    };
    let dir = format!("{DIR}{name}/otlp");
    let mut bodies: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    bodies.sort();
    bodies
        .iter()
        .map(|path| {
            let rel = path.file_name().unwrap().to_string_lossy().into_owned();
            let meta_path = path.with_extension("meta.json");
            let meta: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
            let headers = meta["headers"].as_object().unwrap();
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| v.as_str())
            };
            let d = decode(
                signal_of(&rel),
                &std::fs::read(path).unwrap(),
                header("content-type"),
                header("content-encoding"),
                opts,
            )
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
            assert_eq!(d.rejected, 0, "{rel}: {:?}", d.message);
            d
        })
        .collect()
}

fn all_events(ds: &[Decoded]) -> Vec<(Arc<crate::rows::Context>, EventRow)> {
    let mut out: Vec<_> = ds
        .iter()
        .flat_map(|d| &d.batch.events)
        .flat_map(|g| g.rows.iter().map(|r| (g.context.clone(), r.clone())))
        .collect();
    out.sort_by_key(|(_, r)| r.time_ns);
    out
}

fn named<'a>(events: &'a [(Arc<crate::rows::Context>, EventRow)], name: &str) -> Vec<&'a EventRow> {
    events
        .iter()
        .filter(|(_, r)| r.event_name == name)
        .map(|(_, r)| r)
        .collect()
}

fn counts(ds: &[Decoded]) -> (usize, usize, usize) {
    let sum = |f: fn(&Batch) -> usize| ds.iter().map(|d| f(&d.batch)).sum::<usize>();
    (
        sum(|b| b.events.iter().map(|g| g.rows.len()).sum()),
        sum(|b| b.metric_points.iter().map(|g| g.rows.len()).sum()),
        sum(|b| b.spans.iter().map(|g| g.rows.len()).sum()),
    )
}

/// The three model answers of the scenario, in the shared convention.
fn assert_scenario_usage(requests: &[&EventRow], model: &str, output: i64) {
    assert_eq!(requests.len(), 3, "one request per model answer");
    for r in requests {
        assert_eq!(r.model.as_deref(), Some(model));
        assert_eq!(r.input_tokens, Some(900), "1,200 input of which 300 cached");
        assert_eq!(r.cache_read_tokens, Some(300));
        assert_eq!(r.output_tokens, Some(output));
        assert_eq!(r.reasoning_tokens, Some(10));
    }
}

#[test]
fn codex_protobuf_and_json_runs_type_alike() {
    // Two runs of the scenario, one per protocol: OTLP/JSON's string
    // `intValue`s and Codex's string-typed counts read as the protobuf ints.
    let pb = run("codex_0.171.0_tools_http-protobuf", &opts(false));
    let json = run("codex_0.171.0_tools_http-json", &opts(false));
    assert_eq!(counts(&pb), (40, 207, 690));
    assert_eq!(counts(&json), counts(&pb));
    let shape = |ds: &[Decoded]| {
        all_events(ds)
            .into_iter()
            .map(|(c, r)| {
                (
                    c.agent,
                    r.event_name,
                    r.model,
                    r.input_tokens,
                    r.cache_read_tokens,
                    r.output_tokens,
                    r.reasoning_tokens,
                    r.tool_name,
                    r.success,
                    r.file_path,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&pb), shape(&json));
}

#[test]
fn codex_requests_tools_and_prompts_are_typed() {
    let ds = run("codex_0.171.0_tools_http-protobuf", &opts(false));
    for d in &ds {
        for g in &d.batch.events {
            assert_eq!(
                g.context.agent,
                Some(Agent::Codex),
                "{}",
                g.context.scope_name
            );
        }
        for g in &d.batch.metric_points {
            assert_eq!(g.context.agent, Some(Agent::Codex));
        }
        for g in &d.batch.spans {
            assert_eq!(g.context.agent, Some(Agent::Codex));
        }
    }
    let events = all_events(&ds);
    // Log records carry timeUnixNano 0: their observed time is used.
    assert!(
        events
            .iter()
            .all(|(_, r)| r.time_ns == r.observed_ns && r.time_ns > 0)
    );
    let requests = named(&events, "api_request");
    assert_scenario_usage(&requests, "gpt-5.5", 45);
    for r in &requests {
        assert_eq!(r.cache_creation_tokens, Some(0));
        assert_eq!(r.attrs["event.name"], "codex.sse_event");
        assert_eq!(r.cost_usd, None, "gpt-5.5 is not in the shipped table");
        assert!(!r.cost_computed);
    }
    // Codex's other response.completed record (no counts) stays its own.
    let completed_without_counts = events
        .iter()
        .filter(|(_, r)| r.event_name == "codex.sse_event")
        .filter(|(_, r)| {
            r.attrs.get("event.kind").and_then(|v| v.as_str()) == Some("response.completed")
        })
        .count();
    assert_eq!(completed_without_counts, 3);
    assert_eq!(named(&events, "user_prompt").len(), 1);
    assert_eq!(named(&events, "api_error").len(), 0);
    let decisions = named(&events, "tool_decision");
    assert_eq!(decisions.len(), 2);
    for d in &decisions {
        assert_eq!(d.decision.as_deref(), Some("accept"));
        assert_eq!(d.attrs["agent.decision"], "approved");
        assert_eq!(d.decision_source.as_deref(), Some("Config"));
    }
    let results = named(&events, "tool_result");
    let got: Vec<_> = results
        .iter()
        .map(|r| {
            (
                r.tool_name.as_deref(),
                r.duration_ms,
                r.success,
                r.file_path.as_deref(),
                r.tool_use_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                Some("apply_patch"),
                Some(3),
                Some(true),
                Some("hello.txt"),
                Some("call_fake_b64083507b0b")
            ),
            (
                Some("exec_command"),
                Some(92),
                Some(true),
                None,
                Some("call_fake_71dbfdbcdaa3")
            ),
        ]
    );
    // The patch and the command output are content.
    for r in &results {
        assert!(r.content_redacted);
        assert!(!r.attrs.contains_key("arguments") && !r.attrs.contains_key("output"));
    }
    let (ctx, _) = &events[0];
    assert_eq!(
        ctx.session_id.as_deref(),
        Some("01a232f4-a1c3-7fd2-9b7a-d71c37aad9ee")
    );
    assert_eq!(ctx.agent_version.as_deref(), Some("0.171.0"));
    // API-key auth: no user, so the machine the agent ran on.
    assert_eq!(ctx.developer.as_deref(), Some("host-redacted"));
    assert_eq!(ctx.developer_kind, Some(IdentityKind::Host));
}

#[test]
fn gemini_requests_tools_and_prompts_are_typed_and_priced() {
    let ds = run("gemini_0.61.0_tools_http-json", &opts(false));
    assert_eq!(counts(&ds), (21, 27, 7));
    let events = all_events(&ds);
    assert!(
        events
            .iter()
            .all(|(c, _)| c.agent == Some(Agent::GeminiCli))
    );
    let requests = named(&events, "api_request");
    // Gemini leaves thoughts out of its output count: 45 + 10.
    assert_scenario_usage(&requests, "gemini-2.5-flash", 55);
    let durations: Vec<_> = requests.iter().map(|r| r.duration_ms).collect();
    assert_eq!(durations, [Some(349), Some(71), Some(46)]);
    // gemini-2.5-flash: 0.30 input, 0.075 cached, 2.50 output per million.
    let want = (900.0 * 0.30 + 300.0 * 0.075 + 55.0 * 2.50) / 1e6;
    for r in &requests {
        assert!((r.cost_usd.unwrap() - want).abs() < 1e-12);
        assert_eq!(r.computed_cost_usd, r.cost_usd);
        assert!(r.cost_computed);
        assert_eq!(r.status_code, Some(200));
    }
    // The semantic-convention copies of the same usage are not requests.
    assert_eq!(
        named(&events, "gen_ai.client.inference.operation.details").len(),
        6
    );
    assert_eq!(named(&events, "user_prompt").len(), 1);
    let tools: Vec<_> = named(&events, "tool_result")
        .iter()
        .map(|r| {
            (
                r.tool_name.as_deref(),
                r.duration_ms,
                r.success,
                r.decision.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        tools,
        [
            (Some("write_file"), Some(94), Some(true), Some("accept")),
            (
                Some("run_shell_command"),
                Some(221),
                Some(true),
                Some("accept")
            ),
        ]
    );
    let (ctx, _) = &events[0];
    assert_eq!(
        ctx.session_id.as_deref(),
        Some("9547e3d0-c56b-4ef4-bc8d-6dfa8d9f6d9f")
    );
    assert_eq!(
        ctx.developer.as_deref(),
        Some("07a1417e-d4d0-47c6-9225-9e7bb1d33c39")
    );
    assert_eq!(ctx.developer_kind, Some(IdentityKind::InstallationId));
    // service.version is Node.js's, not the CLI's: no version is claimed.
    assert_eq!(ctx.agent_version, None);
    // The command line holds the prompt: content, dropped unless captured.
    assert!(!ctx.resource_attrs.contains_key("process.command_args"));
    assert!(ctx.resource_attrs.contains_key("process.command"));
    let captured = all_events(&run("gemini_0.61.0_tools_http-json", &opts(true)));
    assert!(
        captured[0]
            .0
            .resource_attrs
            .contains_key("process.command_args")
    );
}

#[test]
fn opencode_spans_give_its_requests_and_tool_calls() {
    let ds = run("opencode_1.18.33_tools_http-json", &opts(false));
    // 39 log records, and one event per model call (4) and tool call (2).
    assert_eq!(counts(&ds), (39 + 6, 0, 1204));
    let events = all_events(&ds);
    assert!(events.iter().all(|(c, _)| c.agent == Some(Agent::Opencode)));
    let requests = named(&events, "api_request");
    // A title generation and the scenario's three answers.
    assert_eq!(requests.len(), 4);
    assert_scenario_usage(&requests[1..], "fake-gpt", 45);
    let durations: Vec<_> = requests.iter().map(|r| r.duration_ms).collect();
    assert_eq!(durations, [Some(287), Some(247), Some(748), Some(99)]);
    for r in &requests {
        assert_eq!(r.attrs["derived_from_span"], "ai.streamText.doStream");
        assert!(r.span_id.is_some());
        assert_eq!(r.cost_usd, None, "fake-gpt has no price");
    }
    let tools: Vec<_> = named(&events, "tool_result")
        .iter()
        .map(|r| (r.tool_name.as_deref(), r.success, r.tool_use_id.as_deref()))
        .collect();
    assert_eq!(
        tools,
        [
            (Some("write"), Some(true), Some("call_fake_f41b66631654")),
            (Some("bash"), Some(true), Some("call_fake_9505b230f15c")),
        ]
    );
    let (ctx, _) = events
        .iter()
        .find(|(_, r)| r.event_name == "api_request")
        .unwrap();
    assert_eq!(
        ctx.session_id.as_deref(),
        Some("ses_dccfcc3acffew2fbDGFtX3hZdz")
    );
    assert_eq!(ctx.agent_version.as_deref(), Some("1.18.33"));
    // OpenCode sends no user, install id or host.
    assert_eq!(ctx.developer, None);
    // Prompts, responses and tool arguments on the AI SDK spans are content.
    for s in ds.iter().flat_map(|d| &d.batch.spans).flat_map(|g| &g.rows) {
        for key in [
            "ai.prompt",
            "ai.prompt.messages",
            "ai.response.text",
            "ai.toolCall.args",
        ] {
            assert!(!s.attrs.contains_key(key), "{} {key}", s.name);
        }
    }
}

#[test]
fn an_identity_map_names_the_developer_of_an_agent_without_users() {
    let mut o = opts(false);
    let mut map = std::collections::BTreeMap::new();
    map.insert("team=capture".to_owned(), "platform-team".to_owned());
    o.identity = Arc::new(crate::config::IdentityMap(map));
    let events = all_events(&run("opencode_1.18.33_tools_http-json", &o));
    let (ctx, _) = events
        .iter()
        .find(|(_, r)| r.event_name == "api_request")
        .unwrap();
    assert_eq!(ctx.developer.as_deref(), Some("platform-team"));
    assert_eq!(ctx.developer_kind, Some(IdentityKind::Mapped));
}

#[test]
fn an_override_prices_a_model_the_table_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.toml");
    std::fs::write(
        &path,
        "[models.\"gpt-5.5\"]\ninput = 1.25\ncached_input = 0.125\noutput = 10.0\n",
    )
    .unwrap();
    let mut o = opts(false);
    o.pricing = Arc::new(crate::pricing::Pricing::with_override_file(&path).unwrap());
    let events = all_events(&run("codex_0.171.0_tools_http-json", &o));
    let want = (900.0 * 1.25 + 300.0 * 0.125 + 45.0 * 10.0) / 1e6;
    for r in named(&events, "api_request") {
        assert!((r.cost_usd.unwrap() - want).abs() < 1e-12);
        assert!(r.cost_computed);
    }
}
