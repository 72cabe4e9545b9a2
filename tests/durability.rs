//! The real binary: `serve` starts with nothing but a data dir, SIGKILL during
//! heavy ingest loses no acknowledged record and corrupts nothing, SIGTERM
//! drains and checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{logs_body, serve_binary};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

fn open_db(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("tokentally.db")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_heavy_ingest_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_binary(dir.path(), &[]);
    let url = format!("{}/v1/logs", server.otlp_http);
    let client = reqwest::Client::new();
    let acked = Arc::new(AtomicI64::new(0));
    const PER_REQUEST: i64 = 200;

    let mut senders = Vec::new();
    for worker in 0..8i64 {
        let client = client.clone();
        let url = url.clone();
        let acked = acked.clone();
        senders.push(tokio::spawn(async move {
            for k in 0..1000i64 {
                let batch = worker * 1000 + k;
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(logs_body(batch, PER_REQUEST))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        acked.fetch_add(PER_REQUEST, Ordering::SeqCst);
                    }
                    Ok(r) if r.status() == 503 => {}
                    _ => return,
                }
            }
        }));
    }
    // Let ingest run, then kill -9 in the middle of it.
    while acked.load(Ordering::SeqCst) < 20_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let acked_at_kill = acked.load(Ordering::SeqCst);
    for s in senders {
        let _ = s.await;
    }
    let acked_total = acked.load(Ordering::SeqCst);

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
    assert!(acked_at_kill >= 20_000);
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
