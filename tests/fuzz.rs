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
