//! Write benchmark of the store: N synthetic Claude Code events
//! (`api_request` and `tool_result`, across 50 developers and 1000
//! sessions) written in batches of 500 through `Store::write` by a few
//! concurrent "exporters"; prints events/s and bytes/event on disk.
//!
//! `cargo run --release --example store_write_bench -- 1000000 [DATA_DIR]`

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use tokentally::rows::{Attrs, Batch, Context, ContextGroup, EventRow, IdentityKind};
use tokentally::store::{Store, StoreOptions};

const BATCH: usize = 500;
const SESSIONS: usize = 1000;
const DEVELOPERS: usize = 50;
/// 2025-11-23T16:00:00Z
const T0: i64 = 1_763_913_600_000_000_000;

fn key(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(p);
    }
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finalize().as_bytes()[..16]);
    k
}

fn attrs(pairs: &[(&str, &str)]) -> Attrs {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
        .collect()
}

fn context(session: usize) -> Arc<Context> {
    let developer = format!("dev{:02}@example.com", session % DEVELOPERS);
    Arc::new(Context {
        key: key(&[b"ctx", &session.to_le_bytes()]),
        agent: Some(tokentally::agent::Agent::ClaudeCode),
        agent_version: None,
        service_name: Some("claude-code".into()),
        scope_name: "com.anthropic.claude_code.events".into(),
        scope_version: "2.1.330".into(),
        session_id: Some(format!("5f0c7a2e-3b1d-4c8e-9a{:010}", session)),
        developer: Some(developer.clone()),
        developer_kind: Some(IdentityKind::Email),
        user_email: Some(developer),
        user_account_uuid: None,
        user_id: Some(hex::encode(key(&[
            b"user",
            &(session % DEVELOPERS).to_le_bytes(),
        ]))),
        organization_id: Some("0d3a5c1e-7f2b-4e9a-8c6d-1b2a3c4d5e6f".into()),
        terminal_type: Some("vscode".into()),
        app_version: Some("2.1.330".into()),
        resource_attrs: attrs(&[
            ("service.name", "claude-code"),
            ("service.version", "2.1.330"),
            ("os.type", "linux"),
            ("host.arch", "amd64"),
            ("team.id", "platform"),
        ]),
        shared_attrs: attrs(&[("terminal.type", "vscode")]),
    })
}

/// Event `n` of the run: three API requests for every two tool results.
fn event(n: u64) -> EventRow {
    let time_ns = T0 + (n as i64) * 10_000_000;
    let stamp = "2025-11-23T16:00:00.123Z";
    let base = EventRow {
        dedup: key(&[b"event", &n.to_le_bytes()]),
        time_ns,
        observed_ns: time_ns + 1_500_000,
        prompt_id: Some(format!("9b7e1f3a-2c4d-4e5f-8a9b-{:012}", n / 20)),
        sequence: Some((n % 100_000) as i64),
        ..EventRow::default()
    };
    if n % 5 < 3 {
        EventRow {
            event_name: "api_request".into(),
            model: Some(
                if n.is_multiple_of(7) {
                    "claude-opus-4-1-20250805"
                } else {
                    "claude-sonnet-4-5-20250929"
                }
                .into(),
            ),
            input_tokens: Some((n % 5000) as i64),
            output_tokens: Some((n % 900) as i64),
            cache_read_tokens: Some((n % 40_000) as i64),
            cache_creation_tokens: Some((n % 3000) as i64),
            cost_usd: Some((n % 1000) as f64 * 0.000_137),
            duration_ms: Some((n % 20_000) as i64),
            ttft_ms: Some((n % 2000) as i64),
            request_id: Some(format!("req_011CV{:020}", n)),
            query_source: Some("repl_main_thread".into()),
            attrs: attrs(&[("event.timestamp", stamp), ("speed", "normal")]),
            ..base
        }
    } else {
        EventRow {
            event_name: "tool_result".into(),
            tool_name: Some(["Read", "Edit", "Bash", "Grep", "Write"][(n % 5) as usize].into()),
            tool_use_id: Some(format!("toolu_01{:022}", n)),
            success: Some(!n.is_multiple_of(13)),
            duration_ms: Some((n % 3000) as i64),
            decision: Some("accept".into()),
            decision_source: Some("config".into()),
            attrs: attrs(&[
                ("event.timestamp", stamp),
                ("tool_result_size_bytes", "1834"),
            ]),
            ..base
        }
    }
}

fn batch(index: u64, contexts: &[Arc<Context>], total: u64) -> Batch {
    let start = index * BATCH as u64;
    let end = (start + BATCH as u64).min(total);
    Batch {
        events: vec![ContextGroup {
            context: contexts[(index as usize) % SESSIONS].clone(),
            rows: (start..end).map(event).collect(),
        }],
        ..Batch::default()
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let total: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse().context("the argument is the number of events")?,
        None => 1_000_000,
    };
    // An optional second argument keeps the database for inspection.
    let temp = tempfile::tempdir()?;
    let dir = match std::env::args().nth(2) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => temp.path().to_path_buf(),
    };
    let store = Store::open(&dir, StoreOptions::default())?;
    let contexts: Arc<Vec<Arc<Context>>> = Arc::new((0..SESSIONS).map(context).collect());
    let batches = total.div_ceil(BATCH as u64);
    let exporters_n: u64 = std::env::var("BENCH_EXPORTERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);

    let started = Instant::now();
    let mut exporters = Vec::new();
    for exporter in 0..exporters_n {
        let store = store.clone();
        let contexts = contexts.clone();
        exporters.push(tokio::spawn(async move {
            let mut inserted = 0;
            let mut index = exporter;
            while index < batches {
                // Build the batch off the runtime's hot path, as a decoder would.
                let b = batch(index, &contexts, total);
                inserted += store.write(b).await?.inserted;
                index += exporters_n;
            }
            anyhow::Ok(inserted)
        }));
    }
    let mut inserted = 0;
    for exporter in exporters {
        inserted += exporter.await??;
    }
    let elapsed = started.elapsed();
    store.close().await?;
    let bytes = std::fs::metadata(store.db_path())?.len();
    println!(
        "{inserted} events in {:.2}s: {:.0} events/s (batches of {BATCH}, {exporters_n} concurrent writers)",
        elapsed.as_secs_f64(),
        inserted as f64 / elapsed.as_secs_f64()
    );
    println!(
        "database {:.1} MiB: {:.0} bytes/event",
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / inserted.max(1) as f64
    );
    Ok(())
}
