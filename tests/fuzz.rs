//! Bounded fuzzing with proptest, run by the normal test command: OTLP
//! decoding (protobuf, JSON, compression, content types) and tool-argument
//! parsing must never panic, whatever the bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tokentally::otlp::{self, DecodeOptions, Signal};

fn opts() -> DecodeOptions {
    DecodeOptions {
        max_body_bytes: 1 << 20,
        capture_content: false,
        ..DecodeOptions::default()
    }
}

/// JSON values shaped loosely like OTLP, so the fuzzer reaches deep fields.
fn otlp_like_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[a-zA-Z0-9_.]{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("abcdef0123456789abcdef0123456789")),
    ];
    let keys = prop_oneof![
        Just("resourceLogs"),
        Just("resourceMetrics"),
        Just("resourceSpans"),
        Just("scopeLogs"),
        Just("scopeMetrics"),
        Just("scopeSpans"),
        Just("logRecords"),
        Just("metrics"),
        Just("spans"),
        Just("attributes"),
        Just("key"),
        Just("value"),
        Just("stringValue"),
        Just("intValue"),
        Just("doubleValue"),
        Just("boolValue"),
        Just("arrayValue"),
        Just("kvlistValue"),
        Just("bytesValue"),
        Just("values"),
        Just("timeUnixNano"),
        Just("body"),
        Just("traceId"),
        Just("spanId"),
        Just("sum"),
        Just("gauge"),
        Just("histogram"),
        Just("dataPoints"),
        Just("asDouble"),
        Just("asInt"),
        Just("resource"),
        Just("scope"),
        Just("name"),
        Just("startTimeUnixNano"),
        Just("bucketCounts"),
    ];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..5).prop_map(|kvs| {
                serde_json::Value::Object(
                    kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                )
            }),
        ]
    })
}

const TOOLS: [&str; 10] = [
    "search_events",
    "cost_by_developer",
    "model_breakdown",
    "top_edited_files",
    "tool_latency",
    "session_timeline",
    "list_sessions",
    "usage_over_time",
    "describe_data",
    "no_such_tool",
];

/// Argument values a model (or an attacker) might send, by field name.
fn tool_arguments() -> impl Strategy<Value = serde_json::Value> {
    let keys = prop_oneof![
        Just("since"),
        Just("until"),
        Just("timezone"),
        Just("developer"),
        Just("team"),
        Just("attribute"),
        Just("model"),
        Just("session_id"),
        Just("prompt_id"),
        Just("event_name"),
        Just("tool_name"),
        Just("limit"),
        Just("cursor"),
        Just("bucket"),
        Just("split_by"),
        Just("sort_by"),
        Just("success"),
        Just("status_code"),
        Just("error_contains"),
        Just("repository"),
    ];
    let values = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        ".{0,40}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("7d"),
            Just("24h"),
            Just("today"),
            Just("yesterday"),
            Just("this_week"),
            Just("-5d"),
            Just("99999999d"),
            Just("1900-01-01T00:00:00Z"),
            Just("9999-12-31T23:59:59Z"),
            Just("Europe/Berlin"),
            Just("Not/AZone"),
            Just("day"),
            Just("model"),
            Just("team.id=x"),
            Just("'; DROP TABLE events; --"),
            Just("x' UNION SELECT * FROM tokens --"),
        ]
        .prop_map(serde_json::Value::from),
        prop::collection::vec(any::<i64>(), 0..3).prop_map(serde_json::Value::from),
    ];
    prop::collection::vec((keys, values), 0..6).prop_map(|kvs| {
        serde_json::Value::Object(kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    })
}

fn tool_context() -> &'static (
    tokio::runtime::Runtime,
    tokentally::query::ToolContext,
    tempfile::TempDir,
) {
    static CTX: std::sync::OnceLock<(
        tokio::runtime::Runtime,
        tokentally::query::ToolContext,
        tempfile::TempDir,
    )> = std::sync::OnceLock::new();
    CTX.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = tokentally::config::Config::default();
        let store = rt
            .block_on(async {
                tokentally::store::Store::open(
                    dir.path(),
                    tokentally::store::StoreOptions::from_config(&config),
                )
            })
            .unwrap();
        let ctx = tokentally::query::ToolContext::over_store(store, config.query);
        (rt, ctx, dir)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn tool_arguments_never_panic(tool in prop::sample::select(TOOLS.to_vec()), args in tool_arguments()) {
        let (rt, ctx, _) = tool_context();
        let principal = tokentally::auth::Principal {
            token_id: 1,
            token_name: "fuzz".into(),
            scope: tokentally::auth::Scope::Read,
            developers: vec!["dev@example.com".into()],
        };
        let reply = rt.block_on(tokentally::mcp::call_tool(ctx, &principal, tool, args));
        // Either an answer or an error that says something.
        prop_assert!(!reply.text.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn protobuf_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        for signal in [Signal::Logs, Signal::Metrics, Signal::Traces] {
            let _ = otlp::decode(signal, &body, Some("application/x-protobuf"), None, &opts());
            let _ = otlp::decode(signal, &body, Some("application/x-protobuf"), Some("gzip"), &opts());
            let _ = otlp::decode(signal, &body, Some("application/json"), Some("zstd"), &opts());
        }
    }

    #[test]
    fn json_shapes_never_panic(value in otlp_like_json()) {
        let body = value.to_string();
        for signal in [Signal::Logs, Signal::Metrics, Signal::Traces] {
            let _ = otlp::decode(signal, body.as_bytes(), Some("application/json"), None, &opts());
        }
    }

    #[test]
    fn header_values_never_panic(ct in ".{0,40}", ce in ".{0,20}") {
        let _ = otlp::decode(Signal::Logs, b"{}", Some(&ct), Some(&ce), &opts());
    }
}
