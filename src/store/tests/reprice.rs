//! Repricing stored requests: rollups and session totals move by exactly the
//! difference, reported costs stay, and a second run changes nothing.

use super::*;

const CODEX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/coding-agents/codex_0.171.0_tools_http-json/otlp/004_v1_logs.json"
);
const CLAUDE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/claude-code/v330_t3_json_tools_details/otlp/002_v1_logs.json"
);

/// Claude Code's `cost_usd` over the `api_request` records of [`CLAUDE`],
/// read from the captured JSON.
fn claude_code_reported_cost() -> f64 {
    let body: serde_json::Value = serde_json::from_slice(&std::fs::read(CLAUDE).unwrap()).unwrap();
    let mut sum = 0.0;
    for rl in body["resourceLogs"].as_array().unwrap() {
        for sl in rl["scopeLogs"].as_array().unwrap() {
            for r in sl["logRecords"].as_array().unwrap() {
                let attr = |k: &str| {
                    r["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|kv| kv["key"] == k)
                        .map(|kv| kv["value"].clone())
                };
                if attr("event.name").map(|v| v["stringValue"].clone())
                    == Some(json!("api_request"))
                {
                    let v = attr("cost_usd").unwrap();
                    sum += v["doubleValue"]
                        .as_f64()
                        .or_else(|| v["stringValue"].as_str().and_then(|s| s.parse().ok()))
                        .unwrap();
                }
            }
        }
    }
    assert!(sum > 0.0, "the capture has priced requests");
    sum
}

/// (answered cost from api_hourly, from sessions, from raw events,
/// unpriced requests from api_hourly, reported cost from raw events).
async fn sums(store: &Store) -> (f64, f64, f64, i64, f64) {
    store
        .read(BUDGET, |c| {
            c.query_row(
                "SELECT (SELECT SUM(cost_usd) FROM api_hourly),
                        (SELECT SUM(cost_usd) FROM sessions),
                        (SELECT SUM(cost_usd) FROM events WHERE event_name = 'api_request'),
                        (SELECT SUM(unpriced) FROM api_hourly),
                        (SELECT SUM(cost_usd) FROM events WHERE event_name = 'api_request' AND NOT cost_computed)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repricing_restates_computed_cost_and_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let opts = crate::otlp::DecodeOptions::default();
    for path in [CODEX, CLAUDE] {
        let body = std::fs::read(path).unwrap();
        let d = crate::otlp::decode(
            crate::otlp::Signal::Logs,
            &body,
            Some("application/json"),
            None,
            &opts,
        )
        .unwrap();
        store.write(d.batch).await.unwrap();
    }
    let (hourly, sessions, raw, unpriced, reported) = sums(&store).await;
    // The shipped table has no gpt-5.5: Codex's three requests count unpriced.
    assert_eq!(unpriced, 3);
    assert!(
        (reported - claude_code_reported_cost()).abs() < 1e-12,
        "Claude Code's own estimates are stored as sent: {reported}"
    );
    assert!((hourly - reported).abs() < 1e-9 && (sessions - reported).abs() < 1e-9);
    assert!((raw - reported).abs() < 1e-9);

    let prices = dir.path().join("prices.toml");
    std::fs::write(
        &prices,
        "[models.\"gpt-5.5\"]\ninput = 1.25\ncached_input = 0.125\noutput = 10.0\n",
    )
    .unwrap();
    let priced = Arc::new(crate::pricing::Pricing::with_override_file(&prices).unwrap());
    let r = store.reprice(priced.clone()).await.unwrap();
    let per_request = (900.0 * 1.25 + 300.0 * 0.125 + 45.0 * 10.0) / 1e6;
    assert_eq!((r.requests, r.newly_priced, r.unpriced), (3, 3, 0));
    assert!((r.cost_delta_usd - 3.0 * per_request).abs() < 1e-12);
    let (hourly, sessions, raw, unpriced, reported_after) = sums(&store).await;
    assert_eq!(unpriced, 0);
    assert!(
        (reported_after - reported).abs() < 1e-12,
        "reported costs stay"
    );
    let want = reported + 3.0 * per_request;
    for (what, got) in [
        ("api_hourly", hourly),
        ("sessions", sessions),
        ("events", raw),
    ] {
        assert!((got - want).abs() < 1e-9, "{what}: {got} {want}");
    }
    // Nothing left to restate with the same table.
    assert_eq!(store.reprice(priced).await.unwrap().requests, 0);
    // Back to the shipped table: unpriced again, sums back where they were.
    let r = store
        .reprice(Arc::new(crate::pricing::Pricing::shipped()))
        .await
        .unwrap();
    assert_eq!((r.requests, r.unpriced), (3, 3));
    let (hourly, sessions, _, unpriced, _) = sums(&store).await;
    assert_eq!(unpriced, 3);
    assert!((hourly - reported).abs() < 1e-9 && (sessions - reported).abs() < 1e-9);
    store.close().await.unwrap();
}
