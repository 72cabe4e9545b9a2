//! The real binary: `serve` starts with nothing but a data dir, SIGKILL during
//! heavy ingest loses no acknowledged record and corrupts nothing, SIGTERM
//! drains and checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{logs_body, serve_binary, sigkill_during_ingest};
use std::process::Command;

fn open_db(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("tokentally.db")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_heavy_ingest_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_binary(dir.path(), &[]);
    let acked_total = sigkill_during_ingest(&mut server, 8, 1000, 200, 20_000).await;

    // Restart on the same data dir: WAL recovery, everything acknowledged is there.
    let mut server = serve_binary(dir.path(), &[]);
    let db = open_db(dir.path());
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let stored: i64 = db
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert!(acked_total >= 20_000);
    assert!(
        stored >= acked_total,
        "stored {stored} < acknowledged {acked_total}"
    );
    // Rollups were committed with the raw rows.
    let requests: i64 = db
        .query_row("SELECT sum(requests) FROM api_hourly", [], |r| r.get(0))
        .unwrap();
    assert_eq!(requests, stored);
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_binary(dir.path(), &[]);
    let client = reqwest::Client::new();
    for batch in 0..10 {
        let resp = client
            .post(format!("{}/v1/logs", server.otlp_http))
            .header("content-type", "application/json")
            .body(logs_body(batch, 50))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "serve exited with {exit}");
    // Checkpointed on the way out: the WAL holds nothing.
    let wal = dir.path().join("tokentally.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0);
    let db = open_db(dir.path());
    let stored: i64 = db
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 500);
}
