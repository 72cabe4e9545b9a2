//! The official MCP conformance suite (`@modelcontextprotocol/conformance`)
//! against a real server. The suite sends no credentials, so it runs through
//! a small proxy that adds a read token; the server itself never runs
//! unauthenticated. Scenarios that exercise demo features this server does
//! not have are listed, with the reason, in `tests/interop/conformance-baseline.yml`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, run_node, spawn_auth_proxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_apart_from_the_documented_baseline() {
    // The suite sends a few hundred requests in about two seconds from one
    // address with one token; lift the rate limits so it tests the protocol,
    // not them (tests/security.rs covers the limits).
    let t = TestServer::start_with(|c| {
        c.rate_limit.per_token_per_minute = 100_000;
        c.rate_limit.per_token_burst = 10_000;
        c.rate_limit.per_ip_per_minute = 100_000;
        c.rate_limit.per_ip_burst = 10_000;
    })
    .await;
    let proxy = spawn_auth_proxy(t.running().mcp_addr, t.bootstrap_token("read")).await;
    let out_dir = tempfile::tempdir().unwrap();
    let stdout = run_node(
        vec![
            "node_modules/@modelcontextprotocol/conformance/dist/index.js".into(),
            "server".into(),
            "--url".into(),
            format!("http://{proxy}/mcp"),
            "--expected-failures".into(),
            "conformance-baseline.yml".into(),
            "-o".into(),
            out_dir.path().display().to_string(),
        ],
        vec![],
    )
    .await;
    println!("{stdout}");
    t.stop().await;
}
