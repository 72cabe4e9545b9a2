//! Typed event columns, contexts and content capture.

use serde_json::{Value, json};

use super::*;

#[test]
fn api_request_typed_columns() {
    let d = json_fixture("v330_t3_json_tools_details/otlp/002_v1_logs.json", false);
    let r = event(&d, 7);
    assert_eq!(r.event_name, "api_request");
    assert_eq!(r.model.as_deref(), Some("claude-opus-5-5"));
    assert_eq!(r.input_tokens, Some(120));
    assert_eq!(r.output_tokens, Some(12));
    assert_eq!(r.cache_read_tokens, Some(30));
    assert_eq!(r.cache_creation_tokens, Some(50));
    assert_eq!(r.cost_usd, Some(0.0009760000000000001));
    assert_eq!(r.duration_ms, Some(85));
    assert_eq!(r.ttft_ms, Some(37));
    assert_eq!(r.request_id.as_deref(), Some("req_fake_9507a3b653b6"));
    assert_eq!(r.query_source.as_deref(), Some("sdk"));
    assert_eq!(
        r.prompt_id.as_deref(),
        Some("d81a1786-b14b-47af-abe1-e2f1ea7ca19a")
    );
    assert_eq!(
        (r.time_ns, r.observed_ns),
        (1795281160323000000, 1795281160323000000)
    );
    assert_eq!(
        r.trace_id,
        Some(hex::decode("50353fc852f8dde7e5f4c3d85e61aa2f").unwrap())
    );
    assert_eq!(r.span_id, Some(hex::decode("c7e2cadfa8d54963").unwrap()));
    assert_eq!(r.body, None);
    // Not typed, so kept; typed ones are not stored twice.
    assert_eq!(r.attrs.get("cost_usd_micros"), Some(&json!(976)));
    assert_eq!(r.attrs.get("speed"), Some(&json!("normal")));
    assert!(r.attrs.contains_key("event.timestamp"));
    for typed in [
        "model",
        "input_tokens",
        "cost_usd",
        "event.name",
        "event.sequence",
        "prompt.id",
    ] {
        assert!(!r.attrs.contains_key(typed), "{typed} stored twice");
    }
}

#[test]
fn tool_events_typed_columns() {
    let d = json_fixture("v330_t3_json_tools_details/otlp/002_v1_logs.json", false);
    let decision = event(&d, 6);
    assert_eq!(decision.event_name, "tool_decision");
    assert_eq!(decision.decision.as_deref(), Some("accept"));
    assert_eq!(decision.decision_source.as_deref(), Some("config"));
    assert_eq!(decision.tool_name.as_deref(), Some("Read"));
    assert_eq!(
        decision.tool_use_id.as_deref(),
        Some("toolu_fake_4dfd50603bad426c")
    );

    let read = event(&d, 8);
    assert_eq!(read.event_name, "tool_result");
    assert_eq!(
        read.file_path.as_deref(),
        Some("/home/dev/webapp/hello.txt")
    );
    assert_eq!(read.duration_ms, Some(37));
    assert_eq!(read.success, Some(true));
    assert_eq!(read.attrs.get("tool_input_size_bytes"), Some(&json!("50")));

    let failing = event(&d, 17);
    assert_eq!(failing.tool_name.as_deref(), Some("Bash"));
    assert_eq!(failing.success, Some(false));
    assert_eq!(failing.error.as_deref(), Some("Shell command failed"));
    assert_eq!(failing.duration_ms, Some(34));
    assert_eq!(failing.attrs.get("error_type"), Some(&json!("ShellError")));

    let commit = event(&d, 20);
    assert_eq!(commit.branch.as_deref(), Some("master"));
    assert_eq!(
        commit.attrs.get("vcs.ref.head.revision"),
        Some(&json!("85cf810d1b9bd7bdb069786de61fd55d362b623a"))
    );
}

#[test]
fn api_error_529_fixture() {
    let d = json_fixture("v330_t6_json_error529_notrace/otlp/003_v1_logs.json", false);
    let internal = event(&d, 6);
    assert_eq!(internal.event_name, "internal_error");
    assert_eq!(internal.error.as_deref(), Some("Error"));
    let api_error = event(&d, 7);
    assert_eq!(api_error.event_name, "api_error");
    assert_eq!(
        api_error.error.as_deref(),
        Some("Repeated 529 Overloaded errors")
    );
    assert_eq!(api_error.duration_ms, Some(8));
    // This capture carries no status_code attribute: the status is read
    // from the message, so search_events {"status_code": 529} finds it.
    assert_eq!(api_error.status_code, Some(529));
    assert!(api_error.attrs.get("status_code").is_none());
    assert_eq!(api_error.attrs.get("attempt"), Some(&json!(3)));
    let exhausted = event(&d, 8);
    assert_eq!(exhausted.event_name, "api_retries_exhausted");
    assert_eq!(exhausted.duration_ms, Some(1715));
    assert_eq!(exhausted.attrs.get("total_attempts"), Some(&json!(3)));
}

fn log_request(attributes: Value) -> Vec<u8> {
    json!({"resourceLogs": [{"scopeLogs": [{
        "scope": {"name": "com.anthropic.claude_code.events", "version": "2.1.330"},
        "logRecords": [{"timeUnixNano": "1795281160895000000", "body": {"stringValue": "claude_code.api_error"},
                        "attributes": attributes}]
    }]}]})
    .to_string()
    .into_bytes()
}

#[test]
fn status_code_as_int_or_string() {
    for v in [
        json!({"intValue": 529}),
        json!({"stringValue": "529"}),
        json!({"doubleValue": 529.0}),
    ] {
        let body = log_request(json!([{"key": "status_code", "value": v}]));
        let d = decode(
            Signal::Logs,
            &body,
            Some("application/json"),
            None,
            &opts(false),
        )
        .unwrap();
        let r = &d.batch.events[0].rows[0];
        assert_eq!(r.event_name, "api_error");
        assert_eq!(r.status_code, Some(529));
        assert!(r.attrs.is_empty());
    }
}

/// Rewrites every string attribute value that parses as a number into a
/// number (int or double), as 2.1.330 sends them.
fn numbers_as_numbers(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(s)) = m.get("stringValue") {
                if let Ok(i) = s.parse::<i64>() {
                    *v = json!({"intValue": i});
                    return;
                }
                if let Ok(f) = s.parse::<f64>() {
                    *v = json!({"doubleValue": f});
                    return;
                }
            }
            m.values_mut().for_each(numbers_as_numbers);
        }
        Value::Array(a) => a.iter_mut().for_each(numbers_as_numbers),
        _ => {}
    }
}

#[test]
fn v2100_string_numbers_equal_typed_numbers() {
    let rel = "v2100_t3_json_tools/otlp/001_v1_logs.json";
    let strings = json_fixture(rel, false);
    let r = event(&strings, 1);
    assert_eq!(r.event_name, "api_request");
    assert_eq!(r.input_tokens, Some(120));
    assert_eq!(r.output_tokens, Some(12));
    assert_eq!(r.cache_read_tokens, Some(30));
    assert_eq!(r.cache_creation_tokens, Some(50));
    assert_eq!(r.cost_usd, Some(0.0007365));
    assert_eq!(r.duration_ms, Some(25));
    let tool = event(&strings, 3);
    assert_eq!(tool.success, Some(true));
    assert_eq!(tool.duration_ms, Some(10));
    assert_eq!(
        tool.file_path.as_deref(),
        Some("/home/dev/webapp/hello.txt")
    );

    let mut v: Value = serde_json::from_slice(&fixture(rel)).unwrap();
    numbers_as_numbers(&mut v);
    let body = v.to_string();
    assert!(body.contains(r#""intValue":120"#));
    let numbers = decode(
        Signal::Logs,
        body.as_bytes(),
        Some("application/json"),
        None,
        &opts(false),
    )
    .unwrap();
    let (a, b) = (events(&strings), events(&numbers));
    assert_eq!(a.len(), 11);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (
                x.input_tokens,
                x.output_tokens,
                x.cache_read_tokens,
                x.cache_creation_tokens
            ),
            (
                y.input_tokens,
                y.output_tokens,
                y.cache_read_tokens,
                y.cache_creation_tokens
            )
        );
        assert_eq!(
            (x.cost_usd, x.duration_ms, x.success),
            (y.cost_usd, y.duration_ms, y.success)
        );
    }
}

#[test]
fn content_dropped_unless_captured() {
    let rel = "v330_t3_json_tools_details/otlp/002_v1_logs.json";
    let off = json_fixture(rel, false);
    let on = json_fixture(rel, true);

    let prompt_off = event(&off, 5);
    assert_eq!(prompt_off.event_name, "user_prompt");
    assert!(prompt_off.content_redacted);
    assert!(!prompt_off.attrs.contains_key("prompt"));
    assert!(!prompt_off.attrs.contains_key("prompt_text"));
    assert_eq!(prompt_off.attrs.get("prompt_length"), Some(&json!("14")));
    let prompt_on = event(&on, 5);
    assert!(!prompt_on.content_redacted);
    assert_eq!(
        prompt_on.attrs.get("prompt"),
        Some(&json!("edit hello.txt"))
    );
    assert_eq!(
        prompt_on.attrs.get("prompt_text"),
        Some(&json!("edit hello.txt"))
    );

    let edit_off = event(&off, 11);
    assert!(edit_off.content_redacted);
    assert_eq!(
        edit_off.attrs.get("tool_input"),
        Some(&json!(r#"{"file_path":"/home/dev/webapp/hello.txt"}"#))
    );
    assert_eq!(
        edit_off.file_path.as_deref(),
        Some("/home/dev/webapp/hello.txt")
    );
    assert_eq!(
        edit_off.attrs.get("tool_input_size_bytes"),
        Some(&json!("144"))
    );
    let edit_on = event(&on, 11);
    assert!(!edit_on.content_redacted);
    let input = edit_on
        .attrs
        .get("tool_input")
        .and_then(Value::as_str)
        .unwrap();
    assert!(input.contains(r#""old_string":"line two""#));

    // A Bash tool_input holds only metadata: nothing to drop.
    let bash_off = event(&off, 14);
    assert!(!bash_off.content_redacted);
    assert_eq!(
        bash_off.attrs.get("tool_input"),
        Some(&json!(
            r#"{"command":"echo hi from bash","description":"Print a greeting"}"#
        ))
    );

    let rel = "v330_t3_json_tools_details/otlp/003_v1_logs.json";
    let response = event(&json_fixture(rel, false), 25).clone();
    assert!(response.content_redacted && !response.attrs.contains_key("response"));
    assert_eq!(response.attrs.get("response_length"), Some(&json!(24)));
    let response = event(&json_fixture(rel, true), 25).clone();
    assert_eq!(
        response.attrs.get("response"),
        Some(&json!("Hello from the fake API."))
    );

    // Claude Code's own "<REDACTED>" placeholder is not content.
    let d = json_fixture("v330_t1_json_text/otlp/002_v1_logs.json", false);
    assert_eq!(event(&d, 5).attrs.get("prompt"), Some(&json!("<REDACTED>")));

    // The interaction span's user_prompt.
    let rel = "v330_t3_json_tools_details/otlp/005_v1_traces.json";
    let off = json_fixture(rel, false);
    let interaction = spans(&off)
        .into_iter()
        .find(|s| s.name == "claude_code.interaction")
        .unwrap()
        .clone();
    assert!(interaction.content_redacted && !interaction.attrs.contains_key("user_prompt"));
    let on = json_fixture(rel, true);
    let interaction = spans(&on)
        .into_iter()
        .find(|s| s.name == "claude_code.interaction")
        .unwrap()
        .clone();
    assert_eq!(
        interaction.attrs.get("user_prompt"),
        Some(&json!("edit hello.txt"))
    );
}

#[test]
fn context_is_shared_and_split_from_records() {
    let d = json_fixture("v330_t3_json_tools_details/otlp/002_v1_logs.json", false);
    assert_eq!(d.batch.events.len(), 1, "one session, one context");
    let g = &d.batch.events[0];
    let ctx = &g.context;
    assert_eq!(g.rows.len(), 23);
    assert!(ctx.claude_code());
    assert_eq!(ctx.scope_name, "com.anthropic.claude_code.events");
    assert_eq!(ctx.scope_version, "2.1.330");
    assert_eq!(ctx.service_name.as_deref(), Some("claude-code"));
    assert_eq!(
        ctx.session_id.as_deref(),
        Some("8632fb29-f2bb-4135-b72f-e225ad4d7105")
    );
    let uid = "f96a16fce6e69dbe8ca711f4e1167894838c92055f9878479416480b2dc7ddbe";
    assert_eq!(ctx.developer.as_deref(), Some(uid));
    assert_eq!(ctx.developer_kind, Some(IdentityKind::UserId));
    assert_eq!(ctx.user_id.as_deref(), Some(uid));
    assert_eq!(ctx.terminal_type.as_deref(), Some("xterm-256color"));
    assert_eq!(ctx.app_version.as_deref(), Some("2.1.330"));
    assert_eq!(ctx.resource_attrs.get("team.id"), Some(&json!("platform")));
    assert_eq!(ctx.resource_attrs.get("os.type"), Some(&json!("linux")));
    // OTEL_RESOURCE_ATTRIBUTES copies and session constants move to the context.
    for k in [
        "team.id",
        "department",
        "session.id",
        "user.id",
        "anthropic.custom_base_url",
    ] {
        assert!(ctx.shared_attrs.contains_key(k), "{k}");
        assert!(
            g.rows.iter().all(|r| !r.attrs.contains_key(k)),
            "{k} also on a record"
        );
    }
    assert_eq!(
        ctx.shared_attrs.get("anthropic.custom_base_url"),
        Some(&json!(true))
    );

    // The second request of the same session maps to the same context key.
    let d2 = json_fixture("v330_t3_json_tools_details/otlp/003_v1_logs.json", false);
    assert_eq!(d2.batch.events[0].context.key, ctx.key);
    assert_eq!(*d2.batch.events[0].context, **ctx);

    // Every row of a group shares the one Arc.
    let m = json_fixture("v330_t3_json_tools_details/otlp/004_v1_metrics.json", false);
    assert_eq!(m.batch.metric_points.len(), 1);
    assert!(Arc::strong_count(&m.batch.metric_points[0].context) >= 1);
    assert_eq!(m.batch.metric_points[0].context.session_id, ctx.session_id);
    assert_ne!(
        m.batch.metric_points[0].context.key, ctx.key,
        "another scope"
    );
}

#[test]
fn mcp_fixture() {
    let d = json_fixture("v330_t5_json_mcp/otlp/002_v1_logs.json", false);
    let connected = event(&d, 5);
    assert_eq!(connected.event_name, "mcp_server_connection");
    assert_eq!(connected.mcp_server.as_deref(), Some("fakemcp"));
    assert_eq!(connected.duration_ms, Some(68));
    let result = event(&d, 9);
    assert_eq!(result.tool_name.as_deref(), Some("mcp_tool"));
    assert_eq!(
        (result.mcp_server.as_deref(), result.mcp_tool.as_deref()),
        (Some("fakemcp"), Some("echo"))
    );
    // {"text": "ping"} is content.
    assert!(result.content_redacted);
    assert_eq!(result.attrs.get("tool_input"), Some(&json!("{}")));
    let api = event(&d, 10);
    assert_eq!(
        (api.mcp_server.as_deref(), api.mcp_tool.as_deref()),
        (Some("fakemcp"), Some("echo"))
    );
}

#[test]
fn other_services_are_stored_generically() {
    let body = json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "opencode"}},
        {"key": "user.email", "value": {"stringValue": "dev@example.com"}}]},
    "scopeLogs": [{"scope": {"name": "opencode.plugin"}, "logRecords": [
        {"observedTimeUnixNano": "42", "eventName": "session.start", "severityNumber": 9, "severityText": "INFO",
         "body": {"stringValue": "started"}, "attributes": [{"key": "k", "value": {"intValue": "1"}}]},
        {"timeUnixNano": "43", "body": {"kvlistValue": {"values": [{"key": "a", "value": {"boolValue": true}}]}}}
    ]}]}]});
    let d = decode(
        Signal::Logs,
        body.to_string().as_bytes(),
        Some("application/json"),
        None,
        &opts(false),
    )
    .unwrap();
    let g = &d.batch.events[0];
    assert!(!g.context.claude_code());
    assert_eq!(g.context.service_name.as_deref(), Some("opencode"));
    assert_eq!(g.context.developer.as_deref(), Some("dev@example.com"));
    assert_eq!(g.context.developer_kind, Some(IdentityKind::Email));
    let r = &g.rows[0];
    assert_eq!((r.time_ns, r.observed_ns), (42, 42));
    assert_eq!(r.event_name, "session.start");
    assert_eq!(r.body.as_deref(), Some("started"));
    assert_eq!(
        (r.severity_number, r.severity_text.as_deref()),
        (9, Some("INFO"))
    );
    assert_eq!(r.attrs.get("k"), Some(&json!(1)));
    let r = &g.rows[1];
    assert_eq!(r.event_name, "");
    assert_eq!(r.body.as_deref(), Some(r#"{"a":true}"#));
}

#[test]
fn wrong_length_ids_reject_only_their_record() {
    let body = json!({"resourceLogs": [{"scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": [
        {"timeUnixNano": "1", "body": {"stringValue": "claude_code.a"}, "traceId": "50353fc852f8dde7e5f4c3d85e61aa2f", "spanId": "c7e2cadfa8d54963"},
        {"timeUnixNano": "2", "body": {"stringValue": "claude_code.b"}, "traceId": "abcd"},
        {"timeUnixNano": "3", "body": {"stringValue": "claude_code.c"}, "traceId": ""}
    ]}]}]});
    let d = decode(
        Signal::Logs,
        body.to_string().as_bytes(),
        Some("application/json"),
        None,
        &opts(false),
    )
    .unwrap();
    assert_eq!(d.rejected, 1);
    let message = d.message.unwrap();
    assert!(
        message.contains("logRecords[1]") && message.contains("traceId"),
        "{message}"
    );
    let names: Vec<_> = events_unsorted(&d.batch)
        .into_iter()
        .map(|r| r.event_name.clone())
        .collect();
    assert_eq!(names, ["a", "c"]);

    let spans = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "50353fc852f8dde7e5f4c3d85e61aa2f", "spanId": "c7e2cadfa8d549", "name": "short"},
        {"traceId": "50353fc852f8dde7e5f4c3d85e61aa2f", "spanId": "c7e2cadfa8d54963", "name": "ok"}
    ]}]}]});
    let d = decode(
        Signal::Traces,
        spans.to_string().as_bytes(),
        Some("application/json"),
        None,
        &opts(false),
    )
    .unwrap();
    assert_eq!((d.rejected, d.batch.len()), (1, 1));
    assert!(d.message.unwrap().contains("spanId must be 8 bytes"));
}

fn events_unsorted(b: &rows::Batch) -> Vec<&EventRow> {
    b.events.iter().flat_map(|g| g.rows.iter()).collect()
}

fn claude_event(name: &str, attributes: Value) -> Value {
    json!({"timeUnixNano": "1795281160895000000", "body": {"stringValue": format!("claude_code.{name}")},
           "attributes": attributes})
}

fn decode_events(records: Vec<Value>, capture: bool) -> Decoded {
    let body = json!({"resourceLogs": [{"scopeLogs": [{
        "scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": records}]}]});
    decode(
        Signal::Logs,
        body.to_string().as_bytes(),
        Some("application/json"),
        None,
        &opts(capture),
    )
    .unwrap()
}

fn s(key: &str, v: &str) -> Value {
    json!({"key": key, "value": {"stringValue": v}})
}

#[test]
fn bodies_system_prompts_and_tool_schemas_are_content() {
    let records = vec![
        claude_event(
            "api_request_body",
            json!([s("body", "{\"messages\":[]}"), s("body_length", "15")]),
        ),
        claude_event(
            "system_prompt",
            json!([
                s("system_prompt", "You are..."),
                s("system_prompt_hash", "ab12")
            ]),
        ),
        claude_event(
            "tool",
            json!([s("tool", "{\"name\":\"Read\"}"), s("tool_name", "Read")]),
        ),
        // `body` is only content on the body events.
        claude_event("other", json!([s("body", "kept")])),
    ];
    let off = decode_events(records.clone(), false);
    let rows = events_unsorted(&off.batch);
    assert!(rows[0].content_redacted && !rows[0].attrs.contains_key("body"));
    assert_eq!(rows[0].attrs.get("body_length"), Some(&json!("15")));
    assert!(rows[1].content_redacted && !rows[1].attrs.contains_key("system_prompt"));
    assert_eq!(
        rows[1].attrs.get("system_prompt_hash"),
        Some(&json!("ab12"))
    );
    assert!(rows[2].content_redacted && !rows[2].attrs.contains_key("tool"));
    assert_eq!(rows[2].tool_name.as_deref(), Some("Read"));
    assert!(!rows[3].content_redacted);
    assert_eq!(rows[3].attrs.get("body"), Some(&json!("kept")));

    let on = decode_events(records, true);
    let rows = events_unsorted(&on.batch);
    assert!(rows.iter().all(|r| !r.content_redacted));
    assert_eq!(rows[0].attrs.get("body"), Some(&json!("{\"messages\":[]}")));
    assert_eq!(
        rows[1].attrs.get("system_prompt"),
        Some(&json!("You are..."))
    );
    // Same records, same dedup keys whatever the capture setting.
    let keys = |d: &Decoded| {
        events_unsorted(&d.batch)
            .iter()
            .map(|r| r.dedup)
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&off), keys(&on));
}

#[test]
fn tool_result_decision_cost_micros_and_repository() {
    let records = vec![
        claude_event(
            "tool_result",
            json!([
                s("decision_type", "accept"),
                s("decision_source", "user_temporary"),
                s("repo.name", "webapp"),
                s(
                    "tool_input",
                    "{\"notebook_path\":\"/home/dev/webapp/n.ipynb\",\"new_source\":\"x\"}"
                ),
            ]),
        ),
        claude_event(
            "api_request",
            json!([{"key": "cost_usd_micros", "value": {"intValue": "1228"}}]),
        ),
        claude_event(
            "tool_decision",
            json!([s("tool_parameters", "{\"git_branch\":\"feature/x\"}")]),
        ),
    ];
    let d = decode_events(records, false);
    let rows = events_unsorted(&d.batch);
    assert_eq!(rows[0].decision.as_deref(), Some("accept"));
    assert_eq!(rows[0].decision_source.as_deref(), Some("user_temporary"));
    assert_eq!(rows[0].repository.as_deref(), Some("webapp"));
    assert_eq!(
        rows[0].file_path.as_deref(),
        Some("/home/dev/webapp/n.ipynb")
    );
    assert_eq!(
        rows[0].attrs.get("tool_input"),
        Some(&json!("{\"notebook_path\":\"/home/dev/webapp/n.ipynb\"}"))
    );
    assert_eq!(rows[1].cost_usd, Some(0.001228));
    assert!(rows[1].attrs.is_empty(), "micros went to cost_usd");
    assert_eq!(rows[2].branch.as_deref(), Some("feature/x"));
}

#[test]
fn developer_identity_precedence() {
    let record = |attrs: Value| claude_event("user_prompt", attrs);
    let d = decode_events(
        vec![
            record(json!([
                s("user.id", "u1"),
                s("user.account_uuid", "acc-1"),
                s("user.email", "a@example.com")
            ])),
            record(json!([s("user.id", "u1"), s("user.account_uuid", "acc-1")])),
            record(json!([s("user.id", "u1")])),
            record(json!([])),
        ],
        false,
    );
    let kinds: Vec<_> = d
        .batch
        .events
        .iter()
        .map(|g| (g.context.developer.clone(), g.context.developer_kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (Some("a@example.com".into()), Some(IdentityKind::Email)),
            (Some("acc-1".into()), Some(IdentityKind::AccountUuid)),
            (Some("u1".into()), Some(IdentityKind::UserId)),
            (None, None),
        ]
    );
}
