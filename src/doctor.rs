//! `tokentally doctor`: checks a server and its store and says, in plain
//! words, what to fix: whether the configured listeners answer, whether the
//! data directory is private and the store writable, what data arrives
//! (last record per signal, from which agents and versions, whether tool
//! details, traces and metrics come), senders whose clocks run ahead, and
//! tokens about to expire. With a ClickHouse store: the database and its
//! schema version, and whether the ingest and query users sign in and the
//! query user is read-only at the server.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::Config;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// As it should be.
    Ok,
    /// Works, but something is missing or soon will be.
    Warn,
    /// Broken: fix this.
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Check {
    /// How it came out.
    pub level: Level,
    /// What was checked.
    pub what: String,
    /// What was found, and what to do.
    pub detail: String,
}

fn check(level: Level, what: &str, detail: impl Into<String>) -> Check {
    Check {
        level,
        what: what.to_string(),
        detail: detail.into(),
    }
}

/// Tokens expiring within this long are reported.
const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 86_400);

/// A sender whose records are this far ahead of the clock here is reported.
const CLOCK_AHEAD: Duration = Duration::from_secs(5 * 60);

/// The status code of `GET path` on `addr` (loopback for unspecified
/// addresses), or why there is none.
async fn http_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let addr = loopback_for(addr);
    let connect = tokio::net::TcpStream::connect(addr);
    let mut stream = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .map_err(|_| "no answer within 3 s".to_string())?
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut head))
        .await
        .map_err(|_| "no answer within 3 s".to_string())?
        .map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

fn loopback_for(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        let ip = if addr.is_ipv4() {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        } else {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        };
        SocketAddr::new(ip, addr.port())
    } else {
        addr
    }
}

async fn listeners(config: &Config, out: &mut Vec<Check>) {
    let mut http = vec![
        (
            "OTLP/HTTP",
            config.otlp_http_addr,
            "/healthz",
            "otlp_http_addr",
        ),
        ("MCP", config.mcp_addr, "/readyz", "mcp_addr"),
    ];
    if let Some(ui) = config.ui_addr {
        http.push(("web view", ui, "/ui/login", "ui_addr"));
    }
    for (what, addr, path, key) in http {
        match http_status(addr, path).await {
            Ok(200) => out.push(check(Level::Ok, what, format!("answers on {addr}"))),
            Ok(503) => out.push(check(
                Level::Fail,
                what,
                format!("{addr} answers, but the store is not ready to take writes (see the server log)"),
            )),
            Ok(code) => out.push(check(
                Level::Warn,
                what,
                format!("{addr}{path} answered {code}: is this tokentally, or another program on the port?"),
            )),
            Err(e) => out.push(check(
                Level::Fail,
                what,
                format!("nothing answers on {addr} ({e}): start `tokentally serve`; if it listens elsewhere, give doctor the server's --config (its {key})"),
            )),
        }
    }
    let grpc = loopback_for(config.otlp_grpc_addr);
    let connected =
        tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(grpc)).await;
    out.push(match connected {
        Ok(Ok(_)) => check(Level::Ok, "OTLP/gRPC", format!("accepts connections on {grpc}")),
        Ok(Err(e)) => check(
            Level::Fail,
            "OTLP/gRPC",
            format!("nothing listens on {grpc} ({e}): start `tokentally serve`; if it listens elsewhere, give doctor the server's --config (its otlp_grpc_addr)"),
        ),
        Err(_) => check(Level::Fail, "OTLP/gRPC", format!("{grpc} did not answer within 3 s")),
    });
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode(_path: &std::path::Path) -> Option<u32> {
    None
}

fn permissions(config: &Config, out: &mut Vec<Check>) {
    let dir = &config.data_dir;
    match mode(dir) {
        Some(m) if m & 0o077 != 0 => out.push(check(
            Level::Warn,
            "data directory",
            format!(
                "{} is mode {m:o}: other users may read the telemetry and the audit log; run `chmod 700 {}`",
                dir.display(),
                dir.display()
            ),
        )),
        _ => out.push(check(
            Level::Ok,
            "data directory",
            format!("{} is for its owner only", dir.display()),
        )),
    }
    for name in [crate::store::DB_FILE_NAME, crate::datadir::AUDIT_FILE_NAME] {
        let p = dir.join(name);
        if let Some(m) = mode(&p)
            && m & 0o077 != 0
        {
            out.push(check(
                Level::Warn,
                "database files",
                format!(
                    "{} is mode {m:o}; run `chmod 600 {}`",
                    p.display(),
                    p.display()
                ),
            ));
        }
    }
}

fn since_when(t: Option<&str>, now: jiff::Timestamp) -> Option<Duration> {
    let t: jiff::Timestamp = t?.parse().ok()?;
    let d = now.as_nanosecond() - t.as_nanosecond();
    Some(Duration::from_nanos(
        u64::try_from(d.max(0)).unwrap_or(u64::MAX),
    ))
}

fn ago(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..120 => format!("{s} s ago"),
        120..7200 => format!("{} min ago", s / 60),
        7200..172_800 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// What the store holds, from `describe_data` over all of it.
fn data(described: &Value, now: jiff::Timestamp, out: &mut Vec<Check>) {
    if let Some(e) = described["error"].as_str() {
        out.push(check(
            Level::Fail,
            "store",
            format!("describe_data failed: {e}"),
        ));
        return;
    }
    let rows = described["rows"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        out.push(check(
            Level::Warn,
            "data",
            "nothing is stored yet: point the coding agents at this server (`tokentally setup claude-code` prints how)",
        ));
        return;
    }
    for (kind, label) in [
        ("event", "events"),
        ("metric", "metrics"),
        ("span", "traces"),
    ] {
        let last = rows
            .iter()
            .filter(|r| r["kind"] == kind)
            .filter_map(|r| r["last"].as_str())
            .max();
        let count: u64 = rows
            .iter()
            .filter(|r| r["kind"] == kind)
            .filter_map(|r| r["count"].as_u64())
            .sum();
        match (last, since_when(last, now)) {
            (Some(t), Some(d)) => {
                let level = if d > Duration::from_secs(86_400) {
                    Level::Warn
                } else {
                    Level::Ok
                };
                out.push(check(
                    level,
                    label,
                    format!("{count} stored, the last at {t} ({})", ago(d)),
                ));
            }
            _ => out.push(check(
                Level::Warn,
                label,
                match kind {
                    "metric" => "no metrics: set OTEL_METRICS_EXPORTER=otlp".to_string(),
                    "span" => "no traces: set CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 and OTEL_TRACES_EXPORTER=otlp (optional)".to_string(),
                    _ => "no events: set OTEL_LOGS_EXPORTER=otlp".to_string(),
                },
            )),
        }
    }
    // Records stamped in the future: a sender's clock runs ahead.
    if let Some(last) = described["last_event"].as_str()
        && let Ok(t) = last.parse::<jiff::Timestamp>()
    {
        let ahead = t.as_nanosecond() - now.as_nanosecond();
        if ahead > CLOCK_AHEAD.as_nanos() as i128 {
            out.push(check(
                Level::Warn,
                "clocks",
                format!(
                    "the newest event is stamped {last}, {} min ahead of this machine: a sender's clock runs fast, which puts its usage in the wrong hours",
                    ahead / 60_000_000_000
                ),
            ));
        }
    }
    let agents: Vec<String> = described["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{} {} ({} sessions)",
                a["agent"].as_str().unwrap_or("?"),
                a["versions"]
                    .as_array()
                    .map(|v| v
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                a["sessions"]
            )
        })
        .collect();
    out.push(if agents.is_empty() {
        check(
            Level::Warn,
            "agents",
            "no coding agent recognised in the data (only other OpenTelemetry senders)",
        )
    } else {
        check(Level::Ok, "agents", agents.join("; "))
    });
    if described["optional_data"]["tool_details_file_paths"] == json!(false) {
        out.push(check(
            Level::Warn,
            "file paths",
            "no file paths: top_edited_files needs OTEL_LOG_TOOL_DETAILS=1 in Claude Code's environment",
        ));
    }
}

fn tokens(
    store: Result<crate::auth::TokenStore, crate::auth::TokenError>,
    now: jiff::Timestamp,
    out: &mut Vec<Check>,
) {
    let list = match store.and_then(|t| t.list()) {
        Ok(l) => l,
        Err(e) => {
            out.push(check(
                Level::Fail,
                "tokens",
                format!("cannot read the tokens: {e}"),
            ));
            return;
        }
    };
    let active: Vec<_> = list.iter().filter(|t| t.is_active(now)).collect();
    if !active.iter().any(|t| t.scope.can_query()) {
        out.push(check(
            Level::Warn,
            "tokens",
            "no active token can query: create one with `tokentally token create --name NAME --scope read`",
        ));
    }
    let soon = now + jiff::SignedDuration::try_from(EXPIRY_WARNING).unwrap_or_default();
    for t in &active {
        if let Some(exp) = t.expires_at
            && exp < soon
        {
            out.push(check(
                Level::Warn,
                "tokens",
                format!(
                    "token {} ({}) expires at {exp}: create its successor and hand it out before then",
                    t.name,
                    t.scope.as_str()
                ),
            ));
        }
    }
    out.push(check(
        Level::Ok,
        "tokens",
        format!("{} active of {}", active.len(), list.len()),
    ));
}

/// The data checks, from `describe_data` over all time as the operator
/// would ask it.
async fn describe(
    config: &Config,
    questions: std::sync::Arc<dyn crate::query::Questions>,
    audit: Option<std::sync::Arc<dyn crate::audit::AuditReader>>,
    now: jiff::Timestamp,
    out: &mut Vec<Check>,
) {
    let (registry, principal) = crate::mcp::Registry::local(config, questions, audit);
    let reply = registry
        .call(
            &principal,
            "describe_data",
            json!({"since": "2000-01-01T00:00:00Z", "until": (now + jiff::SignedDuration::from_hours(24 * 365)).to_string()}),
        )
        .await;
    if reply.is_error {
        out.push(check(
            Level::Fail,
            "data",
            format!("cannot read the data: {}", reply.text),
        ));
        return;
    }
    data(&reply.structured, now, out);
}

/// The store checks when it is ClickHouse: the server and schema as the
/// writing user, the ingest and query users, then the data and tokens
/// every node shares.
async fn clickhouse(
    config: &Config,
    ch: crate::clickhouse::ClickHouse,
    now: jiff::Timestamp,
    out: &mut Vec<Check>,
) {
    let at = format!(
        "database {} at {}",
        ch.settings().database,
        ch.settings().http_url
    );
    let version = crate::clickhouse::schema::VERSION;
    match ch.schema_version().await {
        Err(e) => {
            out.push(check(Level::Fail, "store", format!("{at}: {e}")));
            return;
        }
        Ok(None) => {
            out.push(check(
                Level::Fail,
                "store",
                format!("{at} has no tokentally tables: `tokentally store init` (or the first `serve`) creates them"),
            ));
            return;
        }
        Ok(Some(v)) if v > version => {
            out.push(check(
                Level::Fail,
                "store",
                format!("{at} has schema version {v}, newer than this build's {version}: upgrade tokentally"),
            ));
            return;
        }
        Ok(Some(v)) if v < version => out.push(check(
            Level::Warn,
            "store",
            format!("{at} has schema version {v}: the next `serve` or `store init` brings it to {version}"),
        )),
        Ok(Some(v)) => out.push(check(
            Level::Ok,
            "store",
            format!("ClickHouse {at}, schema version {v}"),
        )),
    }
    match ch.ping().await {
        Ok(()) => out.push(check(Level::Ok, "ingest user", "signs in")),
        Err(e) => out.push(check(
            Level::Fail,
            "ingest user",
            format!("cannot sign in, so no export is accepted: {e}"),
        )),
    }
    out.push(match ch.query_user().await {
        Err(e) => check(
            Level::Fail,
            "query user",
            format!("cannot sign in, so no tool can answer: {e}"),
        ),
        Ok(u) if u.own && u.may_write => check(
            Level::Warn,
            "query user",
            "its profile lets it write (readonly = 0): give it a profile with readonly = 2 so the server refuses writes from the query path (SECURITY.md, \"Grants\")",
        ),
        Ok(u) if u.own => check(Level::Ok, "query user", "read-only at the server"),
        Ok(_) => check(
            Level::Ok,
            "query user",
            "the writing user, held to readonly = 2 per statement; a read-only user of its own: [store] read_url",
        ),
    });
    let budget = crate::clickhouse::ReadLimits::of(&config.query).budget;
    let audit = crate::clickhouse::audit_reader(config, Some(&ch), budget).ok();
    let questions = crate::clickhouse::questions_of(config, ch.clone());
    describe(config, questions, audit, now, out).await;
    tokens(crate::clickhouse::tokens_for(config, Some(&ch)), now, out);
}

/// Runs every check for the server and store `config` describes.
pub async fn run(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    listeners(config, &mut out).await;
    let now = jiff::Timestamp::now();
    match crate::clickhouse::ClickHouse::from_config(&config.store) {
        Err(e) => {
            out.push(check(Level::Fail, "store", e.to_string()));
            return out;
        }
        Ok(Some(ch)) => {
            clickhouse(config, ch, now, &mut out).await;
            return out;
        }
        Ok(None) => {}
    }
    if !config.data_dir.join(crate::store::DB_FILE_NAME).is_file() {
        out.push(check(
            Level::Fail,
            "store",
            format!(
                "no store in {}: check --data-dir (serve creates it on first start)",
                config.data_dir.display()
            ),
        ));
        return out;
    }
    permissions(config, &mut out);
    match crate::store::Store::open(
        &config.data_dir,
        crate::store::StoreOptions::from_config(config),
    ) {
        Err(e) => out.push(check(
            Level::Fail,
            "store",
            format!("cannot open the store: {e}"),
        )),
        Ok(store) => {
            match store.ready().await {
                Ok(()) => out.push(check(Level::Ok, "store", "opens and takes writes")),
                Err(e) => out.push(check(
                    Level::Fail,
                    "store",
                    format!("does not take writes: {e}"),
                )),
            }
            let questions = std::sync::Arc::new(crate::query::runner::Sqlite::with_limits(
                store.clone(),
                &config.query,
            ));
            let audit = crate::audit::AuditLog::open_read_only(&config.data_dir)
                .ok()
                .map(|l| std::sync::Arc::new(l) as std::sync::Arc<dyn crate::audit::AuditReader>);
            describe(config, questions, audit, now, &mut out).await;
            let _ = store.close().await;
        }
    }
    tokens(
        crate::auth::TokenStore::open(&config.data_dir),
        now,
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ago_reads_naturally() {
        assert_eq!(ago(Duration::from_secs(30)), "30 s ago");
        assert_eq!(ago(Duration::from_secs(600)), "10 min ago");
        assert_eq!(ago(Duration::from_secs(3 * 3600)), "3 h ago");
        assert_eq!(ago(Duration::from_secs(3 * 86_400)), "3 days ago");
    }

    #[test]
    fn an_empty_store_says_how_to_send_data() {
        let mut out = Vec::new();
        data(&json!({"rows": []}), jiff::Timestamp::now(), &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].detail.contains("tokentally setup"));
    }

    #[test]
    fn a_fast_clock_is_reported() {
        let now = jiff::Timestamp::now();
        let later = (now + jiff::SignedDuration::from_hours(2)).to_string();
        let d = json!({"rows": [{"kind": "event", "count": 3, "last": later}], "last_event": later, "agents": []});
        let mut out = Vec::new();
        data(&d, now, &mut out);
        assert!(
            out.iter()
                .any(|c| c.what == "clocks" && c.detail.contains("120 min ahead")),
            "{out:?}"
        );
        assert!(
            out.iter()
                .any(|c| c.what == "traces" && c.level == Level::Warn)
        );
    }
}
