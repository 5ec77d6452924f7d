//! A connection pinned to an interactive transaction, shared by its calls, that rolls
//! itself back if it is dropped before commit or rollback (client gone, daemon stopping).
use dbpool_core::{Error, Result};
use std::ops::Deref;
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Holds the connection until the transaction ends.
pub struct TxSlot<C: Send + 'static> {
    conn: Option<C>,
    /// Rolls back a connection that is dropped mid-transaction.
    abandon: fn(C),
}

impl<C: Send + 'static> Drop for TxSlot<C> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            (self.abandon)(c);
        }
    }
}

/// The pinned connection, shared by the transaction's calls (one at a time).
pub struct Pinned<C: Send + 'static>(Arc<Mutex<TxSlot<C>>>);

impl<C: Send + 'static> Pinned<C> {
    /// Pins `conn`; `abandon` must roll it back if the transaction is dropped unfinished.
    pub fn new(conn: C, abandon: fn(C)) -> Self {
        Pinned(Arc::new(Mutex::new(TxSlot {
            conn: Some(conn),
            abandon,
        })))
    }

    /// Waits for the connection (a running query holds it until its stream ends).
    pub async fn lock(&self) -> Result<Guard<C>> {
        let g = self.0.clone().lock_owned().await;
        if g.conn.is_none() {
            return Err(Error::invalid(
                "transaction_id",
                "the transaction has ended",
            ));
        }
        Ok(Guard(g))
    }

    /// Takes the connection out to end the transaction.
    pub async fn take(&self) -> Result<C> {
        self.0
            .lock()
            .await
            .conn
            .take()
            .ok_or_else(|| Error::invalid("transaction_id", "the transaction has ended"))
    }
}

/// Exclusive use of the pinned connection.
pub struct Guard<C: Send + 'static>(OwnedMutexGuard<TxSlot<C>>);

impl<C: Send + 'static> Deref for Guard<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.0.conn.as_ref().expect("checked in lock")
    }
}

/// Runs `f` on the current runtime if there is one (drop paths may run without).
pub fn spawn_cleanup(f: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        h.spawn(f);
    }
}
