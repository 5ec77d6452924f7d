//! The server's background tasks (health checks, the metrics endpoint, the reaper of
//! idle transactions and prepared statements): each gets a cancellation token, and at
//! shutdown they are cancelled and awaited, not aborted. A panicked task is reported so
//! that the server stops with an error.
use super::clock::{Clock, Ticker};
use super::ServerError;
use crate::flight::FlightState;
use dbpool_core::TxRegistry;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// Running tasks, by name.
pub(crate) struct Tasks {
    set: JoinSet<()>,
    names: HashMap<Id, &'static str>,
    cancel: CancellationToken,
}

impl Tasks {
    pub(crate) fn new() -> Self {
        Tasks {
            set: JoinSet::new(),
            names: HashMap::new(),
            cancel: CancellationToken::new(),
        }
    }

    /// Spawns `task` with the token that tells it to stop.
    pub(crate) fn spawn<F, Fut>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handle = self.set.spawn(task(self.cancel.child_token()));
        self.names.insert(handle.id(), name);
    }

    /// Resolves when a task panics; pending while none has (a task that returns is
    /// done, not failed).
    pub(crate) async fn panicked(&mut self) -> ServerError {
        loop {
            match self.set.join_next_with_id().await {
                Some(Err(e)) if e.is_panic() => return self.panic_error(e),
                Some(_) => {}
                None => std::future::pending().await,
            }
        }
    }

    fn panic_error(&self, e: JoinError) -> ServerError {
        let task = self.names.get(&e.id()).copied().unwrap_or("background");
        panic_error(task, e)
    }

    /// Cancels every task and waits for each to stop, up to `bound` by `clock`; a task
    /// still running then is aborted (and logged). The first panic is the error.
    pub(crate) async fn shutdown(
        mut self,
        clock: &dyn Clock,
        bound: Duration,
    ) -> Result<(), ServerError> {
        self.cancel.cancel();
        let deadline = clock.sleep_until(clock.now() + bound);
        tokio::pin!(deadline);
        let mut first = None;
        loop {
            tokio::select! {
                next = self.set.join_next_with_id() => match next {
                    None => break,
                    Some(Err(e)) if e.is_panic() => {
                        let e = self.panic_error(e);
                        tracing::error!(error = %e, "task failed");
                        first.get_or_insert(e);
                    }
                    Some(_) => {}
                },
                _ = &mut deadline => {
                    tracing::warn!(tasks = self.set.len(), "tasks still running after their time to stop: aborted");
                    self.set.abort_all();
                    // Aborted tasks end at once; a panic meanwhile still counts.
                    while let Some(r) = self.set.join_next_with_id().await {
                        if let Err(e) = r {
                            if e.is_panic() {
                                first.get_or_insert(self.panic_error(e));
                            }
                        }
                    }
                    break;
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// The error of task `task` that panicked with `e`.
pub(crate) fn panic_error(task: &'static str, e: JoinError) -> ServerError {
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    ServerError::TaskPanicked { task, message }
}

/// Ends the transactions and prepared statements of closed connections as they close,
/// and the idle ones at each tick, until cancelled.
pub(crate) async fn reap(
    txs: Arc<TxRegistry>,
    prepared: Arc<FlightState>,
    mut closed: UnboundedReceiver<u64>,
    mut tick: Ticker,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            Some(conn) = closed.recv() => {
                txs.owner_gone(conn).await;
                prepared.connection_closed(conn);
            }
            _ = tick.tick() => {
                txs.reap_idle().await;
                prepared.reap_idle();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::clock::TokioClock;

    #[tokio::test(start_paused = true)]
    async fn tasks_are_cancelled_and_awaited_not_aborted() {
        let mut tasks = Tasks::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        tasks.spawn("worker", |cancel| async move {
            cancel.cancelled().await;
            // Cleanup after the signal runs to its end.
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ = done_tx.send(());
        });
        tasks
            .shutdown(&TokioClock, Duration::from_secs(1))
            .await
            .unwrap();
        done_rx.await.expect("the task finished its cleanup");
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_is_reported_with_the_task_name() {
        let mut tasks = Tasks::new();
        tasks.spawn("steady", |cancel| async move { cancel.cancelled().await });
        tasks.spawn("health", |_| async { panic!("boom") });
        let e = tasks.panicked().await;
        assert!(
            matches!(&e, ServerError::TaskPanicked { task: "health", message } if message == "boom"),
            "{e}"
        );
        tasks
            .shutdown(&TokioClock, Duration::from_secs(1))
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_during_shutdown_is_the_error_and_a_stuck_task_is_aborted() {
        let mut tasks = Tasks::new();
        tasks.spawn("reaper", |cancel| async move {
            cancel.cancelled().await;
            panic!("while stopping");
        });
        tasks.spawn("stuck", |_| std::future::pending());
        let e = tasks
            .shutdown(&TokioClock, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(e, ServerError::TaskPanicked { task: "reaper", .. }),
            "{e}"
        );
    }
}
