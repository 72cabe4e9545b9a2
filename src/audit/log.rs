//! The append-only, hash-chained audit store (`<data_dir>/audit.db`).
//!
//! Each record's `hash` is SHA-256 over the previous record's hash followed by
//! the canonical JSON of the record as stored (sequence number and time
//! included); the first record chains to 32 zero bytes. `audit_head` holds the
//! last sequence number, the record count and the last hash, updated in the
//! same transaction as the insert, so that deleting the newest records is
//! detected too. Triggers refuse UPDATE and DELETE on the log; someone with
//! write access to the file can drop them, which [`AuditLog::verify`] then
//! detects (unless the whole chain and head are recomputed: the chain makes
//! tampering evident, it cannot prevent it; export to a SIEM to anchor it).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::{AuditError, AuditRecord, AuditSink, redact_arguments};

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

/// The hash the first record chains to.
const GENESIS: [u8; 32] = [0; 32];

/// Longest `detail` / `user_agent` kept, in bytes.
const MAX_TEXT: usize = 1024;

/// Most problems one [`VerifyReport`] lists.
const MAX_PROBLEMS: usize = 100;

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

/// One stored record with its place in the chain, as the CLI and the audit
/// tools return it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Sequence number, 1 for the first record, without gaps.
    pub seq: u64,
    /// When the record was appended.
    pub time: jiff::Timestamp,
    /// The record as filled in by the caller (arguments redacted).
    #[serde(flatten)]
    pub record: AuditRecord,
    /// Hash of the previous record (hex).
    pub prev_hash: String,
    /// This record's hash (hex).
    pub hash: String,
}

/// What [`AuditLog::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// No problem found.
    pub ok: bool,
    /// Records read.
    pub records: u64,
    /// Highest sequence number found.
    pub last_seq: Option<u64>,
    /// Sequence number recorded in the head (what the log should end at).
    pub head_seq: Option<u64>,
    /// Hash of the last record (hex): keep it (or the last exported line's
    /// `hash`) outside this machine, and pass it to `audit verify --head`
    /// later to prove the log was not cut back since.
    pub head_hash: Option<String>,
    /// Problems in sequence order (at most 100).
    pub problems: Vec<VerifyProblem>,
}

/// What an outside witness saw of the log earlier: a later verify fails if
/// the log no longer reaches it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Witness {
    /// The log held at least this many records.
    pub at_least: Option<u64>,
    /// A record with this hash (hex) was in the chain.
    pub head: Option<String>,
}

/// One break in the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyProblem {
    /// Where: the first affected sequence number.
    pub seq: u64,
    /// What kind of break.
    pub kind: ProblemKind,
    /// Human-readable explanation.
    pub detail: String,
}

/// Kinds of break [`AuditLog::verify`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The record's content (or its sequence number) no longer matches its hash.
    Edited,
    /// Sequence numbers are missing: records were deleted.
    Missing,
    /// The record does not chain to the one before it: records before it were
    /// deleted, inserted or reordered.
    ChainBroken,
    /// The log does not end where the head says: newest records deleted, or
    /// records appended outside the log.
    HeadMismatch,
    /// The row cannot be read as an audit record.
    Unreadable,
    /// The log is shorter than a witness saw it, or no longer holds the
    /// record a witness kept: its tail was cut and the head rewritten.
    Rewound,
}

/// A record as stored: what the hash covers.
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct StoredRecord {
    pub seq: i64,
    pub time_ns: i64,
    pub request_id: Option<String>,
    pub token_id: Option<i64>,
    pub token_name: Option<String>,
    pub scope: Option<String>,
    pub peer: Option<String>,
    pub user_agent: Option<String>,
    pub client_name: Option<String>,
    pub client_version: Option<String>,
    pub method: Option<String>,
    pub tool: Option<String>,
    /// Redacted arguments as JSON text, exactly as stored.
    pub arguments: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
    pub rows: Option<i64>,
    pub truncated: Option<bool>,
    pub bytes: Option<i64>,
    pub duration_ms: Option<i64>,
}

impl StoredRecord {
    fn chain_hash(&self, prev: &[u8]) -> Result<[u8; 32], AuditError> {
        let canonical =
            serde_json::to_vec(self).map_err(|e| AuditError::Internal(e.to_string()))?;
        let mut h = Sha256::new();
        h.update(prev);
        h.update(&canonical);
        Ok(h.finalize().into())
    }

    pub(super) fn into_entry(self, prev_hash: &[u8], hash: &[u8]) -> AuditEntry {
        AuditEntry {
            seq: u64::try_from(self.seq).unwrap_or(0),
            time: jiff::Timestamp::from_nanosecond(i128::from(self.time_ns))
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            record: AuditRecord {
                request_id: self.request_id,
                token_id: self.token_id,
                token_name: self.token_name,
                scope: self.scope,
                peer: self.peer,
                user_agent: self.user_agent,
                client_name: self.client_name,
                client_version: self.client_version,
                method: self.method,
                tool: self.tool,
                arguments: self.arguments.and_then(|a| serde_json::from_str(&a).ok()),
                outcome: self.outcome,
                detail: self.detail,
                rows: self.rows.and_then(|v| u64::try_from(v).ok()),
                truncated: self.truncated,
                bytes: self.bytes.and_then(|v| u64::try_from(v).ok()),
                duration_ms: self.duration_ms.and_then(|v| u64::try_from(v).ok()),
            },
            prev_hash: hex::encode(prev_hash),
            hash: hex::encode(hash),
        }
    }
}

/// Reads a row selected with [`ENTRY_COLUMNS`]: the record, prev_hash, hash.
pub(super) fn read_stored(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<(StoredRecord, Vec<u8>, Vec<u8>)> {
    Ok((
        StoredRecord {
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

fn cap(text: Option<String>) -> Option<String> {
    text.map(|mut t| {
        if t.len() > MAX_TEXT {
            let mut end = MAX_TEXT;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
        }
        t
    })
}

fn to_i64(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
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
    /// earlier. A hash chain and its head alone cannot show that newest
    /// records were deleted and the head rewritten to match; a record count
    /// or hash kept elsewhere can.
    pub fn verify_with(&self, witness: &Witness) -> Result<VerifyReport, AuditError> {
        let mut report = self.verify()?;
        if let Some(n) = witness.at_least
            && report.records < n
        {
            report.problems.push(VerifyProblem {
                seq: report.records + 1,
                kind: ProblemKind::Rewound,
                detail: format!(
                    "the log holds {} records; a witness saw at least {n}",
                    report.records
                ),
            });
        }
        if let Some(h) = &witness.head {
            let want = hex::decode(h.trim()).map_err(|_| {
                AuditError::Internal(format!("--head {h:?} is not a hex record hash"))
            })?;
            let conn = self.conn()?;
            let found: Option<i64> = conn
                .query_row("SELECT seq FROM audit_log WHERE hash = ?1", [&want], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(unavailable)?;
            if found.is_none() {
                report.problems.push(VerifyProblem {
                    seq: report.records + 1,
                    kind: ProblemKind::Rewound,
                    detail: format!("no record has the witnessed hash {h}"),
                });
            }
        }
        report.ok = report.problems.is_empty();
        Ok(report)
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

        let mut problems = Vec::new();
        let mut push = |seq: i64, kind: ProblemKind, detail: String| {
            if problems.len() < MAX_PROBLEMS {
                problems.push(VerifyProblem {
                    seq: u64::try_from(seq).unwrap_or(0),
                    kind,
                    detail,
                });
            }
        };
        let mut expected_seq: i64 = 1;
        let mut expected_prev: Vec<u8> = GENESIS.to_vec();
        let mut records: i64 = 0;
        let mut last_seq: Option<i64> = None;
        while let Some(row) = rows.next().map_err(unavailable)? {
            records += 1;
            let seq: i64 = row.get(0).map_err(unavailable)?;
            last_seq = Some(seq);
            if seq != expected_seq {
                push(
                    expected_seq,
                    ProblemKind::Missing,
                    format!("records {expected_seq}..{} are missing", seq - 1),
                );
            }
            let (stored, prev_hash, hash) = match read_stored(row) {
                Ok(r) => r,
                Err(e) => {
                    push(seq, ProblemKind::Unreadable, e.to_string());
                    expected_prev = row.get(20).unwrap_or_default();
                    expected_seq = seq + 1;
                    continue;
                }
            };
            if prev_hash != expected_prev {
                push(
                    seq,
                    ProblemKind::ChainBroken,
                    format!("record {seq} does not chain to the record before it"),
                );
            }
            if stored.chain_hash(&prev_hash)?[..] != hash[..] {
                push(
                    seq,
                    ProblemKind::Edited,
                    format!("record {seq} does not match its hash"),
                );
            }
            expected_prev = hash;
            expected_seq = seq + 1;
        }
        match &head {
            Some((head_seq, head_count, head_hash))
                if Some(*head_seq) != last_seq
                    || *head_count != records
                    || head_hash[..] != expected_prev[..] =>
            {
                let at = match last_seq {
                    Some(last) if last > *head_seq => *head_seq + 1,
                    Some(last) if last < *head_seq => last + 1,
                    _ => *head_seq,
                };
                push(
                    at,
                    ProblemKind::HeadMismatch,
                    format!(
                        "the head records {head_count} records ending at {head_seq}, \
                         the log holds {records} ending at {}",
                        last_seq.unwrap_or(0)
                    ),
                );
            }
            Some(_) => {}
            None if records > 0 => push(
                1,
                ProblemKind::HeadMismatch,
                format!("the head is missing but the log holds {records} records"),
            ),
            None => {}
        }
        Ok(VerifyReport {
            ok: problems.is_empty(),
            records: u64::try_from(records).unwrap_or(0),
            last_seq: last_seq.and_then(|s| u64::try_from(s).ok()),
            head_seq: head.and_then(|h| u64::try_from(h.0).ok()),
            head_hash: (records > 0).then(|| hex::encode(&expected_prev)),
            problems,
        })
    }
}

impl AuditSink for AuditLog {
    fn append(&self, record: AuditRecord) -> Result<u64, AuditError> {
        let arguments = record
            .arguments
            .as_ref()
            .map(|a| serde_json::to_string(&redact_arguments(a)))
            .transpose()
            .map_err(|e| AuditError::Internal(e.to_string()))?;
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
        let stored = StoredRecord {
            seq: prev_seq + 1,
            time_ns,
            request_id: cap(record.request_id),
            token_id: record.token_id,
            token_name: cap(record.token_name),
            scope: cap(record.scope),
            peer: cap(record.peer),
            user_agent: cap(record.user_agent),
            client_name: cap(record.client_name),
            client_version: cap(record.client_version),
            method: cap(record.method),
            tool: cap(record.tool),
            arguments,
            outcome: record.outcome,
            detail: cap(record.detail),
            rows: to_i64(record.rows),
            truncated: record.truncated,
            bytes: to_i64(record.bytes),
            duration_ms: to_i64(record.duration_ms),
        };
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
    use crate::audit::Outcome;

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
