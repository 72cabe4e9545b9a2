//! Server configuration: one `Config`, loaded from an optional TOML file and
//! overridden by command-line flags. Every default is the safe one: loopback
//! binds, host/origin checks on, content capture off.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors loading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Whether OTLP ingest requires a token of the `ingest` scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestAuth {
    /// Open on loopback binds, required as soon as an OTLP listener binds a
    /// non-loopback address.
    #[default]
    Auto,
    /// Always require an ingest token.
    Required,
    /// Never require a token, even on public binds (explicit operator opt-out).
    Open,
}

/// Who may read the server's own counters at `/metrics` (MCP listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsAccess {
    /// Not served.
    #[default]
    Off,
    /// Served to a bearer token of scope audit.
    Token,
    /// Served to anyone who reaches the listener (for a local scraper).
    Open,
}

/// The whole server configuration.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding the database files; created if missing.
    pub data_dir: PathBuf,
    /// OTLP/gRPC listen address.
    pub otlp_grpc_addr: SocketAddr,
    /// OTLP/HTTP listen address.
    pub otlp_http_addr: SocketAddr,
    /// MCP streamable HTTP listen address (served at `/mcp`).
    pub mcp_addr: SocketAddr,
    /// Web view listen address; unset, the web view is served on the MCP
    /// listener (at `/`).
    pub ui_addr: Option<SocketAddr>,
    /// Token requirement for OTLP ingest.
    pub ingest_auth: IngestAuth,
    /// Prometheus counters at `/metrics` on the MCP listener: off, token
    /// (an audit token) or open.
    pub metrics: MetricsAccess,
    /// Store prompt text, responses, API bodies and tool input contents.
    /// Off by default: only metadata (paths, tool names, sizes) is kept.
    pub capture_content: bool,
    /// Delete data older than this many days (none = keep forever).
    pub retention_days: Option<u32>,
    /// Largest OTLP request body accepted, in bytes, after decompression.
    pub max_body_bytes: usize,
    /// Extra `Host` header values accepted (beyond loopback names and the
    /// bound address), for deployments behind a reverse proxy.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call the server (`scheme://host:port`).
    /// Empty: any request carrying an `Origin` header that is not a loopback
    /// origin is refused.
    pub allowed_origins: Vec<String>,
    /// Query limits for the MCP tools.
    pub query: QueryLimits,
    /// Rate limits.
    pub rate_limit: RateLimits,
    /// Store writer tuning.
    pub writer: WriterConfig,
    /// Connection limits of the HTTP listeners (OTLP/HTTP and MCP).
    pub connections: ConnectionLimits,
    /// Computed cost: the price override file.
    pub pricing: PricingConfig,
    /// Who an agent's records belong to when it sends no user: resource or
    /// record attribute `key=value` → developer, e.g.
    /// `"host.name=ci-runner-3" = "team-platform"`.
    pub identity: IdentityMap,
    /// Where the telemetry is kept: the embedded store in `data_dir`
    /// (default) or a ClickHouse server.
    pub store: StoreConfig,
}

/// Where the telemetry is kept.
#[derive(Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `clickhouse://USER:PASSWORD@HOST:8123/DATABASE`; unset, the embedded
    /// SQLite store in `data_dir`. The access tokens live where the
    /// telemetry does, and so does the audit log (a chain per node run).
    pub url: Option<String>,
    /// A file whose first line is the ClickHouse password (in place of the
    /// URL's; `TOKENTALLY_CLICKHOUSE_PASSWORD` wins over both).
    pub password_file: Option<PathBuf>,
    /// A second `clickhouse://` URL the query path signs in with (a user
    /// whose profile is `readonly = 2`), so ClickHouse itself refuses any
    /// write from it; unset, queries use `url`'s user (still sending
    /// `readonly = 2` with every statement).
    pub read_url: Option<String>,
    /// A third `clickhouse://` URL the OTLP ingest path signs in with (a
    /// user who may only `INSERT` into `events`, `metric_points` and
    /// `spans`); unset, ingest uses `url`'s user. Schema, tokens, audit and
    /// retention stay with `url`.
    pub ingest_url: Option<String>,
    /// A ClickHouse cluster (a `<remote_servers>` name): the tables are
    /// created `ON CLUSTER` as local tables on every shard behind
    /// `Distributed` tables of the plain names, and inserts wait for every
    /// shard. Unset, one server's plain tables.
    pub cluster: Option<String>,
    /// How inserts into ClickHouse are batched across OTLP requests.
    pub batching: Batching,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.url.as_deref().map(redacted_url))
            .field("password_file", &self.password_file)
            .field("read_url", &self.read_url.as_deref().map(redacted_url))
            .field("ingest_url", &self.ingest_url.as_deref().map(redacted_url))
            .field("cluster", &self.cluster)
            .field("batching", &self.batching)
            .finish()
    }
}

/// A store URL with its password replaced by `***`, for messages and
/// configuration dumps.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(unparsable URL)".to_string(),
    }
}

/// How inserts into ClickHouse are batched across OTLP requests.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Batching {
    /// Records per insert at most (a request larger than this is inserted alone).
    pub max_rows: usize,
    /// How long the first request of an insert waits for others, in ms.
    pub max_wait_ms: u64,
    /// Requests that may wait; beyond, ingest answers 503 + Retry-After.
    pub queue: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            max_rows: 50_000,
            max_wait_ms: 200,
            queue: 1024,
        }
    }
}

/// Where computed cost takes its prices from.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    /// A TOML price table laid over the shipped one (see `pricing`).
    pub file: Option<PathBuf>,
}

/// The operator's identity map: `attribute=value` → developer.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct IdentityMap(pub std::collections::BTreeMap<String, String>);

impl IdentityMap {
    /// The developer the first matching entry names, reading attributes
    /// with `value_of`.
    pub fn lookup(&self, value_of: impl Fn(&str) -> Option<String>) -> Option<String> {
        self.0.iter().find_map(|(rule, developer)| {
            let (key, want) = rule.split_once('=')?;
            (value_of(key.trim()).as_deref() == Some(want.trim())).then(|| developer.clone())
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (rule, developer) in &self.0 {
            let ok = rule
                .split_once('=')
                .is_some_and(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty());
            if !ok || developer.trim().is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "identity: \"{rule}\" = \"{developer}\" must map \"attribute=value\" to a developer"
                )));
            }
        }
        Ok(())
    }
}

/// How long and how many connections a client may hold on the HTTP listeners.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// A client must send a request's whole header within this many
    /// milliseconds (a connection waiting for its next request too), or the
    /// connection is closed: slow-header clients cannot hold connections.
    pub header_read_timeout_ms: u64,
    /// Most open connections from one address per listener; more are closed
    /// at once.
    pub max_per_ip: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout_ms: 30_000,
            max_per_ip: 256,
        }
    }
}

/// Limits every tool call obeys; arguments can lower them, never raise them.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryLimits {
    /// Default number of rows a tool returns (20 keeps a default answer
    /// well under 20 KB; callers ask for more with `limit`).
    pub default_rows: usize,
    /// Ceiling on rows any call may ask for.
    pub max_rows: usize,
    /// Time budget of one query, in milliseconds; the database work is interrupted past it.
    pub time_budget_ms: u64,
    /// Ceiling on the serialized size of one reply, in bytes (Claude Code's
    /// MCP output limit is about 25,000 tokens).
    pub max_reply_bytes: usize,
    /// Number of read connections (concurrent queries).
    pub readers: usize,
    /// How long a query may wait for a free read connection, in milliseconds.
    pub queue_deadline_ms: u64,
    /// Tool calls one token may have running at once; more wait
    /// (`per_token_wait_ms`), then get a tool error saying when to retry, so
    /// one token's heavy calls cannot take every read connection.
    pub per_token_calls: usize,
    /// How long a call waits for one of its token's slots, in milliseconds.
    pub per_token_wait_ms: u64,
}

/// Rate limits, per token and per client address.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Tool calls per minute allowed to one token (protocol messages such as
    /// initialize, notifications and the GET stream do not count).
    pub per_token_per_minute: u32,
    /// Tool calls one token may make at once before the per-minute rate applies.
    pub per_token_burst: u32,
    /// MCP requests per minute allowed from one IP address, checked before
    /// the token is looked up.
    pub per_ip_per_minute: u32,
    /// Burst allowed to one IP address.
    pub per_ip_burst: u32,
}

/// Store writer tuning.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriterConfig {
    /// Requests that may wait for the writer; past this ingest answers 503.
    pub queue_requests: usize,
    /// Records written per transaction at most (several requests are grouped
    /// into one transaction up to this size).
    pub max_transaction_records: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            otlp_grpc_addr: SocketAddr::from(([127, 0, 0, 1], 4317)),
            otlp_http_addr: SocketAddr::from(([127, 0, 0, 1], 4318)),
            mcp_addr: SocketAddr::from(([127, 0, 0, 1], 4319)),
            ui_addr: None,
            ingest_auth: IngestAuth::Auto,
            metrics: MetricsAccess::Off,
            capture_content: false,
            retention_days: None,
            max_body_bytes: 16 * 1024 * 1024,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            query: QueryLimits::default(),
            rate_limit: RateLimits::default(),
            writer: WriterConfig::default(),
            connections: ConnectionLimits::default(),
            pricing: PricingConfig::default(),
            identity: IdentityMap::default(),
            store: StoreConfig::default(),
        }
    }
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            default_rows: 20,
            max_rows: 1000,
            time_budget_ms: 5_000,
            max_reply_bytes: 80_000,
            readers: 4,
            queue_deadline_ms: 2_000,
            per_token_calls: 2,
            per_token_wait_ms: 1_000,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_token_per_minute: 120,
            per_token_burst: 100,
            per_ip_per_minute: 600,
            per_ip_burst: 100,
        }
    }
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            queue_requests: 256,
            max_transaction_records: 50_000,
        }
    }
}

/// The default data directory: `$XDG_DATA_HOME/tokentally`, else
/// `~/.local/share/tokentally`, else `./tokentally-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("tokentally");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".local/share/tokentally");
    }
    PathBuf::from("tokentally-data")
}

impl Config {
    /// Reads a TOML configuration file; missing fields take their defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Checks values that would make the server misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let q = &self.query;
        if q.max_rows == 0 || q.default_rows == 0 || q.default_rows > q.max_rows {
            return Err(ConfigError::Invalid(
                "query.default_rows must be between 1 and query.max_rows".into(),
            ));
        }
        if q.readers == 0 || q.time_budget_ms == 0 || q.max_reply_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "query.readers and query.time_budget_ms must be positive, query.max_reply_bytes at least 1024".into(),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be at least 1024".into(),
            ));
        }
        let r = &self.rate_limit;
        if r.per_token_per_minute == 0 || r.per_ip_per_minute == 0 {
            return Err(ConfigError::Invalid("rate limits must be positive".into()));
        }
        self.identity.validate()?;
        if self.writer.queue_requests == 0 || self.writer.max_transaction_records == 0 {
            return Err(ConfigError::Invalid(
                "writer.queue_requests and writer.max_transaction_records must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Whether OTLP ingest must present an ingest token with these binds.
    pub fn ingest_requires_token(&self) -> bool {
        match self.ingest_auth {
            IngestAuth::Required => true,
            IngestAuth::Open => false,
            IngestAuth::Auto => {
                !self.otlp_http_addr.ip().is_loopback() || !self.otlp_grpc_addr.ip().is_loopback()
            }
        }
    }

    /// The query time budget as a `Duration`.
    pub fn time_budget(&self) -> Duration {
        Duration::from_millis(self.query.time_budget_ms)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_config_names_every_key_with_its_default() {
        let text = include_str!("../examples/tokentally.toml");
        let example: Config = toml::from_str(text).unwrap_or_else(|e| unreachable!("{e}"));
        let mut want =
            toml::Value::try_from(Config::default()).unwrap_or_else(|e| unreachable!("{e}"));
        let mut got = toml::Value::try_from(example).unwrap_or_else(|e| unreachable!("{e}"));
        for v in [&mut want, &mut got] {
            if let Some(t) = v.as_table_mut() {
                t.remove("data_dir");
            }
        }
        assert_eq!(
            got, want,
            "examples/tokentally.toml must state the defaults"
        );
        // Keys without a default value are there, commented out.
        for key in ["ui_addr", "retention_days", "file = "] {
            assert!(text.contains(&format!("# {key}")), "{key} missing");
        }
        // Every key of the defaults is written out (not left to its default).
        let raw: toml::Value = toml::from_str(text).unwrap_or_else(|e| unreachable!("{e}"));
        fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
            if let Some(t) = v.as_table() {
                for (k, v) in t {
                    let name = format!("{prefix}{k}");
                    keys(v, &format!("{name}."), out);
                    out.push(name);
                }
            }
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        keys(&want, "", &mut a);
        keys(&raw, "", &mut b);
        for k in a {
            assert!(b.contains(&k), "{k} is not in examples/tokentally.toml");
        }
    }

    use super::*;

    #[test]
    fn defaults_are_safe_and_valid() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.otlp_http_addr.ip().is_loopback());
        assert!(c.mcp_addr.ip().is_loopback());
        assert!(!c.capture_content);
        assert!(!c.ingest_requires_token());
    }

    #[test]
    fn public_bind_requires_ingest_token_unless_opted_out() {
        let mut c = Config {
            otlp_http_addr: "0.0.0.0:4318".parse().unwrap(),
            ..Config::default()
        };
        assert!(c.ingest_requires_token());
        c.ingest_auth = IngestAuth::Open;
        assert!(!c.ingest_requires_token());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = toml::from_str::<Config>("data_dirr = \"x\"").unwrap_err();
        assert!(err.to_string().contains("data_dirr"));
        let c: Config =
            toml::from_str("capture_content = true\n[query]\nmax_rows = 50\ndefault_rows = 10")
                .unwrap();
        assert!(c.capture_content);
        assert_eq!(c.query.max_rows, 50);
        assert_eq!(c.query.time_budget_ms, 5_000);
    }
}
