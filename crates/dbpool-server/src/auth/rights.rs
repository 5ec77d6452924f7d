//! What a tenant may do: the [`TenantAuthorizer`], asked at the call layer's one
//! admission point for every call, statement or not. A pool the tenant has no right on
//! answers exactly as a pool that does not exist (NOT_FOUND), so a tenant cannot learn
//! the names of another's pools; a write on a pool it may only read is
//! PERMISSION_DENIED.
use super::tenants::Caller;
use super::Tenant;
use crate::hooks::{Authorizer, Call, Method};
use dbpool_config::Right;
use dbpool_core::{Error, Result};

/// Allows a call when its caller's tenant has the right; calls without a caller (no
/// tenants configured, the daemon's own calls) are allowed.
#[derive(Debug, Default, Clone, Copy)]
pub struct TenantAuthorizer;

/// The right `method` needs on its pool.
fn needs(method: Method) -> Right {
    match method {
        Method::Query
        | Method::Schema
        | Method::TableExists
        | Method::ReadPools
        | Method::BeginReadOnly
        | Method::Commit
        | Method::Rollback => Right::Read,
        _ => Right::Write,
    }
}

/// The refusal of a call on a pool `tenant` may not see: the same error as an unknown
/// pool's, and the call's audit line says it was refused.
pub fn hidden(pool: &str) -> Error {
    crate::conn::note_refused();
    Error::PoolNotFound(dbpool_core::clip(pool))
}

/// Whether `tenant` may see `pool` at all (lists and metrics show only those).
pub fn sees(tenant: &Tenant, pool: &str) -> bool {
    tenant.right(pool).is_some()
}

impl TenantAuthorizer {
    fn check(caller: &Caller, call: &Call<'_>) -> Result<()> {
        let t = &caller.tenant;
        match call.method {
            Method::CreatePool if t.admin || t.create_pools => Ok(()),
            Method::CreatePool => Err(Error::PermissionDenied(format!(
                "tenant `{}` may not create pools",
                t.name
            ))),
            Method::RemovePool if t.admin || t.owns(call.pool_id) => Ok(()),
            Method::RemovePool if sees(t, call.pool_id) => Err(Error::PermissionDenied(format!(
                "tenant `{}` may not remove pool `{}`; only an admin or the tenant that created it may",
                t.name, call.pool_id
            ))),
            Method::RemovePool => Err(hidden(call.pool_id)),
            // ListPools and the metrics of all pools: the handler shows only its own.
            Method::ReadPools if call.pool_id.is_empty() => Ok(()),
            m => match t.right(call.pool_id) {
                None => Err(hidden(call.pool_id)),
                Some(have) if have >= needs(m) => Ok(()),
                Some(_) => Err(Error::PermissionDenied(format!(
                    "tenant `{}` may only read pool `{}` ({} needs write)",
                    t.name,
                    call.pool_id,
                    m.name()
                ))),
            },
        }
    }
}

impl Authorizer for TenantAuthorizer {
    fn authorize(&self, call: &Call<'_>) -> Result<()> {
        match &call.caller {
            Some(caller) => Self::check(caller, call),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;
    use std::sync::Arc;

    fn caller(text: &str) -> Arc<Caller> {
        let config: dbpool_config::TenantConfig = toml::from_str(text).unwrap();
        Arc::new(Caller {
            tenant: Arc::new(Tenant::new("t", &config)),
            principal: Principal::Token,
        })
    }

    fn ask(c: &Arc<Caller>, method: Method, pool: &str) -> Result<()> {
        let mut call = Call::new(method, pool);
        call.caller = Some(c.clone());
        TenantAuthorizer.authorize(&call)
    }

    #[test]
    fn a_read_tenant_reads_and_is_refused_writes_and_other_pools_are_not_found() {
        let reader = caller("token_env = \"T\"\npools = { r = \"read\" }\n");
        for m in [
            Method::Query,
            Method::Schema,
            Method::BeginReadOnly,
            Method::ReadPools,
        ] {
            ask(&reader, m, "r").unwrap();
        }
        for m in [
            Method::Execute,
            Method::ExecuteBatch,
            Method::BulkInsert,
            Method::Begin,
        ] {
            let e = ask(&reader, m, "r").unwrap_err();
            assert!(
                matches!(&e, Error::PermissionDenied(s) if s.contains("may only read pool `r`")),
                "{e}"
            );
        }
        let hidden = ask(&reader, Method::Query, "secret").unwrap_err();
        assert_eq!(
            hidden.to_string(),
            Error::PoolNotFound("secret".into()).to_string()
        );
        assert!(matches!(hidden, Error::PoolNotFound(_)));
        assert!(matches!(
            ask(&reader, Method::RemovePool, "secret"),
            Err(Error::PoolNotFound(_))
        ));
        assert!(matches!(
            ask(&reader, Method::RemovePool, "r"),
            Err(Error::PermissionDenied(_))
        ));
        assert!(matches!(
            ask(&reader, Method::CreatePool, "new"),
            Err(Error::PermissionDenied(_))
        ));
        ask(&reader, Method::ReadPools, "").unwrap();
    }

    #[test]
    fn creators_own_what_they_create_and_admins_do_everything() {
        let creator = caller("token_env = \"T\"\ncreate_pools = true\nupstreams = [\"sqlite\"]\n");
        ask(&creator, Method::CreatePool, "mine").unwrap();
        creator.tenant.reserve("mine", 1).unwrap();
        ask(&creator, Method::Execute, "mine").unwrap();
        ask(&creator, Method::RemovePool, "mine").unwrap();
        let admin = caller("token_env = \"T\"\nadmin = true\n");
        for m in [
            Method::CreatePool,
            Method::RemovePool,
            Method::Execute,
            Method::Begin,
        ] {
            ask(&admin, m, "any").unwrap();
        }
        assert!(
            TenantAuthorizer
                .authorize(&Call::new(Method::Execute, "x"))
                .is_ok(),
            "no caller"
        );
    }
}
