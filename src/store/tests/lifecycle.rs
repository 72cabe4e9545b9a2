//! Reads and their budgets, failures, retention, close and reopen.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_query_is_interrupted_at_its_budget_and_the_connection_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            readers: 1,
            ..options()
        },
    )
    .unwrap();
    let started = Instant::now();
    let slow = store
        .read(Duration::from_millis(100), |c| {
            c.query_row(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000000000)
                 SELECT count(*) FROM n",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .await;
    assert!(matches!(slow, Err(ReadError::TimedOut)), "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The only connection answers the next query normally.
    let next = store
        .read(Duration::from_millis(500), |c| {
            c.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        })
        .await
        .unwrap();
    assert_eq!(next, 0);
    // A closure of several statements stops too (the interrupt repeats).
    let many = store
        .read(Duration::from_millis(100), |c| {
            for _ in 0..1_000_000 {
                c.query_row(
                    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000)
                     SELECT count(*) FROM n",
                    [],
                    |r| r.get::<_, i64>(0),
                )?;
            }
            Ok(())
        })
        .await;
    assert!(matches!(many, Err(ReadError::TimedOut)), "{many:?}");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_past_the_queue_deadline_are_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            readers: 1,
            queue_deadline: Duration::from_millis(50),
            ..options()
        },
    )
    .unwrap();
    let holder = store.clone();
    let held = tokio::spawn(async move {
        holder
            .read(BUDGET, |_| {
                std::thread::sleep(Duration::from_millis(600));
                Ok(1)
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let busy = store.read(BUDGET, |_| Ok(2)).await;
    assert!(matches!(busy, Err(ReadError::Busy)), "{busy:?}");
    assert_eq!(held.await.unwrap().unwrap(), 1);
    assert_eq!(store.read(BUDGET, |_| Ok(3)).await.unwrap(), 3);
    // Ingest is independent of the readers.
    let ctx = context(1, "s", None, true);
    let batch = Batch {
        events: vec![group(&ctx, vec![event(1, T0, "user_prompt")])],
        ..Batch::default()
    };
    let holder = store.clone();
    let held = tokio::spawn(async move {
        holder
            .read(BUDGET, |_| {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.write(batch).await.unwrap().inserted, 1);
    held.await.unwrap().unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_full_disk_is_unavailable_and_stores_nothing_partial() {
    let dir = tempfile::tempdir().unwrap();
    // Cap the database at its current size: the next new page fails with SQLITE_FULL.
    let store = Store::open_with(dir.path(), options(), |c| {
        let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
    })
    .unwrap();
    let ctx = context(1, "s1", Some("alice@example.com"), true);
    let rows = (0..3000)
        .map(|n| api_request(n, T0 + i64::from(n), "opus", [1, 2, 3, 4], 0.5, 10))
        .collect();
    let batch = Batch {
        events: vec![group(&ctx, rows)],
        ..Batch::default()
    };
    let err = store.write(batch.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(count(&store, "events").await, 0);
    assert_eq!(count(&store, "sessions").await, 0);
    // The writer keeps running and answers again.
    let err = store.write(batch).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    store.close().await.unwrap();
}

#[tokio::test]
async fn an_unusable_data_dir_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("data"), options()).err().unwrap();
    assert!(matches!(err, StoreError::Open(_)), "{err:?}");
    // A database path that is a directory.
    std::fs::create_dir_all(dir.path().join("d").join(DB_FILE_NAME)).unwrap();
    let err = Store::open(&dir.path().join("d"), options()).err().unwrap();
    assert!(matches!(err, StoreError::Open(_)), "{err:?}");
    // A file that is not a database.
    let junk = dir.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join(DB_FILE_NAME), vec![0x42; 8192]).unwrap();
    let err = Store::open(&junk, options()).err().unwrap();
    assert!(matches!(err, StoreError::Open(_)), "{err:?}");
    let io = rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
        None,
    );
    assert!(matches!(StoreError::from(io), StoreError::Unavailable(_)));
}

#[tokio::test]
async fn prune_cuts_at_the_aligned_hour_with_rollups_sessions_and_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    let old = context(1, "old", Some("alice@example.com"), true);
    let mid = context(2, "mid", Some("bob@example.com"), true);
    let c = Temporality::Cumulative;
    let batch = Batch {
        events: vec![
            group(
                &old,
                vec![
                    api_request(1, T0 + 10 * MIN, "opus", [1, 1, 1, 1], 0.5, 10),
                    tool_result(2, T0 + 11 * MIN, "Read", true, 5),
                ],
            ),
            group(
                &mid,
                vec![
                    api_request(3, T0 + 20 * MIN, "opus", [1, 1, 1, 1], 0.5, 10),
                    api_request(4, T0 + H + 50 * MIN, "opus", [2, 2, 2, 2], 0.25, 20),
                    api_request(5, T0 + 2 * H, "opus", [3, 3, 3, 3], 0.125, 30),
                ],
            ),
        ],
        metric_points: vec![
            group(
                &old,
                vec![point(6, "claude_code.cost.usage", c, T0, T0 + MIN, 1.0)],
            ),
            group(
                &mid,
                vec![point(7, "claude_code.cost.usage", c, T0, T0 + H + MIN, 1.0)],
            ),
        ],
        spans: vec![
            group(&old, vec![span(8, T0 + MIN)]),
            group(&mid, vec![span(9, T0 + H)]),
        ],
    };
    assert_eq!(store.write(batch).await.unwrap().inserted, 9);
    // Cutoff 01:59:59 → aligned to 01:00: the 01:50 event stays.
    let receipt = store.prune(T0 + 2 * H - 1).await.unwrap();
    assert_eq!(
        (receipt.events, receipt.metric_points, receipt.spans),
        (3, 1, 1)
    );
    let events: Vec<u32> = query(&store, "SELECT dedup FROM events ORDER BY time_ns", |r| {
        let key: Vec<u8> = r.get(0)?;
        Ok(u32::from_le_bytes([key[0], key[1], key[2], key[3]]))
    })
    .await;
    assert_eq!(events, vec![4, 5]);
    let hours: Vec<(i64, i64)> = query(
        &store,
        "SELECT hour, requests FROM api_hourly ORDER BY hour",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .await;
    assert_eq!(hours, vec![(T0 / H + 1, 1), (T0 / H + 2, 1)]);
    // Hour histograms before the aligned cutoff go; the cutoff's day
    // histogram is merged again from the hours left.
    let latency: Vec<(i64, String)> = query(
        &store,
        "SELECT hour, hist FROM api_latency_hourly ORDER BY hour",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .await;
    assert_eq!(
        latency,
        vec![(T0 / H + 1, "20:1:0".into()), (T0 / H + 2, "30:1:0".into())]
    );
    let days: Vec<(i64, String)> = query(
        &store,
        "SELECT day, hist FROM api_latency_daily ORDER BY day",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .await;
    assert_eq!(days, vec![(T0 / H / 24, "20:1:0,30:1:0".into())]);
    let tool_rows = query(
        &store,
        "SELECT (SELECT count(*) FROM tool_latency_hourly) + (SELECT count(*) FROM tool_latency_daily)",
        |r| r.get::<_, i64>(0),
    )
    .await;
    assert_eq!(tool_rows, vec![0]);
    let sessions: Vec<String> =
        query(&store, "SELECT session_id FROM sessions", |r| r.get(0)).await;
    assert_eq!(sessions, vec!["mid".to_string()]);
    assert_eq!(count(&store, "contexts").await, 1);
    assert_eq!(count(&store, "metric_series").await, 1);
    assert_eq!(count(&store, "spans").await, 1);
    // The catalog keeps exactly the kept records: per hour, and for the
    // cutoff's day only its hours from the cutoff on.
    type Row = (String, String, i64);
    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    }
    let kept = vec![
        ("event".to_string(), "api_request".to_string(), 2),
        (
            "metric".to_string(),
            "claude_code.cost.usage".to_string(),
            1,
        ),
        ("span".to_string(), "claude_code.tool".to_string(), 1),
    ];
    let hourly = query(
        &store,
        "SELECT signal, name, SUM(records) FROM catalog_hourly GROUP BY 1, 2 ORDER BY 1, 2",
        row,
    )
    .await;
    let daily = query(
        &store,
        "SELECT signal, name, SUM(records) FROM catalog_daily GROUP BY 1, 2 ORDER BY 1, 2",
        row,
    )
    .await;
    assert_eq!(hourly, kept);
    assert_eq!(daily, kept);
    assert_eq!(
        query(
            &store,
            "SELECT developer, hour FROM api_developer_hours ORDER BY 2",
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        )
        .await,
        vec![
            ("bob@example.com".to_string(), T0 / H + 1),
            ("bob@example.com".to_string(), T0 / H + 2)
        ]
    );
    // A session that comes back after its rows were pruned starts afresh.
    let again = Batch {
        events: vec![group(&old, vec![event(10, T0 + 3 * H, "user_prompt")])],
        ..Batch::default()
    };
    assert_eq!(store.write(again).await.unwrap().inserted, 1);
    let back: Vec<(String, i64, i64)> = query(
        &store,
        "SELECT s.session_id, s.events, s.prompts FROM contexts c JOIN sessions s ON s.id = c.session_ref
         WHERE s.session_id = 'old'",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .await;
    assert_eq!(back, vec![("old".into(), 1, 1)]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn close_then_reopen_keeps_everything_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.write(rollup_batch()).await.unwrap().inserted, 12);
    store.close().await.unwrap();
    assert!(matches!(
        store.write(rollup_batch()).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(
        store.read(BUDGET, |_| Ok(())).await,
        Err(ReadError::Closed)
    ));
    store.close().await.unwrap();
    let wal = dir.path().join(format!("{DB_FILE_NAME}-wal"));
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);

    let store = Store::open(dir.path(), options()).unwrap();
    assert_eq!(store.db_path(), dir.path().join(DB_FILE_NAME));
    assert_rollups(&store).await;
    let check: Vec<String> = query(&store, "PRAGMA integrity_check", |r| r.get(0)).await;
    assert_eq!(check, vec!["ok".to_string()]);
    let version: Vec<i64> = query(&store, "PRAGMA user_version", |r| r.get(0)).await;
    assert_eq!(version, vec![migrate::SCHEMA_VERSION]);
    // An admin connection opens the same file while the server runs.
    let admin = open_admin_connection(dir.path()).unwrap();
    let events: i64 = admin
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(events, 12);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_overloaded_and_a_locked_database_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreOptions {
            queue_requests: 1,
            ..options()
        },
    )
    .unwrap();
    let ctx = context(1, "s1", None, true);
    let one = |n: u32| Batch {
        events: vec![group(&ctx, vec![event(n, T0, "user_prompt")])],
        ..Batch::default()
    };
    // Another process (an admin command) holds the write lock: the writer
    // waits on its first request, the queue's one slot fills, the next is refused.
    let admin = open_admin_connection(dir.path()).unwrap();
    admin.execute_batch("BEGIN IMMEDIATE").unwrap();
    let first = tokio::spawn({
        let (store, batch) = (store.clone(), one(1));
        async move { store.write(batch).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = tokio::spawn({
        let (store, batch) = (store.clone(), one(2));
        async move { store.write(batch).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = store.write(one(3)).await;
    assert!(matches!(third, Err(StoreError::Overloaded)), "{third:?}");
    admin.execute_batch("ROLLBACK").unwrap();
    assert_eq!(first.await.unwrap().unwrap().inserted, 1);
    assert_eq!(second.await.unwrap().unwrap().inserted, 1);

    // A lock held past the busy timeout: 503, nothing stored, writer still alive.
    admin.execute_batch("BEGIN IMMEDIATE").unwrap();
    let locked = store.write(one(4)).await;
    assert!(
        matches!(locked, Err(StoreError::Unavailable(_))),
        "{locked:?}"
    );
    admin.execute_batch("ROLLBACK").unwrap();
    assert_eq!(store.write(one(4)).await.unwrap().inserted, 1);
    assert_eq!(count(&store, "events").await, 3);
    store.close().await.unwrap();
}
