//! The guards on a tiny router, driven with `tower::ServiceExt::oneshot`.

use super::*;
use crate::audit::{AuditError, AuditLog, AuditReader};
use crate::auth::Scope;
use crate::config::RateLimits;
use axum::Router;
use axum::body::Body;
use axum::middleware::from_fn_with_state;
use axum::routing::post;
use axum::{Extension, body::to_bytes};
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    state: GuardState,
    audit: Arc<AuditLog>,
    read: String,
    ingest: String,
    admin: String,
}

fn fixture(token_burst: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenStore::open(dir.path()).unwrap();
    let (_, read) = tokens.create("reader", Scope::Read, &[], None).unwrap();
    let (_, ingest) = tokens.create("otel", Scope::Ingest, &[], None).unwrap();
    let (_, admin) = tokens.create("admin", Scope::Audit, &[], None).unwrap();
    let audit = Arc::new(AuditLog::open(dir.path()).unwrap());
    let state = GuardState {
        tokens,
        limiter: Arc::new(RateLimiter::new(&RateLimits {
            per_token_per_minute: 60,
            per_token_burst: token_burst,
            per_ip_per_minute: 6000,
            per_ip_burst: 1000,
        })),
        audit: audit.clone(),
        host_check: HostCheck::new(
            &["127.0.0.1:4319".parse().unwrap()],
            &["tokentally.internal.example".into()],
            &["https://dash.internal.example".into()],
        ),
        ingest_requires_token: true,
        sessions: Default::default(),
    };
    Fixture {
        _dir: dir,
        state,
        audit,
        read,
        ingest,
        admin,
    }
}

async fn whoami(Extension(p): Extension<Principal>) -> String {
    format!("{} {}", p.token_name, p.scope.as_str())
}

fn mcp_router(state: &GuardState) -> Router {
    Router::new()
        .route("/mcp", post(whoami))
        .layer(from_fn_with_state(state.clone(), mcp_auth))
        .layer(from_fn_with_state(state.clone(), host_origin_guard))
}

fn ingest_router(state: &GuardState) -> Router {
    Router::new()
        .route("/v1/logs", post(|| async { "stored" }))
        .layer(from_fn_with_state(state.clone(), ingest_auth))
        .layer(from_fn_with_state(state.clone(), host_origin_guard))
}

fn request(uri: &str, auth: Option<&str>) -> http::request::Builder {
    let mut b = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::HOST, "127.0.0.1:4319")
        .header(header::USER_AGENT, "claude-code/2.1.330");
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    b
}

async fn send(router: &Router, req: http::request::Builder) -> (StatusCode, HeaderMap, String) {
    let resp = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = to_bytes(resp.into_body(), 64 * 1024).await.unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn outcomes(audit: &AuditLog) -> Vec<(String, Option<String>, Option<String>)> {
    audit
        .tail(100)
        .unwrap()
        .into_iter()
        .map(|e| (e.record.outcome, e.record.token_name, e.record.detail))
        .collect()
}

#[tokio::test]
async fn read_token_reaches_the_handler_with_its_principal() {
    let f = fixture(10);
    let router = mcp_router(&f.state);
    let (status, _, body) = send(
        &router,
        request("/mcp", Some(&format!("Bearer {}", f.read))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "reader read");
    // Claude Code's un-decoded header form.
    let (status, _, body) = send(
        &router,
        request("/mcp", Some(&format!("Bearer%20{}", f.admin))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "admin audit");
    // Successful requests are not audited by the guard.
    assert!(f.audit.tail(10).unwrap().is_empty());
}

#[tokio::test]
async fn missing_or_bad_tokens_get_401_with_a_challenge_and_are_audited() {
    let f = fixture(10);
    let router = mcp_router(&f.state);
    let (status, headers, _) = send(&router, request("/mcp", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers[header::WWW_AUTHENTICATE],
        r#"Bearer realm="tokentally""#
    );

    let unknown = format!("Bearer tt_{}", "ab".repeat(32));
    for auth in [
        unknown.as_str(),
        "Bearer garbage",
        &format!("Basic {}", f.read),
    ] {
        let (status, headers, body) = send(&router, request("/mcp", Some(auth))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(
            headers[header::WWW_AUTHENTICATE],
            r#"Bearer realm="tokentally", error="invalid_token""#
        );
        assert!(!body.contains("tt_"));
    }
    // Two Authorization headers are ambiguous: refused.
    let (status, _, _) = send(
        &router,
        request("/mcp", Some(&format!("Bearer {}", f.read)))
            .header(header::AUTHORIZATION, format!("Bearer {}", f.admin)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    f.state.tokens.revoke("reader").unwrap();
    let (status, _, _) = send(
        &router,
        request("/mcp", Some(&format!("Bearer {}", f.read))),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let log = outcomes(&f.audit);
    let details: Vec<_> = log.iter().map(|l| l.2.clone().unwrap()).collect();
    assert_eq!(
        details,
        vec![
            "no bearer token",
            "unknown token",
            "malformed bearer token",
            "malformed bearer token",
            "malformed bearer token",
            "token revoked"
        ]
    );
    assert!(
        log.iter()
            .all(|l| l.0 == "unauthenticated" && l.1.is_none())
    );
    let last = f.audit.tail(1).unwrap().remove(0);
    assert_eq!(last.record.method.as_deref(), Some("POST /mcp"));
    assert_eq!(last.record.request_id.as_ref().map(String::len), Some(36));
    assert_eq!(
        last.record.user_agent.as_deref(),
        Some("claude-code/2.1.330")
    );
    // No secret anywhere in the audit log.
    let mut export = Vec::new();
    f.audit.export_jsonl(&mut export, None).unwrap();
    let export = String::from_utf8(export).unwrap();
    assert!(!export.contains(&f.read[3..]));
}

#[tokio::test]
async fn token_in_query_string_is_refused_even_when_valid() {
    let f = fixture(10);
    let router = mcp_router(&f.state);
    for uri in [
        format!("/mcp?access_token={}", f.read),
        format!("/mcp?x=1&token={}", f.read),
    ] {
        let (status, headers, _) =
            send(&router, request(&uri, Some(&format!("Bearer {}", f.read)))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    }
    let entries = f.audit.tail(10).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0].record.detail.as_deref(),
        Some("token in URL query string refused")
    );
    // The logged path leaves the query string (and its token) out.
    assert_eq!(entries[0].record.method.as_deref(), Some("POST /mcp"));
}

#[tokio::test]
async fn ingest_token_on_mcp_is_forbidden_and_audited_with_its_id() {
    let f = fixture(10);
    let router = mcp_router(&f.state);
    let (status, headers, _) = send(
        &router,
        request("/mcp", Some(&format!("Bearer {}", f.ingest))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    let e = f.audit.tail(1).unwrap().remove(0);
    assert_eq!(e.record.outcome, "forbidden");
    assert_eq!(e.record.token_name.as_deref(), Some("otel"));
    assert_eq!(e.record.scope.as_deref(), Some("ingest"));
    assert_eq!(e.record.token_id, Some(2));
}

#[tokio::test]
async fn foreign_host_and_origin_get_403_on_both_listeners() {
    let f = fixture(10);
    let auth = format!("Bearer {}", f.read);
    let ingest_auth = format!("Bearer {}", f.ingest);
    for (router, auth, uri) in [
        (mcp_router(&f.state), &auth, "/mcp"),
        (ingest_router(&f.state), &ingest_auth, "/v1/logs"),
    ] {
        // `request` sets a loopback Host; build one with only the foreign Host.
        let (status, _, body) = send(
            &router,
            Request::builder()
                .method("POST")
                .uri(uri)
                .header(header::HOST, "evil.example")
                .header(header::AUTHORIZATION, auth.as_str()),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(body, "forbidden: Host not allowed\n");
        let no_host = Request::builder()
            .method("POST")
            .uri(uri)
            .header(header::AUTHORIZATION, auth.as_str());
        assert_eq!(send(&router, no_host).await.0, StatusCode::FORBIDDEN);

        let (status, _, body) = send(
            &router,
            request(uri, Some(auth)).header(header::ORIGIN, "http://evil.example"),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(body, "forbidden: Origin not allowed\n");

        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1",
            "https://dash.internal.example/",
        ] {
            let (status, _, _) = send(
                &router,
                request(uri, Some(auth)).header(header::ORIGIN, origin),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{origin}");
        }
    }
}

#[test]
fn host_check_accepts_loopback_bound_and_listed_hosts_only() {
    let check = HostCheck::new(
        &[
            "192.168.1.5:4319".parse().unwrap(),
            "0.0.0.0:4318".parse().unwrap(),
        ],
        &["Tokentally.Internal.Example".into()],
        &[],
    );
    for ok in [
        "localhost",
        "LOCALHOST:4319",
        "localhost.",
        "127.0.0.1",
        "127.0.0.1:4319",
        "127.8.9.10:1",
        "[::1]",
        "[::1]:4319",
        "192.168.1.5:4319",
        "tokentally.internal.example",
        "tokentally.internal.example:443",
    ] {
        assert!(check.host_allowed(ok), "{ok} refused");
    }
    for bad in [
        "evil.example",
        "evil.example:4319",
        "localhost.evil.example",
        "127.0.0.1.evil.example",
        "0.0.0.0:4318",
        "192.168.1.6",
        "",
        "[::1",
        "localhost:abc",
        "[::1]x",
    ] {
        assert!(!check.host_allowed(bad), "{bad} accepted");
    }
    for ok in [
        "http://localhost:6274",
        "https://127.0.0.1",
        "http://[::1]:3000",
    ] {
        assert!(check.origin_allowed(ok), "{ok} refused");
    }
    for bad in [
        "null",
        "http://evil.example",
        "http://localhost.evil.example",
        "http://localhost@evil.example",
        "file://localhost",
        "http://192.168.1.5:4319",
    ] {
        assert!(!check.origin_allowed(bad), "{bad} accepted");
    }
}

/// The per-token limit counts tool calls (in the registry), not HTTP
/// requests: a session's protocol messages past the token's burst pass.
#[tokio::test]
async fn http_requests_do_not_use_up_the_per_token_limit() {
    let f = fixture(3);
    let router = mcp_router(&f.state);
    let read = format!("Bearer {}", f.read);
    for _ in 0..10 {
        assert_eq!(
            send(&router, request("/mcp", Some(&read))).await.0,
            StatusCode::OK
        );
    }
    assert!(outcomes(&f.audit).is_empty());
}

#[tokio::test]
async fn per_address_limit_applies_before_token_lookup() {
    let mut f = fixture(10);
    f.state.limiter = Arc::new(RateLimiter::new(&RateLimits {
        per_ip_per_minute: 60,
        per_ip_burst: 2,
        ..RateLimits::default()
    }));
    let router = mcp_router(&f.state);
    let peer: SocketAddr = "10.1.2.3:5555".parse().unwrap();
    let with_peer = |auth: Option<&str>| {
        let mut r = request("/mcp", auth).body(Body::empty()).unwrap();
        r.extensions_mut().insert(ConnectInfo(peer));
        r
    };
    for _ in 0..2 {
        let resp = router
            .clone()
            .oneshot(with_peer(Some("Bearer nope")))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = router
        .clone()
        .oneshot(with_peer(Some(&format!("Bearer {}", f.read))))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key(header::RETRY_AFTER));
    let last = f.audit.tail(1).unwrap().remove(0);
    assert_eq!(last.record.outcome, "rate_limited");
    assert_eq!(last.record.peer.as_deref(), Some("10.1.2.3"));
    assert_eq!(last.record.token_name, None);
    assert_eq!(f.audit.tail(100).unwrap().len(), 3);
    // A flood from the address: still 429, but only the first 10 per-address
    // denials are audited.
    for _ in 0..20 {
        let resp = router.clone().oneshot(with_peer(None)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    assert_eq!(f.audit.tail(100).unwrap().len(), 2 + 10);
}

/// An audit sink that always fails.
struct BrokenAudit;

impl AuditSink for BrokenAudit {
    fn append(&self, _: AuditRecord) -> Result<u64, AuditError> {
        Err(AuditError::Unavailable("disk full".into()))
    }
}

#[tokio::test]
async fn denial_fails_closed_when_the_audit_log_cannot_be_written() {
    let mut f = fixture(10);
    f.state.audit = Arc::new(BrokenAudit);
    let router = mcp_router(&f.state);
    let (status, headers, _) = send(&router, request("/mcp", None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Successful requests are audited by the tools, not here.
    let (status, _, _) = send(
        &router,
        request("/mcp", Some(&format!("Bearer {}", f.read))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn ingest_requires_an_ingest_token_when_configured() {
    let f = fixture(10);
    let router = ingest_router(&f.state);
    let (status, _, body) = send(
        &router,
        request("/v1/logs", Some(&format!("Bearer%20{}", f.ingest))),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "stored"));
    let (status, headers, _) = send(&router, request("/v1/logs", None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    let (status, _, _) = send(&router, request("/v1/logs", Some("Bearer tt_wrong"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(
        &router,
        request("/v1/logs", Some(&format!("Bearer {}", f.read))),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let mut open = f.state.clone();
    open.ingest_requires_token = false;
    let router = ingest_router(&open);
    for auth in [None, Some("Bearer tt_wrong"), Some(f.read.as_str())] {
        assert_eq!(
            send(&router, request("/v1/logs", auth)).await.0,
            StatusCode::OK
        );
    }
    assert!(f.audit.tail(10).unwrap().is_empty());

    assert_eq!(
        check_ingest_token(&f.state.tokens, Some(&format!("bearer {}", f.admin))),
        Err(IngestDenial::Forbidden)
    );
    assert_eq!(
        check_ingest_token(&f.state.tokens, None),
        Err(IngestDenial::Unauthenticated(AuthError::Missing))
    );
}
