//! HTTP transports: the OTLP/HTTP receiver and the `/mcp` endpoint, each an
//! axum router built from shared state so it can be tested without sockets.

pub mod framing;
pub mod guard;
pub mod otlp;

use axum::Router;
use axum::routing::{get, post};

use self::guard::GuardState;
use self::otlp::OtlpState;
use crate::otlp::Signal;

/// `GET /readyz` (no auth, no data): 200 when the store takes writes, else
/// 503 with `Retry-After` and the reason.
pub fn readiness_router(store: std::sync::Arc<dyn crate::store::Sink>) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .with_state(store)
}

async fn readyz(
    axum::extract::State(store): axum::extract::State<std::sync::Arc<dyn crate::store::Sink>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match store.ready().await {
        Ok(()) => "ready".into_response(),
        Err(e) => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            [(http::header::RETRY_AFTER, "5")],
            format!("not ready: {e}"),
        )
            .into_response(),
    }
}

/// `GET /metrics`: the server's own counters (`crate::metrics`: records
/// ingested, tool calls, refusals; no user data), when the configuration
/// serves them: to a bearer token of scope audit, or to anyone.
pub fn metrics_router(
    access: crate::config::MetricsAccess,
    tokens: crate::auth::TokenStore,
    store: std::sync::Arc<dyn crate::store::Sink>,
) -> Router {
    if access == crate::config::MetricsAccess::Off {
        return Router::new();
    }
    Router::new()
        .route("/metrics", get(metrics))
        .with_state((access, tokens, store))
}

async fn metrics(
    axum::extract::State((access, tokens, store)): axum::extract::State<(
        crate::config::MetricsAccess,
        crate::auth::TokenStore,
        std::sync::Arc<dyn crate::store::Sink>,
    )>,
    headers: http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if access == crate::config::MetricsAccess::Token {
        let verified = match guard::bearer(&headers) {
            Ok(secret) => tokens.verify_async(secret).await.ok(),
            Err(_) => None,
        };
        match verified {
            Some(p) if p.scope.can_audit() => {}
            Some(_) => {
                return (
                    http::StatusCode::FORBIDDEN,
                    "forbidden: /metrics needs a token of scope audit\n",
                )
                    .into_response();
            }
            None => {
                return (
                    http::StatusCode::UNAUTHORIZED,
                    [(
                        http::header::WWW_AUTHENTICATE,
                        r#"Bearer realm="tokentally""#,
                    )],
                    "unauthorized: /metrics needs a bearer token of scope audit\n",
                )
                    .into_response();
            }
        }
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&[(
            "tokentally_store_queue_requests",
            "Ingest requests waiting for the writer (the ClickHouse store: for an insert).",
            store.queued_requests() as f64,
        )]),
    )
        .into_response()
}

/// `GET /healthz`: liveness, no data, no auth.
async fn healthz() -> &'static str {
    "ok"
}

/// The OTLP/HTTP router: `/v1/{logs,metrics,traces}` behind the host/origin
/// check and, when required, the ingest token check.
pub fn otlp_router(state: OtlpState, guard: GuardState) -> Router {
    let signals = Router::new()
        .route(Signal::Logs.path(), post(otlp::export_logs))
        .route(Signal::Metrics.path(), post(otlp::export_metrics))
        .route(Signal::Traces.path(), post(otlp::export_traces))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            guard::ingest_auth,
        ));
    Router::new()
        .merge(signals)
        .route("/healthz", get(healthz))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            guard::host_origin_guard,
        ))
}

/// The MCP router: `/mcp` behind host/origin checks (refusals audited), rate
/// limits and bearer authentication, which puts the caller's `Principal` into
/// the request.
pub fn mcp_router<S>(mcp: S, guard: GuardState) -> Router
where
    S: tower::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    let mcp = Router::new()
        .route_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            guard::mcp_auth,
        ));
    Router::new()
        .merge(mcp)
        .route("/healthz", get(healthz))
        .layer(axum::middleware::from_fn_with_state(
            guard,
            guard::mcp_host_origin_guard,
        ))
}
