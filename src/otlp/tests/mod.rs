//! Decoding the real Claude Code captures in `tests/fixtures/claude-code`:
//! record counts, encodings, dedup keys and refused bodies here; typed
//! event values and content capture in `events`, metrics and spans in
//! `metrics_spans`.

mod agents;
mod events;
mod metrics_spans;

use std::io::Write;
use std::sync::Arc;

use prost::Message;

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
        ..DecodeOptions::default()
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
            assert!(g.context.claude_code(), "{rel}");
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
fn gzip_fixture_decompresses_to_the_json() {
    for (gz, plain, records) in [
        (
            "v330_t10_headers_gzip/otlp/001_v1_logs.gz",
            "v330_t10_headers_gzip/otlp/001_v1_logs.json",
            8,
        ),
        (
            "v330_t10_headers_gzip/otlp/002_v1_metrics.gz",
            "v330_t10_headers_gzip/otlp/002_v1_metrics.json",
            7,
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
        assert_eq!(a.batch.len(), records);
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
        ..DecodeOptions::default()
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
        ..DecodeOptions::default()
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

/// Rough decoding throughput on the tool-heavy capture, replicated to 46,000
/// events. Run with
/// `cargo test --release --lib otlp::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let mut req = decode_logs(
        &fixture("v330_t3_json_tools_details/otlp/002_v1_logs.json"),
        Encoding::Json,
    )
    .unwrap();
    let records = req.resource_logs[0].scope_logs[0].log_records.clone();
    for _ in 0..1999 {
        req.resource_logs[0].scope_logs[0]
            .log_records
            .extend(records.iter().cloned());
    }
    let n = req.resource_logs[0].scope_logs[0].log_records.len();
    let pb = req.encode_to_vec();
    let json = serde_json::to_vec(&serde_json::json!({"resourceLogs": [{
        "resource": serde_json::from_slice::<serde_json::Value>(&fixture("v330_t3_json_tools_details/otlp/002_v1_logs.json")).unwrap()["resourceLogs"][0]["resource"],
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events", "version": "2.1.330"},
            "logRecords": std::iter::repeat_n(
                serde_json::from_slice::<serde_json::Value>(&fixture("v330_t3_json_tools_details/otlp/002_v1_logs.json")).unwrap()["resourceLogs"][0]["scopeLogs"][0]["logRecords"].clone(), 2000)
                .flat_map(|v| v.as_array().unwrap().clone()).collect::<Vec<_>>()}]}]}))
    .unwrap();
    let big = DecodeOptions {
        max_body_bytes: 1 << 30,
        capture_content: false,
        ..DecodeOptions::default()
    };
    for (name, body, ct) in [
        ("protobuf", &pb, "application/x-protobuf"),
        ("json", &json, "application/json"),
    ] {
        let start = std::time::Instant::now();
        let enc = parse_content_type(Some(ct)).unwrap();
        let parsed = decode_logs(body, enc).unwrap();
        let parse_secs = start.elapsed().as_secs_f64();
        let d = logs_to_batch(&parsed, &big);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: parse {parse_secs:.3}s, rows {:.3}s",
            secs - parse_secs
        );
        assert_eq!(d.batch.len(), n);
        println!(
            "{name}: {n} events, {} bytes, {:.0} events/s",
            body.len(),
            n as f64 / secs
        );
    }
}

#[test]
fn options_follow_the_config() {
    let config = crate::config::Config::default();
    let from_config = DecodeOptions::from_config(&config).unwrap();
    let default = DecodeOptions::default();
    assert_eq!(from_config.max_body_bytes, default.max_body_bytes);
    assert!(!from_config.capture_content && !default.capture_content);
}
