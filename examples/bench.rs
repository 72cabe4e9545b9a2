//! Ingest and query benchmark on synthetic Claude-Code-shaped telemetry.
//!
//! ```text
//! cargo run --release --example bench -- [--events N] [--dir D] [--csv FILE] [--http]
//! ```
//!
//! 1. Generates N events (api_request, tool_decision, tool_result, user_prompt,
//!    ...) over 30 days for 50 developers, as OTLP `ExportLogsServiceRequest`s
//!    of 500 records, shaped like Claude Code 2.1.330's (all common attributes
//!    repeated on every record, as Claude Code sends them).
//! 2. Ingests them through the real path (`otlp::logs_to_batch` then
//!    `Store::write`, several requests in flight) and prints events/s, then
//!    the database size per event. With `--http`, also sends 200k events over
//!    OTLP/HTTP protobuf to an in-process server and prints events/s.
//! 3. Runs the tools (`cost_by_developer` for 7 days, `model_breakdown`,
//!    `tool_latency`) through the same code as MCP and prints the median of 5
//!    runs. With `--csv FILE`, writes the raw rows so `tools/bench` can time
//!    the same question in DuckDB in the same run.
//!
//! Figures only; nothing here asserts a time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokentally::auth::{Principal, Scope};
use tokentally::otlp::{self, DecodeOptions};
use tokentally::store::{Store, StoreOptions};

const DEVELOPERS: u64 = 50;
const EVENTS_PER_SESSION: u64 = 200;
const BATCH: u64 = 500;
const DAYS: i64 = 30;
const MODELS: [&str; 3] = ["claude-opus-5-5", "claude-sonnet-4-6", "claude-haiku-5-0"];
const TOOLS: [&str; 6] = ["Read", "Edit", "Bash", "Write", "Grep", "mcp_tool"];

struct Args {
    events: u64,
    dir: Option<PathBuf>,
    csv: Option<PathBuf>,
    http: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        events: 1_000_000,
        dir: None,
        csv: None,
        http: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--events" => {
                args.events = it.next().context("--events N")?.replace('_', "").parse()?
            }
            "--dir" => args.dir = Some(it.next().context("--dir D")?.into()),
            "--csv" => args.csv = Some(it.next().context("--csv FILE")?.into()),
            "--http" => args.http = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

/// A tiny deterministic generator (splitmix64), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}
fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}
fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}
fn d(key: &str, v: f64) -> KeyValue {
    kv(key, any_value::Value::DoubleValue(v))
}

/// One row as written to the CSV for DuckDB (api_request and tool_result only
/// carry numbers; other events are rows too, so DuckDB scans as many rows).
struct CsvRow {
    time_ns: i64,
    event: &'static str,
    developer: String,
    model: &'static str,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
    cost: f64,
    tool: &'static str,
    duration_ms: i64,
}

/// Generates the requests for session `sid` (EVENTS_PER_SESSION events).
fn session_requests(
    sid: u64,
    end_ns: i64,
    rng: &mut Rng,
    csv: &mut Vec<CsvRow>,
) -> Vec<ExportLogsServiceRequest> {
    let dev = sid % DEVELOPERS;
    let email = format!("dev{dev:02}@example.com");
    let session = format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        sid,
        sid % 65536,
        sid * 7919
    );
    let user_id = format!("{:064x}", dev * 0x1234_5678_9abc_def1);
    let start = end_ns - (rng.below(DAYS as u64 * 86_400) as i64) * 1_000_000_000;
    let model = MODELS[(dev % 3) as usize];
    let common = vec![
        s("team.id", format!("team-{}", dev % 5)),
        s("user.id", user_id),
        s("user.email", email.clone()),
        s("session.id", session),
        s("app.version", "2.1.330"),
        s("organization.id", "org-1"),
        s("terminal.type", "xterm-256color"),
    ];
    let mut records = Vec::with_capacity(EVENTS_PER_SESSION as usize);
    let mut prompt = String::new();
    for seq in 0..EVENTS_PER_SESSION {
        let t = start + (seq as i64) * 2_000_000_000;
        let mut attrs = common.clone();
        let kind = if seq % 20 == 0 { 0 } else { 1 + rng.below(10) };
        let (event, extra): (&'static str, Vec<KeyValue>) = match kind {
            0 => {
                prompt = format!("{sid:x}-{seq}");
                ("user_prompt", vec![s("prompt_length", "42")])
            }
            1..=4 => {
                let input = 100 + rng.below(5000) as i64;
                let output = 10 + rng.below(2000) as i64;
                let cache_read = rng.below(20000) as i64;
                let cache_creation = rng.below(3000) as i64;
                let cost =
                    (input as f64 * 3.0 + output as f64 * 15.0 + cache_read as f64 * 0.3) / 1e6;
                let duration = 200 + rng.below(20000) as i64;
                csv.push(CsvRow {
                    time_ns: t,
                    event: "api_request",
                    developer: email.clone(),
                    model,
                    input,
                    output,
                    cache_read,
                    cache_creation,
                    cost,
                    tool: "",
                    duration_ms: duration,
                });
                (
                    "api_request",
                    vec![
                        s("model", model),
                        i("input_tokens", input),
                        i("output_tokens", output),
                        i("cache_read_tokens", cache_read),
                        i("cache_creation_tokens", cache_creation),
                        d("cost_usd", cost),
                        i("cost_usd_micros", (cost * 1e6) as i64),
                        i("duration_ms", duration),
                        i("ttft_ms", duration / 4),
                        s("request_id", format!("req_{sid:x}_{seq}")),
                        s("speed", "normal"),
                        s("query_source", "main"),
                    ],
                )
            }
            5..=6 => {
                let tool = TOOLS[rng.below(TOOLS.len() as u64) as usize];
                (
                    "tool_decision",
                    vec![
                        s(
                            "decision",
                            if rng.below(10) == 0 {
                                "reject"
                            } else {
                                "accept"
                            },
                        ),
                        s("source", "config"),
                        s("tool_name", tool),
                        s("tool_use_id", format!("toolu_{sid:x}_{seq}")),
                    ],
                )
            }
            7..=9 => {
                let tool = TOOLS[rng.below(TOOLS.len() as u64) as usize];
                let duration = rng.below(5000) as i64;
                csv.push(CsvRow {
                    time_ns: t,
                    event: "tool_result",
                    developer: email.clone(),
                    model: "",
                    input: 0,
                    output: 0,
                    cache_read: 0,
                    cache_creation: 0,
                    cost: 0.0,
                    tool,
                    duration_ms: duration,
                });
                (
                    "tool_result",
                    vec![
                        s("tool_name", tool),
                        s("tool_use_id", format!("toolu_{sid:x}_{seq}")),
                        s("success", if rng.below(20) == 0 { "false" } else { "true" }),
                        s("duration_ms", duration.to_string()),
                        s(
                            "tool_input",
                            format!(
                                "{{\"file_path\":\"/src/mod{}/file{}.rs\"}}",
                                dev % 7,
                                rng.below(40)
                            ),
                        ),
                        s("tool_result_size_bytes", "1200"),
                    ],
                )
            }
            _ => (
                "assistant_response",
                vec![s("model", model), i("response_length", 512)],
            ),
        };
        if !matches!(event, "api_request" | "tool_result") {
            csv.push(CsvRow {
                time_ns: t,
                event,
                developer: email.clone(),
                model: "",
                input: 0,
                output: 0,
                cache_read: 0,
                cache_creation: 0,
                cost: 0.0,
                tool: "",
                duration_ms: 0,
            });
        }
        attrs.push(s("event.name", event));
        // Claude Code stamps each event with its time, as JavaScript's
        // Date.toISOString() writes it.
        let stamp = jiff::Timestamp::from_nanosecond(i128::from(t))
            .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_default();
        attrs.push(s("event.timestamp", stamp));
        attrs.push(i("event.sequence", seq as i64));
        if !prompt.is_empty() {
            attrs.push(s("prompt.id", prompt.clone()));
        }
        attrs.extend(extra);
        records.push(LogRecord {
            time_unix_nano: t as u64,
            observed_time_unix_nano: t as u64,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "claude_code.{event}"
                ))),
            }),
            attributes: attrs,
            ..Default::default()
        });
    }
    records
        .chunks(BATCH as usize)
        .map(|chunk| ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        s("service.name", "claude-code"),
                        s("service.version", "2.1.330"),
                        s("team.id", format!("team-{}", dev % 5)),
                        s("os.type", "linux"),
                        s("host.arch", "amd64"),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "com.anthropic.claude_code.events".into(),
                        version: "2.1.330".into(),
                        ..Default::default()
                    }),
                    log_records: chunk.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
        .collect()
}

fn write_csv(w: &mut impl std::io::Write, rows: &[CsvRow]) -> anyhow::Result<()> {
    for r in rows {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{}",
            r.time_ns,
            r.event,
            r.developer,
            r.model,
            r.input,
            r.output,
            r.cache_read,
            r.cache_creation,
            r.cost,
            r.tool,
            r.duration_ms
        )?;
    }
    Ok(())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use std::io::{BufReader, BufWriter, Read, Write};
    let args = parse_args()?;
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().join("data"));
    let config = tokentally::config::Config {
        data_dir: dir.clone(),
        ..Default::default()
    };
    let sessions = args.events.div_ceil(EVENTS_PER_SESSION);
    let total_events = sessions * EVENTS_PER_SESSION;
    let end_ns = i64::try_from(jiff::Timestamp::now().as_nanosecond())?;

    // 1. Generate: length-prefixed protobuf request bodies in a file (and the
    //    CSV for DuckDB), so ingest below measures decode + store only.
    println!(
        "generating {total_events} events ({sessions} sessions, {DEVELOPERS} developers, {DAYS} days)"
    );
    let bodies_path = tmp.path().join("requests.bin");
    let mut bodies = BufWriter::new(std::fs::File::create(&bodies_path)?);
    let mut csv = match &args.csv {
        Some(p) => Some(BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    if let Some(w) = csv.as_mut() {
        writeln!(
            w,
            "time_ns,event_name,developer,model,input_tokens,output_tokens,cache_read_tokens,cache_creation_tokens,cost_usd,tool_name,duration_ms"
        )?;
    }
    let mut rng = Rng(42);
    let mut wire_bytes = 0usize;
    let mut requests = 0u64;
    for sid in 0..sessions {
        let mut rows = Vec::new();
        for r in session_requests(sid, end_ns, &mut rng, &mut rows) {
            let bytes = prost::Message::encode_to_vec(&r);
            wire_bytes += bytes.len();
            requests += 1;
            bodies.write_all(&(bytes.len() as u32).to_le_bytes())?;
            bodies.write_all(&bytes)?;
        }
        if let Some(w) = csv.as_mut() {
            write_csv(w, &rows)?;
        }
    }
    bodies.flush()?;
    if let Some(mut w) = csv {
        w.flush()?;
    }
    println!(
        "  {requests} requests, protobuf on the wire: {:.0} bytes/event",
        wire_bytes as f64 / total_events as f64
    );

    // 2. Ingest: protobuf decode + rows + durable store writes, 4 requests in flight.
    let store = Store::open(&dir, StoreOptions::from_config(&config))?;
    let opts = DecodeOptions {
        max_body_bytes: config.max_body_bytes,
        capture_content: false,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let reader = std::thread::spawn(move || -> anyhow::Result<()> {
        let mut r = BufReader::new(std::fs::File::open(&bodies_path)?);
        let mut len = [0u8; 4];
        while r.read_exact(&mut len).is_ok() {
            let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
            r.read_exact(&mut body)?;
            if tx.blocking_send(body).is_err() {
                break;
            }
        }
        Ok(())
    });
    let started = Instant::now();
    let mut inflight = tokio::task::JoinSet::new();
    while let Some(body) = rx.recv().await {
        while inflight.len() >= 4 {
            inflight.join_next().await.context("join")???;
        }
        let store = store.clone();
        let opts = opts.clone();
        inflight.spawn(async move {
            let decoded = tokio::task::spawn_blocking(move || {
                otlp::decode_logs(&body, otlp::Encoding::Protobuf)
                    .map(|req| otlp::logs_to_batch(&req, &opts))
            })
            .await??;
            // At most 4 requests are in flight, far below the writer's queue
            // bound, so the store never answers `Overloaded` here and the batch
            // need not be copied for a retry.
            store.write(decoded.batch).await?;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = inflight.join_next().await {
        r??;
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ingest (protobuf decode + rows + durable group commits): {total_events} events in {secs:.1} s = {:.0} events/s",
        total_events as f64 / secs
    );
    store.close().await?;
    let db_bytes: u64 = ["tokentally.db", "tokentally.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "  on disk: {:.0} bytes/event (database, indexes and rollups included)",
        db_bytes as f64 / total_events as f64
    );

    // 3. Queries through the tool layer, exactly as MCP runs them.
    let store = Store::open(&dir, StoreOptions::from_config(&config))?;
    let ctx = tokentally::query::ToolContext::over_store(store.clone(), config.query.clone());
    let principal = Principal {
        token_id: 0,
        token_name: "bench".into(),
        scope: Scope::Read,
        developers: Vec::new(),
    };
    for (tool, tool_args) in [
        ("cost_by_developer", serde_json::json!({"since": "7d"})),
        ("cost_by_developer", serde_json::json!({"since": "30d"})),
        ("model_breakdown", serde_json::json!({"since": "7d"})),
        ("tool_latency", serde_json::json!({"since": "7d"})),
    ] {
        let mut times = Vec::new();
        let mut summary = String::new();
        for _ in 0..5 {
            let t = Instant::now();
            let reply = tokentally::mcp::call_tool(&ctx, &principal, tool, tool_args.clone()).await;
            times.push(t.elapsed());
            anyhow::ensure!(!reply.is_error, "{tool} failed: {}", reply.text);
            summary = reply.text.lines().next().unwrap_or_default().to_string();
        }
        println!(
            "query {tool} {tool_args}: median {:.1} ms  ({summary})",
            median(times).as_secs_f64() * 1e3
        );
    }
    store.close().await?;

    if args.http {
        http_ingest(&config).await?;
    }
    Ok(())
}

/// End-to-end OTLP/HTTP protobuf ingest into an in-process server.
async fn http_ingest(base: &tokentally::config::Config) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let config = tokentally::config::Config {
        data_dir: tmp.path().to_path_buf(),
        otlp_grpc_addr: "127.0.0.1:0".parse()?,
        otlp_http_addr: "127.0.0.1:0".parse()?,
        mcp_addr: "127.0.0.1:0".parse()?,
        ..base.clone()
    };
    let server = tokentally::server::start(config).await?;
    let url = format!("http://{}/v1/logs", server.otlp_http_addr);
    let mut rng = Rng(7);
    let mut sink = Vec::new();
    let end_ns = i64::try_from(jiff::Timestamp::now().as_nanosecond())?;
    let bodies: Vec<Vec<u8>> = (0..1000)
        .flat_map(|sid| session_requests(sid, end_ns, &mut rng, &mut sink))
        .map(|r| prost::Message::encode_to_vec(&r))
        .collect();
    let events = 1000 * EVENTS_PER_SESSION;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let chunks: Vec<Vec<Vec<u8>>> = bodies
        .chunks(bodies.len().div_ceil(4))
        .map(<[_]>::to_vec)
        .collect();
    for chunk in chunks {
        let client = client.clone();
        let url = url.clone();
        set.spawn(async move {
            for body in chunk {
                loop {
                    let resp = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(body.clone())
                        .send()
                        .await?;
                    if resp.status() == 200 {
                        break;
                    }
                    anyhow::ensure!(resp.status() == 503, "status {}", resp.status());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ingest over OTLP/HTTP protobuf (client on the same 2 cores): {events} events in {secs:.1} s = {:.0} events/s",
        events as f64 / secs
    );
    server.shutdown().await?;
    Ok(())
}
