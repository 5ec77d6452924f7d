//! What a client connection last proved: the `authorization` value it sent and the
//! caller its token named, so the next call with the same value skips hashing it
//! (SHA-256 was ~4k of the ~115k instructions of a small query). The value is compared
//! in constant time; only bearer tokens are kept (a JWT expires and is checked again;
//! tokens change only when the daemon restarts).
use super::same;
use super::tenants::Caller;
use parking_lot::Mutex;
use std::sync::Arc;

/// The last credentials of one client connection.
#[derive(Default)]
pub struct AuthMemo(Mutex<Option<Proved>>);

/// An `authorization` value and the caller it named.
type Proved = (Box<[u8]>, Arc<Caller>);

impl std::fmt::Debug for AuthMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthMemo")
    }
}

/// Every connection's memo is as good as another's: what a connection is does not
/// depend on what it last sent.
impl PartialEq for AuthMemo {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for AuthMemo {}

impl AuthMemo {
    /// The caller of `value` if it is what this connection proved last.
    pub fn get(&self, value: &[u8]) -> Option<Arc<Caller>> {
        let memo = self.0.lock();
        let (kept, caller) = memo.as_ref()?;
        same(kept, value).then(|| caller.clone())
    }

    /// Remembers that `value` named `caller`.
    pub fn put(&self, value: &[u8], caller: Arc<Caller>) {
        *self.0.lock() = Some((value.into(), caller));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Tenant};

    #[test]
    fn only_the_same_value_finds_the_caller() {
        let config: dbpool_config::TenantConfig = toml::from_str("token_env = \"T\"\n").unwrap();
        let caller = Arc::new(Caller {
            tenant: Arc::new(Tenant::new("t", &config)),
            principal: Principal::Token,
        });
        let memo = AuthMemo::default();
        assert!(memo.get(b"Bearer a").is_none());
        memo.put(b"Bearer a", caller);
        assert_eq!(&*memo.get(b"Bearer a").unwrap().tenant.name, "t");
        for other in [&b"Bearer b"[..], b"Bearer a ", b"Bearer", b""] {
            assert!(memo.get(other).is_none(), "{other:?}");
        }
    }
}
