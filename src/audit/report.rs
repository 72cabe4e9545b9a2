//! Reading the audit log: `tail`, JSONL export for SIEMs, and the filtered
//! query and summary behind the `audit_log` and `audit_summary` MCP tools.
//! Every filter value is a bound parameter.

use std::io::Write;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use super::log::{ENTRY_COLUMNS, read_stored};
use super::{AuditEntry, AuditError, AuditLog, AuditReader, VerifyReport, Witness};

/// Default number of entries [`AuditLog::query`] returns.
const DEFAULT_LIMIT: usize = 100;
/// Ceiling on entries one query returns.
const MAX_LIMIT: usize = 1000;
/// Rows per breakdown in [`AuditSummary`].
const SUMMARY_ROWS: usize = 50;
/// The groups an [`AuditSummary`] is counted from, in both stores' SQL:
/// this, the `WHERE` clause, then [`SUMMARY_GROUP_BY`].
pub(crate) const SUMMARY_GROUPS: &str =
    "SELECT outcome, token_id, token_name, tool, peer, count(*) AS records FROM audit_log";
pub(crate) const SUMMARY_GROUP_BY: &str = " GROUP BY outcome, token_id, token_name, tool, peer";
/// Outcomes counted as denials.
const DENIED: [&str; 3] = ["unauthenticated", "forbidden", "rate_limited"];

/// Filter for [`AuditLog::query`]; every field is optional.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditFilter {
    /// Token name, or token id written as a number.
    pub token: Option<String>,
    /// Tool name (`tools/call` records).
    pub tool: Option<String>,
    /// Outcome (`ok`, `tool_error`, `unauthenticated`, `forbidden`,
    /// `rate_limited`, `timed_out`, `failed`).
    pub outcome: Option<String>,
    /// Only records at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Only records before this time.
    pub until: Option<jiff::Timestamp>,
    /// Most entries to return (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Where the previous page (newest first) ended: only records before
    /// its last one, at this sequence number (the embedded log's one chain
    /// is in sequence order)...
    pub before_seq: Option<u64>,
    /// ... and at this time, in nanoseconds (a store with a chain per node
    /// pages by time, then sequence number).
    pub before_ns: Option<i64>,
}

/// Entries matching an [`AuditFilter`], newest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditPage {
    /// The entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// More entries matched than `limit`; narrow the time range to see them.
    pub truncated: bool,
    /// The limit applied.
    pub limit: usize,
}

/// Counts over a time range, for `audit_summary`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditSummary {
    /// Start of the range, if bounded.
    pub since: Option<jiff::Timestamp>,
    /// End of the range, if bounded.
    pub until: Option<jiff::Timestamp>,
    /// All records in the range.
    pub total: u64,
    /// Records whose outcome is unauthenticated, forbidden or rate_limited.
    pub denied: u64,
    /// Calls per outcome, most first.
    pub by_outcome: Vec<OutcomeCount>,
    /// Calls per token (denials with no recognised token under `null`), most first.
    pub by_token: Vec<TokenCount>,
    /// Calls per tool (`tools/call` only), most first.
    pub by_tool: Vec<ToolCount>,
    /// Peer addresses with the most records, most first (top 10).
    pub top_callers: Vec<CallerCount>,
}

/// One line of [`AuditSummary::by_outcome`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct OutcomeCount {
    /// Outcome text.
    pub outcome: String,
    /// Records with it.
    pub calls: u64,
}

/// One line of [`AuditSummary::by_token`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct TokenCount {
    /// Token id (none for unrecognised tokens).
    pub token_id: Option<i64>,
    /// Token name.
    pub token_name: Option<String>,
    /// Records.
    pub calls: u64,
    /// Of which denied.
    pub denied: u64,
}

/// One line of [`AuditSummary::by_tool`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ToolCount {
    /// Tool name.
    pub tool: String,
    /// Calls.
    pub calls: u64,
    /// Calls whose outcome was not `ok`.
    pub not_ok: u64,
}

/// One line of [`AuditSummary::top_callers`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct CallerCount {
    /// Peer address.
    pub peer: Option<String>,
    /// Records.
    pub calls: u64,
    /// Of which denied.
    pub denied: u64,
}

fn unavailable(e: impl std::fmt::Display) -> AuditError {
    AuditError::Unavailable(e.to_string())
}

fn ns(t: jiff::Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_nanosecond() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A value bound to an audit filter's `?`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

impl Param {
    fn sql(self) -> SqlValue {
        match self {
            Param::Int(i) => SqlValue::Integer(i),
            Param::Text(t) => SqlValue::Text(t),
        }
    }
}

/// Conditions over the columns both stores name alike, joined with `AND`,
/// and the values of their `?` in order.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    pub clauses: Vec<&'static str>,
    pub params: Vec<Param>,
}

impl Conditions {
    /// Records at or after `since` and before `until`.
    pub(crate) fn range(
        since: Option<jiff::Timestamp>,
        until: Option<jiff::Timestamp>,
    ) -> Conditions {
        let mut c = Conditions::default();
        if let Some(s) = since {
            c.push("time_ns >= ?", [Param::Int(ns(s))]);
        }
        if let Some(u) = until {
            c.push("time_ns < ?", [Param::Int(ns(u))]);
        }
        c
    }

    pub(crate) fn push(&mut self, clause: &'static str, params: impl IntoIterator<Item = Param>) {
        self.clauses.push(clause);
        self.params.extend(params);
    }

    /// The `WHERE` text.
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1 = 1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }

    fn sqlite(self) -> Vec<SqlValue> {
        self.params.into_iter().map(Param::sql).collect()
    }
}

impl AuditFilter {
    /// The entries a page holds at most.
    pub(crate) fn row_limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }

    /// The range, token, tool and outcome conditions (the cursor is each
    /// store's own: the order of its chains).
    pub(crate) fn conditions(&self) -> Conditions {
        let mut c = Conditions::range(self.since, self.until);
        if let Some(token) = &self.token {
            match token.parse::<i64>() {
                Ok(id) => c.push(
                    "(token_id = ? OR token_name = ?)",
                    [Param::Int(id), Param::Text(token.clone())],
                ),
                Err(_) => c.push("token_name = ?", [Param::Text(token.clone())]),
            }
        }
        if let Some(tool) = &self.tool {
            c.push("tool = ?", [Param::Text(tool.clone())]);
        }
        if let Some(outcome) = &self.outcome {
            c.push("outcome = ?", [Param::Text(outcome.clone())]);
        }
        c
    }
}

impl AuditPage {
    /// A page of `limit` from `found`, read with one entry more than the
    /// limit to know whether more match.
    pub(crate) fn of(mut found: Vec<AuditEntry>, limit: usize) -> AuditPage {
        let truncated = found.len() > limit;
        found.truncate(limit);
        AuditPage {
            entries: found,
            truncated,
            limit,
        }
    }
}

/// Writes `entries` as one JSON object per line; returns how many.
pub(crate) fn write_jsonl(
    writer: &mut dyn Write,
    entries: impl IntoIterator<Item = Result<AuditEntry, AuditError>>,
) -> Result<u64, AuditError> {
    let fail = |e: &dyn std::fmt::Display| AuditError::Internal(e.to_string());
    let mut written = 0;
    for entry in entries {
        let line = serde_json::to_string(&entry?).map_err(|e| fail(&e))?;
        writeln!(writer, "{line}").map_err(|e| fail(&e))?;
        written += 1;
    }
    writer.flush().map_err(|e| fail(&e))?;
    Ok(written)
}

fn entries(
    conn: &Connection,
    sql: &str,
    params: Vec<SqlValue>,
) -> Result<Vec<AuditEntry>, AuditError> {
    let mut stmt = conn.prepare(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(params_from_iter(params), |row| {
            let (stored, prev, hash) = read_stored(row)?;
            Ok(stored.into_entry(&prev, &hash))
        })
        .map_err(unavailable)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
}

impl AuditReader for AuditLog {
    fn tail(&self, n: usize) -> Result<Vec<AuditEntry>, AuditError> {
        let conn = self.conn()?;
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let mut out = entries(
            &conn,
            &format!("SELECT {ENTRY_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT ?"),
            vec![SqlValue::Integer(limit)],
        )?;
        out.reverse();
        Ok(out)
    }

    fn export_jsonl(
        &self,
        writer: &mut dyn Write,
        since: Option<jiff::Timestamp>,
    ) -> Result<u64, AuditError> {
        let conn = self.conn()?;
        let c = Conditions::range(since, None);
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE {} ORDER BY seq",
            c.sql()
        );
        let mut stmt = conn.prepare(&sql).map_err(unavailable)?;
        let rows = stmt
            .query_map(params_from_iter(c.sqlite()), |row| {
                let (stored, prev, hash) = read_stored(row)?;
                Ok(stored.into_entry(&prev, &hash))
            })
            .map_err(unavailable)?;
        write_jsonl(writer, rows.map(|r| r.map_err(unavailable)))
    }

    fn query(&self, filter: &AuditFilter) -> Result<AuditPage, AuditError> {
        let limit = filter.row_limit();
        let mut c = filter.conditions();
        if let Some(seq) = filter.before_seq {
            c.push(
                "seq < ?",
                [Param::Int(i64::try_from(seq).unwrap_or(i64::MAX))],
            );
        }
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE {} ORDER BY seq DESC LIMIT {}",
            c.sql(),
            limit + 1
        );
        let conn = self.conn()?;
        Ok(AuditPage::of(entries(&conn, &sql, c.sqlite())?, limit))
    }

    fn summary(
        &self,
        since: Option<jiff::Timestamp>,
        until: Option<jiff::Timestamp>,
    ) -> Result<AuditSummary, AuditError> {
        let c = Conditions::range(since, until);
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare(&format!(
                "{SUMMARY_GROUPS} WHERE {}{SUMMARY_GROUP_BY}",
                c.sql()
            ))
            .map_err(unavailable)?;
        let groups = stmt
            .query_map(params_from_iter(c.sqlite()), |r| {
                Ok(SummaryGroup {
                    outcome: r.get(0)?,
                    token_id: r.get(1)?,
                    token_name: r.get(2)?,
                    tool: r.get(3)?,
                    peer: r.get(4)?,
                    records: count(r.get(5)?),
                })
            })
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        Ok(AuditSummary::from_groups(since, until, groups))
    }

    fn verify_with(&self, witness: &Witness) -> Result<VerifyReport, AuditError> {
        AuditLog::verify_with(self, witness)
    }

    fn head(&self) -> Result<Option<(u64, String)>, AuditError> {
        AuditLog::head(self)
    }
}

/// Records with the same outcome, token, tool and peer: what an
/// [`AuditSummary`] is counted from, whichever store grouped them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SummaryGroup {
    pub outcome: String,
    pub token_id: Option<i64>,
    pub token_name: Option<String>,
    pub tool: Option<String>,
    pub peer: Option<String>,
    pub records: u64,
}

/// Whether an outcome counts as a denial.
fn denied(outcome: &str) -> bool {
    DENIED.contains(&outcome)
}

/// Sums `groups` by `key` and orders the sums most records first, then by
/// key (none first), keeping `keep` of them.
fn tally<K: Ord + Clone>(
    groups: &[SummaryGroup],
    key: impl Fn(&SummaryGroup) -> Option<K>,
    keep: usize,
) -> Vec<(K, u64, u64, u64)> {
    let mut sums: std::collections::BTreeMap<K, (u64, u64, u64)> = Default::default();
    for g in groups {
        if let Some(k) = key(g) {
            let s = sums.entry(k).or_default();
            s.0 += g.records;
            if denied(&g.outcome) {
                s.1 += g.records;
            }
            if g.outcome != "ok" {
                s.2 += g.records;
            }
        }
    }
    let mut out: Vec<(K, u64, u64, u64)> = sums
        .into_iter()
        .map(|(k, (n, d, e))| (k, n, d, e))
        .collect();
    // Stable: equal counts stay in key order.
    out.sort_by_key(|s| std::cmp::Reverse(s.1));
    out.truncate(keep);
    out
}

impl AuditSummary {
    /// The summary over `since..until` of `groups`.
    pub(crate) fn from_groups(
        since: Option<jiff::Timestamp>,
        until: Option<jiff::Timestamp>,
        groups: Vec<SummaryGroup>,
    ) -> AuditSummary {
        AuditSummary {
            since,
            until,
            total: groups.iter().map(|g| g.records).sum(),
            denied: groups
                .iter()
                .filter(|g| denied(&g.outcome))
                .map(|g| g.records)
                .sum(),
            by_outcome: tally(&groups, |g| Some(g.outcome.clone()), usize::MAX)
                .into_iter()
                .map(|(outcome, calls, ..)| OutcomeCount { outcome, calls })
                .collect(),
            by_token: tally(
                &groups,
                |g| Some((g.token_name.clone(), g.token_id)),
                SUMMARY_ROWS,
            )
            .into_iter()
            .map(|((token_name, token_id), calls, denied, _)| TokenCount {
                token_id,
                token_name,
                calls,
                denied,
            })
            .collect(),
            by_tool: tally(&groups, |g| g.tool.clone(), SUMMARY_ROWS)
                .into_iter()
                .map(|(tool, calls, _, not_ok)| ToolCount {
                    tool,
                    calls,
                    not_ok,
                })
                .collect(),
            top_callers: tally(&groups, |g| Some(g.peer.clone()), 10)
                .into_iter()
                .map(|(peer, calls, denied, _)| CallerCount {
                    peer,
                    calls,
                    denied,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditRecord, AuditSink, Outcome};

    fn rec(
        token: Option<(i64, &str)>,
        tool: Option<&str>,
        outcome: Outcome,
        peer: &str,
    ) -> AuditRecord {
        AuditRecord {
            token_id: token.map(|t| t.0),
            token_name: token.map(|t| t.1.to_string()),
            tool: tool.map(str::to_string),
            outcome: outcome.as_str().into(),
            peer: Some(peer.into()),
            ..AuditRecord::default()
        }
    }

    fn sample() -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let read = Some((2, "read"));
        let admin = Some((1, "admin"));
        for r in [
            rec(read, Some("cost_by_developer"), Outcome::Ok, "127.0.0.1"),
            rec(read, Some("cost_by_developer"), Outcome::Ok, "127.0.0.1"),
            rec(read, Some("search_events"), Outcome::ToolError, "127.0.0.1"),
            rec(None, None, Outcome::Unauthenticated, "10.0.0.9"),
            rec(None, None, Outcome::Unauthenticated, "10.0.0.9"),
            rec(read, None, Outcome::RateLimited, "127.0.0.1"),
            rec(admin, Some("audit_log"), Outcome::Ok, "127.0.0.2"),
        ] {
            log.append(r).unwrap();
        }
        (dir, log)
    }

    #[test]
    fn tail_returns_newest_oldest_first() {
        let (_dir, log) = sample();
        let tail = log.tail(3).unwrap();
        let seqs: Vec<u64> = tail.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![5, 6, 7]);
        assert_eq!(tail[2].record.token_name.as_deref(), Some("admin"));
        assert_eq!(tail[0].prev_hash, log.tail(4).unwrap()[0].hash);
        assert_eq!(log.tail(100).unwrap().len(), 7);
    }

    #[test]
    fn query_filters_and_truncates() {
        let (_dir, log) = sample();
        let page = log
            .query(&AuditFilter {
                token: Some("read".into()),
                ..AuditFilter::default()
            })
            .unwrap();
        let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![6, 3, 2, 1]);
        assert!(!page.truncated);

        let by_id = log
            .query(&AuditFilter {
                token: Some("1".into()),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(by_id.entries.len(), 1);

        let page = log
            .query(&AuditFilter {
                tool: Some("cost_by_developer".into()),
                outcome: Some("ok".into()),
                limit: Some(1),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].seq, 2);
        assert!(page.truncated);
        let next = log
            .query(&AuditFilter {
                tool: Some("cost_by_developer".into()),
                outcome: Some("ok".into()),
                before_seq: Some(2),
                ..AuditFilter::default()
            })
            .unwrap();
        let seqs: Vec<u64> = next.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1]);
        assert!(!next.truncated);

        let future = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
        let none = log
            .query(&AuditFilter {
                since: Some(future),
                token: Some("x' OR 1=1 --".into()),
                limit: Some(0),
                ..AuditFilter::default()
            })
            .unwrap();
        assert!(none.entries.is_empty());
        assert_eq!(none.limit, 1);
        let until_future = log
            .query(&AuditFilter {
                until: Some(future),
                limit: Some(5000),
                ..AuditFilter::default()
            })
            .unwrap();
        assert_eq!(until_future.entries.len(), 7);
        assert_eq!(until_future.limit, 1000);
    }

    #[test]
    fn summary_counts() {
        let (_dir, log) = sample();
        let s = log.summary(None, None).unwrap();
        assert_eq!(s.total, 7);
        assert_eq!(s.denied, 3);
        assert_eq!(
            s.by_outcome[0],
            OutcomeCount {
                outcome: "ok".into(),
                calls: 3
            }
        );
        assert_eq!(s.by_outcome.len(), 4);
        assert_eq!(
            s.by_token[0],
            TokenCount {
                token_id: Some(2),
                token_name: Some("read".into()),
                calls: 4,
                denied: 1
            }
        );
        assert_eq!(
            s.by_token[1],
            TokenCount {
                token_id: None,
                token_name: None,
                calls: 2,
                denied: 2
            }
        );
        assert_eq!(
            s.by_tool,
            vec![
                ToolCount {
                    tool: "cost_by_developer".into(),
                    calls: 2,
                    not_ok: 0
                },
                ToolCount {
                    tool: "audit_log".into(),
                    calls: 1,
                    not_ok: 0
                },
                ToolCount {
                    tool: "search_events".into(),
                    calls: 1,
                    not_ok: 1
                },
            ]
        );
        assert_eq!(
            s.top_callers[1],
            CallerCount {
                peer: Some("10.0.0.9".into()),
                calls: 2,
                denied: 2
            }
        );
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
        assert_eq!(log.summary(Some(later), None).unwrap().total, 0);
    }

    #[test]
    fn export_writes_one_verifiable_line_per_record() {
        let (_dir, log) = sample();
        let mut out = Vec::new();
        assert_eq!(log.export_jsonl(&mut out, None).unwrap(), 7);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0]["seq"], 1);
        assert_eq!(lines[0]["prev_hash"], "0".repeat(64));
        assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
        assert_eq!(lines[3]["outcome"], "unauthenticated");
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
        assert_eq!(
            log.export_jsonl(&mut std::io::sink(), Some(later)).unwrap(),
            0
        );
    }
}
