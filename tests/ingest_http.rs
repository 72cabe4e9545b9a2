//! OTLP/HTTP ingest against a real server: every captured Claude Code request
//! replayed (JSON, protobuf, gzip) stores exactly its records with the right
//! typed values; retries are stored once; bad input gets the OTLP answer and
//! stores nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TestServer, count, fixture};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// Counted from the captures with an independent script (python, reading the
// JSON and, for the .pb files, the official Python protobuf classes).
const TOTAL_EVENTS: i64 = 3 + 11 + 8 + 8 + 23 + 3 + 14 + 13 + 6 + 3;
const TOTAL_POINTS: i64 = 7 + 9 + 7 + 7 + 11 + 8 + 10 + 12 + 1 + 1;
const TOTAL_SPANS: i64 = 2 + 14 + 2 + 26 + 10 + 6;

async fn replay_all(t: &TestServer) {
    t.replay_captures().await;
}

#[tokio::test]
async fn every_capture_is_stored_exactly_once() {
    let t = TestServer::start().await;
    replay_all(&t).await;
    let db = t.db();
    assert_eq!(count(&db, "SELECT count(*) FROM events"), TOTAL_EVENTS);
    assert_eq!(
        count(&db, "SELECT count(*) FROM metric_points"),
        TOTAL_POINTS
    );
    assert_eq!(count(&db, "SELECT count(*) FROM spans"), TOTAL_SPANS);

    // Exporters retry: the whole replay again, plus the uncompressed twin of
    // the gzip capture, changes nothing.
    replay_all(&t).await;
    for twin in [
        "claude-code/v330_t10_headers_gzip/otlp/001_v1_logs.json",
        "claude-code/v330_t10_headers_gzip/otlp/002_v1_metrics.json",
    ] {
        assert_eq!(t.post_fixture(twin).await.status(), 200);
    }
    assert_eq!(count(&db, "SELECT count(*) FROM events"), TOTAL_EVENTS);
    assert_eq!(
        count(&db, "SELECT count(*) FROM metric_points"),
        TOTAL_POINTS
    );
    assert_eq!(count(&db, "SELECT count(*) FROM spans"), TOTAL_SPANS);
    // Rollups follow the raw rows, not the number of requests.
    assert_eq!(
        count(&db, "SELECT sum(requests) FROM api_hourly"),
        count(
            &db,
            "SELECT count(*) FROM events WHERE event_name = 'api_request'"
        )
    );
    t.stop().await;
}

#[tokio::test]
async fn typed_columns_hold_the_captured_values() {
    let t = TestServer::start().await;
    replay_all(&t).await;
    let db = t.db();
    let session_events = |session: &str, extra: &str| {
        format!(
            "SELECT {extra} FROM events e JOIN contexts c ON c.id = e.context_id \
             JOIN sessions s ON s.id = c.session_ref WHERE s.session_id = '{session}'"
        )
    };

    // 2.1.330 tool-details run: 7 api_requests of 120/12/30/50 tokens at $0.000976.
    let s330 = "8632fb29-f2bb-4135-b72f-e225ad4d7105";
    let (n, input, output, cache_read, cache_creation, cost): (i64, i64, i64, i64, i64, f64) = db
        .query_row(
            &(session_events(
                s330,
                "count(*), sum(e.input_tokens), sum(e.output_tokens), sum(e.cache_read_tokens), \
                 sum(e.cache_creation_tokens), sum(e.cost_usd)",
            ) + " AND e.event_name = 'api_request'"),
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        (n, input, output, cache_read, cache_creation),
        (7, 840, 84, 210, 350)
    );
    assert!((cost - 7.0 * 0.000976).abs() < 1e-12, "cost {cost}");
    let durations: Vec<i64> = db
        .prepare(
            &(session_events(s330, "e.duration_ms")
                + " AND e.event_name = 'api_request' ORDER BY e.sequence"),
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(durations, vec![85, 19, 69, 32, 30, 26, 19]);

    // File paths from tool_input (OTEL_LOG_TOOL_DETAILS=1): Read, Edit, Write.
    let paths: Vec<(String, String)> = db
        .prepare(&(session_events(s330, "e.tool_name, e.file_path") + " AND e.event_name = 'tool_result' AND e.file_path IS NOT NULL ORDER BY e.sequence"))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let hello = "/home/dev/webapp/hello.txt".to_string();
    assert_eq!(
        paths,
        vec![
            ("Read".into(), hello.clone()),
            ("Edit".into(), hello.clone()),
            ("Write".into(), hello.clone())
        ]
    );

    // The failing Bash: success sent as the string "false", duration as "34".
    let (success, duration, error): (i64, i64, String) = db
        .query_row(
            "SELECT success, duration_ms, error FROM events WHERE tool_use_id = 'toolu_fake_05121e909b5549d5' AND event_name = 'tool_result'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (success, duration, error.as_str()),
        (0, 34, "Shell command failed")
    );
    let (decision, source): (String, String) = db
        .query_row(
            "SELECT decision, decision_source FROM events WHERE tool_use_id = 'toolu_fake_4dfd50603bad426c' AND event_name = 'tool_decision'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((decision.as_str(), source.as_str()), ("accept", "config"));

    // 2.1.100 sends tokens, cost and duration as strings: same typed values.
    let (n, input, cost, typeof_cost, typeof_tokens): (i64, i64, f64, String, String) = db
        .query_row(
            "SELECT count(*), sum(input_tokens), sum(cost_usd), max(typeof(cost_usd)), max(typeof(input_tokens)) \
             FROM events e JOIN contexts c ON c.id = e.context_id WHERE c.app_version = '2.1.100' AND e.event_name = 'api_request'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((n, input), (4, 480));
    assert!((cost - 4.0 * 0.0007365).abs() < 1e-12, "cost {cost}");
    assert_eq!(
        (typeof_cost.as_str(), typeof_tokens.as_str()),
        ("real", "integer")
    );
    let edit_duration: i64 = db
        .query_row(
            "SELECT e.duration_ms FROM events e JOIN contexts c ON c.id = e.context_id \
             WHERE c.app_version = '2.1.100' AND e.event_name = 'tool_result' AND e.tool_name = 'Edit'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(edit_duration, 60);

    // The 529 run: api_error with its model, error and duration.
    let (model, error, duration): (String, String, i64) = db
        .query_row(
            "SELECT model, error, duration_ms FROM events WHERE event_name = 'api_error'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (model.as_str(), error.as_str(), duration),
        ("claude-opus-5-5", "Repeated 529 Overloaded errors", 8)
    );

    // Claude Code recognised by scope, identity by user.id (no email sent).
    assert_eq!(
        count(&db, "SELECT count(*) FROM contexts WHERE claude_code = 0"),
        0
    );
    let kind: String = db
        .query_row(
            "SELECT developer_kind FROM sessions WHERE session_id = ?1",
            [s330],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kind, "user_id");
    t.stop().await;
}

#[tokio::test]
async fn content_is_not_stored_unless_capture_is_on() {
    // (text, records holding it when captured): the prompt is on the
    // user_prompt event and the interaction span; the edit strings only in
    // the Edit's tool_input.
    let needles = [
        ("edit hello.txt", 2),
        ("line two", 1),
        ("line 2 changed", 1),
    ];
    for capture in [false, true] {
        let t = TestServer::start_with(|c| c.capture_content = capture).await;
        for f in [
            "claude-code/v330_t3_json_tools_details/otlp/002_v1_logs.json",
            "claude-code/v330_t3_json_tools_details/otlp/005_v1_traces.json",
        ] {
            assert_eq!(t.post_fixture(f).await.status(), 200);
        }
        let db = t.db();
        for (needle, captured) in needles {
            let hits = count(
                &db,
                &format!(
                    "SELECT (SELECT count(*) FROM events WHERE attrs LIKE '%{needle}%' OR body LIKE '%{needle}%') \
                     + (SELECT count(*) FROM spans WHERE attrs LIKE '%{needle}%')"
                ),
            );
            let expected = if capture { captured } else { 0 };
            assert_eq!(hits, expected, "{needle} with capture {capture}");
        }
        // Paths and sizes are kept either way (Read and Edit are in this request).
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM events WHERE file_path = '/home/dev/webapp/hello.txt'"
            ),
            2
        );
        t.stop().await;
    }
}

fn decode_status(body: &[u8]) -> (i32, String) {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let s = Status::decode(body).expect("a google.rpc.Status body");
    (s.code, s.message)
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_stores_nothing() {
    let t = TestServer::start_with(|c| c.max_body_bytes = 64 * 1024).await;
    let url = t.otlp_url("/v1/logs");
    let pb = fixture("claude-code/v330_t4_pb_write/otlp/002_v1_logs.pb");

    // Truncated protobuf: 400 with a protobuf Status.
    let resp = t
        .http
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(pb[..pb.len() / 2].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let (code, message) = decode_status(&resp.bytes().await.unwrap());
    assert_eq!(code, 3);
    assert!(!message.is_empty());

    // Unknown content type: 415.
    let resp = t
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);

    // Bad JSON: 400 with a JSON Status.
    let resp = t
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"resourceLogs": [ {"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 3);

    // Too large before decompression: 413.
    let big = vec![b' '; 200 * 1024];
    let resp = t
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // A gzip bomb: small on the wire, 50 MB inflated: 413 after decompression.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &vec![b' '; 50 * 1024 * 1024]).unwrap();
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 64 * 1024);
    let resp = t
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // Unknown compression: 415.
    let resp = t
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);

    // Methods and paths.
    assert_eq!(t.http.get(&url).send().await.unwrap().status(), 405);
    assert_eq!(
        t.http
            .post(t.otlp_url("/v1/profiles-nope"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let db = t.db();
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM contexts"), 0);
    t.stop().await;
}

#[tokio::test]
async fn partial_success_reports_refused_records() {
    let t = TestServer::start().await;
    let body = serde_json::json!({
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "other-app"}}]},
            "scopeLogs": [{
                "scope": {"name": "some.sdk"},
                "logRecords": [
                    {"timeUnixNano": "1795281159820000000", "body": {"stringValue": "kept"}},
                    {"timeUnixNano": "1795281159820000001", "body": {"stringValue": "bad id"}, "traceId": "abc"}
                ]
            }]
        }]
    });
    let resp = t
        .http
        .post(t.otlp_url("/v1/logs"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: serde_json::Value = resp.json().await.unwrap();
    let rejected = &answer["partialSuccess"]["rejectedLogRecords"];
    assert!(rejected == "1" || rejected == 1, "{answer}");
    assert!(
        !answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    let db = t.db();
    // Other services' logs are stored generically.
    let (body, claude): (String, i64) = db
        .query_row(
            "SELECT e.body, c.claude_code FROM events e JOIN contexts c ON c.id = e.context_id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((body.as_str(), claude), ("kept", 0));
    t.stop().await;
}

#[tokio::test]
async fn chunked_bodies_are_accepted() {
    // Claude Code 2.1.197 sends Transfer-Encoding: chunked.
    let t = TestServer::start().await;
    let body = fixture("claude-code/t1_json_text/otlp/002_v1_logs.json");
    let addr = t.running().otlp_http_addr;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(1000) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&req).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 3);
    t.stop().await;
}

#[tokio::test]
async fn ingest_tokens_when_required() {
    let t = TestServer::start_with(|c| {
        c.ingest_auth = tokentally::config::IngestAuth::Required;
    })
    .await;
    let tokens = tokentally::auth::TokenStore::open(t.dir.path()).unwrap();
    let (_, ingest) = tokens
        .create("collector", tokentally::auth::Scope::Ingest, &[], None)
        .unwrap();
    let read = t.bootstrap_token("read");
    let body = fixture("claude-code/t1_json_text/otlp/002_v1_logs.json");
    let send = |auth: Option<String>| {
        let mut req = t
            .http
            .post(t.otlp_url("/v1/logs"))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(
        send(Some("Bearer tt_wrong".into())).await.unwrap().status(),
        401
    );
    assert_eq!(
        send(Some(format!("Bearer {read}"))).await.unwrap().status(),
        403
    );
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 0);
    // Claude Code passes OTEL_EXPORTER_OTLP_HEADERS un-decoded: `Bearer%20tok`.
    assert_eq!(
        send(Some(format!("Bearer%20{ingest}")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        send(Some(format!("Bearer {ingest}")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(count(&t.db(), "SELECT count(*) FROM events"), 3);
    t.stop().await;
}
