//! Request guards for the HTTP listeners, as axum middleware
//! (`axum::middleware::from_fn_with_state(guard_state, ...)`):
//!
//! * [`host_origin_guard`] (both listeners): DNS-rebinding protection, so a web
//!   page cannot read or write through a local server;
//!   [`mcp_host_origin_guard`] is the same check on `/mcp`, with its refusals
//!   audited (sampled per address, like per-address 429s).
//! * [`mcp_auth`] (`/mcp`): per-address rate limit, bearer token from the
//!   `Authorization` header only, scope check, per-token rate limit; inserts
//!   the [`Principal`] into the request extensions. Every denial is audited,
//!   and fails closed (503) if the audit record cannot be written; the one
//!   exception is a flood from one address, whose per-address denials are
//!   audited up to a burst of 10 and then once every 6 seconds
//!   ([`RateLimiter::audit_ip_denial`]), so a flood cannot turn into a stream
//!   of synchronous audit writes.
//! * [`ingest_auth`] (OTLP/HTTP): an `ingest` token when the configuration
//!   requires one, through [`check_ingest_token`] (in `auth`), which the
//!   gRPC transport calls too.
//!
//! Token verification and audit appends are blocking (SQLite) and run in
//! `spawn_blocking`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};

use crate::audit::{AuditRecord, AuditSink, Caller, Outcome};
use crate::auth::{
    AuthError, IngestDenial, Principal, TokenStore, check_ingest_token, parse_bearer,
};
use crate::ratelimit::{RateLimiter, retry_after_secs};

mod sessions;

pub use sessions::SessionOwners;

/// The streamable-HTTP session header.
const MCP_SESSION_ID: &str = "mcp-session-id";

/// Query parameters that carry a token in other servers; refused here.
const QUERY_TOKEN_PARAMS: &[&str] = &["access_token", "token"];

/// Everything the guards need; cheap to clone.
#[derive(Clone)]
pub struct GuardState {
    /// Token table, for verification.
    pub tokens: TokenStore,
    /// Per-address and per-token limits.
    pub limiter: Arc<RateLimiter>,
    /// Where denials are recorded.
    pub audit: Arc<dyn AuditSink>,
    /// Accepted `Host` and `Origin` values for this listener.
    pub host_check: HostCheck,
    /// Whether OTLP ingest requires an `ingest` token.
    pub ingest_requires_token: bool,
    /// Which token opened each MCP session.
    pub sessions: Arc<SessionOwners>,
}

/// Which `Host` and `Origin` headers a listener accepts: loopback names and
/// addresses (any port), the address it is bound to, and the configured
/// allow-lists.
#[derive(Debug, Clone, Default)]
pub struct HostCheck {
    bound: Vec<IpAddr>,
    allowed_hosts: Vec<String>,
    allowed_origins: Vec<String>,
}

impl HostCheck {
    /// `bound`: the listener addresses (unspecified ones such as `0.0.0.0`
    /// add nothing: list the public names in `allowed_hosts`);
    /// `allowed_hosts` / `allowed_origins` from the configuration.
    pub fn new(bound: &[SocketAddr], allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        HostCheck {
            bound: bound
                .iter()
                .map(|a| a.ip())
                .filter(|ip| !ip.is_unspecified())
                .collect(),
            allowed_hosts: allowed_hosts.iter().map(|h| normalize_host(h)).collect(),
            allowed_origins: allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a `Host` header value (or URI authority) is acceptable.
    pub fn host_allowed(&self, host: &str) -> bool {
        let full = normalize_host(host);
        let Some(name) = host_name(&full) else {
            return false;
        };
        if is_loopback_name(name) {
            return true;
        }
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        if bare
            .parse::<IpAddr>()
            .is_ok_and(|ip| self.bound.contains(&ip))
        {
            return true;
        }
        self.allowed_hosts.iter().any(|a| *a == full || a == name)
    }

    /// Whether an `Origin` header value is acceptable.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) {
            return true;
        }
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        if authority.contains(['/', '@', '?', '#']) {
            return false;
        }
        host_name(authority).is_some_and(is_loopback_name)
    }
}

fn normalize_host(host: &str) -> String {
    host.trim().to_ascii_lowercase()
}

/// The host part of `host[:port]` / `[v6][:port]` (brackets kept), or `None`
/// when malformed.
fn host_name(authority: &str) -> Option<&str> {
    let name = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let rest = &authority[end + 1..];
        if !(rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        &authority[..=end]
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return None,
            None => authority,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.is_empty()).then_some(name)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// Why a request's `Host` or `Origin` is refused (403 and a short detail
/// naming the offending value), or `None` when both are acceptable.
fn host_origin_denial(state: &GuardState, req: &Request) -> Option<(Response, String)> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_string()));
    match &host {
        Some(h) if state.host_check.host_allowed(h) => {}
        _ => {
            let shown: String = host.unwrap_or_default().chars().take(256).collect();
            return Some((
                plain(StatusCode::FORBIDDEN, "forbidden: Host not allowed\n"),
                format!("Host not allowed: {shown:?}"),
            ));
        }
    }
    for origin in req.headers().get_all(header::ORIGIN) {
        let text = origin.to_str().ok();
        if !text.is_some_and(|o| state.host_check.origin_allowed(o)) {
            let shown: String = text.unwrap_or("(not text)").chars().take(256).collect();
            return Some((
                plain(StatusCode::FORBIDDEN, "forbidden: Origin not allowed\n"),
                format!("Origin not allowed: {shown:?}"),
            ));
        }
    }
    None
}

/// DNS-rebinding protection: refuses (403) a `Host` that is not loopback, the
/// bound address or allow-listed, and an `Origin` that is present but not a
/// loopback origin or allow-listed.
pub async fn host_origin_guard(
    State(state): State<GuardState>,
    req: Request,
    next: Next,
) -> Response {
    match host_origin_denial(&state, &req) {
        Some((response, _)) => response,
        None => next.run(req).await,
    }
}

/// [`host_origin_guard`] for `/mcp`, where a refusal is also audited (as
/// `forbidden`, with the offending value). Like per-address 429s, these
/// denials come before any token, so they are sampled per address
/// ([`RateLimiter::audit_ip_denial`]): a flood of forged headers cannot
/// become a stream of audit writes. Fails closed (503) if the record cannot
/// be written.
pub async fn mcp_host_origin_guard(
    State(state): State<GuardState>,
    req: Request,
    next: Next,
) -> Response {
    let Some((response, detail)) = host_origin_denial(&state, &req) else {
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !state
        .limiter
        .audit_ip_denial(peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    {
        return response;
    }
    let record = AuditRecord::denial(
        None,
        caller(peer, req.headers(), uuid::Uuid::new_v4().to_string()),
        format!("{} {}", req.method(), req.uri().path()),
        Outcome::Forbidden,
        &detail,
    );
    append_denial(&state, record, response).await
}

/// The caller of a refused request, as the HTTP layer sees it.
fn caller(peer: Option<IpAddr>, headers: &HeaderMap, request_id: String) -> Caller {
    Caller {
        request_id: Some(request_id),
        peer: peer.map(|ip| ip.to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect()),
        ..Caller::default()
    }
}

/// Appends a denial's audit record, then answers `response`; 503 instead
/// when the record cannot be written (fail closed).
async fn append_denial(state: &GuardState, record: AuditRecord, response: Response) -> Response {
    crate::metrics::denied(&record.outcome);
    match crate::audit::append(&state.audit, record).await {
        Ok(_) => response,
        Err(e) => {
            tracing::error!(error = %e, "audit append failed; refusing request");
            unavailable()
        }
    }
}

/// Why [`mcp_auth`] refused a request.
struct Denial {
    outcome: Outcome,
    detail: String,
    principal: Option<Principal>,
    response: Response,
}

fn unauthorized(error: &AuthError) -> Response {
    let challenge = match error {
        AuthError::Missing => r#"Bearer realm="tokentally""#,
        _ => r#"Bearer realm="tokentally", error="invalid_token""#,
    };
    let mut resp = plain(
        StatusCode::UNAUTHORIZED,
        "unauthorized: a valid bearer token is required\n",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    resp
}

fn forbidden_scope() -> Response {
    let mut resp = plain(
        StatusCode::FORBIDDEN,
        "forbidden: this token's scope does not allow this\n",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer realm="tokentally", error="insufficient_scope""#),
    );
    resp
}

fn too_many(wait: std::time::Duration) -> Response {
    let mut resp = plain(StatusCode::TOO_MANY_REQUESTS, "too many requests\n");
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs(wait)),
    );
    resp
}

fn unavailable() -> Response {
    let mut resp = plain(StatusCode::SERVICE_UNAVAILABLE, "service unavailable\n");
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

/// Whether the query string names a token parameter.
fn token_in_query(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            QUERY_TOKEN_PARAMS
                .iter()
                .any(|p| name.eq_ignore_ascii_case(p))
        })
    })
}

/// The single `Authorization` header's bearer token.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<String, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::Malformed);
    }
    let text = value.to_str().map_err(|_| AuthError::Malformed)?;
    parse_bearer(text)
        .map(str::to_string)
        .ok_or(AuthError::Malformed)
}

/// Authenticates and rate-limits `/mcp` requests; see the module docs for the
/// order of checks.
pub async fn mcp_auth(State(state): State<GuardState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // Requests without a peer address (in-process tests) share one bucket.
    let ip = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match authorize_mcp(&state, req.headers(), req.uri(), ip).await {
        Ok(principal) => {
            let session = req
                .headers()
                .get(MCP_SESSION_ID)
                .map(|v| v.to_str().map(str::to_owned));
            let session = match session {
                None => None,
                Some(Ok(id)) if state.sessions.owned_by(&id, principal.token_id) => Some(id),
                Some(_) => {
                    let record = AuditRecord::denial(
                        Some(&principal),
                        caller(peer, req.headers(), uuid::Uuid::new_v4().to_string()),
                        format!("{} {}", req.method(), req.uri().path()),
                        Outcome::Forbidden,
                        "Mcp-Session-Id of a session this token did not open",
                    );
                    let response = (StatusCode::NOT_FOUND, "session not found").into_response();
                    return append_denial(&state, record, response).await;
                }
            };
            let ends = req.method() == http::Method::DELETE;
            let token_id = principal.token_id;
            req.extensions_mut().insert(principal);
            let response = next.run(req).await;
            match &session {
                None => {
                    if let Some(Ok(id)) = response.headers().get(MCP_SESSION_ID).map(|v| v.to_str())
                    {
                        state.sessions.bind(id, token_id);
                    }
                }
                Some(id) if ends && response.status().is_success() => state.sessions.remove(id),
                Some(_) => {}
            }
            response
        }
        Err(denial) => {
            let sampled_out = denial.outcome == Outcome::RateLimited
                && denial.principal.is_none()
                && !state.limiter.audit_ip_denial(ip);
            if sampled_out {
                crate::metrics::denied(denial.outcome.as_str());
                return denial.response;
            }
            let request_id = uuid::Uuid::new_v4().to_string();
            tracing::info!(
                %request_id,
                outcome = denial.outcome.as_str(),
                detail = %denial.detail,
                token_id = denial.principal.as_ref().map(|p| p.token_id),
                peer = ?peer,
                "mcp request refused"
            );
            let record = AuditRecord::denial(
                denial.principal.as_ref(),
                caller(peer, req.headers(), request_id),
                // The path only: the query string may hold a token.
                format!("{} {}", req.method(), req.uri().path()),
                denial.outcome,
                &denial.detail,
            );
            append_denial(&state, record, denial.response).await
        }
    }
}

// Takes the headers and URI rather than the request: the body is not `Sync`,
// so holding `&Request` across an await would make the future non-`Send`.
async fn authorize_mcp(
    state: &GuardState,
    headers: &HeaderMap,
    uri: &Uri,
    ip: IpAddr,
) -> Result<Principal, Denial> {
    let deny = |outcome, detail: &str, principal, response| Denial {
        outcome,
        detail: detail.to_string(),
        principal,
        response,
    };
    if let Err(wait) = state.limiter.check_ip(ip) {
        return Err(deny(
            Outcome::RateLimited,
            "per-address rate limit",
            None,
            too_many(wait),
        ));
    }
    if token_in_query(uri.query()) {
        let e = AuthError::Malformed;
        return Err(deny(
            Outcome::Unauthenticated,
            "token in URL query string refused",
            None,
            unauthorized(&e),
        ));
    }
    let principal = match bearer(headers) {
        Ok(secret) => state.tokens.verify_async(secret).await,
        Err(e) => Err(e),
    };
    let principal = match principal {
        Ok(p) => p,
        Err(AuthError::Store(detail)) => {
            tracing::error!(%detail, "token verification failed");
            return Err(deny(
                Outcome::Failed,
                "token store unavailable",
                None,
                unavailable(),
            ));
        }
        Err(e) => {
            return Err(deny(
                Outcome::Unauthenticated,
                &e.to_string(),
                None,
                unauthorized(&e),
            ));
        }
    };
    if !principal.scope.can_query() {
        let detail = format!("scope {} cannot use /mcp", principal.scope.as_str());
        return Err(deny(
            Outcome::Forbidden,
            &detail,
            Some(principal),
            forbidden_scope(),
        ));
    }
    // The per-token limit counts tool calls, in the registry: the protocol
    // messages of a session (initialize, notifications, the GET stream)
    // must not use up a token's budget.
    Ok(principal)
}

/// OTLP/HTTP ingest: when tokens are required, only an `ingest` token passes
/// (401 without a valid one, 403 for another scope); otherwise any presented
/// token is ignored.
pub async fn ingest_auth(
    State(state): State<GuardState>,
    mut req: Request,
    next: Next,
) -> Response {
    if !state.ingest_requires_token {
        return next.run(req).await;
    }
    let header_value = match req.headers().get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v.to_string()),
        Some(Err(_)) => return unauthorized(&AuthError::Malformed),
    };
    let tokens = state.tokens.clone();
    let checked =
        tokio::task::spawn_blocking(move || check_ingest_token(&tokens, header_value.as_deref()))
            .await
            .unwrap_or(Err(IngestDenial::Unavailable));
    match checked {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(IngestDenial::Unauthenticated(e)) => unauthorized(&e),
        Err(IngestDenial::Forbidden) => forbidden_scope(),
        Err(IngestDenial::Unavailable) => unavailable(),
    }
}

#[cfg(test)]
mod tests;
