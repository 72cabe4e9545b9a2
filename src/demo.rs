//! Deterministic synthetic telemetry of a team using Claude Code, in the
//! wire shape Claude Code 2.1.330 sends (the benchmark's and the demo's data).
//!
//! The default [`Shape::Team`] follows what a real team produces: many short
//! sessions (`claude -p` runs of a few events beside interactive sessions of
//! tens to a hundred), developers of uneven activity, a main model per
//! developer plus the small fast model, tool calls with their decisions and
//! file paths (as with `OTEL_LOG_TOOL_DETAILS=1`), API errors, delta metrics
//! exported every minute, sessions that send only metrics (logs exporter off)
//! and sessions whose records carry no `session.id`. [`Shape::Long`] makes few
//! long sessions of 200 events, the shape rollups find easiest.
//!
//! Every generated session also comes as flat [`TruthEvent`]/[`TruthPoint`]
//! rows, so another engine (or a test) can compute the answers
//! independently of tokentally's decoder and store.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

const SECOND: i64 = 1_000_000_000;
const MODELS: [&str; 3] = ["claude-opus-5-5", "claude-sonnet-4-6", "claude-opus-4-7"];
const SMALL_MODEL: &str = "claude-haiku-5-0";
const TOOLS: [&str; 8] = [
    "Read",
    "Edit",
    "Bash",
    "Grep",
    "Write",
    "Glob",
    "mcp_tool",
    "MultiEdit",
];
/// Records per OTLP request at most.
const BATCH: usize = 500;
/// Claude Code's default metric export interval.
const EXPORT_INTERVAL: i64 = 60 * SECOND;

/// The shape of the generated sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A real team: many short sessions, metrics-only sessions, records
    /// without session ids (about 40 events per session on average).
    Team,
    /// Few long sessions of 200 events, all with events and session ids.
    Long,
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "team" => Ok(Shape::Team),
            "long" => Ok(Shape::Long),
            other => Err(format!("unknown shape {other:?} (team, long)")),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Log records (events) to generate at least; metric points come on top.
    pub events: u64,
    /// Developers in the team.
    pub developers: u64,
    /// Days of history, ending at `end_ns`.
    pub days: i64,
    /// End of the generated history (ns since the epoch).
    pub end_ns: i64,
    /// Session shape.
    pub shape: Shape,
    /// Seed of the deterministic generator.
    pub seed: u64,
    /// The order sessions are generated in.
    pub arrival: Arrival,
}

/// The order in which generated sessions arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Arrival {
    /// Each session on a day drawn at random: a backfill of a month in no
    /// order (every time-ordered index is written all over).
    #[default]
    Shuffled,
    /// Day by day, as live telemetry arrives (sessions within a day still
    /// in random order, as concurrent developers send them).
    InTime,
}

impl std::str::FromStr for Arrival {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shuffled" => Ok(Arrival::Shuffled),
            "in-time" => Ok(Arrival::InTime),
            other => Err(format!("unknown arrival {other:?} (shuffled, in-time)")),
        }
    }
}

impl Plan {
    /// A month of a 40-developer team ending at `end_ns`.
    pub fn team(events: u64, end_ns: i64) -> Plan {
        Plan {
            events,
            developers: 40,
            days: 30,
            end_ns,
            shape: Shape::Team,
            seed: 42,
            arrival: Arrival::Shuffled,
        }
    }
}

/// One generated event as flat columns (empty strings and zeros for what
/// the event does not carry).
#[derive(Debug, Clone, PartialEq)]
pub struct TruthEvent {
    /// Event time.
    pub time_ns: i64,
    /// `event.name`.
    pub event_name: &'static str,
    /// `user.email`.
    pub developer: String,
    /// `session.id`, empty when the record has none.
    pub session_id: String,
    /// Model of API events.
    pub model: &'static str,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache read tokens.
    pub cache_read_tokens: i64,
    /// Cache creation tokens.
    pub cache_creation_tokens: i64,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Tool of tool events.
    pub tool_name: &'static str,
    /// Duration of API requests and tool results.
    pub duration_ms: i64,
    /// Tool result success (1/0), -1 when not a result.
    pub success: i64,
    /// Tool decision (`accept`/`reject`), empty otherwise.
    pub decision: &'static str,
    /// File path of edit tool events (tool details on), empty otherwise.
    pub file_path: String,
}

/// One generated metric point (delta sum).
#[derive(Debug, Clone, PartialEq)]
pub struct TruthPoint {
    /// Point time (end of its interval).
    pub time_ns: i64,
    /// Metric name.
    pub name: &'static str,
    /// `user.email`.
    pub developer: String,
    /// `session.id`, empty when the point has none.
    pub session_id: String,
    /// `model`.
    pub model: &'static str,
    /// `type` of token.usage, empty for cost.
    pub kind: &'static str,
    /// The delta.
    pub value: f64,
}

/// One generated session: its requests and its flat rows.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// Log requests (empty for a metrics-only session).
    pub logs: Vec<ExportLogsServiceRequest>,
    /// Metric requests.
    pub metrics: Vec<ExportMetricsServiceRequest>,
    /// The events, as flat rows.
    pub events: Vec<TruthEvent>,
    /// The metric points, as flat rows.
    pub points: Vec<TruthPoint>,
}

/// What [`load`] stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Sessions generated (metrics-only and sessionless ones included).
    pub sessions: u64,
    /// Log records stored.
    pub events: u64,
    /// Metric points stored.
    pub points: u64,
}

/// Why [`load`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A generated request did not decode (a bug in the generator).
    #[error("generated demo data did not decode: {0}")]
    Decode(#[from] crate::otlp::DecodeError),
    /// The store refused the write.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A write task panicked or was cancelled.
    #[error("demo write task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

type WriteResult =
    Result<(crate::otlp::Signal, crate::store::WriteReceipt), crate::store::StoreError>;

/// Counts one finished write into `loaded`.
fn finish(
    r: Result<WriteResult, tokio::task::JoinError>,
    loaded: &mut Loaded,
) -> Result<(), LoadError> {
    let (signal, receipt) = r??;
    match signal {
        crate::otlp::Signal::Logs => loaded.events += receipt.inserted,
        _ => loaded.points += receipt.inserted,
    }
    Ok(())
}

/// Requests written at once by [`load`]: far below the writer's queue
/// bound, so the store never answers `Overloaded`, and enough for the
/// writer to commit several together.
const LOAD_IN_FLIGHT: usize = 32;

/// Generates `plan` and stores it through the real ingest path: each
/// request is encoded as OTLP/protobuf, decoded as the OTLP/HTTP receiver
/// decodes it, and written by the store's writer. Deterministic for a
/// plan, so loading the same plan twice stores nothing new.
pub async fn load(
    store: &crate::store::Store,
    plan: Plan,
    opts: &crate::otlp::DecodeOptions,
) -> Result<Loaded, LoadError> {
    use crate::otlp::Signal;
    let mut loaded = Loaded::default();
    let mut writes = tokio::task::JoinSet::new();
    for s in Generator::new(plan) {
        loaded.sessions += 1;
        let bodies = s
            .logs
            .iter()
            .map(|r| (Signal::Logs, prost::Message::encode_to_vec(r)))
            .chain(
                s.metrics
                    .iter()
                    .map(|r| (Signal::Metrics, prost::Message::encode_to_vec(r))),
            );
        for (signal, body) in bodies {
            let decoded =
                crate::otlp::decode(signal, &body, Some("application/x-protobuf"), None, opts)?;
            while writes.len() >= LOAD_IN_FLIGHT {
                if let Some(r) = writes.join_next().await {
                    finish(r, &mut loaded)?;
                }
            }
            let store = store.clone();
            writes.spawn(async move {
                let written: WriteResult = Ok((signal, store.write(decoded.batch).await?));
                written
            });
        }
    }
    while let Some(r) = writes.join_next().await {
        finish(r, &mut loaded)?;
    }
    Ok(loaded)
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
        self.next() % n.max(1)
    }
    fn percent(&mut self) -> u64 {
        self.below(100)
    }
}

/// Generates sessions until the plan's event count is reached.
pub struct Generator {
    plan: Plan,
    rng: Rng,
    sid: u64,
    events: u64,
}

impl Generator {
    /// A generator for `plan`.
    pub fn new(plan: Plan) -> Generator {
        Generator {
            rng: Rng(plan.seed),
            plan,
            sid: 0,
            events: 0,
        }
    }
}

impl Iterator for Generator {
    type Item = Session;
    fn next(&mut self) -> Option<Session> {
        if self.events >= self.plan.events {
            return None;
        }
        let day = match self.plan.arrival {
            Arrival::Shuffled => None,
            Arrival::InTime => Some(
                (self.events.saturating_mul(self.plan.days as u64) / self.plan.events.max(1))
                    as i64,
            ),
        };
        let s = session(&self.plan, self.sid, day, &mut self.rng);
        self.sid += 1;
        self.events += s.events.len() as u64;
        Some(s)
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

/// How a session reports.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Full,
    MetricsOnly,
    NoSessionId,
    MetricsOnlyNoSessionId,
}

struct Request {
    t: i64,
    model: &'static str,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
    cost: f64,
}

/// One session; on `day` (counted from the first) when given, else on a
/// day drawn at random. The same draws are made either way.
fn session(plan: &Plan, sid: u64, day: Option<i64>, rng: &mut Rng) -> Session {
    // Uneven activity: the minimum of two draws favours low-numbered developers.
    let dev = match plan.shape {
        Shape::Team => rng.below(plan.developers).min(rng.below(plan.developers)),
        Shape::Long => sid % plan.developers,
    };
    let (kind, length) = match plan.shape {
        Shape::Long => (Kind::Full, 200),
        Shape::Team => {
            let kind = match rng.percent() {
                0..6 => Kind::MetricsOnly,
                6..8 => Kind::MetricsOnlyNoSessionId,
                8..13 => Kind::NoSessionId,
                _ => Kind::Full,
            };
            let length = if rng.percent() < 55 {
                4 + rng.below(12)
            } else {
                20 + rng.below(100)
            };
            (kind, length)
        }
    };
    let email = format!("dev{dev:02}@example.com");
    let session_id = format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        sid,
        sid % 65536,
        sid.wrapping_mul(7919) & 0xffff_ffff_ffff
    );
    let with_session = !matches!(kind, Kind::NoSessionId | Kind::MetricsOnlyNoSessionId);
    let user_id = format!("{:064x}", (dev + 1).wrapping_mul(0x1234_5678_9abc_def1));
    let team = format!("team-{}", dev % 5);
    // Mostly working hours (UTC 07–19), any day of the range.
    let drawn = rng.below(plan.days as u64) as i64;
    let day = day.map_or(drawn, |d| d.min(plan.days - 1));
    let second_of_day = (7 * 3600 + rng.below(12 * 3600)) as i64;
    let start = plan.end_ns - (plan.days - day) * 86_400 * SECOND + second_of_day * SECOND;
    let main_model = MODELS[(dev % 3) as usize];
    let mut common = vec![
        s("user.id", user_id),
        s("user.email", email.clone()),
        s("organization.id", "org-1"),
        s("app.version", "2.1.330"),
        s("terminal.type", "xterm-256color"),
        s("team.id", team.clone()),
    ];
    if with_session {
        common.insert(0, s("session.id", session_id.clone()));
    }
    let truth_session = if with_session {
        session_id.clone()
    } else {
        String::new()
    };
    let mut out = Session::default();
    let mut records = Vec::with_capacity(length as usize);
    let mut requests: Vec<Request> = Vec::new();
    let mut t = start;
    let mut prompt = String::new();
    let mut seq = 0i64;
    let mut pending_tool: Option<(&'static str, String)> = None;
    while (records.len() as u64) < length {
        let (event, extra, truth): (&'static str, Vec<KeyValue>, TruthEvent) = {
            let base = TruthEvent {
                time_ns: t,
                event_name: "",
                developer: email.clone(),
                session_id: truth_session.clone(),
                model: "",
                input_tokens: 0,
                output_tokens: 0,
                cache_read_tokens: 0,
                cache_creation_tokens: 0,
                cost_usd: 0.0,
                tool_name: "",
                duration_ms: 0,
                success: -1,
                decision: "",
                file_path: String::new(),
            };
            if seq == 0 || rng.percent() < 8 {
                prompt = format!("{sid:x}-{seq}");
                (
                    "user_prompt",
                    vec![s("prompt_length", (20 + rng.below(400)).to_string())],
                    TruthEvent {
                        event_name: "user_prompt",
                        ..base
                    },
                )
            } else if let Some((tool, tool_use_id)) = pending_tool.take() {
                let duration = if tool == "Bash" {
                    50 + rng.below(30_000) as i64
                } else {
                    rng.below(400) as i64
                };
                let ok = rng.percent() >= 4;
                let path = file_for(tool, dev, rng);
                let mut extra = vec![
                    s("tool_name", tool),
                    s("tool_use_id", tool_use_id),
                    s("success", if ok { "true" } else { "false" }),
                    s("duration_ms", duration.to_string()),
                    s("tool_result_size_bytes", (rng.below(20_000)).to_string()),
                ];
                if let Some(p) = &path {
                    extra.push(s("tool_input", format!("{{\"file_path\":\"{p}\"}}")));
                }
                (
                    "tool_result",
                    extra,
                    TruthEvent {
                        event_name: "tool_result",
                        tool_name: tool,
                        duration_ms: duration,
                        success: i64::from(ok),
                        file_path: path.unwrap_or_default(),
                        ..base
                    },
                )
            } else {
                match rng.percent() {
                    0..45 => {
                        let model = if rng.percent() < 20 {
                            SMALL_MODEL
                        } else {
                            main_model
                        };
                        let input = 5 + rng.below(4000) as i64;
                        let output = 10 + rng.below(1500) as i64;
                        let cache_read = rng.below(60_000) as i64;
                        let cache_creation = rng.below(4000) as i64;
                        let cost = ((input * 3 + output * 15 + cache_creation * 4) as f64
                            + cache_read as f64 * 0.3)
                            / 1e6;
                        let duration = 300 + rng.below(25_000) as i64;
                        requests.push(Request {
                            t,
                            model,
                            input,
                            output,
                            cache_read,
                            cache_creation,
                            cost,
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
                                i("duration_ms", duration),
                                i("ttft_ms", duration / 4),
                                s("request_id", format!("req_{sid:x}_{seq}")),
                                s("speed", "normal"),
                                s("query_source", "repl_main_thread"),
                            ],
                            TruthEvent {
                                event_name: "api_request",
                                model,
                                input_tokens: input,
                                output_tokens: output,
                                cache_read_tokens: cache_read,
                                cache_creation_tokens: cache_creation,
                                cost_usd: cost,
                                duration_ms: duration,
                                ..base
                            },
                        )
                    }
                    45..47 => (
                        "api_error",
                        vec![
                            s("model", main_model),
                            s("error", "Overloaded"),
                            i("status_code", 529),
                            i("duration_ms", 1000 + rng.below(5000) as i64),
                            i("attempt", 1),
                        ],
                        TruthEvent {
                            event_name: "api_error",
                            model: main_model,
                            ..base
                        },
                    ),
                    47..80 => {
                        let tool = TOOLS[rng.below(TOOLS.len() as u64) as usize];
                        let tool_use_id = format!("toolu_{sid:x}_{seq}");
                        let reject = rng.percent() < 8;
                        if !reject {
                            pending_tool = Some((tool, tool_use_id.clone()));
                        }
                        let decision = if reject { "reject" } else { "accept" };
                        (
                            "tool_decision",
                            vec![
                                s("decision", decision),
                                s("source", if reject { "user_reject" } else { "config" }),
                                s("tool_name", tool),
                                s("tool_use_id", tool_use_id),
                            ],
                            TruthEvent {
                                event_name: "tool_decision",
                                tool_name: tool,
                                decision,
                                ..base
                            },
                        )
                    }
                    _ => (
                        "assistant_response",
                        vec![
                            s("model", main_model),
                            i("response_length", 20 + rng.below(4000) as i64),
                        ],
                        TruthEvent {
                            event_name: "assistant_response",
                            ..base
                        },
                    ),
                }
            }
        };
        let mut attrs = common.clone();
        attrs.push(s("event.name", event));
        let stamp = jiff::Timestamp::from_nanosecond(i128::from(t))
            .map(|ts| ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
            .unwrap_or_default();
        attrs.push(s("event.timestamp", stamp));
        attrs.push(i("event.sequence", seq));
        attrs.push(s("prompt.id", prompt.clone()));
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
        out.events.push(truth);
        seq += 1;
        // A person thinks between prompts; the agent moves in seconds.
        t += if event == "user_prompt" {
            (2 + rng.below(8) as i64) * SECOND
        } else if rng.percent() < 5 {
            (30 + rng.below(300) as i64) * SECOND
        } else {
            (1 + rng.below(12) as i64) * SECOND + rng.below(1000) as i64 * 1_000_000
        };
    }
    let resource = Resource {
        attributes: vec![
            s("service.name", "claude-code"),
            s("service.version", "2.1.330"),
            s("team.id", team),
            s("os.type", "linux"),
            s("host.arch", "amd64"),
        ],
        ..Default::default()
    };
    out.metrics = metrics(&requests, start, t, &common, &resource, &mut out.points, {
        let email = email.clone();
        let sid = truth_session.clone();
        move |time_ns, name, model, kind, value| TruthPoint {
            time_ns,
            name,
            developer: email.clone(),
            session_id: sid.clone(),
            model,
            kind,
            value,
        }
    });
    if matches!(kind, Kind::MetricsOnly | Kind::MetricsOnlyNoSessionId) {
        out.events.clear();
    } else {
        out.logs = records
            .chunks(BATCH)
            .map(|chunk| ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    resource: Some(resource.clone()),
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
            .collect();
    }
    out
}

/// The path an edit or read touches (tool details on), or none.
fn file_for(tool: &str, dev: u64, rng: &mut Rng) -> Option<String> {
    match tool {
        "Edit" | "Write" | "MultiEdit" | "Read" => Some(format!(
            "/home/dev{dev:02}/repo{}/src/mod{}/file{}.rs",
            dev % 4,
            rng.below(12),
            rng.below(60)
        )),
        _ => None,
    }
}

/// Delta `cost.usage` and `token.usage` points per export interval and model,
/// as Claude Code's periodic reader sends them (one request per interval).
fn metrics(
    requests: &[Request],
    start: i64,
    end: i64,
    common: &[KeyValue],
    resource: &Resource,
    truth: &mut Vec<TruthPoint>,
    point: impl Fn(i64, &'static str, &'static str, &'static str, f64) -> TruthPoint,
) -> Vec<ExportMetricsServiceRequest> {
    use std::collections::BTreeMap;
    // interval -> model -> sums
    let mut by_interval: BTreeMap<i64, BTreeMap<&'static str, [f64; 5]>> = BTreeMap::new();
    for r in requests {
        let k = (r.t - start) / EXPORT_INTERVAL;
        let e = by_interval
            .entry(k)
            .or_default()
            .entry(r.model)
            .or_insert([0.0; 5]);
        e[0] += r.cost;
        e[1] += r.input as f64;
        e[2] += r.output as f64;
        e[3] += r.cache_read as f64;
        e[4] += r.cache_creation as f64;
    }
    let mut out = Vec::new();
    for (k, models) in by_interval {
        let from = start + k * EXPORT_INTERVAL;
        let to = (from + EXPORT_INTERVAL).min(end + SECOND);
        let mut cost_points = Vec::new();
        let mut token_points = Vec::new();
        for (model, v) in models {
            let dp = |value: f64, extra: Vec<KeyValue>| {
                let mut attributes = common.to_vec();
                attributes.push(s("model", model));
                attributes.extend(extra);
                NumberDataPoint {
                    attributes,
                    start_time_unix_nano: from as u64,
                    time_unix_nano: to as u64,
                    value: Some(number_data_point::Value::AsDouble(value)),
                    ..Default::default()
                }
            };
            cost_points.push(dp(v[0], Vec::new()));
            truth.push(point(to, "claude_code.cost.usage", model, "", v[0]));
            for (j, kind) in ["input", "output", "cacheRead", "cacheCreation"]
                .into_iter()
                .enumerate()
            {
                token_points.push(dp(v[j + 1], vec![s("type", kind)]));
                truth.push(point(to, "claude_code.token.usage", model, kind, v[j + 1]));
            }
        }
        let sum = |name: &str, unit: &str, data_points| Metric {
            name: name.into(),
            unit: unit.into(),
            data: Some(metric::Data::Sum(Sum {
                data_points,
                aggregation_temporality: AggregationTemporality::Delta as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        out.push(ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "com.anthropic.claude_code".into(),
                        version: "2.1.330".into(),
                        ..Default::default()
                    }),
                    metrics: vec![
                        sum("claude_code.cost.usage", "USD", cost_points),
                        sum("claude_code.token.usage", "tokens", token_points),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In time order the sessions go day by day over the whole range, and
    /// the rest of what is generated is the same as in shuffled order.
    #[test]
    fn in_time_arrival_goes_day_by_day_with_the_same_sessions() {
        let end = 1_800_000_000 * SECOND;
        let shuffled: Vec<Session> = Generator::new(Plan::team(20_000, end)).collect();
        let in_time: Vec<Session> = Generator::new(Plan {
            arrival: Arrival::InTime,
            ..Plan::team(20_000, end)
        })
        .collect();
        // The day of a session's first record (a session may have none).
        let day = |s: &Session| {
            let t = s.events.first().map(|e| e.time_ns);
            let t = t.or_else(|| s.points.first().map(|p| p.time_ns))?;
            Some((t - (end - 30 * 86_400 * SECOND)) / (86_400 * SECOND))
        };
        let days: Vec<i64> = in_time.iter().filter_map(day).collect();
        assert!(days.windows(2).all(|w| w[0] <= w[1]), "days go forward");
        assert_eq!((days[0], days[days.len() - 1]), (0, 29));
        let shuffled_days: Vec<i64> = shuffled.iter().filter_map(day).collect();
        assert!(shuffled_days.windows(2).any(|w| w[0] > w[1]));
        assert_eq!(shuffled.len(), in_time.len());
        for (a, b) in shuffled.iter().zip(&in_time) {
            assert_eq!(a.events.len(), b.events.len());
            let names = |s: &Session| s.events.iter().map(|e| e.event_name).collect::<Vec<_>>();
            assert_eq!(names(a), names(b));
        }
    }

    #[test]
    fn team_shape_has_short_sessions_metrics_only_and_sessionless_records() {
        let plan = Plan::team(50_000, 1_800_000_000 * SECOND);
        let sessions: Vec<Session> = Generator::new(plan).collect();
        let events: usize = sessions.iter().map(|s| s.events.len()).sum();
        assert!(events >= 50_000);
        let mean = events as f64 / sessions.iter().filter(|s| !s.logs.is_empty()).count() as f64;
        assert!((25.0..60.0).contains(&mean), "mean session length {mean}");
        assert!(
            sessions
                .iter()
                .any(|s| s.logs.is_empty() && !s.points.is_empty())
        );
        assert!(
            sessions
                .iter()
                .any(|s| s.events.first().is_some_and(|e| e.session_id.is_empty()))
        );
        // Metrics carry exactly the cost of the requests (each session).
        for s in &sessions {
            if s.logs.is_empty() {
                continue;
            }
            let from_events: f64 = s.events.iter().map(|e| e.cost_usd).sum();
            let from_points: f64 = s
                .points
                .iter()
                .filter(|p| p.name == "claude_code.cost.usage")
                .map(|p| p.value)
                .sum();
            assert!((from_events - from_points).abs() < 1e-9);
        }
    }

    #[test]
    fn deterministic() {
        let a: Vec<_> = Generator::new(Plan::team(2000, 0))
            .map(|s| s.events)
            .collect();
        let b: Vec<_> = Generator::new(Plan::team(2000, 0))
            .map(|s| s.events)
            .collect();
        assert_eq!(a, b);
    }
}
