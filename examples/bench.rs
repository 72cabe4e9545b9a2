//! Ingest and query benchmark on generated team telemetry ([`tokentally::demo`]).
//!
//! ```text
//! cargo run --release --example bench -- [--events N] [--shape team|long]
//!     [--days D] [--arrival in-time|shuffled] [--dir D] [--csv DIR] [--http]
//!     [--clickhouse URL] [--query-only] [--only TOOL] [--runs N]
//! ```
//!
//! 1. Generates N events (plus their metric points) of the chosen shape as
//!    OTLP protobuf requests, as Claude Code 2.1.330 sends them, day by day
//!    as live telemetry arrives (`--arrival shuffled`: every session on a
//!    random day, as a backfill of a month in no order would).
//! 2. Ingests them through the real path (`otlp::decode_*`, `*_to_batch`,
//!    `Store::write`, several requests in flight) and prints events/s, then
//!    the database size per event. With `--http`, also sends 200k events over
//!    OTLP/HTTP protobuf to an in-process server and prints events/s.
//! 3. Runs every query tool for 1, 7 and 30 days and all data, and one
//!    session's timeline and events, through the same code as MCP, and
//!    prints the median of several runs. With `--csv DIR`, writes the
//!    generated events and points so `tools/duckdb_bench.py` can ask the same
//!    questions in DuckDB in the same run.
//!
//! With `--clickhouse URL` (a `clickhouse://` store URL of an empty
//! database), the same requests are also written into ClickHouse through
//! its batching sink and every question is asked of it too, printed as
//! `clickhouse query ...` lines beside the embedded store's.
//!
//! Figures only; nothing here asserts a time.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use tokentally::auth::{Principal, Scope};
use tokentally::demo::{Arrival, Generator, Plan, Shape, TruthEvent, TruthPoint};
use tokentally::otlp::{self, DecodeOptions};
use tokentally::store::{Store, StoreOptions};

struct Args {
    events: u64,
    shape: Shape,
    /// Days the events spread over (the team shape's 30 by default): fewer
    /// days give the density of a larger store in a shorter run.
    days: Option<i64>,
    /// The order the sessions are sent in.
    arrival: Arrival,
    dir: Option<PathBuf>,
    csv: Option<PathBuf>,
    http: bool,
    query_only: bool,
    clickhouse: Option<String>,
    /// Ask only this tool's questions (to profile one).
    only: Option<String>,
    /// Times each question is asked (the median is printed).
    runs: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        events: 1_000_000,
        shape: Shape::Team,
        days: None,
        arrival: Arrival::InTime,
        dir: None,
        csv: None,
        http: false,
        query_only: false,
        clickhouse: None,
        only: None,
        runs: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--events" => {
                args.events = it.next().context("--events N")?.replace('_', "").parse()?
            }
            "--shape" => {
                args.shape = it
                    .next()
                    .context("--shape team|long")?
                    .parse()
                    .map_err(anyhow::Error::msg)?
            }
            "--days" => args.days = Some(it.next().context("--days D")?.parse()?),
            "--arrival" => {
                args.arrival = it
                    .next()
                    .context("--arrival in-time|shuffled")?
                    .parse()
                    .map_err(anyhow::Error::msg)?
            }
            "--dir" => args.dir = Some(it.next().context("--dir D")?.into()),
            "--csv" => args.csv = Some(it.next().context("--csv DIR")?.into()),
            "--http" => args.http = true,
            "--clickhouse" => args.clickhouse = Some(it.next().context("--clickhouse URL")?),
            // Only the queries, on the store of an earlier run (--dir).
            "--query-only" => args.query_only = true,
            "--only" => args.only = Some(it.next().context("--only TOOL")?),
            "--runs" => args.runs = it.next().context("--runs N")?.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

fn plan(args: &Args, end_ns: i64) -> Plan {
    let mut plan = Plan::team(args.events, end_ns);
    if args.shape == Shape::Long {
        plan.shape = Shape::Long;
        plan.developers = 50;
    }
    if let Some(days) = args.days {
        plan.days = days;
    }
    plan.arrival = args.arrival;
    plan
}

fn write_events(w: &mut impl Write, rows: &[TruthEvent]) -> std::io::Result<()> {
    for r in rows {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.time_ns,
            r.event_name,
            r.developer,
            r.session_id,
            r.model,
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_creation_tokens,
            r.cost_usd,
            r.tool_name,
            r.duration_ms,
            r.success,
            r.decision,
            r.file_path
        )?;
    }
    Ok(())
}

fn write_points(w: &mut impl Write, rows: &[TruthPoint]) -> std::io::Result<()> {
    for r in rows {
        writeln!(
            w,
            "{},{},{},{},{},{},{}",
            r.time_ns, r.name, r.developer, r.session_id, r.model, r.kind, r.value
        )?;
    }
    Ok(())
}

/// Requests decoded and written at once during ingest: a team's exporters
/// send concurrently, and the writer commits whatever is queued together.
const INFLIGHT: usize = 32;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Where generated requests wait to be written: at once when shuffled;
/// day by day in time order when in time.
struct Pending {
    arrival: Arrival,
    /// (first record's time, signal, body) of the current day.
    requests: Vec<(i64, u8, Vec<u8>)>,
    /// Start of the current day (ns).
    day_ns: i64,
}

const DAY_NS: i64 = 86_400_000_000_000;

impl Pending {
    fn new(arrival: Arrival) -> Pending {
        Pending {
            arrival,
            requests: Vec::new(),
            day_ns: i64::MIN,
        }
    }

    /// A session starts at `time_ns`: the requests of earlier days go out.
    fn session_at(&mut self, time_ns: i64, w: &mut impl Write) -> std::io::Result<()> {
        let day_ns = time_ns.div_euclid(DAY_NS) * DAY_NS;
        if day_ns > self.day_ns {
            self.day_ns = day_ns;
            self.finish(w)?;
        }
        Ok(())
    }

    /// A request whose first record is at `time_ns`.
    fn add(
        &mut self,
        time_ns: i64,
        signal: u8,
        body: Vec<u8>,
        w: &mut impl Write,
    ) -> std::io::Result<()> {
        match self.arrival {
            Arrival::Shuffled => put(w, signal, &body),
            Arrival::InTime => {
                self.requests.push((time_ns, signal, body));
                Ok(())
            }
        }
    }

    /// Writes what waits, in time order.
    fn finish(&mut self, w: &mut impl Write) -> std::io::Result<()> {
        self.requests.sort_by_key(|r| r.0);
        for (_, signal, body) in self.requests.drain(..) {
            put(w, signal, &body)?;
        }
        Ok(())
    }
}

/// The earliest record time of a logs request.
fn logs_time(r: &ExportLogsServiceRequest) -> i64 {
    r.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .map(|l| l.time_unix_nano)
        .min()
        .map_or(0, |t| t as i64)
}

/// The earliest point time of a metrics request.
fn metrics_time(r: &ExportMetricsServiceRequest) -> i64 {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    r.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .filter_map(|m| match &m.data {
            Some(Data::Sum(s)) => s.data_points.iter().map(|p| p.time_unix_nano).min(),
            Some(Data::Gauge(g)) => g.data_points.iter().map(|p| p.time_unix_nano).min(),
            Some(Data::Histogram(h)) => h.data_points.iter().map(|p| p.time_unix_nano).min(),
            _ => None,
        })
        .min()
        .map_or(0, |t| t as i64)
}

/// A request body in the generated file: 1 byte signal (0 logs, 1
/// metrics), 4 bytes length, the protobuf.
fn put(w: &mut impl Write, signal: u8, body: &[u8]) -> std::io::Result<()> {
    w.write_all(&[signal])?;
    w.write_all(&(body.len() as u32).to_le_bytes())?;
    w.write_all(body)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().join("data"));
    let config = tokentally::config::Config {
        data_dir: dir.clone(),
        ..Default::default()
    };
    let end_ns = i64::try_from(jiff::Timestamp::now().as_nanosecond())?;
    let plan = plan(&args, end_ns);
    let bodies = tmp.path().join("requests.bin");
    anyhow::ensure!(
        !(args.query_only && args.clickhouse.is_some()),
        "--clickhouse ingests: not with --query-only"
    );
    let ingested = if args.query_only {
        anyhow::ensure!(args.dir.is_some(), "--query-only needs --dir");
        Ingested {
            probe_session: args
                .csv
                .as_ref()
                .and_then(|d| std::fs::read_to_string(d.join("probe_session")).ok())
                .unwrap_or_default(),
            ..Ingested::default()
        }
    } else {
        ingest(&args, &dir, &config, &plan, &bodies).await?
    };
    let asking = Asking {
        only: args.only.clone(),
        runs: args.runs.max(1),
    };
    queries(&dir, &config, ingested.probe_session.clone(), &asking).await?;
    if let Some(url) = &args.clickhouse {
        clickhouse(url, &config, &bodies, &ingested, &asking).await?;
    }
    if args.http {
        http_ingest(&config, &plan).await?;
    }
    Ok(())
}

/// What was generated and ingested.
#[derive(Debug, Default)]
struct Ingested {
    /// A session of 60+ events, for the timeline question.
    probe_session: String,
    /// Events generated.
    events: u64,
    /// Metric points generated.
    points: u64,
}

/// Steps 1 and 2 (request bodies kept in `bodies_path`).
async fn ingest(
    args: &Args,
    dir: &std::path::Path,
    config: &tokentally::config::Config,
    plan: &Plan,
    bodies_path: &std::path::Path,
) -> anyhow::Result<Ingested> {
    // 1. Generate: request bodies in a file (and the CSVs for DuckDB), so
    //    ingest below measures decode + store only.
    let mut bodies = BufWriter::new(std::fs::File::create(bodies_path)?);
    let mut csv = match &args.csv {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            let mut e = BufWriter::new(std::fs::File::create(d.join("events.csv"))?);
            writeln!(
                e,
                "time_ns,event_name,developer,session_id,model,input_tokens,output_tokens,cache_read_tokens,cache_creation_tokens,cost_usd,tool_name,duration_ms,success,decision,file_path"
            )?;
            let mut p = BufWriter::new(std::fs::File::create(d.join("points.csv"))?);
            writeln!(p, "time_ns,name,developer,session_id,model,type,value")?;
            Some((e, p))
        }
        None => None,
    };
    let (mut events, mut points, mut sessions, mut metrics_only, mut sessionless) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut wire_bytes = 0usize;
    let mut requests = 0u64;
    let mut probe_session = String::new();
    // Day by day, the requests of a day's sessions are sent in the order of
    // their first record, as concurrent exporters' requests reach a live
    // server (a session's requests spread over its whole length).
    let mut pending = Pending::new(args.arrival);
    for s in Generator::new(plan.clone()) {
        sessions += 1;
        events += s.events.len() as u64;
        points += s.points.len() as u64;
        metrics_only += u64::from(s.logs.is_empty());
        sessionless += u64::from(s.events.first().is_some_and(|e| e.session_id.is_empty()));
        if probe_session.is_empty() && s.events.len() >= 60 && !s.events[0].session_id.is_empty() {
            probe_session = s.events[0].session_id.clone();
        }
        if let Some(t) = s.events.first().map(|e| e.time_ns) {
            pending.session_at(t, &mut bodies)?;
        }
        for r in &s.logs {
            let b = prost::Message::encode_to_vec(r);
            wire_bytes += b.len();
            requests += 1;
            pending.add(logs_time(r), 0, b, &mut bodies)?;
        }
        for r in &s.metrics {
            let b = prost::Message::encode_to_vec(r);
            wire_bytes += b.len();
            requests += 1;
            pending.add(metrics_time(r), 1, b, &mut bodies)?;
        }
        if let Some((e, p)) = csv.as_mut() {
            write_events(e, &s.events)?;
            write_points(p, &s.points)?;
        }
    }
    pending.finish(&mut bodies)?;
    bodies.flush()?;
    if let Some((mut e, mut p)) = csv {
        e.flush()?;
        p.flush()?;
    }
    println!(
        "generated {events} events and {points} metric points: {sessions} sessions ({:.0} events per session with events; {metrics_only} metrics-only, {sessionless} without session.id), {} developers, {} days, shape {:?}",
        events as f64 / (sessions - metrics_only).max(1) as f64,
        plan.developers,
        plan.days,
        plan.shape
    );
    println!(
        "  {requests} requests, protobuf on the wire: {:.0} bytes/event",
        wire_bytes as f64 / events as f64
    );

    // 2. Ingest: protobuf decode + rows + durable store writes, INFLIGHT
    //    requests in flight (as many exporters sending at once).
    let store = Store::open(dir, StoreOptions::from_config(config))?;
    let secs = send(
        std::sync::Arc::new(store.clone()),
        config,
        bodies_path,
        INFLIGHT,
    )
    .await?;
    println!(
        "ingest (protobuf decode + rows + durable group commits, {INFLIGHT} requests in flight, sessions {}): {events} events + {points} points in {secs:.1} s = {:.0} events/s ({:.0} records/s)",
        match args.arrival {
            Arrival::InTime => "day by day",
            Arrival::Shuffled => "on random days",
        },
        events as f64 / secs,
        (events + points) as f64 / secs
    );
    store.close().await?;
    let db_bytes: u64 = ["tokentally.db", "tokentally.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "  on disk: {:.0} bytes/event (database, indexes and rollups included; metric points counted with the events they accompany)",
        db_bytes as f64 / events as f64
    );

    if let Some(d) = &args.csv {
        std::fs::write(d.join("probe_session"), &probe_session)?;
    }
    Ok(Ingested {
        probe_session,
        events,
        points,
    })
}

/// Writes the requests of `bodies_path` through `sink` (protobuf decode,
/// rows, the store's durable write), `inflight` at once; the seconds taken.
async fn send(
    sink: std::sync::Arc<dyn tokentally::store::Sink>,
    config: &tokentally::config::Config,
    bodies_path: &std::path::Path,
    inflight_max: usize,
) -> anyhow::Result<f64> {
    let opts = DecodeOptions {
        max_body_bytes: config.max_body_bytes,
        capture_content: false,
        ..DecodeOptions::default()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(16);
    let path = bodies_path.to_path_buf();
    let reader = std::thread::spawn(move || -> anyhow::Result<()> {
        let mut r = BufReader::new(std::fs::File::open(&path)?);
        let mut head = [0u8; 5];
        while r.read_exact(&mut head).is_ok() {
            let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
            let mut body = vec![0u8; len as usize];
            r.read_exact(&mut body)?;
            if tx.blocking_send((head[0], body)).is_err() {
                break;
            }
        }
        Ok(())
    });
    let started = Instant::now();
    let mut inflight = tokio::task::JoinSet::new();
    while let Some((signal, body)) = rx.recv().await {
        while inflight.len() >= inflight_max {
            inflight.join_next().await.context("join")???;
        }
        let sink = sink.clone();
        let opts = opts.clone();
        inflight.spawn(async move {
            let decoded = tokio::task::spawn_blocking(move || {
                if signal == 0 {
                    otlp::decode_logs(&body, otlp::Encoding::Protobuf)
                        .map(|req| otlp::logs_to_batch(&req, &opts))
                } else {
                    otlp::decode_metrics(&body, otlp::Encoding::Protobuf)
                        .map(|req| otlp::metrics_to_batch(&req, &opts))
                }
            })
            .await??;
            // At most `inflight_max` requests are in flight, below the
            // store's queue bound, so it never answers `Overloaded` here and
            // the batch need not be copied for a retry.
            sink.write(decoded.batch).await?;
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = inflight.join_next().await {
        r??;
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    Ok(started.elapsed().as_secs_f64())
}

/// The same requests into ClickHouse (a new database at `url`), then the
/// same questions asked of it.
async fn clickhouse(
    url: &str,
    config: &tokentally::config::Config,
    bodies_path: &std::path::Path,
    ingested: &Ingested,
    asking: &Asking,
) -> anyhow::Result<()> {
    use tokentally::clickhouse::{ClickHouse, ReadLimits, questions::ClickHouseQuestions, sink};
    let store = tokentally::config::StoreConfig {
        url: Some(url.to_string()),
        ..Default::default()
    };
    let ch = ClickHouse::from_config(&store)?.context("a clickhouse:// URL")?;
    ch.init().await?;
    // Many exporters at once, as a node in front of a cluster sees them:
    // the sink batches them into few large inserts.
    let inflight = 512;
    let secs = send(
        std::sync::Arc::new(sink::Sink::start(ch.clone(), store.batching)),
        config,
        bodies_path,
        inflight,
    )
    .await?;
    let (events, points) = (ingested.events as f64, ingested.points as f64);
    println!(
        "clickhouse ingest (protobuf decode + rows + batched inserts, {inflight} requests in flight): {events} events + {points} points in {secs:.1} s = {:.0} events/s ({:.0} records/s)",
        events / secs,
        (events + points) / secs
    );
    let questions = ClickHouseQuestions::new(ch, ReadLimits::of(&config.query));
    let ctx =
        tokentally::query::ToolContext::new(std::sync::Arc::new(questions), config.query.clone());
    ask(&ctx, ingested.probe_session.clone(), "clickhouse ", asking).await
}

/// Step 3: queries through the tool layer, exactly as MCP runs them.
async fn queries(
    dir: &std::path::Path,
    config: &tokentally::config::Config,
    probe_session: String,
    asking: &Asking,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let store = Store::open(dir, StoreOptions::from_config(config))?;
    println!(
        "start-up: store opened in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let ctx = tokentally::query::ToolContext::over_store(store.clone(), config.query.clone());
    ask(&ctx, probe_session, "", asking).await?;
    store.close().await?;
    Ok(())
}

/// Which questions are asked, and how often each.
struct Asking {
    /// Only this tool's questions.
    only: Option<String>,
    /// Runs per question (the median is printed).
    runs: usize,
}

/// Every question, each timed over several runs; `prefix` names the engine.
async fn ask(
    ctx: &tokentally::query::ToolContext,
    probe_session: String,
    prefix: &str,
    asking: &Asking,
) -> anyhow::Result<()> {
    let principal = Principal {
        token_id: 0,
        token_name: "bench".into(),
        scope: Scope::Read,
        developers: Vec::new(),
    };
    let mut questions: Vec<(String, &str, serde_json::Value)> = Vec::new();
    for (label, since) in [("1d", "1d"), ("7d", "7d"), ("30d", "30d"), ("all", "400d")] {
        // Every query tool of the registry that takes a time range (the
        // session timeline is asked for one session below).
        let ranged = tokentally::mcp::registry::TOOLS
            .iter()
            .filter(|t| t.is_ranged_query())
            .map(|t| t.name);
        for tool in ranged {
            questions.push((label.into(), tool, serde_json::json!({ "since": since })));
        }
    }
    questions.push((
        "session".into(),
        "session_timeline",
        serde_json::json!({ "session_id": probe_session }),
    ));
    questions.push((
        "session".into(),
        "search_events",
        serde_json::json!({ "session_id": probe_session, "since": "400d" }),
    ));
    questions.retain(|(_, tool, _)| asking.only.as_deref().is_none_or(|o| o == *tool));
    for (label, tool, tool_args) in questions {
        let mut times = Vec::new();
        let mut summary = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        for _ in 0..asking.runs {
            let t = Instant::now();
            let reply = tokentally::mcp::call_tool(ctx, &principal, tool, tool_args.clone()).await;
            times.push(t.elapsed());
            summary = reply.text.lines().next().unwrap_or_default().to_string();
            if reply.is_error {
                summary = format!("ERROR {summary}");
                break;
            }
            if Instant::now() > deadline {
                break;
            }
        }
        summary.truncate(90);
        println!(
            "{prefix}query {tool} {label}: median {:.1} ms  ({summary})",
            median(times).as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// End-to-end OTLP/HTTP protobuf ingest into an in-process server.
async fn http_ingest(base: &tokentally::config::Config, plan: &Plan) -> anyhow::Result<()> {
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
    let small = Plan {
        events: 200_000,
        seed: 7,
        ..plan.clone()
    };
    let mut events = 0usize;
    let mut bodies = Vec::new();
    for s in Generator::new(small) {
        events += s.events.len();
        bodies.extend(s.logs.iter().map(prost::Message::encode_to_vec));
    }
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
        "ingest over OTLP/HTTP protobuf (client on the same cores): {events} events in {secs:.1} s = {:.0} events/s",
        events as f64 / secs
    );
    server.shutdown().await?;
    Ok(())
}
