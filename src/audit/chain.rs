//! The hash chain both audit stores keep, and its check.
//!
//! Each record's `hash` is SHA-256 over the previous record's hash followed
//! by the canonical JSON of the record as stored (sequence number and time
//! included); the first record of a chain chains to 32 zero bytes. The
//! embedded log (`log`) is one chain; the ClickHouse store keeps one per
//! node, the node's id inside every record's JSON, so that a record cannot
//! be moved from one chain to another. [`Chain`] walks one chain in
//! sequence order and reports every break; [`VerifyReport::witnessed`] holds a report
//! against what an outside witness saw.

use sha2::{Digest, Sha256};

use super::{AuditError, AuditRecord, redact_arguments};

/// The hash the first record of a chain links to.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// Longest `detail` / `user_agent` kept, in bytes.
const MAX_TEXT: usize = 1024;

/// Most problems one [`VerifyReport`] lists.
const MAX_PROBLEMS: usize = 100;

/// One stored record with its place in the chain, as the CLI and the audit
/// tools return it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// The node whose chain holds the record (ClickHouse store; the
    /// embedded log is one chain and has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Sequence number in its chain, 1 for the first record, without gaps.
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

/// What a store's `verify` found.
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
    /// Each chain on its own, where the store keeps one per node
    /// (ClickHouse); the fields above then sum them, and `last_seq`,
    /// `head_seq` and `head_hash` are each chain's own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chains: Vec<ChainReport>,
    /// Problems in sequence order (at most 100).
    pub problems: Vec<VerifyProblem>,
}

/// What [`VerifyReport`] found of one chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    /// The node that wrote the chain (none: the embedded log's one chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Records read.
    pub records: u64,
    /// Highest sequence number found.
    pub last_seq: Option<u64>,
    /// Sequence number recorded in the head.
    pub head_seq: Option<u64>,
    /// Hash of the last record (hex).
    pub head_hash: Option<String>,
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
    /// The chain (none: the embedded log's one chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Where: the first affected sequence number.
    pub seq: u64,
    /// What kind of break.
    pub kind: ProblemKind,
    /// Human-readable explanation.
    pub detail: String,
}

/// Kinds of break a store's `verify` reports.
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
pub(crate) struct StoredRecord {
    /// The chain's node (absent from the embedded log's JSON, so its
    /// hashes are what they always were).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
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

impl StoredRecord {
    /// `record` as it is stored at `seq` of `node`'s chain at `time_ns`:
    /// arguments redacted (again) and texts capped.
    pub(crate) fn new(
        record: AuditRecord,
        node: Option<String>,
        seq: i64,
        time_ns: i64,
    ) -> Result<StoredRecord, AuditError> {
        let arguments = record
            .arguments
            .as_ref()
            .map(|a| serde_json::to_string(&redact_arguments(a)))
            .transpose()
            .map_err(|e| AuditError::Internal(e.to_string()))?;
        Ok(StoredRecord {
            node,
            seq,
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
        })
    }

    /// The hash of this record linked to `prev`.
    pub(crate) fn chain_hash(&self, prev: &[u8]) -> Result<[u8; 32], AuditError> {
        let canonical =
            serde_json::to_vec(self).map_err(|e| AuditError::Internal(e.to_string()))?;
        let mut h = Sha256::new();
        h.update(prev);
        h.update(&canonical);
        Ok(h.finalize().into())
    }

    pub(crate) fn into_entry(self, prev_hash: &[u8], hash: &[u8]) -> AuditEntry {
        AuditEntry {
            node: self.node,
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

/// The problems a check found, at most [`MAX_PROBLEMS`] of them.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<VerifyProblem>);

impl Problems {
    fn push(&mut self, node: &Option<String>, seq: u64, kind: ProblemKind, detail: String) {
        if self.0.len() < MAX_PROBLEMS {
            self.0.push(VerifyProblem {
                node: node.clone(),
                seq,
                kind,
                detail,
            });
        }
    }
}

/// One chain walked in sequence order.
#[derive(Debug)]
pub(crate) struct Chain {
    node: Option<String>,
    expected_seq: u64,
    expected_prev: Vec<u8>,
    records: u64,
    last_seq: Option<u64>,
}

impl Chain {
    /// The chain of `node` (none: the embedded log's).
    pub(crate) fn new(node: Option<String>) -> Chain {
        Chain {
            node,
            expected_seq: 1,
            expected_prev: GENESIS.to_vec(),
            records: 0,
            last_seq: None,
        }
    }

    /// The next stored row, at `seq` with hash `hash`: the record and the
    /// hash it links to, or why the row cannot be read as one.
    pub(crate) fn record(
        &mut self,
        seq: u64,
        read: Result<(StoredRecord, Vec<u8>), String>,
        hash: Vec<u8>,
        problems: &mut Problems,
    ) -> Result<(), AuditError> {
        self.records += 1;
        self.last_seq = Some(seq);
        if seq != self.expected_seq {
            problems.push(
                &self.node,
                self.expected_seq,
                ProblemKind::Missing,
                format!(
                    "records {}..{} are missing",
                    self.expected_seq,
                    seq.saturating_sub(1)
                ),
            );
        }
        match read {
            Err(e) => problems.push(&self.node, seq, ProblemKind::Unreadable, e),
            Ok((stored, prev_hash)) => {
                if prev_hash != self.expected_prev {
                    problems.push(
                        &self.node,
                        seq,
                        ProblemKind::ChainBroken,
                        format!("record {seq} does not chain to the record before it"),
                    );
                }
                if stored.chain_hash(&prev_hash)?[..] != hash[..] {
                    problems.push(
                        &self.node,
                        seq,
                        ProblemKind::Edited,
                        format!("record {seq} does not match its hash"),
                    );
                }
            }
        }
        self.expected_prev = hash;
        self.expected_seq = seq + 1;
        Ok(())
    }

    /// The chain's end held against its head (`seq`, record count, last
    /// hash), which is written where deleting the newest records does not
    /// reach it.
    pub(crate) fn finish(
        self,
        head: Option<(u64, u64, Vec<u8>)>,
        problems: &mut Problems,
    ) -> ChainReport {
        let records = self.records;
        let last_seq = self.last_seq;
        match &head {
            Some((head_seq, head_count, head_hash))
                if Some(*head_seq) != last_seq
                    || *head_count != records
                    || head_hash[..] != self.expected_prev[..] =>
            {
                let at = match last_seq {
                    Some(last) if last > *head_seq => *head_seq + 1,
                    Some(last) if last < *head_seq => last + 1,
                    _ => *head_seq,
                };
                problems.push(
                    &self.node,
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
            None if records > 0 => problems.push(
                &self.node,
                1,
                ProblemKind::HeadMismatch,
                format!("the head is missing but the log holds {records} records"),
            ),
            None => {}
        }
        ChainReport {
            node: self.node,
            records,
            last_seq,
            head_seq: head.map(|h| h.0),
            head_hash: (records > 0).then(|| hex::encode(&self.expected_prev)),
        }
    }
}

impl VerifyReport {
    /// The report of the embedded log's one chain.
    pub(crate) fn one(chain: ChainReport, problems: Problems) -> VerifyReport {
        VerifyReport {
            ok: problems.0.is_empty(),
            records: chain.records,
            last_seq: chain.last_seq,
            head_seq: chain.head_seq,
            head_hash: chain.head_hash,
            chains: Vec::new(),
            problems: problems.0,
        }
    }

    /// The report of a store with a chain per node.
    pub(crate) fn many(chains: Vec<ChainReport>, problems: Problems) -> VerifyReport {
        VerifyReport {
            ok: problems.0.is_empty(),
            records: chains.iter().map(|c| c.records).sum(),
            last_seq: None,
            head_seq: None,
            head_hash: None,
            chains,
            problems: problems.0,
        }
    }

    /// This report held against what a witness saw earlier: `holds`
    /// says whether a record with a hash is still stored. A hash chain and
    /// its head alone cannot show that newest records were deleted and
    /// the head rewritten to match; a record count or hash kept elsewhere
    /// can.
    pub(crate) fn witnessed(
        mut self,
        witness: &Witness,
        holds: impl FnOnce(&[u8]) -> Result<bool, AuditError>,
    ) -> Result<VerifyReport, AuditError> {
        if let Some(n) = witness.at_least
            && self.records < n
        {
            self.problems.push(VerifyProblem {
                node: None,
                seq: self.records + 1,
                kind: ProblemKind::Rewound,
                detail: format!(
                    "the log holds {} records; a witness saw at least {n}",
                    self.records
                ),
            });
        }
        if let Some(h) = &witness.head {
            let want = hex::decode(h.trim()).map_err(|_| {
                AuditError::Internal(format!("--head {h:?} is not a hex record hash"))
            })?;
            if !holds(&want)? {
                self.problems.push(VerifyProblem {
                    node: None,
                    seq: self.records + 1,
                    kind: ProblemKind::Rewound,
                    detail: format!("no record has the witnessed hash {h}"),
                });
            }
        }
        self.ok = self.problems.is_empty();
        Ok(self)
    }
}
