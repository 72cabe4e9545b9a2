//! The tamper-evident audit log of every MCP request.
//!
//! * this file: the record every transport and tool fills in, the
//!   [`AuditSink`] they append through, and [`redact_arguments`];
//! * `log`: [`AuditLog`], the append-only, hash-chained SQLite store in its
//!   own file `<data_dir>/audit.db` (out of reach of the read tools), and
//!   [`AuditLog::verify`];
//! * `report`: reads for the CLI and the `audit_log` / `audit_summary` tools
//!   (tail, filtered query, summary, JSONL export).
//!
//! Tokens never appear in the log, only their id and name.

mod log;
mod redact;
mod report;

pub use log::{AuditEntry, AuditLog, ProblemKind, VerifyProblem, VerifyReport};
pub use redact::redact_arguments;
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

/// One audit record, as filled in by a transport or tool. The log adds the
/// time, sequence number and hash chain.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Request id (JSON-RPC id or a generated one).
    pub request_id: Option<String>,
    /// Token id, when a token was recognised.
    pub token_id: Option<i64>,
    /// Token name, when a token was recognised.
    pub token_name: Option<String>,
    /// Token scope, when a token was recognised.
    pub scope: Option<String>,
    /// Peer address.
    pub peer: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// MCP client name from `initialize`.
    pub client_name: Option<String>,
    /// MCP client version from `initialize`.
    pub client_version: Option<String>,
    /// JSON-RPC method (`tools/call`, `tools/list`, ...) or HTTP method and path for denials.
    pub method: Option<String>,
    /// Tool name for `tools/call`.
    pub tool: Option<String>,
    /// Tool arguments, content-redacted and size-capped.
    pub arguments: Option<serde_json::Value>,
    /// Outcome (`Outcome::as_str`).
    pub outcome: String,
    /// Short detail (error message, denial reason).
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
