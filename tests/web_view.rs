//! The web view in a real browser: Debian's Chromium, headless, driven
//! through chromedriver (WebDriver) against a real server on port 0 with
//! the demo team and the real Claude Code captures ingested through OTLP.
//! Logs in with a token, opens every page, checks key numbers against the
//! tools' answers for the same arguments and that the browser logged no
//! error (a CSP violation or a failed load would show there), follows a
//! session from the list to its timeline, looks at a phone-width layout,
//! walks the navigation with the keyboard alone, and logs out; a
//! developer-bound token sees only its developer. Each page is saved as a
//! screenshot under `target/web-view/`.
//!
//! chromedriver and chromium are started here, on loopback ports of their
//! own with their own profile directory, and stopped by PID.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestServer;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokentally::auth::{Scope, TokenStore};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver() -> Driver {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: tools/test installs Debian's chromium and chromium-driver"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver {
        child,
        url: url.clone(),
        _profile: tempfile::tempdir().unwrap(),
    };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{url}/status")).send().await
            && r.status().is_success()
        {
            return driver;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start on {url}");
}

async fn browser(driver: &Driver) -> Client {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
        },
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let caps = match caps {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// chromedriver's browser log (console messages, CSP violations, failed loads).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// The browser's error messages since the last call.
async fn errors(c: &Client) -> Vec<String> {
    let log = c.issue_cmd(BrowserLog).await.unwrap();
    log.as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["level"] == "SEVERE")
                .map(|e| e["message"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/web-view");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn log_in(c: &Client, base: &str, secret: &str) {
    c.goto(&format!("{base}/ui/overview")).await.unwrap();
    // Not logged in: sent to the login form.
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
    let field = c.find(Locator::Css("input[name=token]")).await.unwrap();
    field.send_keys(secret).await.unwrap();
    c.find(Locator::Css("form[action='/ui/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    for _ in 0..100 {
        if c.current_url().await.unwrap().path() == "/ui/overview" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "login did not reach the overview: {} {}",
        c.current_url().await.unwrap(),
        c.source().await.unwrap()
    );
}

async fn log_out(c: &Client, base: &str) {
    c.find(Locator::Css("form[action='/ui/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_url(&url::Url::parse(&format!("{base}/ui/login")).unwrap())
        .await
        .unwrap();
    c.goto(&format!("{base}/ui/sessions")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().ends_with("/ui/login"));
}

fn money(v: f64) -> String {
    tokentally::format::money(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_walks_every_page() {
    let server = TestServer::start().await;
    let now = jiff::Timestamp::now();
    let end_ns = i64::try_from(now.as_nanosecond()).unwrap();
    let opts = tokentally::otlp::DecodeOptions::from_config(&server.config).unwrap();
    tokentally::demo::load(
        server.running().store.as_ref().unwrap(),
        tokentally::demo::Plan::team(6000, end_ns),
        &opts,
    )
    .await
    .unwrap();
    server.replay_captures().await;

    let base = format!("http://{}", server.running().mcp_addr);
    let admin = server.bootstrap_token("audit");
    let tokens = TokenStore::open(server.dir.path()).unwrap();
    let ctx = tokentally::query::ToolContext::over_store(
        server.running().store.clone().unwrap(),
        server.config.query.clone(),
    );
    let as_admin = tokens.verify(&admin).unwrap();
    // One fixed range for the page and the tools alike.
    let since = now - jiff::SignedDuration::from_hours(24 * 31);
    let range = format!(
        "since={}&until={}",
        since.to_string().replace(':', "%3A"),
        now.to_string().replace(':', "%3A")
    );
    let tool = |name: &'static str, mut args: Value| {
        args["since"] = json!(since.to_string());
        args["until"] = json!(now.to_string());
        let ctx = ctx.clone();
        let p = as_admin.clone();
        async move {
            tokentally::mcp::call_tool(&ctx, &p, name, args)
                .await
                .structured
        }
    };

    // A page reached under a foreign Host (DNS rebinding) is refused, as on /mcp.
    let foreign = server
        .http
        .get(format!("{base}/ui/login"))
        .header("host", "tokentally.evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let cross = server
        .http
        .post(format!("{base}/ui/login"))
        .header("origin", "https://evil.example")
        .form(&[("token", admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    assert!(cross.headers().get("set-cookie").is_none());

    let driver = start_driver().await;
    let c = browser(&driver).await;
    log_in(&c, &base, &admin).await;
    // The token is in no URL the browser visited, nor in its storage.
    assert!(!c.current_url().await.unwrap().as_str().contains(&admin));

    // Overview: the headline numbers are the tools' answers.
    c.goto(&format!("{base}/ui/overview?{range}"))
        .await
        .unwrap();
    let cost = tool("cost_by_developer", json!({"limit": 10})).await;
    let t = &cost["totals"];
    assert!(t["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(
        text(&c, "[data-stat='Spend']").await,
        money(t["cost_usd"].as_f64().unwrap())
    );
    assert_eq!(
        text(&c, "[data-stat='Sessions']").await,
        tokentally::format::count(t["sessions"].as_i64().unwrap())
    );
    let charts = c.find_all(Locator::Css("figure.chart svg")).await.unwrap();
    assert!(charts.len() >= 4, "{} charts", charts.len());
    shot(&c, "overview").await;
    assert_eq!(errors(&c).await, Vec::<String>::new(), "overview");

    // Every other page opens without an error in the browser.
    for (page, heading) in [
        ("developers", "Developers"),
        ("sessions", "Sessions"),
        ("files", "Files"),
        ("tools", "Tools and latency"),
        ("health", "Data health"),
        ("report", "Coding-agent usage report"),
        ("audit", "Audit"),
    ] {
        c.goto(&format!("{base}/ui/{page}?{range}")).await.unwrap();
        assert_eq!(text(&c, "h1").await, heading, "{page}");
        shot(&c, page).await;
        assert_eq!(errors(&c).await, Vec::<String>::new(), "{page}");
    }

    // Developers: one row per developer of the tool's answer, sortable.
    c.goto(&format!("{base}/ui/developers?{range}"))
        .await
        .unwrap();
    let all = tool("cost_by_developer", json!({"limit": 1000})).await;
    let n = all["rows"].as_array().unwrap().len();
    let rows = c.find_all(Locator::Css("table tbody tr")).await.unwrap();
    assert_eq!(rows.len(), n);
    c.find(Locator::Css("thead a[href*='sort=sessions']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("sort=sessions")
    );
    // A developer's page from the table.
    c.find(Locator::Css("table tbody tr th a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text(&c, "h1").await.starts_with("Developer "));
    shot(&c, "developer").await;
    assert_eq!(errors(&c).await, Vec::<String>::new(), "developer");

    // Sessions: from the list to one timeline, and open an event.
    c.goto(&format!("{base}/ui/sessions?{range}"))
        .await
        .unwrap();
    let first = c.find(Locator::Css("table tbody tr th a")).await.unwrap();
    let href = first.attr("href").await.unwrap().unwrap();
    first.click().await.unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/ui/session");
    assert!(href.contains("session_id="));
    assert_eq!(text(&c, "h2").await, "Turn by turn");
    let session_id = text(&c, "p.mono").await;
    let timeline = tokentally::mcp::call_tool(
        &ctx,
        &as_admin,
        "session_timeline",
        json!({"session_id": session_id, "limit": 500}),
    )
    .await
    .structured;
    let events = c.find_all(Locator::Css("ol.events > li")).await.unwrap();
    assert_eq!(events.len(), timeline["rows"].as_array().unwrap().len());
    let summary = c.find(Locator::Css("details summary")).await.unwrap();
    summary.click().await.unwrap();
    let open = c.find(Locator::Css("details[open] table.attrs")).await;
    assert!(open.is_ok(), "the event did not open");
    shot(&c, "session").await;
    assert_eq!(errors(&c).await, Vec::<String>::new(), "session");

    // The audit page shows the chain verified and the page views' calls.
    c.goto(&format!("{base}/ui/audit?verify=1")).await.unwrap();
    assert!(c.find(Locator::Css("[data-verify='ok']")).await.is_ok());
    let body = c.source().await.unwrap();
    assert!(
        body.contains("tokentally-web"),
        "page views not in the audit log"
    );

    // Phone width: nothing wider than the screen but the tables' own scroll.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/ui/overview?{range}"))
        .await
        .unwrap();
    let fits = c
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fits, Value::Bool(true), "overview overflows a phone screen");
    shot(&c, "overview-phone").await;
    c.set_window_size(1280, 800).await.unwrap();

    // The keyboard alone: Tab from the top reaches the brand link, then the
    // first page of the navigation, and Enter follows it.
    c.goto(&format!("{base}/ui/overview?{range}"))
        .await
        .unwrap();
    let press = |key: fantoccini::key::Key| {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let k: char = key.into();
        KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: k })
            .then(KeyAction::Up { value: k })
    };
    c.perform_actions(press(fantoccini::key::Key::Tab))
        .await
        .unwrap();
    assert_eq!(
        c.active_element().await.unwrap().text().await.unwrap(),
        "tokentally"
    );
    c.perform_actions(press(fantoccini::key::Key::Tab))
        .await
        .unwrap();
    assert_eq!(
        c.active_element().await.unwrap().text().await.unwrap(),
        "Overview"
    );
    c.perform_actions(press(fantoccini::key::Key::Tab))
        .await
        .unwrap();
    assert_eq!(
        c.active_element().await.unwrap().text().await.unwrap(),
        "Developers"
    );
    c.perform_actions(press(fantoccini::key::Key::Enter))
        .await
        .unwrap();
    for _ in 0..50 {
        if c.current_url().await.unwrap().path() == "/ui/developers" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.current_url().await.unwrap().path(), "/ui/developers");

    log_out(&c, &base).await;

    // A developer-bound token sees its developer only.
    let me = all["rows"][0]["developer"].as_str().unwrap().to_string();
    let other = all["rows"][1]["developer"].as_str().unwrap().to_string();
    let (_, bound) = tokens
        .create("bound", Scope::Read, std::slice::from_ref(&me), None)
        .unwrap();
    log_in(&c, &base, &bound).await;
    c.goto(&format!("{base}/ui/developers?{range}"))
        .await
        .unwrap();
    let rows = c.find_all(Locator::Css("table tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(text(&c, "table tbody tr th").await, me);
    c.goto(&format!("{base}/ui/overview?{range}"))
        .await
        .unwrap();
    let body = c.source().await.unwrap();
    assert!(!body.contains(&other), "a bound token sees {other}");
    // No audit page for a read token.
    assert!(
        c.find(Locator::Css("nav a[href='/ui/audit']"))
            .await
            .is_err()
    );
    assert_eq!(errors(&c).await, Vec::<String>::new(), "bound overview");
    log_out(&c, &base).await;

    c.close().await.unwrap();
    drop(driver);
    server.stop().await;
}

#[tokio::test]
async fn the_web_view_can_have_a_listener_of_its_own() {
    let server = TestServer::start_with(|c| c.ui_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let r = server.running();
    assert_ne!(r.ui_addr, r.mcp_addr);
    let own = server
        .http
        .get(format!("http://{}/ui/login", r.ui_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    assert!(own.text().await.unwrap().contains("name=\"token\""));
    // Not on the MCP listener then, and /mcp is not on the web listener.
    let on_mcp = server
        .http
        .get(format!("http://{}/ui/login", r.mcp_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(on_mcp.status(), 404);
    let mcp_on_ui = server
        .http
        .post(format!("http://{}/mcp", r.ui_addr))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(mcp_on_ui.status(), 404);
    server.stop().await;
}
