//! Batches, written once: all-or-nothing in a transaction (the first failure rolls back
//! and is reported as `Error::BatchStatement`), or statement by statement with each
//! outcome reported, stopping only when the connection fails.
use super::{end, note, ConnPool, Driver, Session};
use dbpool_core::{BatchOutcome, Error, Result, Statement, StatementResult, TxOptions};

/// The outcomes of a batch so far, and what a failure does to it.
pub struct Outcomes {
    out: BatchOutcome,
    transaction: bool,
}

impl Outcomes {
    /// No outcome yet, for a batch of `n` statements.
    pub fn new(n: usize, transaction: bool) -> Self {
        Outcomes {
            out: Vec::with_capacity(n),
            transaction,
        }
    }

    /// Records statement `index`'s outcome. An error ends the batch: any failure of an
    /// all-or-nothing batch (as `BatchStatement`, to be rolled back), and a failed
    /// connection, after which no statement can run.
    pub fn record(&mut self, index: usize, outcome: Result<u64>) -> Result<()> {
        match outcome {
            Err(source) if self.transaction => Err(Error::BatchStatement {
                index,
                source: Box::new(source),
            }),
            Err(e) if e.is_connection_error() => Err(e),
            outcome => {
                self.out.push(StatementResult { index, outcome });
                Ok(())
            }
        }
    }

    /// Every statement's outcome, in order.
    pub fn finish(self) -> BatchOutcome {
        self.out
    }
}

/// Runs `statements` on one pooled connection with the driver's `execute`, inside a
/// transaction when `transaction`.
pub async fn run<D: Driver>(
    d: &D,
    statements: Vec<Statement>,
    transaction: bool,
) -> Result<BatchOutcome> {
    if let (true, Some(why)) = (transaction, D::NO_TRANSACTIONS) {
        return Err(Error::Unsupported(format!(
            "transactional batches on {}: {why}",
            D::KIND.name()
        )));
    }
    let mut s = Session::pooled(d.pool().acquire().await?);
    let mut out = Outcomes::new(statements.len(), transaction);
    if transaction {
        d.begin(&mut s, TxOptions::default()).await?;
        // Rolled back by the driver's `abandon` if the call goes away from here on.
        s.opened(D::abandon);
    }
    for (index, st) in statements.into_iter().enumerate() {
        note::<D>(&mut s, &st.sql);
        let outcome = d.execute(&mut s, &st.sql, st.params).await;
        if let Err(e) = out.record(index, outcome) {
            if transaction {
                end(d, &mut s, false).await?;
            }
            return Err(e);
        }
    }
    if transaction {
        end(d, &mut s, true).await?;
    }
    Ok(out.finish())
}
