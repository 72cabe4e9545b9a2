//! Decoding the real Claude Code captures in `tests/fixtures/claude-code`:
//! record counts, typed values, encodings, dedup keys, content capture.

use std::io::Write;
use std::sync::Arc;

use prost::Message;
use serde_json::{Value, json};

use super::*;
use crate::rows::{EventRow, IdentityKind, MetricKind, SpanRow, Temporality};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/claude-code/");

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn signal_of(rel: &str) -> Signal {
    if rel.contains("_logs.") {
        Signal::Logs
    } else if rel.contains("_metrics.") {
        Signal::Metrics
    } else {
        Signal::Traces
    }
}

fn opts(capture_content: bool) -> DecodeOptions {
    DecodeOptions {
        max_body_bytes: 1 << 20,
        capture_content,
    }
}

fn json_fixture(rel: &str, capture: bool) -> Decoded {
    decode(
        signal_of(rel),
        &fixture(rel),
        Some("application/json"),
        None,
        &opts(capture),
    )
    .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn events(d: &Decoded) -> Vec<&EventRow> {
    let mut rows: Vec<&EventRow> = d.batch.events.iter().flat_map(|g| g.rows.iter()).collect();
    rows.sort_by_key(|r| r.sequence);
    rows
}

fn event(d: &Decoded, seq: i64) -> &EventRow {
    events(d)
        .into_iter()
        .find(|r| r.sequence == Some(seq))
        .unwrap_or_else(|| panic!("no event.sequence {seq}"))
}

fn spans(d: &Decoded) -> Vec<&SpanRow> {
    d.batch.spans.iter().flat_map(|g| g.rows.iter()).collect()
}

/// Record counts computed independently from the raw captures (python over
/// the JSON, a minimal wire-format walker over the protobuf).
const COUNTS: &[(&str, usize)] = &[
    ("t1_json_text/otlp/001_v1_traces.json", 2),
    ("t1_json_text/otlp/002_v1_logs.json", 3),
    ("t1_json_text/otlp/003_v1_metrics.json", 7),
    ("v2100_t3_json_tools/otlp/001_v1_logs.json", 11),
    ("v2100_t3_json_tools/otlp/002_v1_traces.json", 14),
    ("v2100_t3_json_tools/otlp/003_v1_metrics.json", 9),
    ("v330_t10_headers_gzip/otlp/001_v1_logs.json", 8),
    ("v330_t10_headers_gzip/otlp/002_v1_metrics.json", 7),
    ("v330_t1_json_text/otlp/001_v1_traces.json", 2),
    ("v330_t1_json_text/otlp/002_v1_logs.json", 8),
    ("v330_t1_json_text/otlp/003_v1_metrics.json", 7),
    ("v330_t3_json_tools_details/otlp/001_v1_metrics.json", 11),
    ("v330_t3_json_tools_details/otlp/002_v1_logs.json", 23),
    ("v330_t3_json_tools_details/otlp/003_v1_logs.json", 3),
    ("v330_t3_json_tools_details/otlp/004_v1_metrics.json", 8),
    ("v330_t3_json_tools_details/otlp/005_v1_traces.json", 26),
    ("v330_t5_json_mcp/otlp/001_v1_traces.json", 6),
    ("v330_t5_json_mcp/otlp/002_v1_logs.json", 13),
    ("v330_t5_json_mcp/otlp/003_v1_metrics.json", 12),
    ("v330_t6_json_error529_notrace/otlp/001_v1_metrics.json", 1),
    ("v330_t6_json_error529_notrace/otlp/002_v1_logs.json", 6),
    ("v330_t6_json_error529_notrace/otlp/003_v1_logs.json", 3),
    ("v330_t6_json_error529_notrace/otlp/004_v1_metrics.json", 1),
];

const PB_COUNTS: &[(&str, usize)] = &[
    ("v330_t4_pb_write/otlp/001_v1_traces.pb", 10),
    ("v330_t4_pb_write/otlp/002_v1_logs.pb", 14),
    ("v330_t4_pb_write/otlp/003_v1_metrics.pb", 10),
];

#[test]
fn every_json_fixture_yields_its_records() {
    for &(rel, n) in COUNTS {
        let d = json_fixture(rel, false);
        assert_eq!(d.batch.len(), n, "{rel}");
        assert_eq!(d.rejected, 0, "{rel}: {:?}", d.message);
        assert!(d.message.is_none());
        for g in &d.batch.events {
            assert!(g.context.claude_code, "{rel}");
        }
    }
}

#[test]
fn protobuf_fixtures_yield_their_records() {
    for &(rel, n) in PB_COUNTS {
        let d = decode(
            signal_of(rel),
            &fixture(rel),
            Some("application/x-protobuf"),
            None,
            &opts(false),
        )
        .unwrap();
        assert_eq!(d.batch.len(), n, "{rel}");
        assert_eq!(d.rejected, 0);
    }
    let d = decode(
        Signal::Logs,
        &fixture("v330_t4_pb_write/otlp/002_v1_logs.pb"),
        Some("application/x-protobuf"),
        None,
        &opts(false),
    )
    .unwrap();
    let write = events(&d)
        .into_iter()
        .find(|r| r.event_name == "tool_result" && r.tool_name.as_deref() == Some("Write"))
        .unwrap();
    assert_eq!(write.success, Some(true));
    assert_eq!(write.duration_ms, Some(19));
    // This run had no OTEL_LOG_TOOL_DETAILS: no tool_input, no path.
    assert_eq!(write.file_path, None);
    let durations: Vec<_> = events(&d)
        .into_iter()
        .filter(|r| r.event_name == "api_request")
        .map(|r| r.duration_ms)
        .collect();
    assert_eq!(durations, [Some(41), Some(40), Some(13)]);
}

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
    // This capture carries no status_code attribute: nothing is invented.
    assert_eq!(api_error.status_code, None);
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
fn gzip_fixture_decompresses_to_the_json() {
    for (gz, plain) in [
        (
            "v330_t10_headers_gzip/otlp/001_v1_logs.gz",
            "v330_t10_headers_gzip/otlp/001_v1_logs.json",
        ),
        (
            "v330_t10_headers_gzip/otlp/002_v1_metrics.gz",
            "v330_t10_headers_gzip/otlp/002_v1_metrics.json",
        ),
    ] {
        assert_eq!(
            decompress(&fixture(gz), Some("gzip"), 1 << 20).unwrap(),
            fixture(plain)
        );
        let a = decode(
            signal_of(plain),
            &fixture(gz),
            Some("application/json"),
            Some("gzip"),
            &opts(false),
        )
        .unwrap();
        let b = json_fixture(plain, false);
        assert_eq!(a.batch, b.batch);
        assert!(!a.batch.is_empty());
    }
}

#[test]
fn json_and_protobuf_give_identical_batches() {
    for &(rel, _) in COUNTS {
        let json_body = fixture(rel);
        let pb = match signal_of(rel) {
            Signal::Logs => decode_logs(&json_body, Encoding::Json)
                .unwrap()
                .encode_to_vec(),
            Signal::Metrics => decode_metrics(&json_body, Encoding::Json)
                .unwrap()
                .encode_to_vec(),
            Signal::Traces => decode_traces(&json_body, Encoding::Json)
                .unwrap()
                .encode_to_vec(),
        };
        let a = json_fixture(rel, false);
        let b = decode(
            signal_of(rel),
            &pb,
            Some("application/x-protobuf"),
            None,
            &opts(false),
        )
        .unwrap();
        assert_eq!(a.batch, b.batch, "{rel}");
    }
}

#[test]
fn retries_share_dedup_keys_and_duplicates_in_one_request_do_not() {
    let rel = "v330_t3_json_tools_details/otlp/003_v1_logs.json";
    let keys = |d: &Decoded| events(d).iter().map(|r| r.dedup).collect::<Vec<_>>();
    let first = json_fixture(rel, false);
    let retry = json_fixture(rel, true);
    assert_eq!(keys(&first), keys(&retry));

    let mut req = decode_logs(&fixture(rel), Encoding::Json).unwrap();
    let records = &mut req.resource_logs[0].scope_logs[0].log_records;
    let copy = records[0].clone();
    records.push(copy);
    let d = logs_to_batch(&req, &opts(false));
    let all: Vec<_> = d.batch.events.iter().flat_map(|g| &g.rows).collect();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].attrs, all[3].attrs);
    assert_ne!(all[0].dedup, all[3].dedup);
    let mut unique: Vec<_> = all.iter().map(|r| r.dedup).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4);
    // The first copy keeps the key it has when it arrives alone.
    assert_eq!(all[0].dedup, keys(&first)[0]);
    // The same again yields the same four keys.
    let again = logs_to_batch(&req, &opts(false));
    let again: Vec<_> = again
        .batch
        .events
        .iter()
        .flat_map(|g| &g.rows)
        .map(|r| r.dedup)
        .collect();
    assert_eq!(again, all.iter().map(|r| r.dedup).collect::<Vec<_>>());
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
    assert!(ctx.claude_code);
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
fn metric_points_typed() {
    let d = json_fixture("v330_t3_json_tools_details/otlp/004_v1_metrics.json", false);
    let points: Vec<_> = d.batch.metric_points.iter().flat_map(|g| &g.rows).collect();
    assert_eq!(points.len(), 8);
    let input = points
        .iter()
        .find(|p| p.name == "claude_code.token.usage" && p.kind_attr.as_deref() == Some("input"))
        .unwrap();
    assert_eq!(input.value, 120.0);
    assert_eq!(input.unit, "tokens");
    assert_eq!(input.kind, MetricKind::Sum);
    assert_eq!(input.temporality, Temporality::Delta);
    assert!(input.monotonic);
    assert_eq!(input.model.as_deref(), Some("claude-opus-5-5"));
    assert_eq!(input.start_ns, 1795281160875000000);
    assert_eq!(input.time_ns, 1795281160971000000);
    assert_eq!(input.attrs.get("query_source"), Some(&json!("main")));
    assert_eq!(input.attrs.get("effort"), Some(&json!("medium")));
    assert!(!input.attrs.contains_key("model") && !input.attrs.contains_key("type"));
    let cost = points
        .iter()
        .find(|p| p.name == "claude_code.cost.usage")
        .unwrap();
    assert_eq!(cost.value, 0.0009760000000000001);
    assert_eq!(cost.unit, "USD");
    let active = points
        .iter()
        .find(|p| p.name == "claude_code.active_time.total")
        .unwrap();
    assert_eq!(active.value, 0.998);
    assert_eq!(active.kind_attr.as_deref(), Some("cli"));
}

#[test]
fn histogram_summary_and_gauge_points() {
    let body = json!({"resourceMetrics": [{"scopeMetrics": [{"scope": {"name": "other"}, "metrics": [
        {"name": "latency", "unit": "ms", "histogram": {"aggregationTemporality": 2, "dataPoints": [
            {"timeUnixNano": "10", "startTimeUnixNano": "5", "count": "3", "sum": 12.5,
             "bucketCounts": ["1", "2"], "explicitBounds": [5.0], "min": 1.5, "max": 8}]}},
        {"name": "q", "summary": {"dataPoints": [{"timeUnixNano": 10, "count": 4, "sum": 2.0,
             "quantileValues": [{"quantile": 0.5, "value": 0.4}]}]}},
        {"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": 10, "asInt": "7"}, {"timeUnixNano": 0, "asInt": 1}]}},
        {"name": "e", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [
            {"timeUnixNano": 10, "count": 2, "sum": 3.0, "scale": 1, "zeroCount": 0,
             "positive": {"offset": 1, "bucketCounts": [1, 1]}}]}}
    ]}]}]});
    let d = decode(
        Signal::Metrics,
        body.to_string().as_bytes(),
        Some("application/json"),
        None,
        &opts(false),
    )
    .unwrap();
    assert_eq!(d.rejected, 1, "the gauge point without a time");
    assert!(
        d.message
            .as_deref()
            .unwrap()
            .contains("metrics[2].dataPoints[1]")
    );
    let points: Vec<_> = d.batch.metric_points.iter().flat_map(|g| &g.rows).collect();
    assert_eq!(points.len(), 4);
    assert!(!d.batch.metric_points[0].context.claude_code);
    let h = points[0];
    assert_eq!(
        (h.kind, h.temporality, h.value, h.count),
        (
            MetricKind::Histogram,
            Temporality::Cumulative,
            12.5,
            Some(3)
        )
    );
    assert_eq!(
        h.detail,
        Some(json!({"bounds": [5.0], "bucket_counts": [1, 2], "min": 1.5, "max": 8.0}))
    );
    let s = points[1];
    assert_eq!(
        (s.kind, s.value, s.count),
        (MetricKind::Summary, 2.0, Some(4))
    );
    assert_eq!(
        s.detail,
        Some(json!({"quantiles": [{"quantile": 0.5, "value": 0.4}]}))
    );
    let g = points[2];
    assert_eq!(
        (g.kind, g.value, g.detail.clone()),
        (MetricKind::Gauge, 7.0, None)
    );
    let e = points[3];
    assert_eq!(
        (e.kind, e.value, e.count),
        (MetricKind::ExponentialHistogram, 3.0, Some(2))
    );
    assert_eq!(
        e.detail.as_ref().unwrap()["positive"],
        json!({"offset": 1, "bucket_counts": [1, 1]})
    );
}

#[test]
fn spans_typed() {
    let d = json_fixture("v330_t3_json_tools_details/otlp/005_v1_traces.json", false);
    let all = spans(&d);
    assert_eq!(all.len(), 26);
    let read = all
        .iter()
        .find(|s| s.name == "claude_code.tool" && s.tool_name.as_deref() == Some("Read"))
        .unwrap();
    assert_eq!(read.span_id, hex::decode("a871ffde16b9123e").unwrap());
    assert_eq!(
        read.parent_span_id,
        hex::decode("c7e2cadfa8d54963").unwrap()
    );
    assert_eq!(read.trace_id.len(), 16);
    assert_eq!(
        read.file_path.as_deref(),
        Some("/home/dev/webapp/hello.txt")
    );
    assert_eq!(
        read.tool_use_id.as_deref(),
        Some("toolu_fake_4dfd50603bad426c")
    );
    assert_eq!(read.duration_ms, Some(59));
    assert_eq!(
        (read.start_ns, read.end_ns),
        (1795281160291000000, 1795281160349761046)
    );
    assert_eq!(read.kind, 1);
    let blocked = all
        .iter()
        .find(|s| s.span_id == hex::decode("85b5caaa4b202f65").unwrap())
        .unwrap();
    assert_eq!(blocked.decision.as_deref(), Some("accept"));
    assert_eq!(blocked.decision_source.as_deref(), Some("config"));
    let failed = all
        .iter()
        .find(|s| s.span_id == hex::decode("775a150dc475f401").unwrap())
        .unwrap();
    assert_eq!(failed.status_code, 2);
    assert_eq!(
        failed.status_message.as_deref(),
        Some("Shell command failed")
    );
    assert_eq!(failed.success, Some(false));
    let llm = all
        .iter()
        .find(|s| s.span_id == hex::decode("5176931ef25d1c97").unwrap())
        .unwrap();
    assert_eq!(llm.model.as_deref(), Some("claude-opus-5-5"));
    let detail = llm.detail.as_ref().unwrap();
    assert_eq!(detail["events"][0]["attrs"]["attempt"], json!(1));
    assert_eq!(detail["flags"], json!(257));
    let root = all
        .iter()
        .find(|s| s.name == "claude_code.interaction")
        .unwrap();
    assert!(root.parent_span_id.is_empty());
    // No duration_ms attribute on the root: computed from the times.
    assert_eq!(
        root.duration_ms,
        Some((1795281160961742298 - 1795281159963000000) / 1_000_000)
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
    assert!(!g.context.claude_code);
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

#[test]
fn bad_bodies_are_refused() {
    let o = opts(false);
    let pb = fixture("v330_t4_pb_write/otlp/002_v1_logs.pb");
    let truncated = &pb[..pb.len() - 7];
    assert!(matches!(
        decode(
            Signal::Logs,
            truncated,
            Some("application/x-protobuf"),
            None,
            &o
        ),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode(
            Signal::Logs,
            b"{\"resourceLogs\": [",
            Some("application/json"),
            None,
            &o
        ),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        decode(Signal::Logs, b"{}", Some("text/plain"), None, &o),
        Err(DecodeError::UnsupportedMediaType(_))
    ));
    assert!(matches!(
        decode(Signal::Logs, b"{}", None, None, &o),
        Err(DecodeError::UnsupportedMediaType(_))
    ));
    assert!(matches!(
        decode(
            Signal::Logs,
            b"{}",
            Some("application/json"),
            Some("br"),
            &o
        ),
        Err(DecodeError::UnsupportedEncoding(_))
    ));
    let empty = decode(Signal::Logs, b"{}", Some("application/json"), None, &o).unwrap();
    assert!(empty.batch.is_empty() && empty.rejected == 0);
    let empty = decode(
        Signal::Traces,
        b"",
        Some("application/x-protobuf"),
        None,
        &o,
    )
    .unwrap();
    assert!(empty.batch.is_empty());
    let too_big = DecodeOptions {
        max_body_bytes: 100,
        capture_content: false,
    };
    assert!(matches!(
        decode(
            Signal::Logs,
            &pb,
            Some("application/x-protobuf"),
            None,
            &too_big
        ),
        Err(DecodeError::TooLarge { limit: 100 })
    ));
}

#[test]
fn gzip_bomb_is_too_large() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..50 {
        gz.write_all(&zeros).unwrap();
    }
    let bomb = gz.finish().unwrap();
    let o = DecodeOptions {
        max_body_bytes: 1 << 20,
        capture_content: false,
    };
    assert!(matches!(
        decode(Signal::Logs, &bomb, Some("application/x-protobuf"), Some("gzip"), &o),
        Err(DecodeError::TooLarge { limit }) if limit == 1 << 20
    ));
}

#[test]
fn signal_paths() {
    assert_eq!(Signal::Logs.path(), "/v1/logs");
    assert_eq!(Signal::Metrics.path(), "/v1/metrics");
    assert_eq!(Signal::Traces.path(), "/v1/traces");
}
