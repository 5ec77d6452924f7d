//! Flight SQL prepared statements: handles and their bound parameters, held by the server
//! until the client closes them.
use dbpool_core::{Error, Param, Result};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most prepared statements open at once; beyond, creating one is RESOURCE_EXHAUSTED.
const MAX_OPEN: usize = 10_000;

/// A prepared statement: where it runs, its SQL and the parameter rows bound last.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The pool it was prepared on.
    pub pool_id: String,
    /// The transaction it runs in (empty: none).
    pub tx_id: String,
    /// Its SQL.
    pub sql: String,
    /// Parameter rows bound by the last DoPut (empty: none bound).
    pub params: Vec<Vec<Param>>,
}

/// Open prepared statements by handle.
#[derive(Default)]
pub struct PreparedRegistry {
    open: Mutex<HashMap<Vec<u8>, Prepared>>,
}

impl PreparedRegistry {
    /// Registers a statement; returns its handle.
    pub fn open(&self, p: Prepared) -> Result<Vec<u8>> {
        let mut open = self.open.lock().expect("prepared map");
        if open.len() >= MAX_OPEN {
            return Err(Error::ResourceExhausted(format!(
                "{MAX_OPEN} prepared statements are open; close some"
            )));
        }
        let handle = format!("ps-{}", uuid_like()).into_bytes();
        open.insert(handle.clone(), p);
        Ok(handle)
    }

    /// The statement behind a handle.
    pub fn get(&self, handle: &[u8]) -> Result<Prepared> {
        self.open
            .lock()
            .expect("prepared map")
            .get(handle)
            .cloned()
            .ok_or_else(not_found)
    }

    /// Binds parameter rows.
    pub fn bind(&self, handle: &[u8], params: Vec<Vec<Param>>) -> Result<()> {
        let mut open = self.open.lock().expect("prepared map");
        open.get_mut(handle).ok_or_else(not_found)?.params = params;
        Ok(())
    }

    /// Forgets a handle.
    pub fn close(&self, handle: &[u8]) -> Result<()> {
        self.open
            .lock()
            .expect("prepared map")
            .remove(handle)
            .map(|_| ())
            .ok_or_else(not_found)
    }
}

fn not_found() -> Error {
    Error::invalid(
        "prepared_statement_handle",
        "unknown or closed prepared statement",
    )
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{t:x}-{n:x}")
}
