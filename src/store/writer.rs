//! The single writer thread: group commit over a bounded queue.
//!
//! The thread takes the first queued request, then whatever other writes are
//! already queued (up to `max_transaction_records` records), writes them in
//! one transaction, commits, and only then acknowledges each request with its
//! own receipt. A failed transaction is rolled back and every request in it
//! gets the error, so nothing unacknowledged is ever claimed stored.

use std::collections::VecDeque;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::insert::{self, WriterCache};
use super::prune::Prune;
use super::{PruneReceipt, StoreError, WriteReceipt};
use crate::rows::Batch;

/// Where a request's outcome is sent.
pub(crate) type Ack<T> = oneshot::Sender<Result<T, StoreError>>;

/// Work for the writer thread.
pub(crate) enum Request {
    /// Store a batch.
    Write {
        /// The rows.
        batch: Batch,
        /// Answered after commit (or failure).
        ack: Ack<WriteReceipt>,
    },
    /// Delete data older than a cutoff.
    Prune {
        /// Cutoff, ns since the epoch (aligned down to the hour).
        older_than_ns: i64,
        /// Answered when the prune is complete.
        ack: Ack<PruneReceipt>,
    },
    /// Restate computed costs with another price table.
    Reprice {
        /// The table.
        pricing: std::sync::Arc<crate::pricing::Pricing>,
        /// Answered after commit.
        ack: Ack<super::RepriceReceipt>,
    },
    /// Check that the database takes a write transaction (readiness).
    Ping {
        /// Answered once a write lock was taken and released.
        ack: Ack<()>,
    },
    /// Write what is queued before this, checkpoint and stop.
    Close {
        /// Answered after the checkpoint.
        ack: Ack<()>,
    },
}

type PendingWrite = (Batch, Ack<WriteReceipt>);

/// The writer: owns the only read-write connection of the server.
pub(crate) struct Writer {
    conn: Connection,
    queue: mpsc::Receiver<Request>,
    /// Requests taken from the queue but not yet served (they keep their order).
    deferred: VecDeque<Request>,
    max_records: usize,
    cache: WriterCache,
    summary: Summary,
    /// When the marked hours of counted usage were last recomputed.
    caught_up: std::time::Instant,
}

/// Marked hours of counted usage are recomputed at least this often under
/// sustained ingest...
const CATCH_UP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// ...and when the queue is empty, at most this often (a trickle of single
/// requests then costs one recomputation per interval, not per commit).
const CATCH_UP_IDLE: std::time::Duration = std::time::Duration::from_millis(100);

/// What was written since the last log line: one concise line per minute
/// while ingest runs, rather than one per request.
struct Summary {
    since: std::time::Instant,
    commits: u64,
    stored: u64,
    duplicates: u64,
}

/// How often the writer logs what it stored.
const SUMMARY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Summary {
    fn new() -> Summary {
        Summary {
            since: std::time::Instant::now(),
            commits: 0,
            stored: 0,
            duplicates: 0,
        }
    }

    fn add(&mut self, receipts: &[WriteReceipt]) {
        self.commits += 1;
        for r in receipts {
            self.stored += r.inserted;
            self.duplicates += r.duplicates;
        }
        if self.since.elapsed() >= SUMMARY_EVERY {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.commits > 0 {
            tracing::info!(
                stored = self.stored,
                duplicates = self.duplicates,
                commits = self.commits,
                seconds = self.since.elapsed().as_secs(),
                "ingest stored records"
            );
        }
        *self = Summary::new();
    }
}

impl Writer {
    /// A writer over `conn` (already configured and migrated).
    pub(crate) fn new(
        conn: Connection,
        queue: mpsc::Receiver<Request>,
        max_records: usize,
    ) -> Self {
        Writer {
            conn,
            queue,
            deferred: VecDeque::new(),
            max_records,
            cache: WriterCache::default(),
            summary: Summary::new(),
            caught_up: std::time::Instant::now(),
        }
    }

    /// Serves requests until `Close` or until every `Store` handle is gone.
    pub(crate) fn run(mut self) {
        loop {
            let request = match self.deferred.pop_front() {
                Some(request) => request,
                None => match self.queue.blocking_recv() {
                    Some(request) => request,
                    None => {
                        let _ = self.shut_down();
                        return;
                    }
                },
            };
            match request {
                Request::Write { batch, ack } => {
                    let group = self.gather((batch, ack));
                    self.commit(group);
                    self.catch_up_when_due();
                }
                Request::Prune { older_than_ns, ack } => {
                    let result = self.prune(older_than_ns);
                    let _ = ack.send(result);
                }
                Request::Reprice { pricing, ack } => {
                    let result =
                        super::reprice::reprice(&self.conn, &pricing).map_err(StoreError::from);
                    let _ = ack.send(result);
                }
                Request::Ping { ack } => {
                    let result = self
                        .conn
                        .execute_batch("BEGIN IMMEDIATE; COMMIT")
                        .map_err(StoreError::from);
                    let _ = ack.send(result);
                }
                Request::Close { ack } => {
                    let result = self.shut_down();
                    let _ = ack.send(result);
                    return;
                }
            }
        }
    }

    /// Recomputes the hours of counted usage the last commits marked (see
    /// [`super::counted`]) when nothing is waiting, or when a second has
    /// passed under load. A failure leaves the marks: questions still read
    /// those hours from the context rollups, and the next attempt retries.
    fn catch_up_when_due(&mut self) {
        let idle = self.deferred.is_empty() && self.queue.is_empty();
        let due = self.caught_up.elapsed() >= CATCH_UP_EVERY;
        if !(due || idle && self.caught_up.elapsed() >= CATCH_UP_IDLE) {
            return;
        }
        self.caught_up = std::time::Instant::now();
        if let Err(e) = super::counted::catch_up(&self.conn) {
            tracing::warn!(error = %e, "recomputing the per-developer usage failed; retried later");
        }
    }

    /// Next request already waiting, without blocking.
    fn next_waiting(&mut self) -> Option<Request> {
        self.deferred
            .pop_front()
            .or_else(|| self.queue.try_recv().ok())
    }

    /// The first write plus the writes queued right behind it, up to the
    /// record limit. Anything else stays first in line.
    fn gather(&mut self, first: PendingWrite) -> Vec<PendingWrite> {
        let mut records = first.0.len();
        let mut group = vec![first];
        while records < self.max_records {
            match self.next_waiting() {
                Some(Request::Write { batch, ack })
                    if records + batch.len() <= self.max_records =>
                {
                    records += batch.len();
                    group.push((batch, ack));
                }
                Some(other) => {
                    self.deferred.push_front(other);
                    break;
                }
                None => break,
            }
        }
        group
    }

    /// Writes a group in one transaction and answers every request in it.
    fn commit(&mut self, group: Vec<PendingWrite>) {
        let batches: Vec<&Batch> = group.iter().map(|(b, _)| b).collect();
        let started = std::time::Instant::now();
        match insert::write_batches(&self.conn, &mut self.cache, &batches) {
            Ok(receipts) => {
                crate::metrics::committed(started.elapsed().as_secs_f64());
                self.summary.add(&receipts);
                for ((_, ack), receipt) in group.into_iter().zip(receipts) {
                    let _ = ack.send(Ok(receipt));
                }
            }
            Err(e) => {
                let error = StoreError::from(e);
                tracing::warn!(requests = group.len(), error = %error, "write transaction rolled back");
                if group.len() > 1 && matches!(error, StoreError::Internal(_)) {
                    // One bad request must not fail its neighbours: retry alone.
                    for (batch, ack) in group {
                        self.commit(vec![(batch, ack)]);
                    }
                } else {
                    for (_, ack) in group {
                        let _ = ack.send(Err(error.clone()));
                    }
                }
            }
        }
    }

    /// Runs a prune step by step, serving queued writes between steps so
    /// that ingest waits at most one step.
    fn prune(&mut self, older_than_ns: i64) -> Result<PruneReceipt, StoreError> {
        let mut prune = Prune::new(older_than_ns);
        let result = loop {
            if let Err(e) = prune.step(&self.conn) {
                break Err(StoreError::from(e));
            }
            if prune.done() {
                break Ok(prune.receipt());
            }
            match self.next_waiting() {
                Some(Request::Write { batch, ack }) => {
                    let group = self.gather((batch, ack));
                    self.commit(group);
                }
                Some(other) => self.deferred.push_front(other),
                None => {}
            }
        };
        // Ids of deleted contexts, sessions and series must not be reused.
        self.cache.clear();
        match &result {
            Ok(r) => tracing::info!(
                events = r.events,
                metric_points = r.metric_points,
                spans = r.spans,
                "pruned old data"
            ),
            Err(e) => tracing::warn!(error = %e, "prune failed"),
        }
        result
    }

    /// Refuses what is still queued, then folds the WAL into the database.
    fn shut_down(&mut self) -> Result<(), StoreError> {
        self.summary.flush();
        if let Err(e) = super::counted::catch_up(&self.conn) {
            tracing::warn!(error = %e, "recomputing the per-developer usage failed");
        }
        self.queue.close();
        // Requests queued after `Close` are dropped: their callers see `Closed`.
        self.deferred.clear();
        while self.queue.try_recv().is_ok() {}
        let (busy, _, _): (i64, i64, i64) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(StoreError::from)?;
        if busy != 0 {
            tracing::warn!("WAL checkpoint incomplete: readers were still active");
        }
        Ok(())
    }
}
