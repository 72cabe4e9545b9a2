//! The web view: server-rendered pages over the same tool registry as MCP
//! and the CLI, so a page shows exactly what the caller's token could ask
//! over MCP (the same `Visible`, content rules and caps), every tool call a
//! page makes is audited like an MCP call, and each page has a JSON form
//! (`?format=json`) holding the answers it rendered.
//!
//! Log in with a token (read, read:content or audit scope) at `/ui/login`;
//! the browser then holds only a server-side session id in an HttpOnly,
//! SameSite=Strict cookie ([`session`]). No script runs on the pages; the
//! Content-Security-Policy allows none, nor frames, nor anything from
//! elsewhere. Rate limits count page views per token and requests per
//! address. Host and Origin are checked by the listener's guard.

pub mod pages;
pub mod params;
pub mod report;
pub mod session;
pub mod view;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use maud::{Markup, html};

use self::pages::Ask;
use self::params::Params;
use self::session::WebSessions;
use crate::audit::{AuditRecord, AuditSink, Caller, Outcome};
use crate::auth::{AuthError, Principal, TokenStore};
use crate::mcp::Registry;
use crate::ratelimit::{RateLimiter, retry_after_secs};

/// What the web view needs; cheap to clone.
#[derive(Clone)]
pub struct WebState {
    /// The tool registry (its per-call rate limit off: page views count).
    pub registry: Registry,
    /// Where page views' tool calls and logins are recorded.
    pub audit: Arc<dyn AuditSink>,
    /// Token table, to verify logins and each page view.
    pub tokens: TokenStore,
    /// Per-address and per-token limits (shared with `/mcp`).
    pub limiter: Arc<RateLimiter>,
    /// Open sessions.
    pub sessions: Arc<WebSessions>,
}

impl WebState {
    /// The web view over `registry`, whose own per-call limit is dropped:
    /// the view counts each page view once against the token's limit.
    pub fn new(
        registry: &Registry,
        audit: Arc<dyn AuditSink>,
        tokens: TokenStore,
        limiter: Arc<RateLimiter>,
    ) -> WebState {
        WebState {
            registry: registry.without_rate_limit(),
            audit,
            tokens,
            limiter,
            sessions: Arc::default(),
        }
    }
}

/// The stylesheet, served by the binary (nothing comes from elsewhere).
pub(crate) const STYLE: &str = include_str!("style.css");

/// The icon browsers ask for.
const ICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#3b6fd6"/><rect x="3" y="8" width="2" height="5" fill="#fff"/><rect x="7" y="5" width="2" height="8" fill="#fff"/><rect x="11" y="3" width="2" height="10" fill="#fff"/></svg>"##;

/// Longest token accepted at login.
const MAX_TOKEN_BYTES: usize = 512;

/// The pages' policy: nothing but this origin's stylesheet and images, no
/// script at all, no frames, forms only to this origin.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The web view's routes (`/` and `/ui/...`), to merge into the MCP
/// listener's router behind its Host/Origin guard.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(to_overview))
        .route("/ui", get(to_overview))
        .route("/ui/", get(to_overview))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/style.css", get(style))
        .route("/ui/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .route("/ui/{page}", get(page))
        .with_state(state)
        .layer(axum::middleware::from_fn(security_headers))
}

async fn security_headers(req: axum::extract::Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under the latter browsers send
    // `Origin: null` with the login and logout forms, which the Host/Origin
    // guard rightly refuses.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn to_overview() -> Redirect {
    Redirect::to("/ui/overview")
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

async fn icon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ICON,
    )
        .into_response()
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn peer_of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The caller facts of a web request, for its audit records.
fn caller_of(parts: &Parts) -> Caller {
    Caller {
        request_id: Some(format!("web-{}", uuid::Uuid::new_v4())),
        peer: peer_of(parts).map(|ip| ip.to_string()),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
        client_name: Some("tokentally-web".into()),
        client_version: Some(env!("CARGO_PKG_VERSION").into()),
    }
}

/// Whether the page was reached over TLS (directly or through a proxy that
/// says so), which makes the cookie `Secure`.
fn over_tls(parts: &Parts) -> bool {
    parts.uri.scheme_str() == Some("https")
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn too_many(wait: std::time::Duration, what: &str) -> Response {
    let secs = retry_after_secs(wait);
    let mut resp = html_response(
        StatusCode::TOO_MANY_REQUESTS,
        view::frame(
            "Too many requests",
            "",
            None,
            html! { h1 { "Too many requests" } p { (what) " Try again in " (secs) " s." } },
        ),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

fn login_page(status: StatusCode, message: Option<&str>) -> Response {
    html_response(
        status,
        view::frame(
            "Log in",
            "",
            None,
            html! {
                section.login {
                    h1 { "Log in" }
                    p { "Paste a tokentally token with scope read, read:content or audit ("
                        code { "tokentally token create NAME --scope read" } "). It stays on the server; this browser keeps only a session cookie." }
                    @if let Some(m) = message { p.error role="alert" { (m) } }
                    form method="post" action="/ui/login" {
                        label { span { "Token" } input type="password" name="token" autocomplete="off" required autofocus; }
                        button type="submit" { "Log in" }
                    }
                }
            },
        ),
    )
}

async fn login_form() -> Response {
    login_page(StatusCode::OK, None)
}

/// The login form's fields.
#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn record(state: &WebState, record: AuditRecord) -> Result<(), Response> {
    crate::audit::append(&state.audit, record)
        .await
        .map(|_| ())
        .map_err(|e| audit_down(&e.to_string()))
}

fn audit_down(detail: &str) -> Response {
    tracing::error!(error = %detail, "audit append failed; refusing the page");
    let mut resp = html_response(
        StatusCode::SERVICE_UNAVAILABLE,
        view::frame(
            "Unavailable",
            "",
            None,
            html! { h1 { "Unavailable" } p { "The audit log cannot be written, so nothing is shown." } },
        ),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

async fn login(
    State(state): State<WebState>,
    parts: Parts,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let ip = peer_of(&parts).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Err(wait) = state.limiter.check_ip(ip) {
        return too_many(wait, "Too many attempts from this address.");
    }
    let secret = form.token.trim().to_string();
    if secret.is_empty() || secret.len() > MAX_TOKEN_BYTES {
        return login_page(StatusCode::BAD_REQUEST, Some("Paste the whole token."));
    }
    let caller = caller_of(&parts);
    let method = "POST /ui/login".to_string();
    match state.tokens.verify_async(secret.clone()).await {
        Err(AuthError::Store(detail)) => audit_down(&detail),
        Err(e) => {
            let rec = AuditRecord::denial(
                None,
                caller,
                method,
                Outcome::Unauthenticated,
                &e.to_string(),
            );
            match record(&state, rec).await {
                Ok(()) => login_page(
                    StatusCode::UNAUTHORIZED,
                    Some("That token was not accepted (unknown, revoked or expired)."),
                ),
                Err(resp) => resp,
            }
        }
        Ok(p) if !p.scope.can_query() => {
            let detail = format!("scope {} cannot open the web view", p.scope.as_str());
            let rec = AuditRecord::denial(Some(&p), caller, method, Outcome::Forbidden, &detail);
            match record(&state, rec).await {
                Ok(()) => login_page(
                    StatusCode::FORBIDDEN,
                    Some(
                        "This token's scope cannot open the web view: use a read, read:content or audit token.",
                    ),
                ),
                Err(resp) => resp,
            }
        }
        Ok(p) => {
            let rec = AuditRecord::request(
                Some(&p),
                caller,
                method,
                Outcome::Ok,
                "web view session opened",
            );
            if let Err(resp) = record(&state, rec).await {
                return resp;
            }
            let id = state.sessions.open(secret);
            let mut resp = Redirect::to("/ui/overview").into_response();
            if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, over_tls(&parts))) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
    }
}

async fn logout(State(state): State<WebState>, parts: Parts) -> Response {
    if let Some(id) = session::from_cookie_header(&parts.headers) {
        state.sessions.close(&id);
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(over_tls(&parts))) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Why a page view has no principal.
enum NoPrincipal {
    /// No session, or it ended: log in.
    LogIn,
    /// The token store cannot be read.
    Unavailable(String),
}

/// The principal of the request's session, verified again now (a revoked
/// or expired token ends the session).
async fn principal(state: &WebState, parts: &Parts) -> Result<Principal, NoPrincipal> {
    let id = session::from_cookie_header(&parts.headers).ok_or(NoPrincipal::LogIn)?;
    let secret = state.sessions.secret(&id).ok_or(NoPrincipal::LogIn)?;
    match state.tokens.verify_async(secret).await {
        Ok(p) if p.scope.can_query() => Ok(p),
        Err(AuthError::Store(detail)) => Err(NoPrincipal::Unavailable(detail)),
        _ => {
            state.sessions.close(&id);
            Err(NoPrincipal::LogIn)
        }
    }
}

fn status_of(worst: Option<Outcome>) -> StatusCode {
    match worst {
        None | Some(Outcome::Ok) => StatusCode::OK,
        Some(Outcome::ToolError) => StatusCode::BAD_REQUEST,
        Some(Outcome::Unauthenticated) => StatusCode::UNAUTHORIZED,
        Some(Outcome::Forbidden) => StatusCode::FORBIDDEN,
        Some(Outcome::RateLimited) => StatusCode::TOO_MANY_REQUESTS,
        Some(Outcome::TimedOut) => StatusCode::GATEWAY_TIMEOUT,
        Some(Outcome::Failed) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

async fn page(State(state): State<WebState>, Path(name): Path<String>, parts: Parts) -> Response {
    let params = Params::parse(parts.uri.query());
    let wants_json = params.as_ref().is_ok_and(Params::wants_json);
    let principal = match principal(&state, &parts).await {
        Ok(p) => p,
        Err(NoPrincipal::LogIn) if wants_json => {
            return json_error(StatusCode::UNAUTHORIZED, "log in at /ui/login first");
        }
        Err(NoPrincipal::LogIn) => return Redirect::to("/ui/login").into_response(),
        Err(NoPrincipal::Unavailable(detail)) => {
            tracing::error!(%detail, "token verification failed");
            return audit_down(&detail);
        }
    };
    let ip = peer_of(&parts).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Err(wait) = state.limiter.check_ip(ip) {
        return too_many(wait, "Too many requests from this address.");
    }
    if let Err(wait) = state.limiter.check_token(principal.token_id) {
        return too_many(wait, "This token viewed too many pages in the last minute.");
    }
    let viewer = view::Viewer {
        token: &principal.token_name,
        scope: principal.scope.as_str(),
        developers: &principal.developers,
        can_audit: principal.scope.can_audit(),
    };
    let shell = |status, title: &str, body: Markup| {
        html_response(status, view::frame(title, &name, Some(&viewer), body))
    };
    let Some(def) = pages::find(&name) else {
        return shell(
            StatusCode::NOT_FOUND,
            "Not found",
            html! { h1 { "Not found" } p { "There is no such page." } },
        );
    };
    let params = match params {
        Ok(p) => p,
        Err(message) if wants_json => return json_error(StatusCode::BAD_REQUEST, &message),
        Err(message) => {
            return shell(
                StatusCode::BAD_REQUEST,
                def.title,
                html! { h1 { (def.title) } p.error role="alert" { (message) } },
            );
        }
    };
    if def.audit_only && !principal.scope.can_audit() {
        let message = format!(
            "The audit pages need a token with scope audit; this token's scope is {}.",
            principal.scope.as_str()
        );
        if wants_json {
            return json_error(StatusCode::FORBIDDEN, &message);
        }
        return shell(
            StatusCode::FORBIDDEN,
            def.title,
            html! { h1 { (def.title) } p.error role="alert" { (message) } },
        );
    }
    let mut ask = Ask::new(&state.registry, &state.audit, &principal, caller_of(&parts));
    let body = match pages::render(def.name, &mut ask, &params).await {
        Ok(body) => body,
        Err(e) => return audit_down(&e.to_string()),
    };
    let status = status_of(ask.worst);
    if wants_json {
        return (status, axum::Json(ask.json(def.name))).into_response();
    }
    shell(status, def.title, body)
}

#[cfg(test)]
mod tests;
