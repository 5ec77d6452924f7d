//! The connection a call runs on: checked out of the pool for the call, or pinned to an
//! interactive transaction (`Pinned`, shared by the transaction's calls one at a time,
//! rolled back if it is dropped before commit or rollback).
use crate::pool::Dirty;
use dbpool_core::{Error, Result};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// A connection for one call, and whether a transaction is open on it.
///
/// A session that owns its connection and is dropped inside a transaction (the call
/// went away mid-batch, mid-commit) hands the connection to the driver's `abandon`,
/// which rolls back before the connection goes back to the pool.
pub struct Session<C: Send + 'static> {
    /// None only while lent out (`lend`) to a task that gives it back.
    lease: Option<Lease<C>>,
    tx: Tx<C>,
}

enum Lease<C: Send + 'static> {
    /// Owned by the call: checked out of the pool, or taken out of its pin to end it.
    Owned(C),
    /// Locked in its pin for the call.
    Pinned(Guard<C>),
}

/// The transaction open on a session.
enum Tx<C> {
    None,
    /// A batch's, or an interactive one's at its end; `abandon` rolls it back.
    Open {
        interactive: bool,
        abandon: fn(C),
    },
    /// An interactive transaction's pinned connection (its pin rolls back).
    Pinned,
}

impl<C: Send + 'static> Session<C> {
    /// A connection checked out of the pool, outside any transaction.
    pub fn pooled(conn: C) -> Self {
        Session {
            lease: Some(Lease::Owned(conn)),
            tx: Tx::None,
        }
    }

    /// An interactive transaction's connection, locked for one call.
    pub fn pinned(guard: Guard<C>) -> Self {
        Session {
            lease: Some(Lease::Pinned(guard)),
            tx: Tx::Pinned,
        }
    }

    /// An interactive transaction's connection, taken out of its pin to end it.
    pub fn ending(conn: C, abandon: fn(C)) -> Self {
        Session {
            lease: Some(Lease::Owned(conn)),
            tx: Tx::Open {
                interactive: true,
                abandon,
            },
        }
    }

    /// Whether a transaction is open on the connection (a batch's or an interactive one).
    pub fn in_transaction(&self) -> bool {
        !matches!(self.tx, Tx::None)
    }

    /// The SQL about to run may change the session: the connection is reset (or
    /// closed) before it is reused — a transaction's when the transaction ends.
    pub fn mark_dirty(&mut self)
    where
        C: Dirty,
    {
        if self.lease.is_some() {
            C::mark_dirty(self);
        }
    }

    /// Refuses `what` (a call that runs in a transaction of its own) on `database`
    /// while a transaction is open on the connection.
    pub fn refuse_in_transaction(&self, what: &str, database: &str) -> Result<()> {
        if self.in_transaction() {
            return Err(Error::Unsupported(format!(
                "{what} inside a transaction on {database}"
            )));
        }
        Ok(())
    }

    /// Whether the transaction is an interactive one (begun by BeginTransaction), whose
    /// connection outlives the call.
    pub fn interactive(&self) -> bool {
        matches!(
            self.tx,
            Tx::Pinned
                | Tx::Open {
                    interactive: true,
                    ..
                }
        )
    }

    /// A batch's transaction began on this session; `abandon` rolls it back if the
    /// session is dropped before `closed`.
    pub(super) fn opened(&mut self, abandon: fn(C)) {
        self.tx = Tx::Open {
            interactive: false,
            abandon,
        };
    }

    /// The transaction ended (committed or rolled back).
    pub(super) fn closed(&mut self) {
        self.tx = Tx::None;
    }

    /// The connection, to pin it to the transaction just begun on it.
    pub(super) fn into_conn(mut self) -> Result<C> {
        self.tx = Tx::None;
        match self.lease.take() {
            Some(Lease::Owned(c)) => Ok(c),
            _ => Err(Error::Internal(
                "a session without its own connection".into(),
            )),
        }
    }

    /// Moves the connection out into a session of its own (to run on another thread
    /// or to outlive a dropped call), leaving this one empty until `restore`.
    pub fn lend(&mut self) -> Result<Session<C>> {
        match self.lease.take() {
            Some(lease) => Ok(Session {
                lease: Some(lease),
                tx: std::mem::replace(&mut self.tx, Tx::None),
            }),
            None => Err(Error::Internal(
                "the connection was lost by an earlier failed call".into(),
            )),
        }
    }

    /// Gives back what `lend` moved out.
    pub fn restore(&mut self, mut lent: Session<C>) {
        self.lease = lent.lease.take();
        self.tx = std::mem::replace(&mut lent.tx, Tx::None);
    }
}

impl<C: Send + 'static> Deref for Session<C> {
    type Target = C;

    fn deref(&self) -> &C {
        match &self.lease {
            Some(Lease::Owned(c)) => c,
            Some(Lease::Pinned(g)) => g,
            None => panic!("a lent session is used only by the one it was lent to"),
        }
    }
}

impl<C: Send + 'static> DerefMut for Session<C> {
    fn deref_mut(&mut self) -> &mut C {
        match &mut self.lease {
            Some(Lease::Owned(c)) => c,
            Some(Lease::Pinned(g)) => g,
            None => panic!("a lent session is used only by the one it was lent to"),
        }
    }
}

impl<C: Send + 'static> Drop for Session<C> {
    fn drop(&mut self) {
        if let (Tx::Open { abandon, .. }, Some(Lease::Owned(c))) = (&self.tx, self.lease.take()) {
            abandon(c);
        }
    }
}

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
            return Err(ended());
        }
        Ok(Guard(g))
    }

    /// Takes the connection out to end the transaction.
    pub async fn take(&self) -> Result<C> {
        self.0.lock().await.conn.take().ok_or_else(ended)
    }
}

fn ended() -> Error {
    Error::invalid("transaction_id", "the transaction has ended")
}

/// Exclusive use of the pinned connection.
pub struct Guard<C: Send + 'static>(OwnedMutexGuard<TxSlot<C>>);

impl<C: Send + 'static> Deref for Guard<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.0.conn.as_ref().expect("checked in lock")
    }
}

impl<C: Send + 'static> DerefMut for Guard<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.0.conn.as_mut().expect("checked in lock")
    }
}

/// Runs `f` on the current runtime if there is one (drop paths may run without).
pub fn spawn_cleanup(f: impl std::future::Future<Output = ()> + Send + 'static) {
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        h.spawn(f);
    }
}
