//! Which usage rows count, and the per-developer rollup that holds them
//! already counted.
//!
//! Claude Code reports a request's cost and tokens twice: on its
//! `api_request` event and in the `cost.usage`/`token.usage` metrics. A
//! session counts from its events when it has any ([`SESSION_FROM_EVENTS`]),
//! else from its metrics: never both. Records without a `session.id` (some
//! Claude Code modes send none) fall back to the developer and the hour: a
//! sessionless metric point counts only when its developer has no
//! `api_request` in that hour or the hour before (a delta point covers the
//! export interval before its time), so the same requests are never counted
//! from both signals ([`counted_condition`]).
//!
//! The rule is stated here, in the store, because the store also keeps it
//! applied: `developer_usage_hourly` holds, per hour, developer, agent and
//! model, the sums of exactly the rows the rule counts (with the sessions
//! that contributed), so usage over whole hours is read from a few rows per
//! developer rather than from every context's rows joined to its session.
//!
//! Each write transaction only marks, in `developer_usage_dirty`, the hours
//! whose counting it could change: those it wrote usage rows in, the hour
//! after a developer's requests (sessionless metrics look back one hour),
//! and every hour of a session whose first `api_request` it wrote (the
//! session moves from metrics to events). The writer recomputes the marked
//! hours in a transaction of their own ([`catch_up`]) when its queue is
//! empty and at least once a second under load, so ingest does not pay for
//! a recomputation per commit; until then a question reads a marked hour
//! from the context rollups, so answers are always exact. Prune and reprice
//! recompute what they change; the migration fills the table once.

use std::collections::BTreeSet;

use rusqlite::Connection;

/// True (SQL, on sessions alias `s`) when a session's cost and tokens come
/// from its `api_request` events rather than from its metrics.
pub const SESSION_FROM_EVENTS: &str = "s.api_requests > 0";

/// [`SESSION_FROM_EVENTS`] for a session row already read.
pub fn session_from_events(api_requests: i64) -> bool {
    api_requests > 0
}

/// The contexts whose metric rollup rows can count (column `cid`): those
/// of sessions counted from their metrics (the negation of
/// [`SESSION_FROM_EVENTS`], written as the partial index
/// `sessions_metrics_only` states it so the planner uses it) and those of
/// records without a session. Usage reads metric rows only for these;
/// [`counted_condition`] still decides each row.
pub const METRIC_COUNTED_CONTEXTS: &str = "SELECT cm.id AS cid FROM sessions sm \
    JOIN contexts cm ON cm.session_ref = sm.id WHERE sm.api_requests = 0 \
    UNION ALL SELECT id FROM contexts WHERE session_ref IS NULL";

/// The condition (SQL, starting with ` AND`) that keeps each usage row only
/// from the source that counts for it. The rows have aliases `u` (with
/// `u.source` = `'events'` or `'metrics'` and `u.hour`), contexts `c` and
/// sessions `s` (LEFT JOINed: `s.id` is NULL for sessionless records).
pub fn counted_condition() -> String {
    format!(
        " AND ((u.source = 'events' AND (s.id IS NULL OR {SESSION_FROM_EVENTS})) \
         OR (u.source = 'metrics' AND s.id IS NOT NULL AND NOT ({SESSION_FROM_EVENTS})) \
         OR (u.source = 'metrics' AND s.id IS NULL AND NOT EXISTS (SELECT 1 FROM api_developer_hours d \
             WHERE d.developer = COALESCE(c.developer, '') AND d.hour IN (u.hour, u.hour - 1))))"
    )
}

/// The sums of counted usage rows `u` (columns `requests`, `errors`,
/// `input`, `output`, `cache_read`, `cache_creation`, `cost`, `duration`,
/// `source`, `reasoning`, `reported`, `computed`, `unpriced`) with their
/// sessions `s`, in the order `developer_usage_hourly` stores them: the
/// recomputation and the questions that read the context rollups select
/// the same list.
pub const ROW_SUMS: &str = "SUM(u.requests), SUM(u.errors), SUM(u.input), SUM(u.output), \
    SUM(u.cache_read), SUM(u.cache_creation), SUM(u.cost), SUM(u.duration), \
    MAX(u.source = 'events'), MAX(u.source = 'metrics'), MAX(s.id IS NULL), \
    SUM(u.reasoning), SUM(u.reported), SUM(u.computed), SUM(u.unpriced)";

/// Marks `hours` for recomputation (in the caller's transaction).
pub(crate) fn mark(conn: &Connection, hours: &BTreeSet<i64>) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO developer_usage_dirty (hour) VALUES (?1)")?;
    for h in hours {
        stmt.execute([h])?;
    }
    Ok(())
}

/// Recomputes the marked hours and clears the marks, in one transaction of
/// its own; returns how many hours it recomputed.
pub(crate) fn catch_up(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let hours = conn
            .prepare_cached("SELECT hour FROM developer_usage_dirty")?
            .query_map([], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<BTreeSet<i64>>>()?;
        refresh(conn, &hours)?;
        Ok(hours.len())
    })();
    match result {
        Ok(n) => {
            conn.execute_batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Recomputes `developer_usage_hourly` for `hours` from the context
/// rollups (`api_hourly`, `metric_usage_hourly`), counting by
/// [`counted_condition`], and clears their marks. Contiguous hours go in
/// one statement pair.
pub(crate) fn refresh(conn: &Connection, hours: &BTreeSet<i64>) -> rusqlite::Result<()> {
    for (from, to) in spans(hours.iter().copied()) {
        refresh_span(conn, from, to)?;
    }
    Ok(())
}

/// Ascending hour numbers as spans `[first, end)` of contiguous hours.
pub fn spans(hours: impl IntoIterator<Item = i64>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for h in hours {
        match out.last_mut() {
            Some((_, end)) if *end == h => *end = h + 1,
            _ => out.push((h, h + 1)),
        }
    }
    out
}

/// Recomputes every hour (migration, and checks that the kept rollup
/// equals a fresh one).
pub(crate) fn refresh_all(conn: &Connection) -> rusqlite::Result<()> {
    refresh_span(conn, i64::MIN, i64::MAX)
}

fn refresh_span(conn: &Connection, from: i64, to: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM developer_usage_hourly WHERE hour >= ?1 AND hour < ?2")?
        .execute([from, to])?;
    conn.prepare_cached("DELETE FROM developer_usage_dirty WHERE hour >= ?1 AND hour < ?2")?
        .execute([from, to])?;
    let sql = format!(
        "INSERT INTO developer_usage_hourly (hour, developer, developer_kind, agent, model,
            requests, errors, input_tokens, output_tokens, cache_read_tokens,
            cache_creation_tokens, cost_usd, duration_ms, from_events, from_metrics, sessionless,
            reasoning_tokens, reported_cost_usd, computed_cost_usd, unpriced, sessions)
         SELECT u.hour, c.developer, c.developer_kind, c.agent, u.model, {ROW_SUMS},
            GROUP_CONCAT(DISTINCT c.session_ref)
         FROM (SELECT 'events' AS source, hour, context_id, model, requests, errors,
                  input_tokens AS input, output_tokens AS output, cache_read_tokens AS cache_read,
                  cache_creation_tokens AS cache_creation, cost_usd AS cost,
                  duration_ms AS duration, reasoning_tokens AS reasoning,
                  reported_cost_usd AS reported, computed_cost_usd AS computed, unpriced
               FROM api_hourly WHERE hour >= ?1 AND hour < ?2
               UNION ALL
               SELECT 'metrics', hour, context_id, model, 0, 0, input_tokens, output_tokens,
                  cache_read_tokens, cache_creation_tokens, cost_usd, 0, 0, cost_usd, 0, 0
               FROM metric_usage_hourly WHERE hour >= ?1 AND hour < ?2) AS u
         JOIN contexts c ON c.id = u.context_id LEFT JOIN sessions s ON s.id = c.session_ref
         WHERE 1{}
         GROUP BY u.hour, c.developer, c.developer_kind, c.agent, u.model",
        counted_condition()
    );
    conn.prepare_cached(&sql)?.execute([from, to])?;
    Ok(())
}

/// Whose rollup rows [`mark_hours_of`] marks.
#[derive(Clone, Copy)]
pub(crate) enum Owner {
    /// Every context of a session (its first `api_request` moves all its
    /// hours from metrics to events).
    Session(i64),
    /// One context (its session changed).
    Context(i64),
}

/// Marks every hour holding `api_hourly` or `metric_usage_hourly` rows of
/// `owner`.
pub(crate) fn mark_hours_of(conn: &Connection, owner: Owner) -> rusqlite::Result<()> {
    let (contexts, id) = match owner {
        Owner::Session(id) => ("SELECT id FROM contexts WHERE session_ref = ?1", id),
        Owner::Context(id) => ("SELECT ?1", id),
    };
    let sql = format!(
        "INSERT OR IGNORE INTO developer_usage_dirty (hour)
         SELECT hour FROM api_hourly WHERE context_id IN ({contexts})
         UNION SELECT hour FROM metric_usage_hourly WHERE context_id IN ({contexts})"
    );
    conn.prepare_cached(&sql)?.execute([id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hours_become_contiguous_spans() {
        assert_eq!(
            super::spans([3, 4, 5, 9, 11, 12]),
            vec![(3, 6), (9, 10), (11, 13)]
        );
        assert!(super::spans([]).is_empty());
    }
}
