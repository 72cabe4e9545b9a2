//! The audit tools over MCP, for `audit`-scope tokens only: `audit_log`
//! (records filtered by token, tool, outcome and time, newest first, paged by
//! sequence number) and `audit_summary` (calls per token, tool and outcome,
//! denials and top callers over a range).
//!
//! They are declared in the one registry beside the query tools, so
//! their calls are checked, paged and audited on the same path. They read
//! `<data_dir>/audit.db` through the registry's read-only [`AuditLog`] ([`AuditEnv`]):
//! they cannot write the log, do not wait behind appends, and the query tools
//! have no handle on the log at all. Arguments, ranges, limits, cursors and
//! replies use the query tools' helpers ([`super::args`], [`super::reply`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::{self, PageArgs, RangeArgs};
use super::reply::Output;
use super::tools;
use crate::audit::{
    AuditError, AuditFilter, AuditReader, AuditRecord, CallerCount, Outcome, OutcomeCount,
    ToolCount,
};
use crate::auth::Principal;
use crate::query::QueryError;
use crate::query::page::{self, Page, Position};
use crate::query::time::RangeInfo;

/// Name of the tool listing audit records.
pub const AUDIT_LOG: &str = "audit_log";
/// Name of the tool counting audit records.
pub const AUDIT_SUMMARY: &str = "audit_summary";

/// Outcomes a record can have (`Outcome::as_str`), accepted by `outcome`.
const OUTCOMES: [Outcome; 7] = [
    Outcome::Ok,
    Outcome::ToolError,
    Outcome::Unauthenticated,
    Outcome::Forbidden,
    Outcome::RateLimited,
    Outcome::TimedOut,
    Outcome::Failed,
];

/// Default look-back of both tools, in days (as the query tools).
const DEFAULT_DAYS: i64 = 7;

/// A token named by name or by id.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TokenRef {
    /// The token id, as `token list` and the audit records show it.
    Id(i64),
    /// The token name given at creation (`read`, `ci-bot`...), or its id as text.
    Name(String),
}

/// Arguments of `audit_log`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct AuditLogArgs {
    /// Time range of the records (`since`, `until`, `timezone`).
    #[serde(flatten)]
    pub range: RangeArgs,
    /// Only records of this token: its name (e.g. `read`) or its numeric id.
    /// Denials of unknown or missing tokens have no token.
    pub token: Option<TokenRef>,
    /// Only calls of this tool (e.g. `cost_by_developer`, `audit_log`);
    /// denials at the transport (bad token, wrong scope, rate limit) have no tool.
    pub tool: Option<String>,
    /// Only records with this outcome: `ok`, `tool_error`, `unauthenticated`,
    /// `forbidden`, `rate_limited`, `timed_out` or `failed`.
    pub outcome: Option<String>,
    /// Paging (`limit`, `cursor`).
    #[serde(flatten)]
    pub page: PageArgs,
}

/// Arguments of `audit_summary`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct AuditSummaryArgs {
    /// Time range counted (`since`, `until`, `timezone`).
    #[serde(flatten)]
    pub range: RangeArgs,
    /// Paging of the per-token rows (`limit`, `cursor`).
    #[serde(flatten)]
    pub page: PageArgs,
}

/// One audit record as `audit_log` returns it: its place in the chain, its
/// time, and the record as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditLogRow {
    /// The node whose hash chain holds the record (a ClickHouse store keeps
    /// a chain per node; the embedded log has one chain and no node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Sequence number in its hash chain (1 = the chain's first record).
    pub seq: u64,
    /// When the record was appended, RFC 3339 in the requested time zone.
    pub time: String,
    /// The record.
    #[serde(flatten)]
    pub record: AuditRecord,
}

/// `audit_log` besides its rows.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditLogBody {
    /// The resolved time range.
    pub range: RangeInfo,
    /// Order of the rows.
    pub order: String,
    /// The filters applied.
    pub filters: AppliedFilters,
}

/// The filters an `audit_log` answer applied.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AppliedFilters {
    /// Token name or id.
    pub token: Option<String>,
    /// Tool name.
    pub tool: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
}

/// The fields `audit_summary` answers besides its per-token rows.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SummaryBody {
    /// The resolved time range.
    pub range: RangeInfo,
    /// All audit records in the range.
    pub total: u64,
    /// Records whose outcome is `unauthenticated`, `forbidden` or `rate_limited`.
    pub denied: u64,
    /// Records per outcome, most first.
    pub by_outcome: Vec<OutcomeCount>,
    /// Tool calls per tool, most first.
    pub by_tool: Vec<ToolCount>,
    /// Peer addresses with the most records, most first (top 10).
    pub top_callers: Vec<CallerCount>,
}

/// What the audit tools need from the registry that holds them: its
/// clock and limits, and the audit log of this surface (`None`: not
/// available here).
pub(crate) trait AuditEnv: Sync {
    /// Questions, limits and clock.
    fn ctx(&self) -> &crate::query::ToolContext;
    /// The audit log the tools read.
    fn audit_log(&self) -> Option<std::sync::Arc<dyn AuditReader>>;
}

/// Runs a blocking read of the audit log off the async runtime.
async fn read<T, F>(registry: &dyn AuditEnv, f: F) -> Result<T, QueryError>
where
    T: Send + 'static,
    F: FnOnce(&dyn AuditReader) -> Result<T, AuditError> + Send + 'static,
{
    let Some(log) = registry.audit_log() else {
        return Err(QueryError::Invalid(
            "the audit log is not available here: ask the server's MCP endpoint, or use `tokentally audit`".into(),
        ));
    };
    tokio::task::spawn_blocking(move || f(log.as_ref()))
        .await
        .map_err(|e| QueryError::Sql(e.to_string()))?
        .map_err(|e| QueryError::Sql(e.to_string()))
}

/// `audit_log`: records filtered by token, tool, outcome and time, newest first.
pub(crate) async fn audit_log(
    registry: &dyn AuditEnv,
    _principal: &Principal,
    a: Result<AuditLogArgs, QueryError>,
    hash: &str,
) -> Result<Output, QueryError> {
    let a = a?;
    let token = match &a.token {
        Some(TokenRef::Id(id)) => Some(id.to_string()),
        Some(TokenRef::Name(n)) => {
            let n = Some(n.clone());
            args::check_strings(&[("token", &n)])?;
            args::clean(&n)
        }
        None => None,
    };
    args::check_strings(&[
        ("tool", &a.tool),
        ("outcome", &a.outcome),
        ("cursor", &a.page.cursor),
    ])?;
    let outcome = args::clean(&a.outcome)
        .map(|o| {
            if OUTCOMES.iter().any(|x| x.as_str() == o) {
                Ok(o)
            } else {
                Err(QueryError::Invalid(format!(
                    "unknown outcome {o:?}; use one of {}",
                    OUTCOMES.map(Outcome::as_str).join(", ")
                )))
            }
        })
        .transpose()?;
    let range = a.range.resolve(registry.ctx().now(), Some(DEFAULT_DAYS))?;
    let (limit, note) = page::row_limit(a.page.limit, &registry.ctx().limits)?;
    let pos = args::clean(&a.page.cursor)
        .map(|c| page::decode(&c, AUDIT_LOG, hash))
        .transpose()?;
    let (before_ns, before_seq) = match pos {
        None => (None, None),
        Some(Position::After(ns, seq)) => (
            Some(ns),
            Some(
                u64::try_from(seq)
                    .map_err(|_| QueryError::Invalid("cursor is not valid for audit_log".into()))?,
            ),
        ),
        Some(Position::Offset(_)) => {
            return Err(QueryError::Invalid(
                "cursor is not valid for audit_log".into(),
            ));
        }
    };
    let filter = AuditFilter {
        token: token.clone(),
        tool: args::clean(&a.tool),
        outcome: outcome.clone(),
        since: Some(timestamp(range.since_ns)?),
        until: Some(timestamp(range.until_ns)?),
        limit: Some(limit),
        before_seq,
        before_ns,
    };
    let found = read(registry, move |log| log.query(&filter)).await?;
    let mut positions = Vec::with_capacity(found.entries.len());
    let rows: Vec<AuditLogRow> = found
        .entries
        .into_iter()
        .map(|e| {
            let ns = i64::try_from(e.time.as_nanosecond()).unwrap_or(i64::MAX);
            positions.push(Position::After(
                ns,
                i64::try_from(e.seq).unwrap_or(i64::MAX),
            ));
            AuditLogRow {
                node: e.node,
                seq: e.seq,
                time: range.show(ns),
                record: e.record,
            }
        })
        .collect();
    let mut out = Output {
        notes: note.into_iter().collect(),
        start: pos,
        ..Default::default()
    };
    out.body(&AuditLogBody {
        range: range.info(),
        order: "newest first".into(),
        filters: AppliedFilters {
            token: token.clone(),
            tool: args::clean(&a.tool),
            outcome: outcome.clone(),
        },
    });
    out.summary = format!(
        "{} audit record(s){} between {} and {} ({}), newest first.",
        rows.len(),
        if found.truncated {
            " (more available)"
        } else {
            ""
        },
        range.info().since,
        range.info().until,
        range.tz_name
    );
    out.page(Page {
        rows,
        positions,
        more: found.truncated,
    });
    Ok(out)
}

/// `audit_summary`: counts per outcome, tool, caller and token over a range.
pub(crate) async fn audit_summary(
    registry: &dyn AuditEnv,
    _principal: &Principal,
    a: Result<AuditSummaryArgs, QueryError>,
    hash: &str,
) -> Result<Output, QueryError> {
    let a = a?;
    let range = a.range.resolve(registry.ctx().now(), Some(DEFAULT_DAYS))?;
    let (limit, offset, notes) = tools::paging(registry.ctx(), AUDIT_SUMMARY, hash, &a.page)?;
    let (since, until) = (timestamp(range.since_ns)?, timestamp(range.until_ns)?);
    let s = read(registry, move |log| log.summary(Some(since), Some(until))).await?;
    let busiest = s.by_token.first().map(|t| {
        format!(
            " Busiest token: {} ({} call(s), {} denied).",
            t.token_name.as_deref().unwrap_or("(no recognised token)"),
            t.calls,
            t.denied
        )
    });
    let mut out = Output {
        notes,
        start: Some(Position::Offset(offset)),
        ..Default::default()
    };
    out.body(&SummaryBody {
        range: range.info(),
        total: s.total,
        denied: s.denied,
        by_outcome: s.by_outcome.clone(),
        by_tool: s.by_tool.clone(),
        top_callers: s.top_callers.clone(),
    });
    out.summary = format!(
        "{} audit record(s) between {} and {} ({}): {} denied (unauthenticated, forbidden or rate limited), \
             {} tool(s) called.{}",
        s.total,
        range.info().since,
        range.info().until,
        range.tz_name,
        s.denied,
        s.by_tool.len(),
        busiest.unwrap_or_default()
    );
    out.page(Page::slice(s.by_token, offset, limit));
    Ok(out)
}

fn timestamp(ns: i64) -> Result<jiff::Timestamp, QueryError> {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map_err(|e| QueryError::Invalid(format!("time out of range: {e}")))
}

#[cfg(test)]
mod tests;
