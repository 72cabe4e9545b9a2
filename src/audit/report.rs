//! Reading the audit log: `tail`, JSONL export for SIEMs, and the filtered
//! query and summary behind the `audit_log` and `audit_summary` MCP tools.
//! Every filter value is a bound parameter.

use std::io::Write;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, params_from_iter};

use super::log::{ENTRY_COLUMNS, read_stored};
use super::{AuditEntry, AuditError, AuditLog};

/// Default number of entries [`AuditLog::query`] returns.
const DEFAULT_LIMIT: usize = 100;
/// Ceiling on entries one query returns.
const MAX_LIMIT: usize = 1000;
/// Rows per breakdown in [`AuditSummary`].
const SUMMARY_ROWS: usize = 50;
/// Outcomes counted as denials.
const DENIED: &str = "'unauthenticated', 'forbidden', 'rate_limited'";

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
    /// Only records with a lower sequence number: where the previous page
    /// (newest first) ended.
    pub before_seq: Option<u64>,
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

/// `WHERE` clause over fixed column names plus its bound parameters.
fn time_clause(
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
) -> (Vec<&'static str>, Vec<SqlValue>) {
    let mut clauses = vec!["1 = 1"];
    let mut params = Vec::new();
    if let Some(s) = since {
        clauses.push("time_ns >= ?");
        params.push(SqlValue::Integer(ns(s)));
    }
    if let Some(u) = until {
        clauses.push("time_ns < ?");
        params.push(SqlValue::Integer(ns(u)));
    }
    (clauses, params)
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

impl AuditLog {
    /// The newest `n` records, oldest first (`tokentally audit tail`).
    pub fn tail(&self, n: usize) -> Result<Vec<AuditEntry>, AuditError> {
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

    /// Writes every record at or after `since` as one JSON object per line,
    /// oldest first, with its hashes; returns the number written.
    pub fn export_jsonl(
        &self,
        mut writer: impl Write,
        since: Option<jiff::Timestamp>,
    ) -> Result<u64, AuditError> {
        let conn = self.conn()?;
        let (clauses, params) = time_clause(since, None);
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE {} ORDER BY seq",
            clauses.join(" AND ")
        );
        let mut stmt = conn.prepare(&sql).map_err(unavailable)?;
        let mut rows = stmt.query(params_from_iter(params)).map_err(unavailable)?;
        let mut written = 0;
        while let Some(row) = rows.next().map_err(unavailable)? {
            let (stored, prev, hash) = read_stored(row).map_err(unavailable)?;
            let line = serde_json::to_string(&stored.into_entry(&prev, &hash))
                .map_err(|e| AuditError::Internal(e.to_string()))?;
            writeln!(writer, "{line}").map_err(|e| AuditError::Internal(e.to_string()))?;
            written += 1;
        }
        writer
            .flush()
            .map_err(|e| AuditError::Internal(e.to_string()))?;
        Ok(written)
    }

    /// Records matching `filter`, newest first (`audit_log` tool).
    pub fn query(&self, filter: &AuditFilter) -> Result<AuditPage, AuditError> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let (mut clauses, mut params) = time_clause(filter.since, filter.until);
        if let Some(token) = &filter.token {
            match token.parse::<i64>() {
                Ok(id) => {
                    clauses.push("(token_id = ? OR token_name = ?)");
                    params.push(SqlValue::Integer(id));
                }
                Err(_) => clauses.push("token_name = ?"),
            }
            params.push(SqlValue::Text(token.clone()));
        }
        if let Some(tool) = &filter.tool {
            clauses.push("tool = ?");
            params.push(SqlValue::Text(tool.clone()));
        }
        if let Some(outcome) = &filter.outcome {
            clauses.push("outcome = ?");
            params.push(SqlValue::Text(outcome.clone()));
        }
        if let Some(seq) = filter.before_seq {
            clauses.push("seq < ?");
            params.push(SqlValue::Integer(i64::try_from(seq).unwrap_or(i64::MAX)));
        }
        params.push(SqlValue::Integer(
            i64::try_from(limit + 1).unwrap_or(i64::MAX),
        ));
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE {} ORDER BY seq DESC LIMIT ?",
            clauses.join(" AND ")
        );
        let conn = self.conn()?;
        let mut found = entries(&conn, &sql, params)?;
        let truncated = found.len() > limit;
        found.truncate(limit);
        Ok(AuditPage {
            entries: found,
            truncated,
            limit,
        })
    }

    /// Counts per outcome, token, tool and peer over a range (`audit_summary`).
    pub fn summary(
        &self,
        since: Option<jiff::Timestamp>,
        until: Option<jiff::Timestamp>,
    ) -> Result<AuditSummary, AuditError> {
        let (clauses, params) = time_clause(since, until);
        let filter = clauses.join(" AND ");
        let conn = self.conn()?;
        let run = |sql: String| -> Result<Vec<Vec<SqlValue>>, AuditError> {
            let mut stmt = conn.prepare(&sql).map_err(unavailable)?;
            let width = stmt.column_count();
            let rows = stmt
                .query_map(params_from_iter(params.iter()), |row| {
                    (0..width)
                        .map(|i| row.get::<_, SqlValue>(i))
                        .collect::<rusqlite::Result<Vec<SqlValue>>>()
                })
                .map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        };
        let int = |v: &SqlValue| match v {
            SqlValue::Integer(i) => *i,
            _ => 0,
        };
        let text = |v: &SqlValue| match v {
            SqlValue::Text(t) => Some(t.clone()),
            _ => None,
        };
        let totals = run(format!(
            "SELECT count(*), coalesce(sum(outcome IN ({DENIED})), 0) FROM audit_log WHERE {filter}"
        ))?;
        let (total, denied) = totals
            .first()
            .map(|r| (count(int(&r[0])), count(int(&r[1]))))
            .unwrap_or_default();
        let by_outcome = run(format!(
            "SELECT outcome, count(*) AS n FROM audit_log WHERE {filter}
             GROUP BY outcome ORDER BY n DESC, outcome"
        ))?
        .iter()
        .map(|r| OutcomeCount {
            outcome: text(&r[0]).unwrap_or_default(),
            calls: count(int(&r[1])),
        })
        .collect();
        let by_token = run(format!(
            "SELECT token_id, token_name, count(*) AS n, sum(outcome IN ({DENIED}))
             FROM audit_log WHERE {filter}
             GROUP BY token_id, token_name ORDER BY n DESC, token_name LIMIT {SUMMARY_ROWS}"
        ))?
        .iter()
        .map(|r| TokenCount {
            token_id: match r[0] {
                SqlValue::Integer(i) => Some(i),
                _ => None,
            },
            token_name: text(&r[1]),
            calls: count(int(&r[2])),
            denied: count(int(&r[3])),
        })
        .collect();
        let by_tool = run(format!(
            "SELECT tool, count(*) AS n, sum(outcome <> 'ok') FROM audit_log
             WHERE {filter} AND tool IS NOT NULL
             GROUP BY tool ORDER BY n DESC, tool LIMIT {SUMMARY_ROWS}"
        ))?
        .iter()
        .map(|r| ToolCount {
            tool: text(&r[0]).unwrap_or_default(),
            calls: count(int(&r[1])),
            not_ok: count(int(&r[2])),
        })
        .collect();
        let top_callers = run(format!(
            "SELECT peer, count(*) AS n, sum(outcome IN ({DENIED})) FROM audit_log
             WHERE {filter} GROUP BY peer ORDER BY n DESC, peer LIMIT 10"
        ))?
        .iter()
        .map(|r| CallerCount {
            peer: text(&r[0]),
            calls: count(int(&r[1])),
            denied: count(int(&r[2])),
        })
        .collect();
        Ok(AuditSummary {
            since,
            until,
            total,
            denied,
            by_outcome,
            by_token,
            by_tool,
            top_callers,
        })
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
        assert_eq!(log.export_jsonl(std::io::sink(), Some(later)).unwrap(), 0);
    }
}
