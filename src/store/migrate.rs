//! Connection pragmas and schema migrations (tracked in `PRAGMA user_version`).

use rusqlite::Connection;

use super::{BUSY_TIMEOUT, StoreError};

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only:
/// a shipped migration is never edited.
const MIGRATIONS: &[&str] = &[include_str!("schema.sql")];

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
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        conn.execute_batch(sql).map_err(open_err)?;
        conn.pragma_update(None, "user_version", from as i64 + 1)
            .map_err(open_err)?;
    }
    Ok(())
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}
