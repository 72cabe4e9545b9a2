//! The scale-out store: OTLP rows written to ClickHouse and the same
//! questions answered from it, so several stateless tokentally nodes can
//! stand in front of one database.
//!
//! * [`Settings`]: where the server is (`clickhouse://USER:PASSWORD@HOST:8123/DB`)
//!   and who we are there; the password never appears in logs or errors.
//! * [`schema`]: the tables, created idempotently with a schema version.
//! * [`rows`]: a decoded [`crate::rows::Batch`] as ClickHouse rows (one
//!   row per record, its context beside it: ClickHouse compresses repeats).
//! * [`sink`]: inserts batched across OTLP requests, each request
//!   acknowledged only once ClickHouse has accepted the insert holding it.
//! * [`questions`]: [`crate::query::Questions`] in ClickHouse SQL.
//!
//! Retries are counted once: every record carries its deduplication key
//! (the same key the SQLite store uses) as the last column of its table's
//! sort key, the tables are `ReplacingMergeTree`, and every question reads
//! them `FINAL`, so a batch received twice, by one node or by two, answers
//! as once.

pub mod audit;
mod blocking;
#[cfg(test)]
mod chdb_check;
mod describe;
mod prune;
pub mod questions;
pub mod rows;
pub mod schema;
mod sessions;
pub mod sink;
mod sql;
pub mod tokens;

use std::time::Duration;

/// Why the ClickHouse store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store URL (or its password source) is not usable.
    #[error("{0}")]
    Settings(String),
    /// The server answered with an error or could not be reached.
    #[error("ClickHouse: {0}")]
    Server(String),
}

impl From<clickhouse::error::Error> for Error {
    fn from(e: clickhouse::error::Error) -> Self {
        Error::Server(e.to_string())
    }
}

/// Where the ClickHouse server is and how to sign in.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    /// `http://host:port` of the server's HTTP interface.
    pub http_url: String,
    /// User name.
    pub user: String,
    /// Password (never printed: see the `Debug` impl).
    password: String,
    /// Database holding tokentally's tables.
    pub database: String,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("http_url", &self.http_url)
            .field("user", &self.user)
            .field(
                "password",
                &if self.password.is_empty() { "" } else { "***" },
            )
            .field("database", &self.database)
            .finish()
    }
}

/// The environment variable that overrides the URL's password.
pub const PASSWORD_ENV: &str = "TOKENTALLY_CLICKHOUSE_PASSWORD";

impl Settings {
    /// Parses `clickhouse://USER:PASSWORD@HOST:PORT/DATABASE` (port 8123
    /// and user `default` when left out; `clickhouses://` is refused, as this
    /// build speaks plain HTTP to a server on the local network).
    pub fn parse(url: &str) -> Result<Settings, Error> {
        let bad = |why: &str| {
            Error::Settings(format!(
                "store URL {}: {why} (expected clickhouse://USER:PASSWORD@HOST:8123/DATABASE)",
                redacted(url)
            ))
        };
        let u = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if u.scheme() != "clickhouse" {
            return Err(bad("the scheme must be clickhouse://"));
        }
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let port = u.port().unwrap_or(8123);
        let database = u.path().trim_start_matches('/');
        if database.is_empty() {
            return Err(bad("no database name"));
        }
        if !database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(bad(
                "the database name may only hold letters, digits and '_'",
            ));
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let user = if u.username().is_empty() {
            "default".to_string()
        } else {
            decode(u.username())
        };
        let host = if host.contains(':') {
            format!("[{}]", host.trim_matches(['[', ']']))
        } else {
            host.to_string()
        };
        Ok(Settings {
            http_url: format!("http://{host}:{port}"),
            user,
            password: u.password().map(decode).unwrap_or_default(),
            database: database.to_string(),
        })
    }

    /// The password from `TOKENTALLY_CLICKHOUSE_PASSWORD` or a file (first
    /// line), when one is set, in place of the URL's.
    pub fn with_password_from(
        mut self,
        env: Option<String>,
        file: Option<&std::path::Path>,
    ) -> Result<Settings, Error> {
        if let Some(p) = env.filter(|p| !p.is_empty()) {
            self.password = p;
        } else if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Settings(format!(
                    "cannot read the password file {}: {e}",
                    path.display()
                ))
            })?;
            self.password = text.lines().next().unwrap_or("").to_string();
        }
        Ok(self)
    }

    /// A client signed in as these settings, in the store's database.
    fn client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.http_url)
            .with_user(&self.user)
            .with_password(&self.password)
            .with_database(&self.database)
            // Validation asks for RowBinaryWithNamesAndTypes, which older
            // servers do not speak; the row types are fixed by `rows`.
            .with_validation(false)
    }
}

/// The URL with its password replaced by `***`, for messages.
pub use crate::config::redacted_url as redacted;

/// The ClickHouse store: a writing client for ingest and schema, and a
/// reading one that the server holds to `readonly` and to the query limits.
#[derive(Clone)]
pub struct ClickHouse {
    settings: Settings,
    /// Who the query path signs in as (the same user unless `read_url` says).
    read: Settings,
    write: clickhouse::Client,
    /// Who OTLP inserts go through (the writer unless `ingest_url` says).
    ingest: clickhouse::Client,
    /// The cluster whose shards hold the tables, if any.
    cluster: Option<String>,
}

/// What [`ClickHouse::query_user`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryUser {
    /// The query path signs in as a user of its own (`read_url`).
    pub own: bool,
    /// The server lets that user write (its profile's `readonly` is 0).
    pub may_write: bool,
}

/// Limits every question runs under, enforced by ClickHouse itself.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// `max_execution_time`: the server stops the query at the budget.
    pub budget: Duration,
    /// `max_result_rows`, a second guard beside the tools' row caps.
    pub max_result_rows: u64,
    /// `max_result_bytes`.
    pub max_result_bytes: u64,
}

impl ReadLimits {
    /// The server's query limits as ClickHouse settings: the time budget,
    /// and result caps well above what any tool returns (the tools cap
    /// their rows; these stop a runaway statement).
    pub fn of(q: &crate::config::QueryLimits) -> ReadLimits {
        ReadLimits {
            budget: Duration::from_millis(q.time_budget_ms),
            max_result_rows: 10_000_000,
            max_result_bytes: 1 << 30,
        }
    }
}

/// The questions answered from ClickHouse `ch` under the configured query
/// limits.
pub fn questions_of(
    config: &crate::config::Config,
    ch: ClickHouse,
) -> std::sync::Arc<dyn crate::query::Questions> {
    std::sync::Arc::new(questions::ClickHouseQuestions::new(
        ch,
        ReadLimits::of(&config.query),
    ))
}

/// The tokens the server and the CLI check and manage: those every node
/// shares in ClickHouse when the configuration names it (`ch`), else the
/// embedded store's in the data directory.
pub fn tokens_for(
    config: &crate::config::Config,
    ch: Option<&ClickHouse>,
) -> Result<crate::auth::TokenStore, crate::auth::TokenError> {
    match ch {
        Some(ch) => Ok(crate::auth::TokenStore::over(
            tokens::ClickHouseTokens::new(ch.clone())?,
        )),
        None => crate::auth::TokenStore::open(&config.data_dir),
    }
}

/// The audit log a server appends to and its audit tools read: this
/// process's chain of the log every node shares in ClickHouse when the
/// configuration names it (`ch`), else the embedded log in the data
/// directory (appended through its own connection, read through a
/// read-only one, so the tools cannot write it).
#[allow(clippy::type_complexity)]
pub fn audit_for(
    config: &crate::config::Config,
    ch: Option<&ClickHouse>,
) -> Result<
    (
        std::sync::Arc<dyn crate::audit::AuditSink>,
        std::sync::Arc<dyn crate::audit::AuditReader>,
    ),
    crate::audit::AuditError,
> {
    match ch {
        Some(ch) => {
            let log = std::sync::Arc::new(audit::ClickHouseAudit::new(
                ch.clone(),
                ReadLimits::of(&config.query),
            )?);
            tracing::info!(
                node = log.node(),
                "audit log in ClickHouse, this node's chain"
            );
            Ok((log.clone(), log))
        }
        None => Ok((
            std::sync::Arc::new(crate::audit::AuditLog::open(&config.data_dir)?),
            std::sync::Arc::new(crate::audit::AuditLog::open_read_only(&config.data_dir)?),
        )),
    }
}

/// The audit log the CLI reads (`audit`, `query`, `report`): every chain in
/// ClickHouse when the configuration names it (`ch`; reads bounded by
/// `budget`), else the embedded log in the data directory, read-only.
pub fn audit_reader(
    config: &crate::config::Config,
    ch: Option<&ClickHouse>,
    budget: Duration,
) -> Result<std::sync::Arc<dyn crate::audit::AuditReader>, crate::audit::AuditError> {
    match ch {
        Some(ch) => Ok(std::sync::Arc::new(audit::ClickHouseAudit::new(
            ch.clone(),
            ReadLimits {
                budget,
                ..ReadLimits::of(&config.query)
            },
        )?)),
        None => Ok(std::sync::Arc::new(crate::audit::AuditLog::open_read_only(
            &config.data_dir,
        )?)),
    }
}

impl ClickHouse {
    /// A store at `settings` (nothing is contacted until used).
    pub fn new(settings: Settings) -> ClickHouse {
        let write = settings.client();
        ClickHouse {
            read: settings.clone(),
            settings,
            ingest: write.clone(),
            write,
            cluster: None,
        }
    }

    /// The store `[store]` names, when it is ClickHouse (nothing is
    /// contacted): `url`, with the password from
    /// `TOKENTALLY_CLICKHOUSE_PASSWORD` or the password file in place of
    /// the URL's when set, and `read_url` for the query path.
    pub fn from_config(store: &crate::config::StoreConfig) -> Result<Option<ClickHouse>, Error> {
        let Some(url) = &store.url else {
            return Ok(None);
        };
        let settings = Settings::parse(url)?.with_password_from(
            std::env::var(PASSWORD_ENV).ok(),
            store.password_file.as_deref(),
        )?;
        let mut ch = ClickHouse::new(settings);
        if let Some(url) = &store.read_url {
            ch.read = Settings::parse(url)?;
        }
        if let Some(cluster) = &store.cluster {
            if !schema::valid_cluster(cluster) {
                return Err(Error::Settings(format!(
                    "cluster name {cluster:?}: use the <remote_servers> name (letters, digits, '_')"
                )));
            }
            ch.cluster = Some(cluster.clone());
            ch.write = ch.writer_of(ch.settings.client());
        }
        ch.ingest = match &store.ingest_url {
            Some(url) => ch.writer_of(Settings::parse(url)?.client()),
            None => ch.write.clone(),
        };
        Ok(Some(ch))
    }

    /// The settings (for messages: the password stays hidden).
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Creates the database and tables if missing and records the schema
    /// version; safe to run on every start and from every node.
    pub async fn init(&self) -> Result<(), Error> {
        schema::init(
            &self.settings.client().with_database("default"),
            &self.settings.database,
            self.cluster.as_deref(),
        )
        .await
        .map_err(|e| match e {
            Error::Server(m) => Error::Server(format!(
                "cannot set up database {} at {}: {m}",
                self.settings.database, self.settings.http_url
            )),
            other => other,
        })
    }

    /// The client reads go through: `readonly = 2` (no write of any kind,
    /// settings still adjustable), the budget as `max_execution_time` and the
    /// result caps, all checked by the server.
    pub(crate) fn reader(&self, limits: ReadLimits) -> clickhouse::Client {
        self.read
            .client()
            .with_option("readonly", "2")
            // Whole seconds, rounded up: older servers take no fraction.
            .with_option(
                "max_execution_time",
                limits.budget.as_millis().div_ceil(1000).max(1).to_string(),
            )
            .with_option("timeout_overflow_mode", "throw")
            .with_option("max_result_rows", limits.max_result_rows.to_string())
            .with_option("max_result_bytes", limits.max_result_bytes.to_string())
            .with_option("result_overflow_mode", "throw")
    }

    /// The owner's client (tests write through it as an owner of the
    /// database would).
    #[cfg(test)]
    pub(crate) fn writer(&self) -> &clickhouse::Client {
        &self.write
    }

    /// The client the OTLP rows are inserted through (`ingest_url`'s user
    /// when set: it needs `INSERT` on the telemetry tables, nothing else).
    pub(crate) fn ingester(&self) -> &clickhouse::Client {
        &self.ingest
    }

    /// A writing client with a connection pool of its own, for a table
    /// called from its own runtime (`blocking`): a pooled connection is
    /// driven by the runtime that opened it, so sharing the async writer's
    /// pool could leave a call waiting on a runtime that is blocked waiting
    /// for it.
    pub(crate) fn own_writer(&self) -> clickhouse::Client {
        self.writer_of(self.settings.client())
    }

    fn writer_of(&self, client: clickhouse::Client) -> clickhouse::Client {
        if self.cluster.is_some() {
            // An insert is acknowledged only once every shard holds its rows.
            client.with_option("insert_distributed_sync", "1")
        } else {
            client
        }
    }

    /// The table a node writes `name`'s rows into directly: on a cluster
    /// the local table of the server this node talks to (the rows then stay
    /// on the shard this node can reach), else `name`.
    pub(crate) fn local_table(&self, name: &str) -> String {
        match self.cluster {
            Some(_) => format!("{name}_local"),
            None => name.to_string(),
        }
    }

    /// The newest schema version recorded in the database (`None` when
    /// its tables were never created), read as the writing user.
    pub async fn schema_version(&self) -> Result<Option<u32>, Error> {
        // Asked outside the database, which may not exist either.
        let exists: u64 = self
            .settings
            .client()
            .with_database("default")
            .query(
                "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_version'",
            )
            .bind(&self.settings.database)
            .fetch_one()
            .await?;
        if exists == 0 {
            return Ok(None);
        }
        let v: u32 = self
            .write
            .query("SELECT max(version) FROM schema_version")
            .fetch_one()
            .await?;
        Ok(Some(v))
    }

    /// Whether the query path's user may write as far as the server is
    /// concerned (its profile's `readonly` is 0), leaving aside the
    /// `readonly = 2` every question sends; and whether that user is one
    /// of its own (`read_url`) rather than the writing user.
    pub async fn query_user(&self) -> Result<QueryUser, Error> {
        let readonly: String = self
            .read
            .client()
            .query("SELECT value FROM system.settings WHERE name = 'readonly'")
            .fetch_one()
            .await?;
        Ok(QueryUser {
            own: self.read != self.settings,
            may_write: readonly.trim() == "0",
        })
    }

    /// True when the server answers the ingest path's user (readiness).
    pub async fn ping(&self) -> Result<(), Error> {
        self.ingest.query("SELECT 1").execute().await?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "../../tests/support/clickhouse_server.rs"]
pub(crate) mod testing;

/// A store in a new, empty database on the test binary's shared server,
/// its tables created.
#[cfg(test)]
pub(crate) async fn test_store() -> ClickHouse {
    let url = tokio::task::spawn_blocking(|| testing::shared().fresh_database_url())
        .await
        .unwrap();
    let ch = ClickHouse::new(Settings::parse(&url).unwrap());
    ch.init().await.unwrap();
    ch
}

/// A new database on the test binary's two-shard cluster
/// (`testing::shared_cluster`), created `ON CLUSTER`.
#[cfg(test)]
pub(crate) async fn test_cluster_store() -> ClickHouse {
    let url = tokio::task::spawn_blocking(|| testing::shared_cluster().fresh_database_url())
        .await
        .unwrap();
    let config = crate::config::StoreConfig {
        url: Some(url),
        cluster: Some(testing::Cluster::NAME.into()),
        ..Default::default()
    };
    let ch = ClickHouse::from_config(&config).unwrap().unwrap();
    ch.init().await.unwrap();
    ch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_with_defaults_and_hide_the_password() {
        let s = Settings::parse("clickhouse://alice:s%40cret@ch.example:9123/tally").unwrap();
        assert_eq!(s.http_url, "http://ch.example:9123");
        assert_eq!(s.user, "alice");
        assert_eq!(s.password, "s@cret");
        assert_eq!(s.database, "tally");
        let shown = format!("{s:?}");
        assert!(!shown.contains("cret"), "{shown}");
        let s = Settings::parse("clickhouse://localhost/db").unwrap();
        assert_eq!(
            (s.http_url.as_str(), s.user.as_str()),
            ("http://localhost:8123", "default")
        );
        for bad in [
            "http://h/db",
            "clickhouse://h",
            "clickhouse://h/",
            "clickhouse://h/a-b",
            "clickhouse://u:topsecret@h/a;b",
            "nonsense",
        ] {
            let e = Settings::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("topsecret"), "{e}");
        }
        assert_eq!(
            redacted("clickhouse://u:pw@h/db"),
            "clickhouse://u:***@h/db"
        );
    }

    #[tokio::test]
    async fn the_query_path_cannot_write_and_stops_at_its_budget() {
        let store = test_store().await;
        let limits = ReadLimits {
            budget: Duration::from_millis(1500),
            max_result_rows: 1000,
            max_result_bytes: 1 << 20,
        };
        let reader = store.reader(limits);
        let e = reader
            .query("INSERT INTO schema_version (version, applied_ns) VALUES (99, 0)")
            .execute()
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("Code: 164"), "readonly refuses writes: {e}");
        let e = reader
            .query("CREATE TABLE x (a UInt8) ENGINE = Memory")
            .execute()
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("Code: 164"), "and DDL: {e}");
        // The server stops a statement at the budget (rounded up to 2 s).
        let started = std::time::Instant::now();
        let e = reader
            .query("SELECT count() FROM system.numbers WHERE number % 7 = 9")
            .fetch_one::<u64>()
            .await
            .unwrap_err();
        assert!(matches!(
            questions::query_error(e),
            crate::query::QueryError::TimedOut
        ));
        assert!(started.elapsed() < Duration::from_secs(10));
        // The result caps are the server's too.
        let e = reader
            .query("SELECT number FROM system.numbers LIMIT 5000")
            .fetch_all::<u64>()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Code: 396") || e.contains("Limit for result"),
            "{e}"
        );
        // The writing client still writes.
        store
            .writer()
            .query("INSERT INTO schema_version (version, applied_ns) VALUES (0, 0)")
            .execute()
            .await
            .unwrap();
    }

    #[test]
    fn the_password_can_come_from_the_environment_or_a_file() {
        let s = Settings::parse("clickhouse://u:url@h/db").unwrap();
        assert_eq!(
            s.clone()
                .with_password_from(Some("env".into()), None)
                .unwrap()
                .password,
            "env"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "from-file\n").unwrap();
        assert_eq!(
            s.clone()
                .with_password_from(None, Some(&f))
                .unwrap()
                .password,
            "from-file"
        );
        assert_eq!(
            s.clone().with_password_from(None, None).unwrap().password,
            "url"
        );
        assert!(
            s.with_password_from(None, Some(&dir.path().join("none")))
                .is_err()
        );
    }
}
