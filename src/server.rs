//! Wires the store, the OTLP receivers and the MCP endpoint together under one
//! cancellation token. `start` binds everything (port 0 works, for tests) and
//! returns the bound addresses; `RunningServer::shutdown` stops the listeners,
//! drains in-flight work and checkpoints the database last.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::audit::{AuditReader, AuditSink};
use crate::auth::{TokenInfo, TokenStore};
use crate::config::Config;
use crate::grpc::OtlpGrpc;
use crate::http::guard::{GuardState, HostCheck};
use crate::http::otlp::OtlpState;
use crate::otlp::DecodeOptions;
use crate::ratelimit::RateLimiter;
use crate::store::{Store, StoreOptions};

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store could not be opened or closed cleanly.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The ClickHouse store could not be set up.
    #[error("{0}")]
    ClickHouse(#[from] crate::clickhouse::Error),
    /// Tokens could not be read or created.
    #[error("tokens: {0}")]
    Auth(String),
    /// The audit log could not be opened.
    #[error("audit log: {0}")]
    Audit(String),
    /// A listener could not bind.
    #[error("cannot listen on {addr} ({what}): {source}; choose another address with {flag}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Which listener.
        what: &'static str,
        /// The flag (or config key) that moves it.
        flag: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// A started server.
pub struct RunningServer {
    /// Bound OTLP/HTTP address.
    pub otlp_http_addr: SocketAddr,
    /// Bound OTLP/gRPC address.
    pub otlp_grpc_addr: SocketAddr,
    /// Bound MCP address (endpoint `/mcp`).
    pub mcp_addr: SocketAddr,
    /// Where the web view is served: its own listener's address, or the
    /// MCP address when it shares that listener.
    pub ui_addr: SocketAddr,
    /// Tokens created on this first start (secrets shown once), if any.
    pub bootstrap_tokens: Vec<(TokenInfo, String)>,
    /// Whether OTLP ingest requires an ingest token.
    pub ingest_requires_token: bool,
    /// The embedded store, for in-process inspection (tests, CLI); `None`
    /// when the telemetry is in ClickHouse (a node keeps no store then).
    pub store: Option<Store>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds one listener and reads back its address (port 0 resolved).
async fn bind(
    addr: SocketAddr,
    what: &'static str,
    flag: &'static str,
) -> Result<(TcpListener, SocketAddr), ServerError> {
    let err = |source| ServerError::Bind {
        addr,
        what,
        flag,
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    Ok((listener, local))
}

/// Starts every listener and background task.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    config.validate()?;
    // Every listener first: a port already taken (often by a local
    // OpenTelemetry Collector on 4317/4318) must fail the start before the
    // first-start tokens are created, or their secrets would be lost.
    let (otlp_http, otlp_http_addr) = bind(
        config.otlp_http_addr,
        "OTLP/HTTP",
        "--otlp-http (otlp_http_addr)",
    )
    .await?;
    let (otlp_grpc, otlp_grpc_addr) = bind(
        config.otlp_grpc_addr,
        "OTLP/gRPC",
        "--otlp-grpc (otlp_grpc_addr)",
    )
    .await?;
    let (mcp, mcp_addr) = bind(config.mcp_addr, "MCP", "--mcp (mcp_addr)").await?;
    let ui = match config.ui_addr {
        Some(addr) => Some(bind(addr, "web view", "--ui (ui_addr)").await?),
        None => None,
    };
    let ui_addr = ui.as_ref().map_or(mcp_addr, |(_, a)| *a);
    let Backends {
        store,
        sink,
        questions,
        tokens,
        audit,
        audit_reader,
    } = backends(&config).await?;
    let bootstrap_tokens = {
        let tokens = tokens.clone();
        tokio::task::spawn_blocking(move || tokens.ensure_bootstrap_tokens())
            .await
            .map_err(|e| ServerError::Auth(e.to_string()))?
            .map_err(|e| ServerError::Auth(e.to_string()))?
    };
    let limiter = Arc::new(RateLimiter::new(&config.rate_limit));
    let ingest_requires_token = config.ingest_requires_token();

    let cancel = CancellationToken::new();
    let decode = DecodeOptions::from_config(&config)
        .map_err(|e| ServerError::Config(crate::config::ConfigError::Invalid(e.to_string())))?;
    let guard = GuardState {
        tokens: tokens.clone(),
        limiter: limiter.clone(),
        audit: audit.clone(),
        host_check: HostCheck::new(
            &[otlp_http_addr, otlp_grpc_addr, mcp_addr, ui_addr],
            &config.allowed_hosts,
            &config.allowed_origins,
        ),
        ingest_requires_token,
        sessions: Default::default(),
    };

    let mut tasks = Vec::new();

    // Forget idle rate-limit keys even when traffic stops.
    tasks.push(tokio::spawn(crate::ratelimit::evict_periodically(
        limiter.clone(),
        Duration::from_secs(60),
        cancel.clone(),
    )));

    // OTLP/HTTP
    let otlp_app = crate::http::otlp_router(
        OtlpState {
            sink: sink.clone(),
            decode: decode.clone(),
        },
        guard.clone(),
    )
    .merge(crate::http::readiness_router(sink.clone()))
    .layer(tower_http::timeout::TimeoutLayer::with_status_code(
        http::StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(60),
    ));
    tasks.push(serve_axum(
        otlp_http,
        otlp_app,
        config.connections.clone(),
        cancel.clone(),
    ));

    // OTLP/gRPC
    let routes =
        OtlpGrpc::new(sink.clone(), decode).router(ingest_requires_token.then(|| tokens.clone()));
    let grpc_cancel = cancel.clone();
    tasks.push(tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(otlp_grpc);
        let result = tonic::transport::Server::builder()
            .layer(tower::util::MapResponseLayer::new(
                crate::grpc::final_status_codes,
            ))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, grpc_cancel.cancelled_owned())
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "OTLP/gRPC server stopped");
        }
    }));

    // MCP
    let registry = crate::mcp::Registry::new(crate::query::ToolContext::new(
        questions,
        config.query.clone(),
    ))
    .with_audit_log(audit_reader.clone())
    .with_rate_limiter(limiter.clone());
    let audit_witness = audit_reader;
    let mut mcp_hosts = Vec::new();
    if !config.allowed_hosts.is_empty() {
        // rmcp checks Host too; give it the same list as the guard in front.
        mcp_hosts.extend(["localhost", "127.0.0.1", "::1", "[::1]"].map(String::from));
        mcp_hosts.push(mcp_addr.ip().to_string());
        mcp_hosts.extend(config.allowed_hosts.iter().cloned());
    }
    let web = crate::web::WebState::new(&registry, audit.clone(), tokens.clone(), limiter.clone());
    let web_app = crate::web::router(web).layer(axum::middleware::from_fn_with_state(
        guard.clone(),
        crate::http::guard::mcp_host_origin_guard,
    ));
    let mcp_service = crate::mcp::mcp_service(
        registry,
        audit.clone(),
        cancel.child_token(),
        crate::mcp::McpHttpConfig {
            allowed_hosts: mcp_hosts,
            allowed_origins: config.allowed_origins.clone(),
            sse_keep_alive: None,
        },
    );
    let mut mcp_app = crate::http::mcp_router(mcp_service, guard)
        .merge(crate::http::readiness_router(sink.clone()))
        .merge(crate::http::metrics_router(
            config.metrics,
            tokens.clone(),
            sink.clone(),
        ));
    match ui {
        Some((listener, _)) => tasks.push(serve_axum(
            listener,
            web_app,
            config.connections.clone(),
            cancel.clone(),
        )),
        None => mcp_app = mcp_app.merge(web_app),
    }
    tasks.push(serve_axum(
        mcp,
        mcp_app,
        config.connections.clone(),
        cancel.clone(),
    ));

    tasks.push(spawn_audit_witness(audit_witness, cancel.clone()));

    // Retention
    if let Some(days) = config.retention_days {
        tasks.push(spawn_retention(sink.clone(), days, cancel.clone()));
    }

    Ok(RunningServer {
        otlp_http_addr,
        otlp_grpc_addr,
        mcp_addr,
        ui_addr,
        bootstrap_tokens,
        ingest_requires_token,
        store,
        cancel,
        tasks,
    })
}

/// What the server writes to and answers from.
struct Backends {
    /// The embedded store, when the telemetry is there.
    store: Option<Store>,
    sink: Arc<dyn crate::store::Sink>,
    questions: Arc<dyn crate::query::Questions>,
    tokens: TokenStore,
    audit: Arc<dyn AuditSink>,
    /// The audit tools' reader: they cannot write the log and do not queue
    /// behind appends.
    audit_reader: Arc<dyn AuditReader>,
}

/// Where ingest writes, the tools read, tokens are checked and the audit log
/// goes: the embedded store and the data directory, or the ClickHouse
/// server the configuration names (its tables created if missing) for all
/// of them.
async fn backends(config: &Config) -> Result<Backends, ServerError> {
    let ch = crate::clickhouse::ClickHouse::from_config(&config.store)?;
    let (store, sink, questions): (_, Arc<dyn crate::store::Sink>, _) = match &ch {
        Some(ch) => {
            ch.init().await?;
            tracing::info!(server = %ch.settings().http_url, database = %ch.settings().database, "telemetry in ClickHouse");
            let sink = crate::clickhouse::sink::Sink::start(ch.clone(), config.store.batching);
            (
                None,
                Arc::new(sink),
                crate::clickhouse::questions_of(config, ch.clone()),
            )
        }
        None => {
            let store = Store::open(&config.data_dir, StoreOptions::from_config(config))?;
            let questions: Arc<dyn crate::query::Questions> = Arc::new(
                crate::query::runner::Sqlite::with_limits(store.clone(), &config.query),
            );
            (Some(store.clone()), Arc::new(store), questions)
        }
    };
    let tokens = crate::clickhouse::tokens_for(config, ch.as_ref())
        .map_err(|e| ServerError::Auth(e.to_string()))?;
    let (audit, audit_reader) = crate::clickhouse::audit_for(config, ch.as_ref())
        .map_err(|e| ServerError::Audit(e.to_string()))?;
    Ok(Backends {
        store,
        sink,
        questions,
        tokens,
        audit,
        audit_reader,
    })
}

/// Serves `app` on `listener` until `cancel`, then lets open requests
/// finish. Each connection must send a request's whole header within the
/// configured time (else it is closed), and one address may hold at most
/// `max_per_ip` connections; the peer address reaches handlers as
/// `ConnectInfo<SocketAddr>`.
fn serve_axum(
    listener: TcpListener,
    app: axum::Router,
    limits: crate::config::ConnectionLimits,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::Service;
    tokio::spawn(async move {
        let mut make = app.into_make_service_with_connect_info::<SocketAddr>();
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let per_ip: Arc<ConnectionCounts> = Arc::default();
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms.max(1)));
        loop {
            let (stream, peer) = tokio::select! {
                _ = cancel.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Some(slot) = ConnectionSlot::take(&per_ip, peer.ip(), limits.max_per_ip) else {
                drop(stream);
                continue;
            };
            let Ok(svc) = make.call(peer).await;
            // Ambiguous body framing is refused before any handler runs
            // (see `http::framing`: hyper hides it from the request).
            let ambiguous = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = ambiguous.clone();
            let svc =
                tower::service_fn(move |req: axum::extract::Request<hyper::body::Incoming>| {
                    let mut inner = svc.clone();
                    let refused = seen.load(std::sync::atomic::Ordering::Acquire);
                    async move {
                        if refused {
                            return Ok(crate::http::framing::refusal());
                        }
                        inner.call(req).await
                    }
                });
            let io = crate::http::framing::Scanned::new(stream, ambiguous);
            let conn = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(io),
                    hyper_util::service::TowerToHyperService::new(svc),
                )
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                let _ = conn.await;
                drop(slot);
            });
        }
        // Open requests get a while to finish; idle connections close now.
        let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    })
}

/// Open connections per address of one listener.
type ConnectionCounts = std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>;

/// One open connection counted against its address.
struct ConnectionSlot {
    counts: Arc<ConnectionCounts>,
    ip: std::net::IpAddr,
}

impl ConnectionSlot {
    fn take(
        counts: &Arc<ConnectionCounts>,
        ip: std::net::IpAddr,
        max: usize,
    ) -> Option<ConnectionSlot> {
        let mut map = counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

fn spawn_retention(
    store: Arc<dyn crate::store::Sink>,
    days: u32,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let keep = Duration::from_secs(u64::from(days) * 86_400);
        loop {
            let now_ns = jiff::Timestamp::now().as_nanosecond();
            let cutoff = now_ns.saturating_sub(keep.as_nanos() as i128);
            let cutoff = i64::try_from(cutoff).unwrap_or(0);
            match store.prune(cutoff).await {
                Ok(r) => tracing::info!(
                    events = r.events,
                    metric_points = r.metric_points,
                    spans = r.spans,
                    "retention pruned old data"
                ),
                Err(e) => tracing::warn!(error = %e, "retention pass failed"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            }
        }
    })
}

/// How often the audit head goes to the server log.
const AUDIT_WITNESS_EVERY: Duration = Duration::from_secs(600);

/// Writes the audit log's head (records and last hash) to the server log at
/// start, every ten minutes and at shutdown: a log collector that keeps
/// these lines is the outside witness `audit verify --expect-at-least N
/// --head HASH` needs to show the log was not cut back.
fn spawn_audit_witness(log: Arc<dyn AuditReader>, cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let l = log.clone();
            match tokio::task::spawn_blocking(move || l.head()).await {
                Ok(Ok(Some((records, hash)))) => {
                    tracing::info!(records, head_hash = %hash, "audit log head")
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the audit head"),
                Err(e) => tracing::warn!(error = %e, "cannot read the audit head"),
            }
            if cancel.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(AUDIT_WITNESS_EVERY) => {}
            }
        }
    })
}

impl RunningServer {
    /// The token that stops everything when cancelled.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Stops the listeners, waits for in-flight requests, then drains and
    /// checkpoints the store.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.cancel.cancel();
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "server task ended abnormally");
            }
        }
        if let Some(store) = self.store {
            store.close().await?;
        }
        Ok(())
    }
}

/// Runs until `shutdown` resolves (ctrl-c, SIGTERM), then stops cleanly.
pub async fn run(
    server: RunningServer,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let cancel = server.cancel_token();
    tokio::select! {
        _ = shutdown => {}
        _ = cancel.cancelled() => {}
    }
    tracing::info!("shutting down: draining in-flight work");
    server.shutdown().await
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
