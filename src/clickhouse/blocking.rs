//! A small runtime of its own for the tables that are called blocking
//! (tokens on the verification path, the audit log on every tool call, and
//! both from the CLI): each call runs its work there and waits for the
//! answer, so it may be made from any thread, async or not.

use std::future::Future;
use std::time::Duration;

/// The runtime; dropping it never blocks, so it may be dropped anywhere.
pub(crate) struct Blocking {
    runtime: Option<tokio::runtime::Runtime>,
    /// The longest a call waits: a server that accepted a request and never
    /// answers fails the call instead of holding its caller for ever.
    timeout: Duration,
}

impl Blocking {
    /// One worker thread named `name`, each call waiting at most `timeout`.
    pub(crate) fn new(name: &str, timeout: Duration) -> Result<Blocking, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Blocking {
            runtime: Some(runtime),
            timeout,
        })
    }

    /// Runs `work` and waits for it; the error as text.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, clickhouse::error::Error>> + Send + 'static,
    ) -> Result<T, String> {
        let runtime = self.runtime.as_ref().ok_or("closed")?;
        let (tx, rx) = std::sync::mpsc::channel();
        let timeout = self.timeout;
        runtime.spawn(async move {
            let _ = tx.send(tokio::time::timeout(timeout, work).await);
        });
        rx.recv()
            .map_err(|_| "stopped".to_string())?
            .map_err(|_| format!("ClickHouse did not answer within {} s", timeout.as_secs()))?
            .map_err(|e| format!("ClickHouse: {e}"))
    }
}

impl Drop for Blocking {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
