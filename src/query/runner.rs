//! A single-connection [`QueryRunner`]: runs queries on a blocking thread and
//! stops SQLite through a progress handler once the budget is spent. Used by
//! tests and offline commands; the server uses the store's reader pool.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::{BoxedQuery, QueryError, QueryRunner};

/// Runs queries one at a time on one connection.
#[derive(Clone)]
pub struct ConnRunner {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl ConnRunner {
    /// Wraps an open connection.
    pub fn new(conn: rusqlite::Connection) -> Self {
        ConnRunner {
            conn: Arc::new(Mutex::new(conn)),
        }
    }
}

/// Runs `f` on `conn`, interrupting SQLite once `budget` has passed (a timer
/// thread calls `sqlite3_interrupt` unless the work finished first; the
/// shared flag is checked under a lock so a finished query is never hit).
pub fn run_with_budget(
    conn: &rusqlite::Connection,
    budget: Duration,
    f: BoxedQuery,
) -> Result<serde_json::Value, QueryError> {
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

impl QueryRunner for ConnRunner {
    fn run_boxed(
        &self,
        budget: Duration,
        f: BoxedQuery,
    ) -> BoxFuture<'static, Result<serde_json::Value, QueryError>> {
        let conn = self.conn.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let guard = conn.lock().map_err(|_| QueryError::Busy)?;
                run_with_budget(&guard, budget, f)
            })
            .await
            .map_err(|e| QueryError::Sql(e.to_string()))?
        }
        .boxed()
    }
}

/// The server's runner: the store's reader pool, whose watchdog interrupts
/// SQLite at the budget.
#[derive(Clone)]
pub struct StoreRunner {
    store: crate::store::Store,
}

impl StoreRunner {
    /// Runs queries on `store`'s read connections.
    pub fn new(store: crate::store::Store) -> Self {
        StoreRunner { store }
    }
}

impl QueryRunner for StoreRunner {
    fn run_boxed(
        &self,
        budget: Duration,
        f: BoxedQuery,
    ) -> BoxFuture<'static, Result<serde_json::Value, QueryError>> {
        use crate::store::ReadError;
        let store = self.store.clone();
        async move {
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
        .boxed()
    }
}
