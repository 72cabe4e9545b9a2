//! Page handlers through the router (`oneshot`), over the generated data
//! set: the numbers on a page are the tool's answer for the same
//! arguments, a developer-bound token's pages hold no other developer,
//! content is withheld from read tokens and shown escaped to read:content
//! ones, logins and page views are audited, and the pages' headers allow
//! no script and no framing.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::audit::{AuditError, AuditRecord};
use crate::auth::Scope;
use crate::mcp::tests::{ALL, generated_ctx};
use crate::query::ToolContext;

#[derive(Default)]
struct Sink(Mutex<Vec<AuditRecord>>);

impl AuditSink for Sink {
    fn append(&self, record: AuditRecord) -> Result<u64, AuditError> {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        v.push(record);
        Ok(v.len() as u64)
    }
}

struct Fixture {
    router: Router,
    sink: Arc<Sink>,
    tokens: TokenStore,
    ctx: ToolContext,
    developers: Vec<String>,
    _dir: tempfile::TempDir,
}

fn fixture_over(ctx: ToolContext, developers: Vec<String>) -> Fixture {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let tokens = TokenStore::open(dir.path()).unwrap_or_else(|e| unreachable!("{e}"));
    let sink = Arc::new(Sink::default());
    let limiter = Arc::new(RateLimiter::new(&crate::config::RateLimits::default()));
    let registry = Registry::new(ctx.clone());
    let state = WebState::new(&registry, sink.clone(), tokens.clone(), limiter);
    Fixture {
        router: router(state),
        sink,
        tokens,
        ctx,
        developers,
        _dir: dir,
    }
}

fn fixture() -> Fixture {
    let (ctx, ds) = generated_ctx();
    let mut developers: Vec<String> = ds.records.iter().map(|r| r.developer.clone()).collect();
    developers.sort();
    developers.dedup();
    fixture_over(ctx, developers)
}

struct Page {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Fixture {
    fn token(&self, name: &str, scope: Scope, developers: &[String]) -> String {
        self.tokens
            .create(name, scope, developers, None)
            .unwrap_or_else(|e| unreachable!("{e}"))
            .1
    }

    async fn send(&self, req: Request<Body>) -> Page {
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| match e {});
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap_or_default();
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn login(&self, secret: &str) -> Page {
        let body = serde_urlencoded::to_string([("token", secret)]).unwrap_or_default();
        self.send(
            Request::post("/ui/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap_or_default(),
        )
        .await
    }

    /// Logs in and returns the session cookie (`name=value`).
    async fn session(&self, secret: &str) -> String {
        let page = self.login(secret).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let cookie = page
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        cookie.split(';').next().unwrap_or_default().to_string()
    }

    async fn get(&self, cookie: &str, path: &str) -> Page {
        self.send(
            Request::get(path)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap_or_default(),
        )
        .await
    }

    async fn tool(&self, p: &Principal, tool: &str, args: Value) -> Value {
        crate::mcp::call_tool(&self.ctx, p, tool, args)
            .await
            .structured
    }

    fn principal(&self, secret: &str) -> Principal {
        self.tokens
            .verify(secret)
            .unwrap_or_else(|e| unreachable!("{e}"))
    }
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)])
        .unwrap_or_default()
        .trim_start_matches("v=")
        .to_string()
}

/// Every page a query token can open, with parameters over all the data.
fn every_page(session: &str, developer: &str) -> Vec<String> {
    let r = format!("since={}", enc(ALL));
    vec![
        format!("/ui/overview?{r}"),
        format!("/ui/developers?{r}"),
        format!("/ui/developer?{r}&developer={}", enc(developer)),
        format!("/ui/sessions?{r}"),
        format!("/ui/session?session_id={}", enc(session)),
        format!("/ui/files?{r}"),
        format!("/ui/tools?{r}"),
        format!("/ui/health?{r}"),
        format!("/ui/report?{r}"),
    ]
}

#[tokio::test]
async fn the_overview_shows_the_tools_numbers_for_the_same_arguments() {
    let f = fixture();
    let secret = f.token("lead", Scope::Read, &[]);
    let cookie = f.session(&secret).await;
    let p = f.principal(&secret);
    let (since, until) = ("2026-11-12T00:00:00Z", "2026-11-19T00:00:00Z");
    let path = format!("/ui/overview?since={}&until={}", enc(since), enc(until));
    let page = f.get(&cookie, &path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);

    let cost = f
        .tool(
            &p,
            "cost_by_developer",
            json!({"since": since, "until": until, "limit": 10}),
        )
        .await;
    let t = &cost["totals"];
    let spend = view::money(t["cost_usd"].as_f64().unwrap_or(-1.0));
    assert!(
        page.body
            .contains(&format!(r#"data-stat="Spend">{spend}<"#)),
        "spend {spend} not on the page"
    );
    let sessions = view::count(t["sessions"].as_i64().unwrap_or(-1));
    assert!(
        page.body
            .contains(&format!(r#"data-stat="Sessions">{sessions}<"#))
    );
    let errors = view::count(t["api_errors"].as_i64().unwrap_or(-1));
    assert!(
        page.body
            .contains(&format!(r#"data-stat="API errors">{errors}<"#))
    );
    let active = f
        .tool(
            &p,
            "usage_over_time",
            json!({"since": since, "until": until, "bucket": "total"}),
        )
        .await;
    let n = view::count(
        active["rows"][0]["active_developers"]
            .as_i64()
            .unwrap_or(-1),
    );
    assert!(
        page.body
            .contains(&format!(r#"data-stat="Active developers">{n}<"#))
    );
    // The top developer's bar carries its cost.
    let top = &cost["rows"][0];
    let dev = top["developer"].as_str().unwrap_or("?");
    assert!(
        page.body.contains(dev),
        "{dev} not on the page:\n{}",
        page.body
    );
    assert!(
        page.body
            .contains(&view::money(top["cost_usd"].as_f64().unwrap_or(-1.0)))
    );

    // The report page states the same spend for the same period.
    let report = f
        .get(
            &cookie,
            &format!("/ui/report?since={}&until={}", enc(since), enc(until)),
        )
        .await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert!(
        report
            .body
            .contains(&format!(r#"data-stat="Spend">{spend}<"#)),
        "report spend"
    );
    assert!(report.body.contains(dev), "report developers");

    // The JSON form holds the very answers.
    let json_page = f.get(&cookie, &format!("{path}&format=json")).await;
    assert_eq!(json_page.status, StatusCode::OK);
    let v: Value = serde_json::from_str(&json_page.body).unwrap_or_default();
    assert_eq!(v["page"], "overview");
    let first = &v["answers"][0];
    assert_eq!(first["tool"], "cost_by_developer");
    assert_eq!(first["answer"]["totals"], cost["totals"]);
    assert_eq!(first["answer"]["rows"], cost["rows"]);
    // The previous period is the week before.
    let prev = v["answers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["label"] == "totals of the previous period")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(prev["arguments"]["until"], "2026-11-12T00:00:00Z");
    assert_eq!(prev["arguments"]["since"], "2026-11-05T00:00:00Z");
    // ... and the change against it is the tools' two totals compared.
    let before = f
        .tool(
            &p,
            "cost_by_developer",
            json!({"since": "2026-11-05T00:00:00Z", "until": since, "limit": 1}),
        )
        .await;
    let (now, was) = (
        t["cost_usd"].as_f64().unwrap_or(0.0),
        before["totals"]["cost_usd"].as_f64().unwrap_or(0.0),
    );
    assert!(was > 0.0 && now > 0.0, "both periods have data");
    let shown = format!("{:+.1}% vs previous period", (now - was) / was * 100.0);
    assert!(page.body.contains(&shown), "{shown} not on the page");
}

#[tokio::test]
async fn a_developer_bound_token_sees_no_other_developer_on_any_page() {
    let f = fixture();
    let me = f.developers[0].clone();
    let secret = f.token("dev", Scope::Read, std::slice::from_ref(&me));
    let cookie = f.session(&secret).await;
    let p = f.principal(&secret);
    let sessions = f
        .tool(&p, "list_sessions", json!({"since": ALL, "limit": 1}))
        .await;
    let session = sessions["rows"][0]["session_id"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let mut pages = every_page(&session, &me);
    // Asking for someone else by name shows nothing of them either.
    pages.push(format!(
        "/ui/developer?since={}&developer={}",
        enc(ALL),
        enc(&f.developers[1])
    ));
    for path in pages {
        let page = f.get(&cookie, &path).await;
        assert!(page.status.is_success(), "{path}: {}", page.status);
        for other in f.developers.iter().filter(|d| **d != me) {
            // The name asked for is echoed back (heading, form, links); nothing else of it.
            let on_page = page
                .body
                .replace(&format!("developer={}", enc(other)), "")
                .replace(&format!("value=\"{other}\""), "")
                .replace(&format!("<h1>Developer {other}</h1>"), "")
                .replace(&format!("&quot;{other}&quot;"), "");
            assert!(!on_page.contains(other.as_str()), "{path} shows {other}");
        }
    }
    let page = f
        .get(&cookie, &format!("/ui/developers?since={}", enc(ALL)))
        .await;
    assert!(page.body.contains(&me), "own developer missing");
    assert!(page.body.contains("1 developer(s)"));
}

#[tokio::test]
async fn content_is_withheld_from_read_tokens_and_escaped_for_read_content() {
    let mut fx = crate::query::fixture::Fx::new();
    crate::query::fixture::capture::load(&mut fx);
    let c = fx.context(
        &crate::query::fixture::CtxSpec {
            session_id: Some("s-script".into()),
            email: Some("mallory@example.com".into()),
            scope_name: "com.anthropic.claude_code.events".into(),
            app_version: "2.1.330".into(),
            ..Default::default()
        },
        0,
    );
    let t = 1_795_281_159_000_000_000;
    fx.event(
        c,
        &crate::query::fixture::Ev {
            time_ns: t,
            event_name: "user_prompt".into(),
            prompt_id: Some("p1".into()),
            attrs: Some(
                json!({"prompt": "<script>alert('x')</script><b>bold</b>", "prompt_length": "40"}),
            ),
            ..Default::default()
        },
    );
    let ctx = crate::mcp::tests::ctx_over(fx, crate::config::QueryLimits::default());
    let f = fixture_over(ctx, vec!["mallory@example.com".into()]);
    let path = "/ui/session?session_id=s-script";

    let read = f.session(&f.token("r", Scope::Read, &[])).await;
    let page = f.get(&read, path).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("user_prompt"));
    assert!(
        !page.body.contains("alert("),
        "content shown to a read token"
    );
    assert!(page.body.contains("Content withheld"));

    let content = f.session(&f.token("rc", Scope::ReadContent, &[])).await;
    let page = f.get(&content, path).await;
    assert!(
        page.body
            .contains("&lt;script&gt;alert('x')&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;"),
        "content not shown escaped"
    );
    assert!(!page.body.contains("<script>") && !page.body.contains("<b>bold"));
    // Titles never carry data.
    assert!(page.body.contains("<title>Session · tokentally</title>"));
}

#[tokio::test]
async fn login_takes_only_query_tokens_and_logout_ends_the_session() {
    let f = fixture();
    // No session: the login page (HTML) or 401 (JSON).
    let page = f.get("", "/ui/overview").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers.get(header::LOCATION).map(|v| v.as_bytes()),
        Some(&b"/ui/login"[..])
    );
    let page = f.get("", "/ui/overview?format=json").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);

    let bad = f.login("tt_not_a_token").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.headers.get(header::SET_COOKIE).is_none());
    let ingest = f.login(&f.token("ing", Scope::Ingest, &[])).await;
    assert_eq!(ingest.status, StatusCode::FORBIDDEN);

    let secret = f.token("me", Scope::Read, &[]);
    let ok = f.login(&secret).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let set = ok
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains(&secret), "the token went into the cookie");
    let cookie = set.split(';').next().unwrap_or_default().to_string();
    assert_eq!(f.get(&cookie, "/ui/health").await.status, StatusCode::OK);

    // Logins are audited, refusals as refusals.
    {
        let records = f.sink.0.lock().unwrap_or_else(|p| p.into_inner());
        let logins: Vec<&str> = records
            .iter()
            .filter(|r| r.method.as_deref() == Some("POST /ui/login"))
            .map(|r| r.outcome.as_str())
            .collect();
        assert_eq!(logins, vec!["unauthenticated", "forbidden", "ok"]);
        assert!(records.iter().all(|r| !format!("{r:?}").contains(&secret)));
    }

    let out = f
        .send(
            Request::post("/ui/logout")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap_or_default(),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    assert_eq!(
        f.get(&cookie, "/ui/health").await.status,
        StatusCode::SEE_OTHER
    );

    // A revoked token ends its sessions at the next page view.
    let cookie = f.session(&secret).await;
    assert_eq!(f.get(&cookie, "/ui/health").await.status, StatusCode::OK);
    f.tokens
        .revoke("me")
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(
        f.get(&cookie, "/ui/health").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn every_page_forbids_script_and_framing_and_audits_its_tool_calls() {
    let f = fixture();
    let secret = f.token("viewer", Scope::Read, &[]);
    let cookie = f.session(&secret).await;
    for path in every_page("sess-0-0", &f.developers[0]) {
        let page = f.get(&cookie, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        let csp = page
            .headers
            .get(header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("script-src"),
            "{csp}"
        );
        assert_eq!(
            page.headers
                .get(header::X_FRAME_OPTIONS)
                .map(|v| v.as_bytes()),
            Some(&b"DENY"[..])
        );
        assert!(!page.body.contains("<script"), "{path} has a script");
        assert!(!page.body.contains(" style="), "{path} has an inline style");
    }
    let tool_calls = |records: &[AuditRecord]| {
        records
            .iter()
            .filter(|r| r.method.as_deref() == Some("tools/call"))
            .count()
    };
    let after_pages = tool_calls(&f.sink.0.lock().unwrap_or_else(|p| p.into_inner()));
    // Each page's JSON form lists the answers it rendered: one audit
    // record per answer, no more, no fewer.
    let mut answers = 0;
    for path in every_page("sess-0-0", &f.developers[0]) {
        let page = f.get(&cookie, &format!("{path}&format=json")).await;
        let v: Value = serde_json::from_str(&page.body).unwrap_or_default();
        answers += v["answers"].as_array().map_or(0, Vec::len);
    }
    assert!(answers > 0);
    assert_eq!(after_pages, answers, "audited tool calls of the pages");
    let records = f.sink.0.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(tool_calls(&records), 2 * answers);
    let calls: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.method.as_deref() == Some("tools/call"))
        .collect();
    assert!(
        calls
            .iter()
            .all(|r| r.client_name.as_deref() == Some("tokentally-web")
                && r.token_name.as_deref() == Some("viewer")
                && r.outcome == "ok")
    );
    for tool in [
        "cost_by_developer",
        "list_sessions",
        "session_timeline",
        "describe_data",
        "tool_latency",
    ] {
        assert!(
            calls.iter().any(|r| r.tool.as_deref() == Some(tool)),
            "{tool} not audited"
        );
    }
}

#[tokio::test]
async fn audit_pages_need_the_audit_scope() {
    let f = fixture();
    let read = f.session(&f.token("r", Scope::Read, &[])).await;
    let page = f.get(&read, "/ui/audit").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        !page.body.contains(r#"href="/ui/audit""#),
        "audit link offered to read"
    );
    let audit = f.session(&f.token("a", Scope::Audit, &[])).await;
    let page = f.get(&audit, "/ui/audit").await;
    // The registry of this fixture has no audit log: the tool says so.
    assert!(page.body.contains(r#"href="/ui/audit""#));
    assert!(page.body.contains("not available"), "{}", page.body);
}

#[tokio::test]
async fn bad_parameters_get_the_tools_message_and_nothing_else() {
    let f = fixture();
    let cookie = f.session(&f.token("r", Scope::Read, &[])).await;
    let page = f.get(&cookie, "/ui/overview?since=yesteryear").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("yesteryear"), "{}", page.body);
    let page = f.get(&cookie, "/ui/overview?access_token=x").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("unknown parameter"));
    let page = f.get(&cookie, "/ui/nope").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let page = f
        .get(&cookie, "/ui/session?session_id=does-not-exist")
        .await;
    assert!(page.body.contains("does-not-exist"), "{}", page.body);
}
