//! An interactive transaction on a pinned connection, as the server sees it:
//! `dbpool_core::Transaction`, written once for every database. Each call locks the
//! connection (a running query holds it until its stream ends); a transaction dropped
//! unfinished is rolled back by the driver's `abandon`.
use super::run::{Exec, SessionSource};
use super::{end, Driver, Pinned, Session};
use async_trait::async_trait;
use dbpool_core::{Result, Transaction};
use std::sync::Arc;

impl<D: Driver> SessionSource<D> for Pinned<D::Conn> {
    async fn session(&self, _: &D) -> Result<Session<D::Conn>> {
        Ok(Session::pinned(self.lock().await?))
    }
}

/// A transaction holding its connection until commit or rollback.
pub type PinnedTx<D> = Exec<D, Pinned<<D as Driver>::Conn>>;

impl<D: Driver> PinnedTx<D> {
    /// Pins `conn`, on which the transaction has begun.
    pub fn pin(driver: Arc<D>, conn: D::Conn) -> Self {
        Exec {
            driver,
            source: Pinned::new(conn, D::abandon),
        }
    }

    /// Takes the connection out of its pin and ends the transaction on it.
    async fn end(&self, commit: bool) -> Result<()> {
        let mut s = Session::ending(self.source.take().await?, D::abandon);
        end(&*self.driver, &mut s, commit).await
    }
}

#[async_trait]
impl<D: Driver> Transaction for PinnedTx<D> {
    async fn commit(&self) -> Result<()> {
        self.end(true).await
    }

    async fn rollback(&self) -> Result<()> {
        self.end(false).await
    }
}
