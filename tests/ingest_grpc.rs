//! OTLP/gRPC ingest against a real server: the standard services store the
//! same rows as OTLP/HTTP, accept gzip, deduplicate retries and enforce
//! ingest tokens when required.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, count, fixture};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokentally::otlp::{Encoding, decode_logs, decode_metrics, decode_traces};
use tonic::codec::CompressionEncoding;

const RUN: &str = "claude-code/v330_t3_json_tools_details/otlp/";

#[tokio::test]
async fn grpc_stores_the_same_records_as_http() {
    let t = TestServer::start().await;
    let channel = t.grpc_channel().await;
    let mut logs =
        LogsServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Gzip);
    let mut metrics = MetricsServiceClient::new(channel.clone());
    let mut traces = TraceServiceClient::new(channel);

    for f in ["002_v1_logs.json", "003_v1_logs.json"] {
        let req = decode_logs(&fixture(&format!("{RUN}{f}")), Encoding::Json).unwrap();
        let resp = logs.export(req.clone()).await.unwrap().into_inner();
        assert_eq!(resp.partial_success, None);
        // A retry of the same request is stored once.
        logs.export(req).await.unwrap();
    }
    for f in ["001_v1_metrics.json", "004_v1_metrics.json"] {
        let req = decode_metrics(&fixture(&format!("{RUN}{f}")), Encoding::Json).unwrap();
        metrics.export(req).await.unwrap();
    }
    let req = decode_traces(
        &fixture(&format!("{RUN}005_v1_traces.json")),
        Encoding::Json,
    )
    .unwrap();
    traces.export(req).await.unwrap();

    let db = t.db();
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 26);
    assert_eq!(count(&db, "SELECT count(*) FROM metric_points"), 19);
    assert_eq!(count(&db, "SELECT count(*) FROM spans"), 26);
    assert_eq!(
        count(
            &db,
            "SELECT sum(input_tokens) FROM events WHERE event_name = 'api_request'"
        ),
        840
    );
    // Spans carry the file path of the tool (OTEL_LOG_TOOL_DETAILS=1).
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM spans WHERE name = 'claude_code.tool' AND file_path = '/home/dev/webapp/hello.txt'"
        ),
        3
    );
    t.stop().await;
}

#[tokio::test]
async fn grpc_requires_an_ingest_token_when_configured() {
    let t = TestServer::start_with(|c| {
        c.ingest_auth = tokentally::config::IngestAuth::Required;
    })
    .await;
    let tokens = tokentally::auth::TokenStore::open(t.dir.path()).unwrap();
    let (_, ingest) = tokens
        .create("collector", tokentally::auth::Scope::Ingest, &[], None)
        .unwrap();
    let read = t.bootstrap_token("read");
    let channel = t.grpc_channel().await;
    let mut logs = LogsServiceClient::new(channel);
    let req = decode_logs(&fixture(&format!("{RUN}003_v1_logs.json")), Encoding::Json).unwrap();

    let err = logs.export(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut with_read = tonic::Request::new(req.clone());
    with_read
        .metadata_mut()
        .insert("authorization", format!("Bearer {read}").parse().unwrap());
    assert_eq!(
        logs.export(with_read).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 0);

    let mut ok = tonic::Request::new(req);
    ok.metadata_mut()
        .insert("authorization", format!("Bearer {ingest}").parse().unwrap());
    logs.export(ok).await.unwrap();
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 3);
    t.stop().await;
}

// An oversized export and undecodable bytes get the status codes OTLP
// clients treat as final (RESOURCE_EXHAUSTED, INVALID_ARGUMENT), not the
// retryable OUT_OF_RANGE and INTERNAL, so a bad export is not resent forever.
#[tokio::test]
async fn bad_exports_get_final_status_codes() {
    let t = TestServer::start_with(|c| c.max_body_bytes = 2048).await;
    let channel = t.grpc_channel().await;
    let req = decode_logs(&fixture(&format!("{RUN}002_v1_logs.json")), Encoding::Json).unwrap();
    let err = LogsServiceClient::new(channel)
        .export(req)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("max_body_bytes"), "{err:?}");

    // One gRPC frame of bytes that are no protobuf message.
    let garbage: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0x0f, 0x01];
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(garbage.len() as u32).to_be_bytes());
    frame.extend_from_slice(garbage);
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = http
        .post(format!(
            "{}/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            t.grpc_url()
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(frame)
        .send()
        .await
        .unwrap();
    let status = resp
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(status.as_deref(), Some("3"), "{:?}", resp.headers());
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 0);
    t.stop().await;
}
