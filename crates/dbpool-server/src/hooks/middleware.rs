//! The middleware chain: ordered [`Middleware`]s that see each call before it runs (and
//! may rewrite its SQL or refuse it) and its [`Outcome`] after. Empty by default; slow
//! query logs, statement tags, query rules and statistics are middlewares.
use super::Call;
use dbpool_core::{Error, Result};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How a call ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// Why it failed; `None` when it succeeded.
    pub error: Option<&'a Error>,
    /// Rows streamed or affected.
    pub rows: u64,
    /// Bytes of Arrow data streamed (queries).
    pub bytes: u64,
    /// From the call's start to its end (a query's: until its stream started; the rows
    /// and bytes it streams are counted by the pool's metrics).
    pub elapsed: Duration,
}

impl<'a> Outcome<'a> {
    /// A call refused before it ran.
    pub fn refused(error: &'a Error) -> Self {
        Outcome {
            error: Some(error),
            rows: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
        }
    }
}

/// One link of the chain. Both hooks run on the call's task: keep them quick.
pub trait Middleware: Send + Sync + 'static {
    /// Before the call runs: may rewrite `call.sql`, or refuse the call with the error
    /// the client gets. The default lets it pass unchanged.
    fn before(&self, call: &mut Call<'_>) -> Result<()> {
        let _ = call;
        Ok(())
    }

    /// After the call ended (or was refused by a later middleware), with the call as
    /// the database saw it.
    fn after(&self, call: &Call<'_>, outcome: &Outcome<'_>) {
        let _ = (call, outcome);
    }
}

/// Middlewares in order: `before` runs first to last, `after` last to first.
#[derive(Clone, Default)]
pub struct MiddlewareChain {
    links: Vec<Arc<dyn Middleware>>,
}

impl fmt::Debug for MiddlewareChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MiddlewareChain({} links)", self.links.len())
    }
}

impl MiddlewareChain {
    /// Appends `m`: it runs after those already in the chain.
    pub fn push(&mut self, m: Arc<dyn Middleware>) {
        self.links.push(m);
    }

    /// Whether the chain has no middleware (the call path can skip it).
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Runs every `before`, in order. The first refusal ends the walk: the middlewares
    /// that already let the call pass see it as the call's outcome, and it is returned.
    pub fn before(&self, call: &mut Call<'_>) -> Result<()> {
        for (i, m) in self.links.iter().enumerate() {
            if let Err(e) = m.before(call) {
                let outcome = Outcome::refused(&e);
                for passed in self.links[..i].iter().rev() {
                    passed.after(call, &outcome);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Runs every `after`, last to first.
    pub fn after(&self, call: &Call<'_>, outcome: &Outcome<'_>) {
        for m in self.links.iter().rev() {
            m.after(call, outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::Method;
    use parking_lot::Mutex;
    use std::borrow::Cow;

    /// Writes what it sees to a shared log; refuses SQL holding `refuse`, rewrites by
    /// appending its tag.
    struct Recorder {
        tag: &'static str,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Middleware for Recorder {
        fn before(&self, call: &mut Call<'_>) -> Result<()> {
            let sql = call.sql.as_deref().unwrap_or_default().to_string();
            self.log.lock().push(format!("{} before {sql}", self.tag));
            if sql.contains(&format!("refuse {}", self.tag)) {
                return Err(Error::PermissionDenied(format!("by {}", self.tag)));
            }
            call.sql = Some(Cow::Owned(format!("{sql} /*{}*/", self.tag)));
            Ok(())
        }

        fn after(&self, _call: &Call<'_>, outcome: &Outcome<'_>) {
            let what = match outcome.error {
                Some(e) => format!("error {e}"),
                None => format!("{} rows", outcome.rows),
            };
            self.log.lock().push(format!("{} after {what}", self.tag));
        }
    }

    fn chain(log: &Arc<Mutex<Vec<String>>>) -> MiddlewareChain {
        let mut chain = MiddlewareChain::default();
        for tag in ["a", "b", "c"] {
            chain.push(Arc::new(Recorder {
                tag,
                log: log.clone(),
            }));
        }
        chain
    }

    #[test]
    fn before_runs_in_order_with_rewrites_and_after_in_reverse() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let chain = chain(&log);
        let mut call = Call::new(Method::Query, "p").with_sql("SELECT 1");
        chain.before(&mut call).unwrap();
        assert_eq!(call.sql.as_deref(), Some("SELECT 1 /*a*/ /*b*/ /*c*/"));
        let ok = Outcome {
            error: None,
            rows: 1,
            bytes: 8,
            elapsed: Duration::from_millis(3),
        };
        chain.after(&call, &ok);
        assert_eq!(
            *log.lock(),
            [
                "a before SELECT 1",
                "b before SELECT 1 /*a*/",
                "c before SELECT 1 /*a*/ /*b*/",
                "c after 1 rows",
                "b after 1 rows",
                "a after 1 rows",
            ]
        );
    }

    #[test]
    fn a_refusal_stops_the_chain_and_those_passed_see_it() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let chain = chain(&log);
        let mut call = Call::new(Method::Execute, "p").with_sql("refuse b");
        let e = chain.before(&mut call).unwrap_err();
        assert!(matches!(&e, Error::PermissionDenied(m) if m == "by b"));
        let log = log.lock();
        assert_eq!(log.len(), 3, "{log:?}");
        assert_eq!(log[0], "a before refuse b");
        assert_eq!(log[1], "b before refuse b /*a*/");
        assert!(log[2].starts_with("a after error"), "{log:?}");
    }

    #[test]
    fn an_empty_chain_passes_everything_unchanged() {
        let chain = MiddlewareChain::default();
        assert!(chain.is_empty());
        let mut call = Call::new(Method::Query, "p").with_sql("SELECT 1");
        chain.before(&mut call).unwrap();
        assert_eq!(call.sql, Some(Cow::Borrowed("SELECT 1")));
    }
}
