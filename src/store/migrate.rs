//! Connection pragmas and schema migrations (tracked in `PRAGMA user_version`).

use rusqlite::Connection;

use super::{BUSY_TIMEOUT, StoreError};

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only:
/// a shipped migration is never edited.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
    include_str!("schema_v10.sql"),
];

/// The version whose migration creates `developer_usage_hourly`: it is
/// filled from the context rollups by [`super::counted::refresh_all`]
/// (the counting rule is code, not a migration's SQL).
const DEVELOPER_USAGE_VERSION: usize = 6;

/// The version whose migration creates `edits`: filled from the events by
/// [`super::edits::fill`] (the merging rule is the writer's own statement).
const EDITS_VERSION: usize = 7;

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Pragmas every read-write connection uses: WAL (readers never block the
/// writer), `synchronous=FULL` (a commit is on disk before it is
/// acknowledged), foreign keys enforced (stated here rather than relying on
/// the bundled build's default), and a busy timeout for the rare second
/// writer (admin CLI).
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!(
                "cannot switch the database to WAL (journal_mode is {mode})"
            )),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

/// Extra pragmas of the single writer: a larger page cache (the dedup
/// indexes are written at random places) and a cap on the WAL file kept
/// after a checkpoint.
pub(crate) fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -65_536)?; // 64 MiB
    // Checkpoint every ~40 MiB of WAL instead of SQLite's 4 MiB: a page that
    // many transactions rewrite (index pages of the dedup keys) is copied
    // into the database once per checkpoint, not once per few commits.
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Pragmas of a read connection: it may not write, and it waits briefly
/// rather than failing if the WAL is being reset.
pub(crate) fn configure_reader(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`], each step in one transaction.
/// A database written by a newer build is refused rather than misread.
pub fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open(format!("migrating the schema: {e}"));
    let version = user_version(conn).map_err(open_err)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(open_err)?;
    let result = apply_pending(conn);
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(open_err),
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

fn apply_pending(conn: &Connection) -> Result<(), StoreError> {
    let open_err = |e: rusqlite::Error| StoreError::Open(format!("migrating the schema: {e}"));
    // Read again under the write lock: another process may have migrated.
    let version = user_version(conn).map_err(open_err)?;
    if !(0..=SCHEMA_VERSION).contains(&version) {
        return Err(StoreError::Open(format!(
            "the database has schema version {version}; this build knows up to {SCHEMA_VERSION}"
        )));
    }
    // `edits` is filled by the writer's own statements, which are written
    // for the newest schema: so after the last step (all in one
    // transaction, so no version in between is ever seen).
    let mut fill_edits = false;
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(sql).map_err(open_err)?;
        if from + 1 == DEVELOPER_USAGE_VERSION {
            super::counted::refresh_all(conn).map_err(open_err)?;
        }
        fill_edits |= from + 1 == EDITS_VERSION;
        conn.pragma_update(None, "user_version", from as i64 + 1)
            .map_err(open_err)?;
    }
    if fill_edits {
        super::edits::fill(conn).map_err(open_err)?;
    }
    Ok(())
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory store at schema `version`, as an older build left it.
    fn at_version(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        conn
    }

    /// One context of one developer, for the rows a test inserts.
    const ONE_CONTEXT: &str = "INSERT INTO contexts (id, key, claude_code, scope_name, scope_version, resource_attrs, \
        shared_attrs, first_seen_ns, developer) VALUES (1, x'01', 1, 's', '1', '{}', '{}', 0, 'dev@example.com')";

    /// The one text column of every row `sql` selects.
    fn strings(conn: &Connection, sql: &str) -> Vec<String> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// A version-1 store holding both spellings of one model: after the
    /// migration every table names the model once, the rollups are merged
    /// into its row and the variant is kept beside the raw rows.
    #[test]
    fn version_2_merges_model_context_variants() {
        let conn = at_version(1);
        conn.execute_batch(
            "INSERT INTO contexts (id, key, claude_code, scope_name, scope_version, resource_attrs, shared_attrs, first_seen_ns) \
               VALUES (1, x'01', 1, 's', '1', '{}', '{}', 0); \
             INSERT INTO events (dedup, context_id, time_ns, observed_ns, event_name, model) VALUES \
               (x'01', 1, 10, 10, 'api_request', 'claude-opus-4-8'), \
               (x'02', 1, 11, 11, 'api_request', 'claude-opus-4-8[1m]'), \
               (x'03', 1, 12, 12, 'api_request', '[1m]'); \
             INSERT INTO api_hourly VALUES (5, 1, 'claude-opus-4-8', 1, 0, 10, 1, 0, 0, 0.5, 100), \
               (5, 1, 'claude-opus-4-8[1m]', 2, 1, 20, 2, 3, 4, 0.25, 200); \
             INSERT INTO metric_series (id, key, context_id, name, unit, description, kind, temporality, monotonic, model) \
               VALUES (1, x'01', 1, 'claude_code.cost.usage', 'USD', '', 'sum', 1, 1, 'claude-opus-4-8[1m]'); \
             INSERT INTO metric_hourly VALUES (5, 1, 'claude_code.cost.usage', 'claude-opus-4-8', '', 1.0, 1), \
               (5, 1, 'claude_code.cost.usage', 'claude-opus-4-8[1m]', '', 2.0, 3); \
             INSERT INTO api_latency_hist VALUES (5, 'd', 'claude-opus-4-8', 100, 1), \
               (5, 'd', 'claude-opus-4-8[1m]', 100, 2), (5, 'd', 'claude-opus-4-8[1m]', 90, 1);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let events: Vec<(Option<String>, Option<String>)> = conn
            .prepare("SELECT model, model_variant FROM events ORDER BY time_ns")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let opus = || Some("claude-opus-4-8".to_string());
        assert_eq!(
            events,
            vec![
                (opus(), None),
                (opus(), Some("1m".to_string())),
                (Some("[1m]".to_string()), None)
            ]
        );
        let api = strings(
            &conn,
            "SELECT model || ' ' || requests || ' ' || errors || ' ' || input_tokens || ' ' || output_tokens \
             || ' ' || cache_read_tokens || ' ' || cache_creation_tokens || ' ' || cost_usd || ' ' || duration_ms \
             FROM api_hourly",
        );
        assert_eq!(
            api,
            vec!["claude-opus-4-8 3 1 30 3 3 4 0.75 300".to_string()]
        );
        let metric: Vec<(String, f64, i64)> = conn
            .prepare("SELECT model, value, points FROM metric_hourly")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(metric, vec![("claude-opus-4-8".into(), 3.0, 4)]);
        let series: (String, String) = conn
            .query_row("SELECT model, model_variant FROM metric_series", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(series, ("claude-opus-4-8".into(), "1m".into()));
        assert_eq!(
            strings(&conn, "SELECT model || ' ' || hist FROM api_latency_hourly"),
            vec!["claude-opus-4-8 90:1:0,100:3:0".to_string()]
        );
        // Version 6 fills the per-developer rollup from the context rollups:
        // the requests count; the sessionless cost metric of an hour with
        // requests does not.
        let counted: String = conn
            .query_row(
                "SELECT hour || ' ' || model || ' ' || requests || ' ' || cost_usd || ' ' \
                 || from_metrics || ' ' || sessionless FROM developer_usage_hourly",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(counted, "5 claude-opus-4-8 3 0.75 0 1");
    }

    /// Version 7 fills `edits` from the stored edit events: one row per
    /// tool use, merged by the writer's own statement; other tools ignored.
    #[test]
    fn version_7_fills_edits_from_events() {
        let conn = at_version(6);
        conn.execute_batch(ONE_CONTEXT).unwrap();
        conn.execute_batch(
            "INSERT INTO events (dedup, context_id, time_ns, observed_ns, event_name, tool_name, tool_use_id, \
               decision, file_path) VALUES \
               (x'01', 1, 10, 10, 'tool_decision', 'Edit', 't1', 'accept', NULL), \
               (x'02', 1, 25, 25, 'tool_result', 'Edit', 't1', NULL, '/a.rs'), \
               (x'03', 1, 30, 30, 'tool_result', 'Write', NULL, NULL, '/b.rs'), \
               (x'04', 1, 40, 40, 'tool_result', 'Bash', 't2', NULL, '/c.sh');",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let rows = strings(
            &conn,
            "SELECT key || ' ' || first_ns || ' ' || last_ns || ' ' || developer || ' ' || tool || ' ' \
             || COALESCE((SELECT f.path FROM edit_files f WHERE f.id = edits.file), '-') || ' ' \
             || COALESCE(decision, '-') || ' ' || decisions || ' ' || results || ' ' || mixed \
             FROM edits ORDER BY first_ns",
        );
        assert_eq!(
            rows,
            vec![
                "u:t1 10 25 dev@example.com Edit /a.rs accept 1 1 0".to_string(),
                "e:3 30 30 dev@example.com Write /b.rs - 0 1 0".to_string(),
            ]
        );
    }

    /// Version 9 numbers the edited paths: each path once in
    /// `edit_files`, in the order first seen, and every edit row names its
    /// own (rows without a path none).
    #[test]
    fn version_9_numbers_edited_files() {
        let conn = at_version(8);
        conn.execute_batch(
            "INSERT INTO edits (first_ns, key, last_ns, developer, session, context_id, tool, file_path, \
               decision, decisions, results, mixed) VALUES \
               (30, 'u:b', 30, 'd', 1, 1, 'Edit', '/x.rs', NULL, 0, 1, 0), \
               (10, 'u:a', 20, 'd', 1, 1, 'Edit', '/y.rs', 'accept', 1, 1, 0), \
               (40, 'u:c', 40, 'd', 1, 1, 'Write', '/x.rs', NULL, 0, 1, 0), \
               (50, 'u:d', 50, 'd', 1, 1, 'Edit', NULL, 'reject', 1, 0, 0);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(
            strings(
                &conn,
                "SELECT id || ' ' || path FROM edit_files ORDER BY id"
            ),
            vec!["1 /y.rs".to_string(), "2 /x.rs".to_string()]
        );
        assert_eq!(
            strings(
                &conn,
                "SELECT key || ' ' || COALESCE(file, '-') FROM edits ORDER BY key"
            ),
            vec!["u:a 1", "u:b 2", "u:c 2", "u:d -"]
        );
        let columns = strings(&conn, "SELECT name FROM pragma_table_info('edits')");
        assert!(!columns.iter().any(|c| c == "file_path"), "{columns:?}");
    }

    /// Version 10 turns the hour histograms of one row per millisecond into
    /// one text histogram per hour, developer and tool or model, ascending
    /// by millisecond, and drops the old tables.
    #[test]
    fn version_10_writes_hour_histograms_as_text() {
        let conn = at_version(9);
        conn.execute_batch(
            "INSERT INTO tool_latency_hist VALUES (5, 'd', 'Read', 120, 2, 1), (5, 'd', 'Read', 7, 1, 0), \
               (5, 'e', 'Read', 7, 1, 0), (6, 'd', 'Read', 9, 3, 3); \
             INSERT INTO api_latency_hist VALUES (5, 'd', 'opus', 1500, 1), (5, 'd', 'opus', 900, 4);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        assert_eq!(
            strings(
                &conn,
                "SELECT hour || ' ' || developer || ' ' || tool_name || ' ' || hist \
                 FROM tool_latency_hourly ORDER BY 1"
            ),
            vec!["5 d Read 7:1:0,120:2:1", "5 e Read 7:1:0", "6 d Read 9:3:3"]
        );
        assert_eq!(
            strings(
                &conn,
                "SELECT hour || ' ' || developer || ' ' || model || ' ' || hist FROM api_latency_hourly"
            ),
            vec!["5 d opus 900:4:0,1500:1:0"]
        );
        let tables = strings(
            &conn,
            "SELECT name FROM sqlite_schema WHERE name LIKE '%latency_hist'",
        );
        assert!(tables.is_empty(), "{tables:?}");
    }

    /// Version 8: points and spans keep one (time, dedup) index that still
    /// refuses a retried record, series keys gain their context id as the
    /// writer looks them up, and sessions get the metrics-only index.
    #[test]
    fn version_8_indexes_land_new_records_together() {
        let conn = at_version(7);
        conn.execute_batch(ONE_CONTEXT).unwrap();
        conn.execute_batch(
            "INSERT INTO metric_series (id, key, context_id, name, unit, description, kind, temporality, monotonic) \
               VALUES (1, x'01', 1, 'm', '', '', 'sum', 1, 1); \
             INSERT INTO metric_series (id, key, context_id, name, unit, description, kind, temporality, monotonic) \
               VALUES (2, x'00112233445566778899aabbccddeeff', 1, 'n', '', '', 'sum', 1, 1); \
             INSERT INTO metric_points (dedup, series_id, start_ns, time_ns, value, delta) \
               VALUES (x'0a', 1, 0, 5, 1.0, 1.0); \
             INSERT INTO spans (dedup, context_id, trace_id, span_id, name, kind, start_ns, end_ns, status_code) \
               VALUES (x'0b', 1, x'01', x'02', 's', 1, 7, 9, 0);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let indexes = strings(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('metric_points', 'spans') \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        );
        assert_eq!(
            indexes,
            vec![
                "metric_points_series_time",
                "metric_points_time_dedup",
                "spans_context_start",
                "spans_start_dedup",
                "spans_trace"
            ]
        );
        let point = conn
            .execute(
                "INSERT OR IGNORE INTO metric_points (dedup, series_id, start_ns, time_ns, value, delta) \
                 VALUES (x'0a', 1, 0, 5, 1.0, 1.0)",
                [],
            )
            .unwrap();
        let span = conn
            .execute(
                "INSERT OR IGNORE INTO spans (dedup, context_id, trace_id, span_id, name, kind, start_ns, end_ns, \
                 status_code) VALUES (x'0b', 1, x'01', x'02', 's', 1, 7, 9, 0)",
                [],
            )
            .unwrap();
        assert_eq!((point, span), (0, 0), "a retried point or span is refused");
        // A 16-byte series key gains its context id in front, as the writer
        // now looks it up.
        let key: Vec<u8> = conn
            .query_row("SELECT key FROM metric_series WHERE id = 2", [], |r| {
                r.get(0)
            })
            .unwrap();
        let hash: [u8; 16] = *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";
        assert_eq!(
            key,
            crate::store::insert::stored_series_key(1, &hash).to_vec()
        );
        let sessions = strings(
            &conn,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sessions' \
             AND name LIKE 'sessions_developer%' ORDER BY name",
        );
        assert_eq!(
            sessions,
            vec!["sessions_developer", "sessions_developer_kinds"]
        );
    }
}
