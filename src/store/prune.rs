//! Retention: deleting data older than a cutoff in short transactions.
//!
//! The cutoff is aligned down to a whole UTC hour so that the raw rows and
//! the hourly rollups are cut at the same instant (a rollup row never counts
//! raw rows that are gone, nor misses ones that are kept). Raw rows go in
//! batches of [`BATCH_ROWS`], each its own transaction, so the writer can
//! serve ingest between them; then one final transaction removes the rollup
//! rows, sessions, series and contexts nothing refers to any more.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::PruneReceipt;
use super::hist::{Hist, add_text};
use super::rollup::{HOUR_NS, hour_of, merge_hists};

/// Rows deleted per statement (and per transaction).
const BATCH_ROWS: i64 = 10_000;

/// The steps of one prune, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Events,
    MetricPoints,
    Spans,
    Rollups,
    Done,
}

/// A prune in progress.
pub(crate) struct Prune {
    cutoff_ns: i64,
    step: Step,
    receipt: PruneReceipt,
}

impl Prune {
    /// Starts a prune of everything before `older_than_ns`, aligned down to the hour.
    pub(crate) fn new(older_than_ns: i64) -> Self {
        Prune {
            cutoff_ns: hour_of(older_than_ns).saturating_mul(HOUR_NS),
            step: Step::Events,
            receipt: PruneReceipt::default(),
        }
    }

    /// What has been deleted so far.
    pub(crate) fn receipt(&self) -> PruneReceipt {
        self.receipt
    }

    /// True once every step has run.
    pub(crate) fn done(&self) -> bool {
        self.step == Step::Done
    }

    /// Runs one short transaction of the prune.
    pub(crate) fn step(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = self.step_in_tx(conn).and_then(|next| {
            conn.execute_batch("COMMIT")?;
            Ok(next)
        });
        match result {
            Ok(next) => {
                self.step = next;
                Ok(())
            }
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    fn step_in_tx(&mut self, conn: &Connection) -> rusqlite::Result<Step> {
        let cutoff = self.cutoff_ns;
        let (sql, counter, next) = match self.step {
            Step::Events => (
                "DELETE FROM events WHERE id IN
                    (SELECT id FROM events WHERE time_ns < ?1 LIMIT ?2)",
                &mut self.receipt.events,
                Step::MetricPoints,
            ),
            Step::MetricPoints => (
                "DELETE FROM metric_points WHERE id IN
                    (SELECT id FROM metric_points WHERE time_ns < ?1 LIMIT ?2)",
                &mut self.receipt.metric_points,
                Step::Spans,
            ),
            Step::Spans => (
                "DELETE FROM spans WHERE id IN
                    (SELECT id FROM spans WHERE start_ns < ?1 LIMIT ?2)",
                &mut self.receipt.spans,
                Step::Rollups,
            ),
            Step::Rollups => {
                delete_rollups_and_orphans(conn, cutoff)?;
                super::edits::prune(conn, cutoff)?;
                return Ok(Step::Done);
            }
            Step::Done => return Ok(Step::Done),
        };
        let deleted = conn
            .prepare_cached(sql)?
            .execute(rusqlite::params![cutoff, BATCH_ROWS])?;
        *counter += deleted as u64;
        Ok(if (deleted as i64) < BATCH_ROWS {
            next
        } else {
            self.step
        })
    }
}

/// The cutoff's day keeps only its hours from the cutoff on: its day
/// histograms are merged again from the hour histograms left.
fn latency_days_from_hours(conn: &Connection, day: i64, hour: i64) -> rusqlite::Result<()> {
    for (daily, hourly, key) in [
        ("tool_latency_daily", "tool_latency_hourly", "tool_name"),
        ("api_latency_daily", "api_latency_hourly", "model"),
    ] {
        // Table and column names come from the fixed list above.
        conn.execute(&format!("DELETE FROM {daily} WHERE day <= ?1"), [day])?;
        let mut merged: BTreeMap<(String, String), Hist> = BTreeMap::new();
        let mut stmt = conn.prepare(&format!(
            "SELECT developer, {key}, hist FROM {hourly} WHERE hour >= ?2 AND hour < (?1 + 1) * 24"
        ))?;
        let mut rows = stmt.query([day, hour])?;
        while let Some(r) = rows.next()? {
            let text = r.get_ref(2)?.as_str().map_err(rusqlite::Error::from)?;
            add_text(text, merged.entry((r.get(0)?, r.get(1)?)).or_default());
        }
        let days = merged
            .into_iter()
            .map(|((developer, name), hist)| ((day, developer, name), hist));
        merge_hists(conn, daily, "day", key, days)?;
    }
    Ok(())
}

/// Rollup rows are few (one per hour and context, developer, model or tool), so
/// they go in one statement each; then whatever no kept row refers to.
fn delete_rollups_and_orphans(conn: &Connection, cutoff_ns: i64) -> rusqlite::Result<()> {
    let hour = hour_of(cutoff_ns);
    for table in [
        "api_hourly",
        "prompt_hourly",
        "metric_hourly",
        "metric_usage_hourly",
        "tool_latency_hourly",
        "api_latency_hourly",
        "catalog_hourly",
        "api_developer_hours",
        "developer_usage_hourly",
        "developer_usage_dirty",
    ] {
        // Table names come from the fixed list above.
        conn.execute(&format!("DELETE FROM {table} WHERE hour < ?1"), [hour])?;
    }
    // The cutoff's day keeps only its hours from the cutoff on, summed again
    // from the hourly catalog.
    let day = hour.div_euclid(24);
    conn.execute("DELETE FROM catalog_daily WHERE day <= ?1", [day])?;
    conn.execute(
        "INSERT INTO catalog_daily
         SELECT ?1, developer, developer_kind, signal, name, SUM(records), MIN(first_ns),
                MAX(last_ns), SUM(with_path), SUM(with_text), SUM(redacted)
         FROM catalog_hourly WHERE hour >= ?2 AND hour < (?1 + 1) * 24
         GROUP BY developer, developer_kind, signal, name",
        [day, hour],
    )?;
    latency_days_from_hours(conn, day, hour)?;
    conn.execute(
        "DELETE FROM metric_series WHERE NOT EXISTS
            (SELECT 1 FROM metric_points p WHERE p.series_id = metric_series.id)",
        [],
    )?;
    // Foreign keys are enforced: detach contexts before their session goes.
    conn.execute(
        "UPDATE contexts SET session_ref = NULL
         WHERE session_ref IN (SELECT id FROM sessions WHERE last_ns < ?1)",
        [cutoff_ns],
    )?;
    conn.execute("DELETE FROM sessions WHERE last_ns < ?1", [cutoff_ns])?;
    // The cutoff's hour lost records, the hour before it and sessions: what
    // counts there and in the hour after may differ now.
    super::counted::refresh(conn, &[hour, hour + 1].into_iter().collect())?;
    conn.execute(
        "DELETE FROM contexts
         WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.context_id = contexts.id)
           AND NOT EXISTS (SELECT 1 FROM spans s WHERE s.context_id = contexts.id)
           AND id NOT IN (SELECT context_id FROM metric_series)
           AND id NOT IN (SELECT context_id FROM api_hourly)
           AND id NOT IN (SELECT context_id FROM prompt_hourly)
           AND id NOT IN (SELECT context_id FROM metric_hourly)",
        [],
    )?;
    // Versions and resource keys stay listed while any context of their
    // developer remains (they are recorded per developer, not per context).
    conn.execute(
        "DELETE FROM context_values
         WHERE developer NOT IN (SELECT COALESCE(developer, '') FROM contexts)",
        [],
    )?;
    Ok(())
}
