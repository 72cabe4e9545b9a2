//! The pool of read-only connections, and time budgets that stop the work
//! inside SQLite.
//!
//! A semaphore bounds concurrent queries to the number of connections; a
//! caller waits at most the queue deadline for a permit. The query runs on a
//! blocking thread; a watchdog task interrupts the connection
//! (`sqlite3_interrupt`) once the budget is spent, and keeps interrupting
//! every few milliseconds until the closure returns, so a query made of
//! several statements cannot outlive its budget by starting a new one. The
//! interrupt is only issued while the closure is running (checked under a
//! lock), so it can never hit the connection's next user.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, InterruptHandle};
use tokio::sync::Semaphore;

use super::ReadError;
use super::migrate::configure_reader;

/// How often the watchdog repeats the interrupt past the budget.
const INTERRUPT_REPEAT: Duration = Duration::from_millis(5);

/// Read-only connections shared by all queries.
pub(crate) struct ReaderPool {
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    queue_deadline: Duration,
}

struct Shared {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Shared {
    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether the closure is running, so the watchdog knows if it may interrupt.
enum Phase {
    Waiting,
    Running(InterruptHandle),
    Finished,
}

impl ReaderPool {
    /// Opens `readers` connections to the database at `path`.
    pub(crate) fn open(
        path: &Path,
        readers: usize,
        queue_deadline: Duration,
    ) -> rusqlite::Result<Self> {
        let readers = readers.max(1);
        let mut idle = Vec::with_capacity(readers);
        for _ in 0..readers {
            idle.push(open_reader(path)?);
        }
        Ok(ReaderPool {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                idle: Mutex::new(idle),
            }),
            permits: Arc::new(Semaphore::new(readers)),
            queue_deadline,
        })
    }

    /// Refuses new reads and closes idle connections; running reads finish.
    pub(crate) fn close(&self) {
        self.permits.close();
        self.shared.idle().clear();
    }

    /// Runs `f` on a free connection within `budget`.
    pub(crate) async fn read<T, F>(&self, budget: Duration, f: F) -> Result<T, ReadError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit =
            match tokio::time::timeout(self.queue_deadline, self.permits.clone().acquire_owned())
                .await
            {
                Err(_) => return Err(ReadError::Busy),
                Ok(Err(_)) => return Err(ReadError::Closed),
                Ok(Ok(permit)) => permit,
            };
        let deadline = Instant::now() + budget;
        let phase = Arc::new(Mutex::new(Phase::Waiting));
        let watchdog = tokio::spawn(watch(deadline, phase.clone()));
        let shared = self.shared.clone();
        let work = tokio::task::spawn_blocking(move || {
            // Marks the work finished however it ends (even by a panic), so
            // the watchdog stops.
            let _finished = FinishOnDrop(&phase);
            let result = run_on_connection(&shared, deadline, &phase, f);
            drop(permit);
            result
        });
        let result = work.await;
        watchdog.abort();
        match result {
            Ok(result) => result,
            Err(join) => {
                tracing::error!(error = %join, "query task failed");
                Err(ReadError::Sql(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERNAL),
                    Some("the query task panicked".into()),
                )))
            }
        }
    }
}

/// Takes an idle connection (or opens one if a panic lost it), runs `f`
/// under the watchdog, and puts the connection back clean.
fn run_on_connection<T>(
    shared: &Shared,
    deadline: Instant,
    phase: &Mutex<Phase>,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, ReadError> {
    if Instant::now() >= deadline {
        return Err(ReadError::TimedOut);
    }
    let conn = match shared.idle().pop() {
        Some(conn) => conn,
        None => open_reader(&shared.path)?,
    };
    set_phase(phase, Phase::Running(conn.get_interrupt_handle()));
    let result = f(&conn);
    set_phase(phase, Phase::Finished);
    // Leave no transaction open for the next user.
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    shared.idle().push(conn);
    result.map_err(|e| match e.sqlite_error_code() {
        Some(ErrorCode::OperationInterrupted) => ReadError::TimedOut,
        _ => ReadError::Sql(e),
    })
}

struct FinishOnDrop<'a>(&'a Mutex<Phase>);

impl Drop for FinishOnDrop<'_> {
    fn drop(&mut self) {
        set_phase(self.0, Phase::Finished);
    }
}

fn set_phase(phase: &Mutex<Phase>, next: Phase) {
    *phase
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = next;
}

/// Interrupts the connection from the deadline on, until the closure returns.
async fn watch(deadline: Instant, phase: Arc<Mutex<Phase>>) {
    tokio::time::sleep_until(deadline.into()).await;
    loop {
        {
            let phase = phase
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match &*phase {
                Phase::Running(handle) => handle.interrupt(),
                Phase::Finished => return,
                Phase::Waiting => {}
            }
        }
        tokio::time::sleep(INTERRUPT_REPEAT).await;
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    configure_reader(&conn)?;
    Ok(conn)
}
