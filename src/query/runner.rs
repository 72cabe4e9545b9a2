//! The SQLite backend of [`Questions`]: each question is a plain function
//! over a `&rusqlite::Connection` (in the modules beside this one), run on a
//! read connection under a time budget that stops the database work, with
//! its typed answer handed back as it is.
//!
//! The connection comes from the store's reader pool (the server and the
//! CLI) or, for tests, from one connection of their own.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;

use super::QueryError;
use super::questions::{After, Answer, Questions};
use super::time::TimeRange;
use super::timeseries::{Bucket, Split};
use super::visible::Visible;
use super::{
    cost, describe, events, files, filter::Filter, latency, models, plan, sessions, timeline,
    timeseries,
};

/// Where the read connections come from.
#[derive(Clone)]
enum Db {
    /// The store's reader pool, whose watchdog interrupts SQLite at the budget.
    Store(crate::store::Store),
    /// One connection, used by one query at a time (tests, offline tools).
    Conn(Arc<Mutex<rusqlite::Connection>>),
    /// Answers every question with this error (tests of error replies).
    #[cfg(test)]
    Failing(QueryError),
}

/// The SQLite store answering the questions.
#[derive(Clone)]
pub struct Sqlite {
    db: Db,
    budget: Duration,
}

impl Sqlite {
    /// Questions answered from `store`'s read connections within `budget`.
    pub fn over_store(store: crate::store::Store, budget: Duration) -> Self {
        Sqlite {
            db: Db::Store(store),
            budget,
        }
    }

    /// Questions answered from `store`'s read connections within the
    /// limits' time budget.
    pub fn with_limits(store: crate::store::Store, limits: &crate::config::QueryLimits) -> Self {
        Self::over_store(store, Duration::from_millis(limits.time_budget_ms))
    }

    /// Questions answered on one open connection within `budget`.
    pub fn over_connection(conn: rusqlite::Connection, budget: Duration) -> Self {
        Sqlite {
            db: Db::Conn(Arc::new(Mutex::new(conn))),
            budget,
        }
    }

    /// A backend whose every answer is `error`.
    #[cfg(test)]
    pub(crate) fn failing(error: QueryError) -> Self {
        Sqlite {
            db: Db::Failing(error),
            budget: Duration::ZERO,
        }
    }

    /// Runs `f` on a read connection, interrupting SQLite after the budget.
    fn run<T, F>(&self, f: F) -> Answer<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, QueryError> + Send + 'static,
    {
        let budget = self.budget;
        match self.db.clone() {
            Db::Conn(conn) => async move {
                tokio::task::spawn_blocking(move || {
                    let guard = conn.lock().map_err(|_| QueryError::Busy)?;
                    run_with_budget(&guard, budget, f)
                })
                .await
                .map_err(|e| QueryError::Sql(e.to_string()))?
            }
            .boxed(),
            Db::Store(store) => async move {
                use crate::store::ReadError;
                let start = Instant::now();
                // The query's own error travels inside Ok so it is not confused
                // with the pool's; an interrupted statement surfaces as an SQL
                // error from inside the query, recognised by the elapsed budget.
                match store.read(budget, move |conn| Ok(f(conn))).await {
                    Ok(Err(QueryError::Sql(_))) if start.elapsed() >= budget => {
                        Err(QueryError::TimedOut)
                    }
                    Ok(result) => result,
                    Err(ReadError::TimedOut) => Err(QueryError::TimedOut),
                    Err(ReadError::Busy) => Err(QueryError::Busy),
                    Err(ReadError::Sql(e)) => Err(QueryError::Sql(e.to_string())),
                    Err(ReadError::Closed) => Err(QueryError::Sql("the store is closed".into())),
                }
            }
            .boxed(),
            #[cfg(test)]
            Db::Failing(e) => async move { Err(e) }.boxed(),
        }
    }
}

/// Runs `f` on `conn`, interrupting SQLite once `budget` has passed (a timer
/// thread calls `sqlite3_interrupt` unless the work finished first; the
/// shared flag is checked under a lock so a finished query is never hit).
pub fn run_with_budget<T>(
    conn: &rusqlite::Connection,
    budget: Duration,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, QueryError>,
) -> Result<T, QueryError> {
    let start = Instant::now();
    let handle = conn.get_interrupt_handle();
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let timer_state = state.clone();
    let timer = std::thread::spawn(move || {
        let (done, cv) = &*timer_state;
        let Ok(guard) = done.lock() else { return };
        if let Ok((guard, _)) = cv.wait_timeout_while(guard, budget, |d| !*d)
            && !*guard
        {
            handle.interrupt();
        }
    });
    let result = f(conn);
    {
        let (done, cv) = &*state;
        if let Ok(mut d) = done.lock() {
            *d = true;
        }
        cv.notify_all();
    }
    let _ = timer.join();
    match result {
        Err(QueryError::Sql(_)) if start.elapsed() >= budget => Err(QueryError::TimedOut),
        other => other,
    }
}

impl Questions for Sqlite {
    fn data_extent(&self, visible: Visible) -> Answer<Option<(i64, i64)>> {
        self.run(move |conn| plan::data_extent(conn, &visible))
    }

    fn cost_by_developer(&self, range: TimeRange, f: Filter) -> Answer<cost::CostByDeveloper> {
        self.run(move |conn| cost::cost_by_developer(conn, &range, &f))
    }

    fn model_breakdown(
        &self,
        range: TimeRange,
        f: Filter,
    ) -> Answer<(Vec<models::ModelUsage>, super::usage::Sources)> {
        self.run(move |conn| models::model_breakdown(conn, &range, &f))
    }

    fn tool_latency(
        &self,
        range: TimeRange,
        f: Filter,
        tool: Option<String>,
    ) -> Answer<(Vec<latency::ToolLatency>, Vec<latency::ToolLatency>)> {
        self.run(move |conn| latency::tool_latency(conn, &range, &f, tool.as_deref()))
    }

    fn top_edited_files(
        &self,
        range: TimeRange,
        f: Filter,
        tool: Option<String>,
        top: usize,
    ) -> Answer<files::TopEditedFiles> {
        self.run(move |conn| files::top_edited_files(conn, &range, &f, tool.as_deref(), top))
    }

    fn search_events(
        &self,
        range: TimeRange,
        f: Filter,
        ef: events::EventFilter,
        after: After,
        limit: usize,
        content: bool,
    ) -> Answer<super::page::Page<events::EventHit>> {
        self.run(move |conn| events::search_events(conn, &range, &f, &ef, after, limit, content))
    }

    fn list_sessions(
        &self,
        range: TimeRange,
        f: Filter,
        sort: String,
        offset: u64,
        limit: usize,
    ) -> Answer<(Vec<sessions::SessionSummary>, bool)> {
        self.run(move |conn| sessions::list_sessions(conn, &range, &f, &sort, offset, limit))
    }

    fn session_timeline(
        &self,
        range: TimeRange,
        visible: Visible,
        session_id: String,
        offset: u64,
        limit: usize,
        content: bool,
    ) -> Answer<timeline::Timeline> {
        self.run(move |conn| {
            timeline::session_timeline(conn, &range, &visible, &session_id, offset, limit, content)
        })
    }

    fn usage_over_time(
        &self,
        range: TimeRange,
        f: Filter,
        bucket: Bucket,
        split: Split,
    ) -> Answer<(Vec<timeseries::SeriesPoint>, super::usage::Sources)> {
        self.run(move |conn| timeseries::usage_over_time(conn, &range, &f, bucket, split))
    }

    fn describe_data(&self, range: TimeRange, f: Filter) -> Answer<describe::DataDescription> {
        self.run(move |conn| describe::describe_data(conn, &f, &range))
    }
}
