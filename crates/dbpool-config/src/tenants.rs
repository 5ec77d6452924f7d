//! `[tenants.<name>]`: who may call the daemon (its principals: token hashes, token
//! files and variables, certificate subjects, JWT subjects), what each tenant may do on
//! which pool, which upstreams its own pools may point at, and its quotas.
use crate::{BackendKind, Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a tenant may do on a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Query, DoGet, GetFlightInfo, GetSchema, pool status and read-only transactions.
    Read,
    /// Also Execute, ExecuteBatch, read-write transactions and DoPut.
    Write,
}

/// `[tenants.<name>.quotas]`: each 0 means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Calls of the tenant running at once (a query runs until its stream ends).
    #[serde(default)]
    pub max_concurrent_calls: u32,
    /// Calls per second, a token bucket refilled at this rate.
    #[serde(default)]
    pub calls_per_second: u32,
    /// The bucket's size: calls that may come at once after a quiet time (default:
    /// `calls_per_second`).
    #[serde(default)]
    pub burst: u32,
    /// Pools the tenant may own (create at run time).
    #[serde(default)]
    pub max_pools: u32,
    /// Connections across the pools the tenant owns (the sum of their `max_connections`).
    #[serde(default)]
    pub max_connections: u32,
    /// Rows one result may stream.
    #[serde(default)]
    pub max_result_rows: u64,
    /// Bytes of Arrow data one result may stream.
    #[serde(default)]
    pub max_result_bytes: u64,
}

/// One `[tenants.<name>]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// SHA-256 of each bearer token of the tenant, in hex (`sha256sum` of the token).
    #[serde(default)]
    pub token_sha256: Vec<String>,
    /// A file holding tokens of the tenant, one per line (a mounted Secret).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding a token of the tenant.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Client-certificate subjects (mutual TLS, RFC 4514, e.g. `CN=orders,O=example`).
    #[serde(default)]
    pub subjects: Vec<String>,
    /// JWT `sub` claims that are this tenant (e.g.
    /// `system:serviceaccount:shop:orders`), checked as `[auth.jwt]` says.
    #[serde(default)]
    pub jwt_subjects: Vec<String>,
    /// May be named by the claim `[auth.jwt] tenant_claim` of a JWT (its value is the
    /// tenant's name); off: only its own principals name it. Such a tenant needs no
    /// principal of its own.
    #[serde(default)]
    pub named_by_jwt_claim: bool,
    /// Its rights per pool id: `read` or `write`; `"*"` names every pool.
    #[serde(default)]
    pub pools: BTreeMap<String, Right>,
    /// May create and remove any pool, see every pool and its metrics, and write to
    /// every pool.
    #[serde(default)]
    pub admin: bool,
    /// May create pools at run time (it then owns them: write, status, removal), to the
    /// upstreams of `upstreams` only.
    #[serde(default)]
    pub create_pools: bool,
    /// Where the pools it creates may point: `"<backend>://<host>:<port>"` (port
    /// optional: the backend's default), or `"sqlite"` for files in `server.data_dir`.
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// `[tenants.<name>.quotas]`.
    #[serde(default)]
    pub quotas: Quotas,
}

/// An upstream a tenant's pools may point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// SQLite files inside `server.data_dir`.
    Sqlite,
    /// A network database.
    Host {
        /// Its kind, from the scheme.
        kind: BackendKind,
        /// The host name or address, lower case.
        host: String,
        /// The port (the backend's default when the entry names none).
        port: u16,
    },
}

/// The port a database listens on when a URL names none.
pub fn default_port(kind: BackendKind) -> u16 {
    match kind {
        BackendKind::Postgres => 5432,
        BackendKind::Mssql => 1433,
        BackendKind::Redis => 6379,
        BackendKind::Influxdb => 8086,
        BackendKind::Sqlite => 0,
    }
}

impl Upstream {
    /// Parses an entry of `upstreams`.
    pub fn parse(text: &str) -> std::result::Result<Upstream, String> {
        if text == "sqlite" {
            return Ok(Upstream::Sqlite);
        }
        let url = url::Url::parse(text)
            .map_err(|e| format!("`{text}` is not <backend>://<host>:<port>: {e}"))?;
        let kind = BackendKind::from_scheme(url.scheme())
            .ok_or_else(|| format!("`{text}`: unknown backend `{}`", url.scheme()))?;
        if kind == BackendKind::Sqlite {
            return Err(format!("`{text}`: write `sqlite` for SQLite files"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{text}` names no host"))?;
        if !url.path().trim_matches('/').is_empty() || url.query().is_some() {
            return Err(format!("`{text}`: only backend, host and port"));
        }
        Ok(Upstream::Host {
            kind,
            host: host.to_ascii_lowercase(),
            port: url.port().unwrap_or_else(|| default_port(kind)),
        })
    }
}

/// Whether `hex` is a SHA-256 digest written in hex (64 hex digits).
pub fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A tenant name: 1..=64 of letters, digits, `_`, `-`, `.` (it appears in logs and the
/// audit log).
fn validate_name(name: &str) -> std::result::Result<(), String> {
    crate::validate_pool_id(name)
        .map_err(|_| format!("tenant name `{name}` must be 1-64 letters, digits, '_', '-' or '.'"))
}

impl TenantConfig {
    /// Checks the tenant's values; `pools` are the configured pool ids (a right on
    /// another id is refused: a typo would silently grant nothing); `named_by_jwt`: a
    /// JWT claim names tenants (`[auth.jwt] tenant_claim`), so one needs no principal of
    /// its own. Keys are named `tenants.<name>.<key>`.
    pub fn validate(&self, name: &str, pools: &[&str], named_by_jwt: bool) -> Result<()> {
        let key = |k: &str| format!("tenants.{name}.{k}");
        validate_name(name).map_err(|m| Error::invalid(format!("tenants.{name}"), m))?;
        for (i, h) in self.token_sha256.iter().enumerate() {
            if !is_sha256_hex(h) {
                return Err(Error::invalid(
                    key("token_sha256"),
                    format!(
                        "entry {i} is not a SHA-256 in hex (64 hex digits; \
                         `printf %s \"$TOKEN\" | sha256sum`)"
                    ),
                ));
            }
        }
        if let Some(var) = &self.token_env {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(Error::invalid(
                    key("token_env"),
                    "must name an environment variable",
                ));
            }
        }
        for id in self.pools.keys() {
            if id != "*" && !pools.contains(&id.as_str()) {
                return Err(Error::invalid(
                    key("pools"),
                    format!("no pool `{id}` is configured (known: {})", pools.join(", ")),
                ));
            }
        }
        for u in &self.upstreams {
            Upstream::parse(u).map_err(|m| Error::invalid(key("upstreams"), m))?;
        }
        if !self.upstreams.is_empty() && !self.create_pools && !self.admin {
            return Err(Error::invalid(
                key("upstreams"),
                "only matters with create_pools = true",
            ));
        }
        let has_principal = !self.token_sha256.is_empty()
            || self.token_file.is_some()
            || self.token_env.is_some()
            || !self.subjects.is_empty()
            || !self.jwt_subjects.is_empty();
        if self.named_by_jwt_claim && !named_by_jwt {
            return Err(Error::invalid(
                key("named_by_jwt_claim"),
                "needs [auth.jwt] tenant_claim",
            ));
        }
        if !has_principal && !self.named_by_jwt_claim {
            return Err(Error::invalid(
                format!("tenants.{name}"),
                "has no principal: set token_sha256, token_file, token_env, subjects or \
                 jwt_subjects (or name tenants by a JWT claim, [auth.jwt] tenant_claim)",
            ));
        }
        Ok(())
    }

    /// The upstreams, parsed (after [`TenantConfig::validate`]).
    pub fn upstreams(&self) -> Vec<Upstream> {
        self.upstreams
            .iter()
            .filter_map(|u| Upstream::parse(u).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(text: &str) -> TenantConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_tenant_parses_and_checks_its_hashes_pools_and_upstreams() {
        let t = tenant(&format!(
            "token_sha256 = [\"{}\"]\npools = {{ pg = \"write\", lite = \"read\" }}\n\
             create_pools = true\nupstreams = [\"postgresql://DB.internal\", \"sqlite\", \
             \"redis://cache:6380\"]\n[quotas]\nmax_concurrent_calls = 4\n",
            "ab".repeat(32)
        ));
        t.validate("orders", &["pg", "lite"], false).unwrap();
        assert_eq!(t.pools["pg"], Right::Write);
        assert_eq!(t.quotas.max_concurrent_calls, 4);
        assert_eq!(
            t.upstreams(),
            [
                Upstream::Host {
                    kind: BackendKind::Postgres,
                    host: "db.internal".into(),
                    port: 5432
                },
                Upstream::Sqlite,
                Upstream::Host {
                    kind: BackendKind::Redis,
                    host: "cache".into(),
                    port: 6380
                },
            ]
        );
        let e = t
            .validate("orders", &["pg"], false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tenants.orders.pools") && e.contains("`lite`"),
            "{e}"
        );
    }

    #[test]
    fn malformed_hashes_missing_principals_and_bad_upstreams_are_refused() {
        let bad_hash = tenant("token_sha256 = [\"abc\"]\n");
        let e = bad_hash.validate("a", &[], false).unwrap_err().to_string();
        assert!(
            e.contains("tenants.a.token_sha256") && e.contains("64 hex"),
            "{e}"
        );
        let none = tenant("admin = true\n");
        let e = none.validate("a", &[], false).unwrap_err().to_string();
        assert!(e.contains("no principal"), "{e}");
        assert!(
            none.validate("a", &[], true).is_err(),
            "only when it opts in"
        );
        let by_claim = tenant("named_by_jwt_claim = true\n");
        by_claim.validate("a", &[], true).unwrap();
        let e = by_claim.validate("a", &[], false).unwrap_err().to_string();
        assert!(e.contains("needs [auth.jwt] tenant_claim"), "{e}");
        for (u, says) in [
            ("ftp://x:1", "unknown backend"),
            ("postgresql:///db", "no host"),
            ("postgresql://h/db", "only backend"),
            ("sqlite:///x.db", "write `sqlite`"),
        ] {
            let t = tenant(&format!(
                "token_env = \"T\"\ncreate_pools = true\nupstreams = [\"{u}\"]\n"
            ));
            let e = t.validate("a", &[], false).unwrap_err().to_string();
            assert!(e.contains(says), "{u}: {e}");
        }
        let name = tenant("token_env = \"T\"\n");
        assert!(name.validate("a b", &[], false).is_err());
    }
}
