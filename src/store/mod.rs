//! The embedded SQLite store: schema and migrations, the single batched
//! writer, read-only connections with time budgets, and retention.
//!
//! * [`Store::write`] hands a [`rows::Batch`] to one writer thread through a
//!   bounded queue. The writer groups whatever is queued into one transaction
//!   (group commit), keeps the rollups (`api_hourly`, `metric_hourly`, the
//!   latency histograms, session totals, and `developer_usage_hourly` with
//!   the events-versus-metrics rule of [`counted`] applied) in the same
//!   transaction, and
//!   acknowledges a batch only once that transaction has committed (WAL,
//!   `synchronous=FULL`), so an acknowledged record survives a crash.
//!   Deduplication keys make a retried batch a no-op (events are unique on
//!   `(time_ns, dedup)`; the `dedup` columns of metric points and spans hold
//!   the record's second, then the key, so new keys stay together in the
//!   unique index).
//! * [`Store::read`] runs a closure on one of a pool of `query_only`
//!   connections; its time budget interrupts the work inside SQLite.
//! * [`Store::prune`] deletes data older than a cutoff, in small transactions
//!   that let ingest through between them.
//!
//! The store knows nothing of HTTP or OTLP: it takes typed [`rows`] and gives
//! back SQLite connections to the query layer. `schema.sql` is the contract
//! with the query layer.

pub mod backup;
pub mod counted;
pub mod edits;
pub mod event_time;
pub mod hist;
mod insert;
mod migrate;
mod prune;
mod reader;
mod reprice;
mod rollup;
mod series;
pub(crate) use series::series_key;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::ErrorCode;
use tokio::sync::{mpsc, oneshot};

use crate::rows;

pub use migrate::migrate;
pub use rollup::{HOUR_NS, usage_slot};

/// The writer's own transaction on a connection of the caller's: query-layer
/// test fixtures build their stores through it, so they hold exactly what
/// ingest would (rollups, sessions and histograms included).
#[cfg(test)]
pub(crate) use insert::{WriterCache, write_batches};

/// File name of the database inside the data directory.
pub const DB_FILE_NAME: &str = "tokentally.db";

/// How long a connection waits for a lock held by another connection (for
/// example an admin command writing a token while the server runs).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Tuning of the writer queue and the reader pool.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Number of read connections, i.e. queries that may run at once.
    pub readers: usize,
    /// Write requests that may wait for the writer; past this `write`
    /// answers [`StoreError::Overloaded`] at once.
    pub queue_requests: usize,
    /// Records grouped into one transaction at most (a single larger batch is
    /// still written whole, alone).
    pub max_transaction_records: usize,
    /// How long a read waits for a free connection before [`ReadError::Busy`].
    pub queue_deadline: Duration,
}

impl StoreOptions {
    /// Takes the reader pool from `query` and the queue from `writer`.
    pub fn from_config(c: &crate::config::Config) -> Self {
        StoreOptions {
            readers: c.query.readers,
            queue_requests: c.writer.queue_requests,
            max_transaction_records: c.writer.max_transaction_records,
            queue_deadline: Duration::from_millis(c.query.queue_deadline_ms),
        }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions::from_config(&crate::config::Config::default())
    }
}

/// What one write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReceipt {
    /// Records stored by this write.
    pub inserted: u64,
    /// Records already present (a retried batch), not stored again.
    pub duplicates: u64,
}

/// Where decoded OTLP rows are written: the embedded store, or the
/// ClickHouse store's batching inserter. The transports know only this.
pub trait Sink: Send + Sync + 'static {
    /// Stores `batch`; the receipt comes only once it is durable.
    fn write(
        &self,
        batch: rows::Batch,
    ) -> futures::future::BoxFuture<'static, Result<WriteReceipt, StoreError>>;

    /// Whether a write could be stored now (readiness).
    fn ready(&self) -> futures::future::BoxFuture<'static, Result<(), StoreError>>;

    /// Deletes the records older than `cutoff_ns` (retention), as finely as
    /// the store keeps them apart.
    fn prune(
        &self,
        cutoff_ns: i64,
    ) -> futures::future::BoxFuture<'static, Result<PruneReceipt, StoreError>>;

    /// Ingest requests waiting to be written now (`/metrics`).
    fn queued_requests(&self) -> usize;
}

impl Sink for Store {
    fn write(
        &self,
        batch: rows::Batch,
    ) -> futures::future::BoxFuture<'static, Result<WriteReceipt, StoreError>> {
        use futures::FutureExt;
        let store = self.clone();
        async move { store.write(batch).await }.boxed()
    }

    fn ready(&self) -> futures::future::BoxFuture<'static, Result<(), StoreError>> {
        use futures::FutureExt;
        let store = self.clone();
        async move { store.ready().await }.boxed()
    }

    fn prune(
        &self,
        cutoff_ns: i64,
    ) -> futures::future::BoxFuture<'static, Result<PruneReceipt, StoreError>> {
        use futures::FutureExt;
        let store = self.clone();
        async move { store.prune(cutoff_ns).await }.boxed()
    }

    fn queued_requests(&self) -> usize {
        Store::queued_requests(self)
    }
}

pub use reprice::RepriceReceipt;

/// What one prune deleted.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneReceipt {
    /// Events deleted.
    pub events: u64,
    /// Metric points deleted.
    pub metric_points: u64,
    /// Spans deleted.
    pub spans: u64,
}

/// Why a write, prune or open failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The write queue is full: the transport answers 503 with `Retry-After`.
    #[error("store overloaded: the write queue is full")]
    Overloaded,
    /// The database cannot be written now (disk full, read-only, locked, I/O
    /// error): nothing of the request was stored; the exporter should retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store was closed.
    #[error("store closed")]
    Closed,
    /// The store could not be opened or migrated.
    #[error("cannot open store: {0}")]
    Open(String),
    /// Anything else (a bug or corrupt data); logged with detail.
    #[error("internal store error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(
                ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::PermissionDenied,
            ) => StoreError::Unavailable(e.to_string()),
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The time budget ran out and the database work was interrupted.
    #[error("query time budget exceeded")]
    TimedOut,
    /// No read connection became free within the queue deadline.
    #[error("all read connections are busy")]
    Busy,
    /// The query failed.
    #[error("query failed: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The store was closed.
    #[error("store closed")]
    Closed,
}

/// Handle to the open store; clones share one writer and one reader pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db_path: PathBuf,
    requests: mpsc::Sender<writer::Request>,
    closed: AtomicBool,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: reader::ReaderPool,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/tokentally.db`, migrates it,
    /// starts the writer thread and opens the reader pool.
    pub fn open(data_dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        Store::open_with(data_dir, opts, |_| Ok(()))
    }

    /// [`Store::open`] with a hook run on the writer connection before the
    /// writer starts (tests use it to simulate a full disk).
    fn open_with(
        data_dir: &Path,
        opts: StoreOptions,
        writer_setup: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<()>,
    ) -> Result<Store, StoreError> {
        let conn = open_admin_connection(data_dir)?;
        migrate::configure_writer(&conn)
            .and_then(|()| writer_setup(&conn))
            .map_err(|e| StoreError::Open(e.to_string()))?;
        let db_path = data_dir.join(DB_FILE_NAME);
        let readers = reader::ReaderPool::open(&db_path, opts.readers, opts.queue_deadline)
            .map_err(|e| StoreError::Open(format!("read connection: {e}")))?;
        let (requests, queue) = mpsc::channel(opts.queue_requests.max(1));
        let writer = writer::Writer::new(conn, queue, opts.max_transaction_records.max(1));
        let thread = std::thread::Builder::new()
            .name("tokentally-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Open(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                db_path,
                requests,
                closed: AtomicBool::new(false),
                writer_thread: Mutex::new(Some(thread)),
                readers,
            }),
        })
    }

    /// Stores a batch; resolves only after the transaction holding it has
    /// committed durably. A full queue answers [`StoreError::Overloaded`] at once.
    pub async fn write(&self, batch: rows::Batch) -> Result<WriteReceipt, StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        if batch.is_empty() {
            return Ok(WriteReceipt::default());
        }
        let (ack, receipt) = oneshot::channel();
        self.inner
            .requests
            .try_send(writer::Request::Write { batch, ack })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        receipt.await.map_err(|_| StoreError::Closed)?
    }

    /// Write requests waiting for the writer now.
    pub fn queued_requests(&self) -> usize {
        let r = &self.inner.requests;
        r.max_capacity() - r.capacity()
    }

    /// Whether the store takes writes now: the writer runs and the database
    /// grants it a write transaction (`/readyz`).
    pub async fn ready(&self) -> Result<(), StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (ack, done) = oneshot::channel();
        self.inner
            .requests
            .try_send(writer::Request::Ping { ack })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        done.await.map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` on a read-only connection. Past `budget` the SQLite work is
    /// interrupted and the call answers [`ReadError::TimedOut`]; the
    /// connection stays usable.
    pub async fn read<T, F>(&self, budget: Duration, f: F) -> Result<T, ReadError>
    where
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ReadError::Closed);
        }
        self.inner.readers.read(budget, f).await
    }

    /// Deletes data older than `older_than_ns`, aligned down to a whole UTC
    /// hour so that raw rows and hourly rollups are cut at the same instant.
    pub async fn prune(&self, older_than_ns: i64) -> Result<PruneReceipt, StoreError> {
        self.ask(|ack| writer::Request::Prune { older_than_ns, ack })
            .await
    }

    /// Sends the writer one request and waits for its answer.
    async fn ask<T>(
        &self,
        request: impl FnOnce(writer::Ack<T>) -> writer::Request,
    ) -> Result<T, StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        let (ack, receipt) = oneshot::channel();
        self.inner
            .requests
            .send(request(ack))
            .await
            .map_err(|_| StoreError::Closed)?;
        receipt.await.map_err(|_| StoreError::Closed)?
    }

    /// Restates the computed cost of every stored API request with
    /// `pricing` (see `reprice`), rollups and session totals included, in
    /// one transaction.
    pub async fn reprice(
        &self,
        pricing: std::sync::Arc<crate::pricing::Pricing>,
    ) -> Result<RepriceReceipt, StoreError> {
        self.ask(|ack| writer::Request::Reprice { pricing, ack })
            .await
    }

    /// Writes everything queued, checkpoints the WAL into the database file
    /// and stops the writer; later writes and reads answer `Closed`.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.readers.close();
        let (ack, done) = oneshot::channel();
        let result = match self
            .inner
            .requests
            .send(writer::Request::Close { ack })
            .await
        {
            Ok(()) => done.await.unwrap_or(Ok(())),
            // The writer is already gone (an earlier close).
            Err(_) => Ok(()),
        };
        let thread = match self.inner.writer_thread.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| StoreError::Internal(format!("joining the writer: {e}")))?
                .map_err(|_| StoreError::Internal("the writer thread panicked".into()))?;
        }
        result
    }

    /// Path of the database file.
    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }
}

/// Opens `<data_dir>/tokentally.db` (creating the directory and file if
/// needed) with the store's pragmas and migrates it. For CLI commands that
/// run while the server may be running: they share the file through WAL and
/// wait up to a few seconds for the writer's lock.
pub fn open_admin_connection(data_dir: &Path) -> Result<rusqlite::Connection, StoreError> {
    crate::datadir::prepare(data_dir).map_err(StoreError::Open)?;
    let path = data_dir.join(DB_FILE_NAME);
    let conn = rusqlite::Connection::open(&path)
        .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
    migrate::configure(&conn).map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
    crate::datadir::restrict(&path);
    migrate(&conn)?;
    Ok(conn)
}
