//! `tokentally import FILE...`: OTLP export requests from files, through
//! the same decoder and store writer as the receivers (so deduplication,
//! typing and content rules are the same: importing a file twice stores it
//! once). A file is read as
//!
//! * OTLP/JSON: one export request, or JSON Lines of them as the
//!   OpenTelemetry Collector's file exporter writes (one request a line,
//!   logs, metrics and traces mixed; the signal comes from each line's
//!   `resourceLogs` / `resourceMetrics` / `resourceSpans`);
//! * OTLP/protobuf: one export request, whose signal comes from the file
//!   name (`logs`, `metrics`, `traces` or `spans` in it) or `--signal`;
//!
//! gzip or zstd compressed or not (seen from the bytes). A line or file
//! that cannot be read is reported with its place and the rest goes on.
//! The records go to whichever store the receivers write to (the embedded
//! store, or ClickHouse through its batching sink).

use std::path::{Path, PathBuf};

use crate::otlp::{DecodeOptions, Signal};
use crate::store::Sink;

/// Export requests written at once (far below the writer's queue bound).
const IN_FLIGHT: usize = 16;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Files read.
    pub files: u64,
    /// Export requests found and decoded.
    pub requests: u64,
    /// Records stored (on ClickHouse: written, a record written twice
    /// counting once in every answer).
    pub stored: u64,
    /// Records already in the store (an earlier import or export; the
    /// embedded store tells them apart at write time, ClickHouse at read).
    pub duplicates: u64,
    /// Records refused one by one by the decoder (poison values and the like).
    pub refused_records: u64,
    /// Requests, lines or files that could not be read: where, and why.
    pub failures: Vec<(String, String)>,
}

/// Why an import stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The store refused a write.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A background task failed.
    #[error("internal: {0}")]
    Internal(String),
}

/// One export request found in a file.
#[derive(Debug)]
struct Found {
    signal: Signal,
    json: bool,
    bytes: Vec<u8>,
    place: String,
}

/// The signal a file name names, if exactly one.
fn signal_of_name(name: &str) -> Option<Signal> {
    let n = name.to_ascii_lowercase();
    let hits: Vec<Signal> = [
        ("logs", Signal::Logs),
        ("metrics", Signal::Metrics),
        ("traces", Signal::Traces),
        ("spans", Signal::Traces),
    ]
    .into_iter()
    .filter(|(w, _)| n.contains(w))
    .map(|(_, s)| s)
    .collect();
    match hits.as_slice() {
        [one] => Some(*one),
        [a, b] if a == b => Some(*a),
        _ => None,
    }
}

/// The signal of an OTLP/JSON export request, from its top-level key.
fn signal_of_json(v: &serde_json::Value) -> Option<Signal> {
    let o = v.as_object()?;
    let has = |a: &str, b: &str| o.contains_key(a) || o.contains_key(b);
    match (
        has("resourceLogs", "resource_logs"),
        has("resourceMetrics", "resource_metrics"),
        has("resourceSpans", "resource_spans"),
    ) {
        (true, false, false) => Some(Signal::Logs),
        (false, true, false) => Some(Signal::Metrics),
        (false, false, true) => Some(Signal::Traces),
        _ => None,
    }
}

fn json_request(bytes: &[u8], place: String) -> Result<Found, (String, String)> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| (place.clone(), format!("not JSON: {e}")))?;
    let signal = signal_of_json(&v).ok_or_else(|| {
        (
            place.clone(),
            "not an OTLP export request (it needs exactly one of resourceLogs, resourceMetrics, resourceSpans)"
                .to_string(),
        )
    })?;
    Ok(Found {
        signal,
        json: true,
        bytes: bytes.to_vec(),
        place,
    })
}

/// The export requests in one file's bytes (`name` for places and the
/// protobuf signal).
fn requests_in(
    name: &str,
    raw: &[u8],
    signal: Option<Signal>,
    max_bytes: usize,
) -> Vec<Result<Found, (String, String)>> {
    let encoding = match raw {
        [0x1f, 0x8b, ..] => Some("gzip"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
        _ => None,
    };
    // A file of many requests may be larger than one request may be.
    let limit = max_bytes.saturating_mul(64);
    let bytes = match crate::otlp::decompress(raw, encoding, limit) {
        Ok(b) => b,
        Err(e) => return vec![Err((name.to_string(), e.to_string()))],
    };
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        // One request (possibly pretty-printed), else JSON Lines.
        if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
            return vec![json_request(&bytes, name.to_string())];
        }
        return bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| line.iter().any(|b| !b.is_ascii_whitespace()))
            .map(|(i, line)| json_request(line, format!("{name}:{}", i + 1)))
            .collect();
    }
    match signal.or_else(|| signal_of_name(name)) {
        Some(signal) => vec![Ok(Found {
            signal,
            json: false,
            bytes,
            place: name.to_string(),
        })],
        None => vec![Err((
            name.to_string(),
            "a protobuf file: name its signal with --signal logs|metrics|traces (or put it in the file name)"
                .to_string(),
        ))],
    }
}

/// Imports `files` into `store`; `progress(bytes)` is called after each
/// file with its size.
pub async fn import(
    store: std::sync::Arc<dyn Sink>,
    opts: &DecodeOptions,
    files: &[PathBuf],
    signal: Option<Signal>,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut writes = tokio::task::JoinSet::new();
    for path in files {
        let name = path.display().to_string();
        let raw = match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(e) => {
                report.failures.push((name, format!("cannot read: {e}")));
                continue;
            }
        };
        report.files += 1;
        let size = raw.len() as u64;
        let max = opts.max_body_bytes;
        let found = tokio::task::spawn_blocking(move || requests_in(&name, &raw, signal, max))
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?;
        for item in found {
            let f = match item {
                Ok(f) => f,
                Err(failure) => {
                    report.failures.push(failure);
                    continue;
                }
            };
            let o = opts.clone();
            let content_type = if f.json {
                "application/json"
            } else {
                "application/x-protobuf"
            };
            let decoded = tokio::task::spawn_blocking(move || {
                crate::otlp::decode(f.signal, &f.bytes, Some(content_type), None, &o)
                    .map_err(|e| (f.place, e.to_string()))
            })
            .await
            .map_err(|e| ImportError::Internal(e.to_string()))?;
            let decoded = match decoded {
                Ok(d) => d,
                Err(failure) => {
                    report.failures.push(failure);
                    continue;
                }
            };
            report.requests += 1;
            report.refused_records += decoded.rejected;
            while writes.len() >= IN_FLIGHT {
                if let Some(r) = writes.join_next().await {
                    tally(r, &mut report)?;
                }
            }
            let store = store.clone();
            writes.spawn(async move { store.write(decoded.batch).await });
        }
        progress(size);
    }
    while let Some(r) = writes.join_next().await {
        tally(r, &mut report)?;
    }
    Ok(report)
}

fn tally(
    r: Result<Result<crate::store::WriteReceipt, crate::store::StoreError>, tokio::task::JoinError>,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    let receipt = r.map_err(|e| ImportError::Internal(e.to_string()))??;
    report.stored += receipt.inserted;
    report.duplicates += receipt.duplicates;
    Ok(())
}

/// Total size of `files` (those that can be read), for a progress bar.
pub fn total_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|p| std::fs::metadata(Path::new(p)).ok())
        .map(|m| m.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_give_one_request_a_line_with_its_own_signal() {
        let text = "{\"resourceLogs\":[]}\n\n{\"resourceMetrics\":[]}\n{\"nope\":1}\nnot json\n";
        let found = requests_in("f.jsonl", text.as_bytes(), None, 1 << 20);
        assert_eq!(found.len(), 4);
        assert!(matches!(&found[0], Ok(f) if f.signal == Signal::Logs && f.place == "f.jsonl:1"));
        assert!(
            matches!(&found[1], Ok(f) if f.signal == Signal::Metrics && f.place == "f.jsonl:3")
        );
        assert!(
            matches!(&found[2], Err((p, why)) if p == "f.jsonl:4" && why.contains("resourceLogs"))
        );
        assert!(matches!(&found[3], Err((p, _)) if p == "f.jsonl:5"));
    }

    #[test]
    fn a_pretty_printed_request_is_one_request() {
        let text = "{\n  \"resourceSpans\": [\n  ]\n}\n";
        let found = requests_in("x.json", text.as_bytes(), None, 1 << 20);
        assert!(matches!(found.as_slice(), [Ok(f)] if f.signal == Signal::Traces));
    }

    #[test]
    fn protobuf_takes_its_signal_from_the_name_or_the_flag() {
        let bytes = [0x0a, 0x00];
        assert!(
            matches!(requests_in("002_v1_logs.pb", &bytes, None, 1 << 20).as_slice(), [Ok(f)] if f.signal == Signal::Logs && !f.json)
        );
        assert!(matches!(
            requests_in("dump.bin", &bytes, None, 1 << 20).as_slice(),
            [Err(_)]
        ));
        assert!(
            matches!(requests_in("dump.bin", &bytes, Some(Signal::Metrics), 1 << 20).as_slice(), [Ok(f)] if f.signal == Signal::Metrics)
        );
        assert_eq!(signal_of_name("logs-and-metrics.pb"), None);
    }

    #[test]
    fn compressed_files_are_read_by_their_bytes() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"resourceLogs\":[]}")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let bytes = gz.finish().unwrap_or_else(|e| unreachable!("{e}"));
        assert!(
            matches!(requests_in("a.gz", &bytes, None, 1 << 20).as_slice(), [Ok(f)] if f.signal == Signal::Logs)
        );
    }
}
