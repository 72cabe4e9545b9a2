//! Inserts batched across OTLP requests: ClickHouse wants few large
//! inserts, exporters send many small requests. Requests queue here; one
//! task takes what is queued (up to `max_rows` records, waiting at most
//! `max_wait` after the first for more), inserts it, and only then answers
//! each request. A failed insert answers every request in it with an
//! error (503 to the exporter, which retries; the retried rows replace
//! whatever part did get written, see [`super`]).

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::ClickHouse;
use super::rows::{self, Rows};
use crate::rows::Batch;
use crate::store::{PruneReceipt, StoreError, WriteReceipt};

/// Size and time bounds of one insert (`[store.batching]`).
pub use crate::config::Batching;

struct Pending {
    rows: Rows,
    ack: oneshot::Sender<Result<WriteReceipt, StoreError>>,
}

/// Where the OTLP transports write when the store is ClickHouse.
#[derive(Clone)]
pub struct Sink {
    tx: mpsc::Sender<Pending>,
    store: ClickHouse,
}

impl Sink {
    /// Starts the inserting task (it ends when every `Sink` clone is dropped).
    pub fn start(store: ClickHouse, batching: Batching) -> Sink {
        let (tx, rx) = mpsc::channel(batching.queue.max(1));
        tokio::spawn(run(store.clone(), batching, rx));
        Sink { tx, store }
    }

    /// Queues `batch` and waits until ClickHouse has accepted it.
    pub async fn write(&self, batch: Batch) -> Result<WriteReceipt, StoreError> {
        if batch.is_empty() {
            return Ok(WriteReceipt::default());
        }
        // Off the async threads, as the decoding before it: a large export
        // is many JSON texts to write.
        let rows = tokio::task::spawn_blocking(move || rows::of_batch(&batch))
            .await
            .map_err(|e| StoreError::Internal(format!("row conversion failed: {e}")))?;
        let (ack, done) = oneshot::channel();
        self.tx
            .try_send(Pending { rows, ack })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        done.await.map_err(|_| StoreError::Closed)?
    }
}

impl crate::store::Sink for Sink {
    fn write(&self, batch: Batch) -> BoxFuture<'static, Result<WriteReceipt, StoreError>> {
        let sink = self.clone();
        async move { sink.write(batch).await }.boxed()
    }

    fn ready(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let store = self.store.clone();
        async move {
            store
                .ping()
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        }
        .boxed()
    }

    fn prune(&self, cutoff_ns: i64) -> BoxFuture<'static, Result<PruneReceipt, StoreError>> {
        let store = self.store.clone();
        async move {
            store
                .prune(cutoff_ns)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        }
        .boxed()
    }

    fn queued_requests(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

async fn run(store: ClickHouse, batching: Batching, mut rx: mpsc::Receiver<Pending>) {
    let wait = Duration::from_millis(batching.max_wait_ms);
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + wait;
        let mut rows = Rows::default();
        // Each request's answer and how many records it brought.
        let mut acks = Vec::new();
        let mut next = Some(first);
        while let Some(p) = next.take() {
            acks.push((p.ack, p.rows.len()));
            rows.append(p.rows);
            if rows.len() < batching.max_rows
                && let Ok(Some(p)) = tokio::time::timeout_at(deadline, rx.recv()).await
            {
                next = Some(p);
            }
        }
        let started = std::time::Instant::now();
        let result = rows::insert(store.ingester(), &rows).await;
        crate::metrics::committed(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                for (ack, n) in acks {
                    let _ = ack.send(Ok(WriteReceipt {
                        inserted: n as u64,
                        duplicates: 0,
                    }));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, records = rows.len(), "ClickHouse insert failed; the exporters will retry");
                for (ack, _) in acks {
                    let _ = ack.send(Err(StoreError::Unavailable(e.to_string())));
                }
            }
        }
    }
}
