//! The query layer: one module per question, SQL with bound parameters only.
//!
//! Every question is a plain function over a `&rusqlite::Connection` so it can
//! be tested on its own. The tool layer (`crate::mcp`) runs them through a
//! [`QueryRunner`], which the store implements with its reader pool and time
//! budget; [`runner::ConnRunner`] is a small single-connection runner used by
//! tests and offline commands.
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

pub mod cost;
pub mod describe;
pub mod events;
pub mod files;
pub mod filter;
pub mod latency;
pub mod models;
pub mod page;
pub mod plan;
pub mod runner;
pub mod sessions;
pub mod time;
pub mod timeline;
pub mod timeseries;
pub mod usage;
pub mod visible;

#[cfg(test)]
mod conformance;
#[cfg(test)]
pub(crate) mod fixture;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::config::QueryLimits;

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

/// A query as the runner sees it: work on one read connection returning JSON.
pub type BoxedQuery = Box<
    dyn FnOnce(&rusqlite::Connection) -> Result<serde_json::Value, QueryError> + Send + 'static,
>;

/// Runs query closures on a read connection under a time budget that stops
/// the database work (not only the wait). The store adapts its `read` to this
/// in a few lines, e.g.:
///
/// ```ignore
/// impl QueryRunner for store::Store {
///     fn run_boxed(&self, budget: Duration, f: BoxedQuery) -> BoxFuture<'static, Result<Value, QueryError>> {
///         let store = self.clone();
///         Box::pin(async move {
///             // Carry the closure's own error out through rusqlite's error type.
///             let slot = Arc::new(Mutex::new(None));
///             let s2 = slot.clone();
///             let r = store.read(budget, move |conn| match f(conn) {
///                 Ok(v) => Ok(v),
///                 Err(e) => { *s2.lock().unwrap() = Some(e); Err(rusqlite::Error::InvalidQuery) }
///             }).await;
///             match r {
///                 Ok(v) => Ok(v),
///                 Err(_) if slot.lock().unwrap().is_some() => Err(slot.lock().unwrap().take().unwrap()),
///                 Err(store::ReadError::TimedOut) => Err(QueryError::TimedOut),
///                 Err(store::ReadError::Busy) => Err(QueryError::Busy),
///                 Err(other) => Err(QueryError::Sql(other.to_string())),
///             }
///         })
///     }
/// }
/// ```
pub trait QueryRunner: Send + Sync + 'static {
    /// Runs `f` on a read connection, interrupting SQLite after `budget`.
    fn run_boxed(
        &self,
        budget: Duration,
        f: BoxedQuery,
    ) -> BoxFuture<'static, Result<serde_json::Value, QueryError>>;
}

/// Everything a tool call needs besides the caller: how to run queries and
/// the operator's limits. Cheap to clone.
#[derive(Clone)]
pub struct ToolContext {
    /// Executes queries under the time budget.
    pub runner: Arc<dyn QueryRunner>,
    /// Row caps, time budget and reply size cap.
    pub limits: QueryLimits,
    /// Fixed "now" for relative times (tests); `None` uses the clock.
    pub now: Option<jiff::Timestamp>,
}

impl ToolContext {
    /// A context whose queries run on the store's reader pool.
    pub fn over_store(store: crate::store::Store, limits: QueryLimits) -> Self {
        Self::new(Arc::new(runner::StoreRunner::new(store)), limits)
    }

    /// A context over `runner` with `limits`, using the real clock.
    pub fn new(runner: Arc<dyn QueryRunner>, limits: QueryLimits) -> Self {
        ToolContext {
            runner,
            limits,
            now: None,
        }
    }

    /// The current time (or the fixed test time).
    pub fn now(&self) -> jiff::Timestamp {
        self.now.unwrap_or_else(jiff::Timestamp::now)
    }

    /// The time budget of one query.
    pub fn budget(&self) -> Duration {
        Duration::from_millis(self.limits.time_budget_ms)
    }

    /// Runs a typed query closure and returns its JSON answer.
    pub async fn run<T, F>(&self, f: F) -> Result<T, QueryError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, QueryError> + Send + 'static,
    {
        let boxed: BoxedQuery = Box::new(move |conn| {
            let value = f(conn)?;
            serde_json::to_value(value).map_err(|e| QueryError::Sql(e.to_string()))
        });
        let value = self.runner.run_boxed(self.budget(), boxed).await?;
        serde_json::from_value(value).map_err(|e| QueryError::Sql(e.to_string()))
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
