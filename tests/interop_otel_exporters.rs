//! Real exporters, not hand-made requests: the official OpenTelemetry JS
//! exporters (the packages Claude Code bundles, same version) send logs,
//! metrics and traces over gRPC, HTTP/protobuf and HTTP/JSON, with gzip and
//! with an ingest token passed the way Claude Code passes it; every record
//! must be stored with its typed values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, count, run_node};

const EVENTS: i64 = 50;

async fn export(t: &TestServer, protocol: &str, run: &str, extra_env: &[(&str, String)]) {
    let endpoint = if protocol == "grpc" {
        t.grpc_url()
    } else {
        format!("http://{}", t.running().otlp_http_addr)
    };
    let mut envs = vec![("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), endpoint)];
    envs.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    run_node(
        vec![
            "otel_export.mjs".into(),
            protocol.into(),
            run.into(),
            EVENTS.to_string(),
        ],
        envs,
    )
    .await;
}

fn assert_run_stored(db: &rusqlite::Connection, run: &str) {
    let session = format!("session-{run}");
    let q = |what: &str, filter: &str| {
        format!(
            "SELECT {what} FROM events e JOIN contexts c ON c.id = e.context_id \
             JOIN sessions ss ON ss.id = c.session_ref WHERE ss.session_id = '{session}' {filter}"
        )
    };
    assert_eq!(count(db, &q("count(*)", "")), 2 * EVENTS, "{run}");
    // input_tokens = 100 + i, output = 10 + i, cost = 0.001 * (i + 1), i in 0..50
    let expected_input: i64 = (0..EVENTS).map(|i| 100 + i).sum();
    let expected_output: i64 = (0..EVENTS).map(|i| 10 + i).sum();
    let expected_cost: f64 = (0..EVENTS).map(|i| 0.001 * (i + 1) as f64).sum();
    assert_eq!(
        count(
            db,
            &q("sum(e.input_tokens)", "AND event_name = 'api_request'")
        ),
        expected_input,
        "{run}"
    );
    assert_eq!(
        count(
            db,
            &q("sum(e.output_tokens)", "AND event_name = 'api_request'")
        ),
        expected_output
    );
    let cost: f64 = db
        .query_row(
            &q("sum(e.cost_usd)", "AND event_name = 'api_request'"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!((cost - expected_cost).abs() < 1e-9, "{run}: cost {cost}");
    let developer: String = db
        .query_row(
            &format!("SELECT developer FROM sessions WHERE session_id = '{session}'"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(developer, format!("dev-{run}@example.com"));
    // tool_result: string durations 20 + i, success "false" when i % 5 == 0.
    let expected_tool_ms: i64 = (0..EVENTS).map(|i| 20 + i).sum();
    assert_eq!(
        count(
            db,
            &q("sum(e.duration_ms)", "AND event_name = 'tool_result'")
        ),
        expected_tool_ms
    );
    assert_eq!(
        count(
            db,
            &q("count(*)", "AND event_name = 'tool_result' AND success = 0")
        ),
        EVENTS / 5
    );
    for (k, n) in [(0, 17), (1, 17), (2, 16)] {
        assert_eq!(
            count(
                db,
                &q(
                    "count(*)",
                    &format!("AND file_path = '/repo/{run}/file{k}.rs'")
                )
            ),
            n
        );
    }
    assert_eq!(
        count(db, &q("count(*)", "AND attrs LIKE '%secret old text%'")),
        0,
        "tool contents must not be stored by default"
    );

    // Metrics: a delta counter of 0.25 + 0.5 and a 3-value histogram.
    let cost_metric: f64 = db
        .query_row(
            &format!(
                "SELECT sum(p.delta) FROM metric_points p JOIN metric_series s ON s.id = p.series_id \
                 JOIN contexts c ON c.id = s.context_id JOIN sessions ss ON ss.id = c.session_ref \
                 WHERE s.name = 'claude_code.cost.usage' AND ss.session_id = '{session}'"
            ),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!((cost_metric - 0.75).abs() < 1e-9, "{run}: {cost_metric}");
    let (hist_count, hist_sum): (i64, f64) = db
        .query_row(
            &format!(
                "SELECT p.count, p.value FROM metric_points p JOIN metric_series s ON s.id = p.series_id \
                 JOIN contexts c ON c.id = s.context_id JOIN sessions ss ON ss.id = c.session_ref \
                 WHERE s.name = 'interop.latency' AND ss.session_id = '{session}'"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((hist_count, hist_sum), (3, 45.0));

    // Traces: interaction → tool (file_path) → blocked_on_user (reject).
    let spans = format!(
        "SELECT count(*) FROM spans s JOIN contexts c ON c.id = s.context_id \
         JOIN sessions ss ON ss.id = c.session_ref WHERE ss.session_id = '{session}'"
    );
    assert_eq!(count(db, &spans), 3);
    assert_eq!(
        count(
            db,
            &format!(
                "{spans} AND s.name = 'claude_code.tool' AND s.file_path = '/repo/{run}/traced.rs'"
            )
        ),
        1
    );
    assert_eq!(
        count(
            db,
            &format!(
                "{spans} AND s.name = 'claude_code.tool.blocked_on_user' AND s.decision = 'reject' \
                 AND s.parent_span_id = (SELECT span_id FROM spans WHERE name = 'claude_code.tool' AND file_path = '/repo/{run}/traced.rs')"
            )
        ),
        1
    );
}

#[tokio::test]
async fn official_exporters_over_all_three_protocols() {
    let t = TestServer::start().await;
    export(&t, "grpc", "grpc", &[]).await;
    export(&t, "http/protobuf", "proto", &[]).await;
    export(&t, "http/json", "json", &[]).await;
    export(
        &t,
        "http/protobuf",
        "gzip",
        &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".into())],
    )
    .await;
    export(
        &t,
        "grpc",
        "grpcgzip",
        &[("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".into())],
    )
    .await;
    let db = t.db();
    for run in ["grpc", "proto", "json", "gzip", "grpcgzip"] {
        assert_run_stored(&db, run);
    }
    t.stop().await;
}

#[tokio::test]
async fn exporters_with_an_ingest_token_in_otel_headers() {
    let t = TestServer::start_with(|c| {
        c.ingest_auth = tokentally::config::IngestAuth::Required;
    })
    .await;
    let tokens = tokentally::auth::TokenStore::open(t.dir.path()).unwrap();
    let (_, secret) = tokens
        .create("ci", tokentally::auth::Scope::Ingest, &[], None)
        .unwrap();
    // Exactly as a user writes it for Claude Code: `%20` for the space.
    let headers = format!("Authorization=Bearer%20{secret}");
    export(
        &t,
        "http/json",
        "tokjson",
        &[("OTEL_EXPORTER_OTLP_HEADERS", headers.clone())],
    )
    .await;
    export(
        &t,
        "grpc",
        "tokgrpc",
        &[("OTEL_EXPORTER_OTLP_HEADERS", headers)],
    )
    .await;
    let db = t.db();
    assert_run_stored(&db, "tokjson");
    assert_run_stored(&db, "tokgrpc");
    t.stop().await;
}
