//! The tamper-evident audit log of every MCP request.
//!
//! * this file: the record, built by its two constructors
//!   ([`AuditRecord::tool_call`], [`AuditRecord::denial`]), and the
//!   [`AuditSink`] every transport appends through;
//! * `redact`: [`redact_arguments`], the one redaction policy for
//!   arguments (applied when a record is built and again when it is stored);
//! * `chain`: the hash chain of stored records, and the check of a chain
//!   that both stores' `verify` run;
//! * `log`: [`AuditLog`], the append-only, hash-chained SQLite store in its
//!   own file `<data_dir>/audit.db` (out of reach of the read tools), and
//!   [`AuditLog::verify`]; the ClickHouse store keeps a chain per node in
//!   the cluster (`crate::clickhouse::audit`);
//! * `report`: reads for the CLI and the `audit_log` / `audit_summary` tools
//!   (tail, filtered query, summary, JSONL export).
//!
//! Tokens never appear in the log, only their id and name.

mod chain;
mod log;
mod redact;
mod report;

pub use chain::{AuditEntry, ChainReport, ProblemKind, VerifyProblem, VerifyReport, Witness};
pub(crate) use chain::{Chain, GENESIS, Problems, StoredRecord};
pub use log::AuditLog;
pub use redact::redact_arguments;
pub(crate) use report::{
    Conditions, Param, SUMMARY_GROUP_BY, SUMMARY_GROUPS, SummaryGroup, write_jsonl,
};

use crate::auth::redact_secrets;
pub use report::{
    AuditFilter, AuditPage, AuditSummary, CallerCount, OutcomeCount, TokenCount, ToolCount,
};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered.
    Ok,
    /// The tool ran and returned a tool error (bad arguments, no data...).
    ToolError,
    /// No, garbled, expired or revoked token.
    Unauthenticated,
    /// Valid token without the scope for this call.
    Forbidden,
    /// Over the rate limit.
    RateLimited,
    /// Stopped at the query time budget.
    TimedOut,
    /// Internal failure.
    Failed,
}

impl Outcome {
    /// Stable text stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Forbidden => "forbidden",
            Outcome::RateLimited => "rate_limited",
            Outcome::TimedOut => "timed_out",
            Outcome::Failed => "failed",
        }
    }
}

/// One audit record: who called what, with which (redacted) arguments, and
/// how it ended. Built by [`AuditRecord::tool_call`] and
/// [`AuditRecord::denial`]; the log adds the time, sequence number and hash
/// chain, and the `audit_log` tool returns it as it is stored.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct AuditRecord {
    /// JSON-RPC request id, or one generated for the request.
    pub request_id: Option<String>,
    /// Token id, when a token was recognised.
    pub token_id: Option<i64>,
    /// Token name, when a token was recognised.
    pub token_name: Option<String>,
    /// Token scope, when a token was recognised.
    pub scope: Option<String>,
    /// Peer address of the caller.
    pub peer: Option<String>,
    /// The caller's `User-Agent`.
    pub user_agent: Option<String>,
    /// MCP client name from `initialize`.
    pub client_name: Option<String>,
    /// MCP client version from `initialize`.
    pub client_version: Option<String>,
    /// `tools/call`, or for denials at the transport the HTTP method and path.
    pub method: Option<String>,
    /// Tool called.
    pub tool: Option<String>,
    /// Arguments as logged: content-like values and secrets redacted, size-capped.
    pub arguments: Option<serde_json::Value>,
    /// How the request ended: `ok`, `tool_error`, `unauthenticated`,
    /// `forbidden`, `rate_limited`, `timed_out` or `failed`.
    pub outcome: String,
    /// Error message or denial reason.
    pub detail: Option<String>,
    /// Rows returned.
    pub rows: Option<u64>,
    /// Whether the answer was truncated.
    pub truncated: Option<bool>,
    /// Bytes of the reply.
    pub bytes: Option<u64>,
    /// Duration of the call in milliseconds.
    pub duration_ms: Option<u64>,
}

/// Who made a request, as its transport saw it (nothing here is verified).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Caller {
    /// JSON-RPC request id, or one generated for the request.
    pub request_id: Option<String>,
    /// Peer address.
    pub peer: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// MCP client name from `initialize` (or the request's metadata).
    pub client_name: Option<String>,
    /// MCP client version.
    pub client_version: Option<String>,
}

/// How a tool call ended, for its record.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    /// The outcome.
    pub outcome: Outcome,
    /// The error message, for a call that failed.
    pub error: Option<String>,
    /// Rows returned.
    pub rows: u64,
    /// Whether the answer was truncated.
    pub truncated: bool,
    /// Bytes of the reply.
    pub bytes: u64,
    /// How long the call took.
    pub duration: std::time::Duration,
}

/// Longest tool name, detail and client strings kept in a record.
const MAX_TOOL: usize = 128;
const MAX_DETAIL: usize = 500;

fn cut(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl AuditRecord {
    /// The record of one tool call (`tools/call`), whoever asked (`None`:
    /// no verified token). Arguments are redacted with [`redact_arguments`].
    pub fn tool_call(
        principal: Option<&crate::auth::Principal>,
        caller: Caller,
        tool: &str,
        arguments: &serde_json::Value,
        result: CallResult,
    ) -> AuditRecord {
        AuditRecord {
            method: Some("tools/call".into()),
            tool: Some(cut(tool, MAX_TOOL)),
            arguments: Some(redact_arguments(arguments)),
            outcome: result.outcome.as_str().to_string(),
            detail: result.error.map(|e| cut(&redact_secrets(&e), MAX_DETAIL)),
            rows: Some(result.rows),
            truncated: Some(result.truncated),
            bytes: Some(result.bytes),
            duration_ms: Some(u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX)),
            ..AuditRecord::from_caller(principal, caller)
        }
    }

    /// The record of a request refused before any tool ran: `method` is the
    /// HTTP method and path (never the query string, which may hold a token).
    pub fn denial(
        principal: Option<&crate::auth::Principal>,
        caller: Caller,
        method: String,
        outcome: Outcome,
        detail: &str,
    ) -> AuditRecord {
        AuditRecord::request(principal, caller, method, outcome, detail)
    }

    /// The record of a request that is not a tool call (a web view login
    /// or logout, a refusal): `method` is the HTTP method and path, never
    /// the query string.
    pub fn request(
        principal: Option<&crate::auth::Principal>,
        caller: Caller,
        method: String,
        outcome: Outcome,
        detail: &str,
    ) -> AuditRecord {
        AuditRecord {
            method: Some(method),
            outcome: outcome.as_str().to_string(),
            detail: Some(cut(&redact_secrets(detail), MAX_DETAIL)),
            ..AuditRecord::from_caller(principal, caller)
        }
    }

    fn from_caller(principal: Option<&crate::auth::Principal>, caller: Caller) -> AuditRecord {
        AuditRecord {
            request_id: caller.request_id,
            token_id: principal.map(|p| p.token_id),
            token_name: principal.map(|p| p.token_name.clone()),
            scope: principal.map(|p| p.scope.as_str().to_string()),
            peer: caller.peer,
            user_agent: caller.user_agent,
            client_name: caller.client_name,
            client_version: caller.client_version,
            ..AuditRecord::default()
        }
    }
}

/// Why an audit record could not be written (the call must then fail).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The audit database could not be written.
    #[error("audit log unavailable: {0}")]
    Unavailable(String),
    /// The audit database failed in another way.
    #[error("audit log error: {0}")]
    Internal(String),
}

/// Where audit records go. Implementations are blocking (SQLite); async
/// callers run `append` on a blocking thread. Fail closed: a caller that gets
/// an error must not return the data it was about to return.
pub trait AuditSink: Send + Sync + 'static {
    /// Appends one record and returns its sequence number.
    fn append(&self, record: AuditRecord) -> Result<u64, AuditError>;
}

/// Reading an audit store, whichever holds the records: the CLI's `audit`
/// commands, the audit tools and the web view read through it. Blocking,
/// like [`AuditSink`].
pub trait AuditReader: Send + Sync + 'static {
    /// The newest `n` records, oldest first (`tokentally audit tail`).
    fn tail(&self, n: usize) -> Result<Vec<AuditEntry>, AuditError>;
    /// Writes every record at or after `since` as one JSON object per line,
    /// oldest first, with its hashes; returns the number written.
    fn export_jsonl(
        &self,
        writer: &mut dyn std::io::Write,
        since: Option<jiff::Timestamp>,
    ) -> Result<u64, AuditError>;
    /// Records matching `filter`, newest first (`audit_log` tool).
    fn query(&self, filter: &AuditFilter) -> Result<AuditPage, AuditError>;
    /// Counts per outcome, token, tool and peer over a range (`audit_summary`).
    fn summary(
        &self,
        since: Option<jiff::Timestamp>,
        until: Option<jiff::Timestamp>,
    ) -> Result<AuditSummary, AuditError>;
    /// Re-reads every chain, checks every link and head, then holds the
    /// result against what an outside witness saw.
    fn verify_with(&self, witness: &Witness) -> Result<VerifyReport, AuditError>;
    /// The head of the chain this process writes: its records and last
    /// hash (hex), for the server log's witness lines.
    fn head(&self) -> Result<Option<(u64, String)>, AuditError>;
}

/// [`AuditSink::append`] from async code, on a blocking thread.
pub async fn append(
    sink: &std::sync::Arc<dyn AuditSink>,
    record: AuditRecord,
) -> Result<u64, AuditError> {
    let sink = sink.clone();
    tokio::task::spawn_blocking(move || sink.append(record))
        .await
        .map_err(|e| AuditError::Internal(e.to_string()))?
}
