//! The query layer: one module per question, SQL with bound parameters only.
//!
//! The tool layer (`crate::mcp`) asks through the [`Questions`] trait, one
//! method per question with a typed answer; [`runner::Sqlite`] answers them
//! with the plain functions over a `&rusqlite::Connection` in the modules
//! below, each testable on its own, run on the store's reader pool (or one
//! connection, in tests) under a time budget that stops the database work.
//!
//! Where each rule lives (one place each):
//! * who may see what: [`visible::Visible`], built only from the caller's
//!   token and carried by every [`filter::Filter`];
//! * which rows answer (rollup hours or raw edges; `api_request` events or
//!   cost/token metrics, with or without a `session.id`): [`plan`];
//! * where cost and tokens are summed: [`usage::grouped`], which every
//!   cost, model and series question calls;
//! * [`time`] resolves `since`/`until`/`timezone` into a UTC range and
//!   [`filter`] turns the common filters into SQL with bound parameters.

pub mod attribution;
pub mod cost;
pub mod describe;
pub mod events;
pub mod files;
pub mod filter;
pub mod latency;
pub mod models;
pub mod page;
pub mod plan;
pub mod questions;
pub mod runner;
pub mod sessions;
pub mod sql;
pub mod time;
pub mod timeline;
pub mod timeseries;
pub mod usage;
pub mod visible;

#[cfg(test)]
pub(crate) mod fixture;

use std::sync::Arc;

use crate::config::QueryLimits;

pub use questions::Questions;

/// Why a query produced no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query ran past its time budget and was interrupted.
    #[error("the query ran past its time budget and was stopped")]
    TimedOut,
    /// No read connection became free in time.
    #[error("the store is busy; try again shortly")]
    Busy,
    /// The caller asked for something that cannot be answered as asked
    /// (message says what to fix).
    #[error("{0}")]
    Invalid(String),
    /// The thing asked for (a session id...) does not exist or is not visible
    /// to the caller.
    #[error("{0}")]
    NotFound(String),
    /// The database cannot be reached (a ClickHouse server down, a shard
    /// missing): nothing was answered; asking again later may work.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// SQLite failed (detail is logged, not shown to callers).
    #[error("database error: {0}")]
    Sql(String),
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                QueryError::TimedOut
            }
            other => QueryError::Sql(other.to_string()),
        }
    }
}

/// Everything a tool call needs besides the caller: the questions' backend
/// and the operator's limits. Cheap to clone.
#[derive(Clone)]
pub struct ToolContext {
    /// Answers the questions (the SQLite store, or another engine).
    pub questions: Arc<dyn Questions>,
    /// Row caps, time budget and reply size cap.
    pub limits: QueryLimits,
    /// Fixed "now" for relative times (tests); `None` uses the clock.
    pub now: Option<jiff::Timestamp>,
}

impl ToolContext {
    /// A context whose questions run on the store's reader pool, each within
    /// the limits' time budget.
    pub fn over_store(store: crate::store::Store, limits: QueryLimits) -> Self {
        Self::new(
            Arc::new(runner::Sqlite::with_limits(store, &limits)),
            limits,
        )
    }

    /// A context over `questions` with `limits`, using the real clock.
    pub fn new(questions: Arc<dyn Questions>, limits: QueryLimits) -> Self {
        ToolContext {
            questions,
            limits,
            now: None,
        }
    }

    /// The current time (or the fixed test time).
    pub fn now(&self) -> jiff::Timestamp {
        self.now.unwrap_or_else(jiff::Timestamp::now)
    }
}

pub use plan::HOUR_NS;

/// Exact nearest-rank percentile over a sorted histogram of
/// `(value, count)` pairs: the smallest value `v` such that at least
/// `ceil(p/100 * N)` observations are `<= v`. `None` when empty.
pub fn nearest_rank(sorted_hist: &[(i64, i64)], p: f64) -> Option<i64> {
    let total: i64 = sorted_hist.iter().map(|(_, n)| *n).sum();
    if total <= 0 {
        return None;
    }
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (v, n) in sorted_hist {
        seen += n;
        if seen >= rank {
            return Some(*v);
        }
    }
    sorted_hist.last().map(|(v, _)| *v)
}

/// Latency summary derived from an exact histogram.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct LatencySummary {
    /// Observations.
    pub count: i64,
    /// Mean in ms.
    pub mean_ms: Option<f64>,
    /// Median (nearest rank) in ms.
    pub p50_ms: Option<i64>,
    /// 90th percentile (nearest rank) in ms.
    pub p90_ms: Option<i64>,
    /// 95th percentile (nearest rank) in ms.
    pub p95_ms: Option<i64>,
    /// 99th percentile (nearest rank) in ms.
    pub p99_ms: Option<i64>,
    /// Largest observation in ms.
    pub max_ms: Option<i64>,
}

impl LatencySummary {
    /// Summarises a histogram of `(duration_ms, count)` (any order).
    pub fn from_hist(hist: &std::collections::BTreeMap<i64, i64>) -> Self {
        let sorted: Vec<(i64, i64)> = hist.iter().map(|(k, v)| (*k, *v)).collect();
        let count: i64 = sorted.iter().map(|(_, n)| n).sum();
        let sum: f64 = sorted.iter().map(|(v, n)| *v as f64 * *n as f64).sum();
        LatencySummary {
            count,
            mean_ms: (count > 0).then(|| sum / count as f64),
            p50_ms: nearest_rank(&sorted, 50.0),
            p90_ms: nearest_rank(&sorted, 90.0),
            p95_ms: nearest_rank(&sorted, 95.0),
            p99_ms: nearest_rank(&sorted, 99.0),
            max_ms: sorted.last().map(|(v, _)| *v),
        }
    }
}

/// True when an amount of USD rounds to zero in an answer (answers carry
/// money to 6 decimals): for fields left out when nothing was computed.
pub fn is_zero_money(v: &f64) -> bool {
    v.abs() < 5e-7
}

/// True for a zero count: for fields left out when nothing happened.
pub fn is_zero_count(n: &i64) -> bool {
    *n == 0
}

/// How a request without a model id is named where models are listed.
pub fn model_label(model: &str) -> String {
    if model.is_empty() {
        "(no model)".into()
    } else {
        model.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_definition() {
        let h = [(10, 1), (20, 1), (30, 1), (40, 1)];
        assert_eq!(nearest_rank(&h, 50.0), Some(20));
        assert_eq!(nearest_rank(&h, 95.0), Some(40));
        assert_eq!(nearest_rank(&h, 25.0), Some(10));
        assert_eq!(nearest_rank(&[], 50.0), None);
        assert_eq!(nearest_rank(&[(5, 100)], 99.0), Some(5));
    }
}
