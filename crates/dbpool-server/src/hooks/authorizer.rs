//! Who may make a call: the [`Authorizer`] a server asks before each call takes a
//! connection. The daemon has no authentication yet (a localhost sidecar), so the
//! default, [`AllowAll`], allows everything; tenants and tokens plug in here.
use super::Call;
use dbpool_core::Result;

/// Allows or refuses calls. Asked once per call, before it takes a connection: keep it
/// fast and free of I/O (look up what a token means when it is first seen, not per call).
pub trait Authorizer: Send + Sync + 'static {
    /// `Ok` allows the call; an error refuses it and is what the client gets
    /// (`PermissionDenied` for a caller who may not, `AuthFailed` for one not known).
    fn authorize(&self, call: &Call<'_>) -> Result<()>;
}

/// Allows every call.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _call: &Call<'_>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::Method;
    use dbpool_core::Error;

    /// Lets writes through only on pool `rw`.
    struct ReadOnlyButRw;

    impl Authorizer for ReadOnlyButRw {
        fn authorize(&self, call: &Call<'_>) -> Result<()> {
            if call.method.writes() && call.pool_id != "rw" {
                return Err(Error::PermissionDenied(format!(
                    "{} on pool {}",
                    call.method.name(),
                    call.pool_id
                )));
            }
            Ok(())
        }
    }

    #[test]
    fn the_default_allows_everything_and_a_custom_one_decides_by_method_and_pool() {
        let execute = Call::new(Method::Execute, "ro").with_sql("DELETE FROM t");
        assert!(AllowAll.authorize(&execute).is_ok());
        let e = ReadOnlyButRw.authorize(&execute).unwrap_err();
        assert!(matches!(&e, Error::PermissionDenied(m) if m == "execute on pool ro"));
        assert!(ReadOnlyButRw
            .authorize(&Call::new(Method::Query, "ro"))
            .is_ok());
        assert!(ReadOnlyButRw
            .authorize(&Call::new(Method::Execute, "rw"))
            .is_ok());
        // Outside a served request there is no client connection.
        assert_eq!(execute.conn, None);
    }
}
