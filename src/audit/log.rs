//! The append-only, hash-chained audit store (`<data_dir>/audit.db`): one
//! chain (`chain`) of every record of this server. `audit_head` holds the
//! last sequence number, the record count and the last hash, updated in the
//! same transaction as the insert, so that deleting the newest records is
//! detected too. Triggers refuse UPDATE and DELETE on the log; someone with
//! write access to the file can drop them, which [`AuditLog::verify`] then
//! detects (unless the whole chain and head are recomputed: the chain makes
//! tampering evident, it cannot prevent it; export to a SIEM to anchor it).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::chain::{Chain, GENESIS, Problems, StoredRecord};
use super::{AuditError, AuditRecord, AuditSink, VerifyReport, Witness};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    request_id TEXT,
    token_id INTEGER,
    token_name TEXT,
    scope TEXT,
    peer TEXT,
    user_agent TEXT,
    client_name TEXT,
    client_version TEXT,
    method TEXT,
    tool TEXT,
    arguments TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    rows INTEGER,
    truncated INTEGER,
    bytes INTEGER,
    duration_ms INTEGER,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log(time_ns);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    hash BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
";

/// The columns [`read_stored`] expects, in order.
pub(super) const ENTRY_COLUMNS: &str = "seq, time_ns, request_id, token_id, token_name, scope, \
     peer, user_agent, client_name, client_version, method, tool, arguments, outcome, detail, \
     rows, truncated, bytes, duration_ms, prev_hash, hash";

/// The audit log. Safe to share between threads (`Arc<AuditLog>`); every call
/// is blocking, so async callers use `spawn_blocking`.
#[derive(Debug)]
pub struct AuditLog {
    conn: Mutex<Connection>,
}

/// Reads a row selected with [`ENTRY_COLUMNS`]: the record, prev_hash, hash.
pub(super) fn read_stored(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(StoredRecord, Vec<u8>, Vec<u8>)> {
    Ok((
        StoredRecord {
            node: None,
            seq: row.get(0)?,
            time_ns: row.get(1)?,
            request_id: row.get(2)?,
            token_id: row.get(3)?,
            token_name: row.get(4)?,
            scope: row.get(5)?,
            peer: row.get(6)?,
            user_agent: row.get(7)?,
            client_name: row.get(8)?,
            client_version: row.get(9)?,
            method: row.get(10)?,
            tool: row.get(11)?,
            arguments: row.get(12)?,
            outcome: row.get(13)?,
            detail: row.get(14)?,
            rows: row.get(15)?,
            truncated: row.get(16)?,
            bytes: row.get(17)?,
            duration_ms: row.get(18)?,
        },
        row.get(19)?,
        row.get(20)?,
    ))
}

fn unavailable(e: impl std::fmt::Display) -> AuditError {
    AuditError::Unavailable(e.to_string())
}

impl AuditLog {
    /// Opens (creating if needed) `<data_dir>/audit.db` for appending.
    pub fn open(data_dir: &Path) -> Result<AuditLog, AuditError> {
        crate::datadir::prepare(data_dir).map_err(unavailable)?;
        let path = data_dir.join(crate::datadir::AUDIT_FILE_NAME);
        let conn = Connection::open(&path).map_err(unavailable)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(unavailable)?;
        crate::datadir::restrict(&path);
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(unavailable)?;
        conn.execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(AuditLog {
            conn: Mutex::new(conn),
        })
    }

    /// Opens an existing `<data_dir>/audit.db` read-only (for `audit verify`,
    /// `tail` and `export`); [`AuditSink::append`] on it fails.
    pub fn open_read_only(data_dir: &Path) -> Result<AuditLog, AuditError> {
        let conn = Connection::open_with_flags(
            data_dir.join(crate::datadir::AUDIT_FILE_NAME),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(unavailable)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(unavailable)?;
        Ok(AuditLog {
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn conn(&self) -> Result<MutexGuard<'_, Connection>, AuditError> {
        self.conn
            .lock()
            .map_err(|_| AuditError::Internal("audit log lock poisoned".into()))
    }

    /// [`AuditLog::verify`], then the log held against what a witness saw
    /// earlier ([`VerifyReport::witnessed`]).
    pub fn verify_with(&self, witness: &Witness) -> Result<VerifyReport, AuditError> {
        self.verify()?.witnessed(witness, |want| {
            let conn = self.conn()?;
            conn.query_row("SELECT seq FROM audit_log WHERE hash = ?1", [want], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|found| found.is_some())
            .map_err(unavailable)
        })
    }

    /// The head: records written and the last record's hash (hex).
    pub fn head(&self) -> Result<Option<(u64, String)>, AuditError> {
        let conn = self.conn()?;
        conn.query_row("SELECT count, hash FROM audit_head WHERE id = 1", [], |r| {
            Ok((
                u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                hex::encode(r.get::<_, Vec<u8>>(1)?),
            ))
        })
        .optional()
        .map_err(unavailable)
    }

    /// Re-reads the whole log and checks every link of the chain and the head.
    pub fn verify(&self) -> Result<VerifyReport, AuditError> {
        let conn = self.conn()?;
        let head: Option<(i64, i64, Vec<u8>)> = conn
            .query_row(
                "SELECT seq, count, hash FROM audit_head WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(unavailable)?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_log ORDER BY seq"
            ))
            .map_err(unavailable)?;
        let mut rows = stmt.query([]).map_err(unavailable)?;

        let mut problems = Problems::default();
        let mut chain = Chain::new(None);
        while let Some(row) = rows.next().map_err(unavailable)? {
            let seq: i64 = row.get(0).map_err(unavailable)?;
            let hash: Vec<u8> = row.get(20).unwrap_or_default();
            let read = read_stored(row)
                .map(|(stored, prev, _)| (stored, prev))
                .map_err(|e| e.to_string());
            chain.record(u64::try_from(seq).unwrap_or(0), read, hash, &mut problems)?;
        }
        let head = head.map(|(seq, count, hash)| {
            (
                u64::try_from(seq).unwrap_or(0),
                u64::try_from(count).unwrap_or(0),
                hash,
            )
        });
        let chain = chain.finish(head, &mut problems);
        Ok(VerifyReport::one(chain, problems))
    }
}

impl AuditSink for AuditLog {
    fn append(&self, record: AuditRecord) -> Result<u64, AuditError> {
        let time_ns = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX);
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(unavailable)?;
        let head: Option<(i64, Vec<u8>)> = tx
            .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(unavailable)?;
        let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS.to_vec()));
        let stored = StoredRecord::new(record, None, prev_seq + 1, time_ns)?;
        let hash = stored.chain_hash(&prev_hash)?;
        let s = &stored;
        tx.execute(
            &format!(
                "INSERT INTO audit_log ({ENTRY_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
            ),
            params![
                s.seq,
                s.time_ns,
                s.request_id,
                s.token_id,
                s.token_name,
                s.scope,
                s.peer,
                s.user_agent,
                s.client_name,
                s.client_version,
                s.method,
                s.tool,
                s.arguments,
                s.outcome,
                s.detail,
                s.rows,
                s.truncated,
                s.bytes,
                s.duration_ms,
                prev_hash,
                &hash[..],
            ],
        )
        .map_err(unavailable)?;
        tx.execute(
            "INSERT INTO audit_head (id, seq, count, hash) VALUES (1, ?1, 1, ?2)
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, count = count + 1, hash = excluded.hash",
            params![s.seq, &hash[..]],
        )
        .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(u64::try_from(stored.seq).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Outcome, ProblemKind};

    fn record(i: u64) -> AuditRecord {
        AuditRecord {
            request_id: Some(format!("req-{i}")),
            token_id: Some(2),
            token_name: Some("read".into()),
            scope: Some("read".into()),
            method: Some("tools/call".into()),
            tool: Some("cost_by_developer".into()),
            arguments: Some(serde_json::json!({"since": "7d", "prompt": "secret words"})),
            outcome: Outcome::Ok.as_str().into(),
            rows: Some(i),
            truncated: Some(false),
            duration_ms: Some(12),
            ..AuditRecord::default()
        }
    }

    /// A log with records 1..=n, plus a raw connection that can tamper with it
    /// (as someone with write access to the file would: triggers dropped).
    fn log_with(n: u64) -> (tempfile::TempDir, AuditLog, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        for i in 1..=n {
            assert_eq!(log.append(record(i)).unwrap(), i);
        }
        let raw = Connection::open(dir.path().join("audit.db")).unwrap();
        raw.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .unwrap();
        (dir, log, raw)
    }

    fn problem_seqs(report: &VerifyReport) -> Vec<(u64, ProblemKind)> {
        report.problems.iter().map(|p| (p.seq, p.kind)).collect()
    }

    #[test]
    fn intact_chain_verifies_and_survives_reopen() {
        let (dir, log, _raw) = log_with(5);
        let report = log.verify().unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 5);
        assert_eq!(report.last_seq, Some(5));
        assert_eq!(report.head_seq, Some(5));
        drop(log);
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.append(record(6)).unwrap(), 6);
        assert!(log.verify().unwrap().ok);
        let empty = tempfile::tempdir().unwrap();
        let report = AuditLog::open(empty.path()).unwrap().verify().unwrap();
        assert!(report.ok);
        assert_eq!(report.records, 0);
    }

    #[test]
    fn content_is_redacted_before_storage() {
        let (_dir, log, raw) = log_with(1);
        let args: String = raw
            .query_row("SELECT arguments FROM audit_log WHERE seq = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(args, r#"{"prompt":"[redacted]","since":"7d"}"#);
        assert!(log.verify().unwrap().ok);
    }

    #[test]
    fn triggers_refuse_update_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.append(record(1)).unwrap();
        let raw = Connection::open(dir.path().join("audit.db")).unwrap();
        assert!(raw.execute("UPDATE audit_log SET rows = 9", []).is_err());
        assert!(raw.execute("DELETE FROM audit_log", []).is_err());
    }

    #[test]
    fn edited_field_is_reported_at_its_seq() {
        let (_dir, log, raw) = log_with(6);
        raw.execute(
            "UPDATE audit_log SET outcome = 'forbidden' WHERE seq = 4",
            [],
        )
        .unwrap();
        let report = log.verify().unwrap();
        assert!(!report.ok);
        assert_eq!(problem_seqs(&report), vec![(4, ProblemKind::Edited)]);
    }

    #[test]
    fn edited_and_rehashed_record_breaks_the_next_link() {
        let (_dir, log, raw) = log_with(6);
        raw.execute("UPDATE audit_log SET hash = zeroblob(32) WHERE seq = 2", [])
            .unwrap();
        let report = log.verify().unwrap();
        assert_eq!(
            problem_seqs(&report),
            vec![(2, ProblemKind::Edited), (3, ProblemKind::ChainBroken)]
        );
    }

    #[test]
    fn deleted_middle_record_is_reported() {
        let (_dir, log, raw) = log_with(6);
        raw.execute("DELETE FROM audit_log WHERE seq = 3", [])
            .unwrap();
        let report = log.verify().unwrap();
        assert_eq!(report.records, 5);
        let seqs = problem_seqs(&report);
        assert_eq!(seqs[0], (3, ProblemKind::Missing));
        assert_eq!(seqs[1], (4, ProblemKind::ChainBroken));
        assert_eq!(report.problems[0].detail, "records 3..3 are missing");
    }

    #[test]
    fn swapped_records_are_reported() {
        let (_dir, log, raw) = log_with(6);
        raw.execute_batch(
            "UPDATE audit_log SET seq = -1 WHERE seq = 2;
             UPDATE audit_log SET seq = 2 WHERE seq = 5;
             UPDATE audit_log SET seq = 5 WHERE seq = -1;",
        )
        .unwrap();
        let report = log.verify().unwrap();
        assert!(!report.ok);
        assert_eq!(report.problems[0].seq, 2);
        assert!(problem_seqs(&report).contains(&(5, ProblemKind::Edited)));
    }

    #[test]
    fn deleted_last_record_is_reported() {
        let (_dir, log, raw) = log_with(6);
        raw.execute("DELETE FROM audit_log WHERE seq = 6", [])
            .unwrap();
        let report = log.verify().unwrap();
        assert_eq!(problem_seqs(&report), vec![(6, ProblemKind::HeadMismatch)]);
        assert_eq!(report.last_seq, Some(5));
        assert_eq!(report.head_seq, Some(6));
    }

    /// Cutting the newest records and rewriting the head to match passes the
    /// chain check alone (a hash chain cannot see it), and fails against
    /// what a witness kept: the count or the last hash.
    #[test]
    fn a_rewound_tail_fails_against_a_witness() {
        let (_dir, log, raw) = log_with(8);
        let before = log.verify().unwrap();
        let (count, hash) = (before.records, before.head_hash.clone().unwrap());
        assert_eq!(log.head().unwrap(), Some((8, hash.clone())));
        raw.execute_batch(
            "DELETE FROM audit_log WHERE seq > 5; \
             UPDATE audit_head SET seq = 5, count = 5, hash = (SELECT hash FROM audit_log WHERE seq = 5);",
        )
        .unwrap();
        assert!(log.verify().unwrap().ok, "the limit this test exists for");
        let witness = |at_least, head| Witness { at_least, head };
        let r = log.verify_with(&witness(Some(count), None)).unwrap();
        assert!(!r.ok);
        assert_eq!(problem_seqs(&r), vec![(6, ProblemKind::Rewound)]);
        let r = log.verify_with(&witness(None, Some(hash.clone()))).unwrap();
        assert_eq!(problem_seqs(&r), vec![(6, ProblemKind::Rewound)]);
        // Nothing left at all: still caught.
        raw.execute_batch("DELETE FROM audit_log; DELETE FROM audit_head;")
            .unwrap();
        assert!(log.verify().unwrap().ok);
        assert!(
            !log.verify_with(&witness(Some(count), Some(hash)))
                .unwrap()
                .ok
        );
        // A witness the log still reaches passes.
        let (_dir, log, _raw) = log_with(3);
        let r = log.verify().unwrap();
        assert!(log.verify_with(&witness(Some(3), r.head_hash)).unwrap().ok);
    }

    #[test]
    fn record_inserted_outside_the_log_is_reported() {
        let (_dir, log, raw) = log_with(3);
        raw.execute(
            "INSERT INTO audit_log (seq, time_ns, outcome, prev_hash, hash)
             SELECT 4, time_ns, 'ok', hash, hash FROM audit_log WHERE seq = 3",
            [],
        )
        .unwrap();
        let report = log.verify().unwrap();
        let seqs = problem_seqs(&report);
        assert!(seqs.contains(&(4, ProblemKind::Edited)), "{seqs:?}");
        assert!(seqs.contains(&(4, ProblemKind::HeadMismatch)), "{seqs:?}");
    }

    #[test]
    fn append_fails_closed_on_a_read_only_log() {
        let (dir, log, _raw) = log_with(2);
        drop(log);
        let ro = AuditLog::open_read_only(dir.path()).unwrap();
        assert!(matches!(
            ro.append(record(3)),
            Err(AuditError::Unavailable(_))
        ));
        assert_eq!(ro.verify().unwrap().records, 2);
        let missing = tempfile::tempdir().unwrap();
        assert!(AuditLog::open_read_only(missing.path()).is_err());
    }

    #[test]
    fn append_fails_closed_when_the_table_is_gone() {
        let (_dir, log, raw) = log_with(1);
        raw.execute_batch("DROP TABLE audit_log").unwrap();
        assert!(log.append(record(2)).is_err());
    }

    #[test]
    fn concurrent_appends_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(AuditLog::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        log.append(record(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let report = log.verify().unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 40);
    }
}
