//! [`Tenants`]: the configured tenants and how a caller is recognised — a bearer token
//! (its SHA-256 compared in constant time with every configured one), a JWT, or the
//! subject of a verified client certificate.
use super::jwt::JwtVerifier;
use super::tenant::Tenant;
use super::{same, sha256};
use crate::conn::ConnInfo;
use base64::Engine;
use dbpool_config::Config;
use dbpool_core::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;
use tonic::codegen::http::HeaderMap;

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A bearer token of the tenant.
    Token,
    /// A JWT checked against `[auth.jwt]`.
    Jwt,
    /// A client certificate verified by TLS.
    Certificate,
}

impl Principal {
    /// Its name in audit lines.
    pub fn name(self) -> &'static str {
        match self {
            Principal::Token => "token",
            Principal::Jwt => "jwt",
            Principal::Certificate => "certificate",
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's tenant.
    pub tenant: Arc<Tenant>,
    /// How it proved it.
    pub principal: Principal,
}

/// A SHA-256 digest.
type Digest = [u8; 32];

/// Everyone who may call, from `[tenants]` and `[auth.jwt]`.
pub struct Tenants {
    by_name: HashMap<String, Arc<Tenant>>,
    tokens: Vec<(Digest, Arc<Tenant>)>,
    subjects: HashMap<String, Arc<Tenant>>,
    jwt_subjects: HashMap<String, Arc<Tenant>>,
    /// The tenants a JWT's tenant claim may name (`named_by_jwt_claim`).
    by_claim: HashMap<String, Arc<Tenant>>,
    jwt: Option<(JwtVerifier, bool)>,
    /// The pool ids of the config: no tenant but an admin creates a pool under one.
    configured: std::collections::HashSet<String>,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tenants({} tenants)", self.by_name.len())
    }
}

fn hex_digest(hex: &str) -> Option<Digest> {
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn unauthenticated(m: impl Into<String>) -> Error {
    Error::Unauthenticated(m.into())
}

impl Tenants {
    /// The tenants of `config`, or `None` when it has none (every caller trusted).
    /// Reads token files and variables and the JWKS file now; the error names what
    /// could not be read, never a token.
    pub fn from_config(config: &Config) -> std::result::Result<Option<Arc<Tenants>>, String> {
        if config.tenants.is_empty() {
            return Ok(None);
        }
        let mut t = Tenants {
            by_name: HashMap::new(),
            tokens: Vec::new(),
            subjects: HashMap::new(),
            jwt_subjects: HashMap::new(),
            by_claim: HashMap::new(),
            jwt: None,
            configured: config.pool_ids().into_iter().map(str::to_string).collect(),
        };
        for (name, c) in &config.tenants {
            let tenant = Arc::new(Tenant::new(name, c));
            t.by_name.insert(name.clone(), tenant.clone());
            for h in &c.token_sha256 {
                let d = hex_digest(h).ok_or_else(|| format!("tenants.{name}.token_sha256"))?;
                t.tokens.push((d, tenant.clone()));
            }
            if let Some(path) = &c.token_file {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("tenants.{name}.token_file {}: {e}", path.display()))?;
                let lines = text.lines().map(str::trim);
                let tokens: Vec<_> = lines
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect();
                if tokens.is_empty() {
                    return Err(format!(
                        "tenants.{name}.token_file {} holds no token",
                        path.display()
                    ));
                }
                t.tokens.extend(
                    tokens
                        .iter()
                        .map(|k| (sha256(k.as_bytes()), tenant.clone())),
                );
            }
            if let Some(var) = &c.token_env {
                match std::env::var(var) {
                    Ok(v) if !v.trim().is_empty() => {
                        t.tokens.push((sha256(v.trim().as_bytes()), tenant.clone()))
                    }
                    _ => return Err(format!("tenants.{name}.token_env: ${var} is not set")),
                }
            }
            for s in &c.subjects {
                t.subjects.insert(s.clone(), tenant.clone());
            }
            for s in &c.jwt_subjects {
                t.jwt_subjects.insert(s.clone(), tenant.clone());
            }
            if c.named_by_jwt_claim {
                t.by_claim.insert(name.clone(), tenant.clone());
            }
        }
        if let Some(jwt) = &config.auth.jwt {
            t.jwt = Some((JwtVerifier::load(jwt)?, jwt.tenant_claim.is_some()));
        }
        Ok(Some(Arc::new(t)))
    }

    /// The tenant called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Tenant>> {
        self.by_name.get(name)
    }

    /// Whether `pool` is a pool id of the config (reserved: after an admin removed it,
    /// a tenant creating it anew would receive the data meant for the configured one).
    pub fn configured(&self, pool: &str) -> bool {
        self.configured.contains(pool)
    }

    /// Who sends `headers` over `conn`: its bearer token when it sends one (a wrong one
    /// is refused even if its certificate would do), else its certificate's subject.
    pub fn authenticate(&self, headers: &HeaderMap, conn: Option<&ConnInfo>) -> Result<Caller> {
        if let Some(value) = headers.get("authorization") {
            let value = value
                .to_str()
                .map_err(|_| unauthenticated("the authorization header is not text"))?;
            let token = strip_scheme(value, "bearer").ok_or_else(|| {
                unauthenticated("the authorization header is not `Bearer <token>`")
            })?;
            return self.bearer(token);
        }
        let subject = conn.and_then(|c| c.client_subject.as_deref());
        if let Some(tenant) = subject.and_then(|s| self.subjects.get(s)) {
            return Ok(Caller {
                tenant: tenant.clone(),
                principal: Principal::Certificate,
            });
        }
        Err(unauthenticated(
            "no credentials: send `authorization: Bearer <token>` (or connect with a client \
             certificate of a tenant)",
        ))
    }

    /// [`Tenants::authenticate`], remembering a bearer token per connection: the same
    /// `authorization` value on the same connection is not hashed again.
    pub fn authenticate_on(
        &self,
        headers: &HeaderMap,
        conn: Option<&ConnInfo>,
    ) -> Result<Arc<Caller>> {
        let value = headers.get("authorization").map(|v| v.as_bytes());
        if let (Some(v), Some(c)) = (value, conn) {
            if let Some(caller) = c.memo.get(v) {
                return Ok(caller);
            }
        }
        let caller = Arc::new(self.authenticate(headers, conn)?);
        if let (Some(v), Some(c)) = (value, conn) {
            if caller.principal == Principal::Token {
                c.memo.put(v, caller.clone());
            }
        }
        Ok(caller)
    }

    /// The caller a bearer token (or a JWT) names.
    pub fn bearer(&self, token: &str) -> Result<Caller> {
        if let Some((jwt, by_claim)) = &self.jwt {
            if JwtVerifier::looks_like_jwt(token) {
                let id = jwt.verify(token)?;
                let tenant = match (&id.tenant, by_claim) {
                    (Some(name), true) => self.by_claim.get(name),
                    _ => self.jwt_subjects.get(&id.subject),
                };
                let tenant = tenant.ok_or_else(|| {
                    unauthenticated("the JWT is valid but names no configured tenant")
                })?;
                return Ok(Caller {
                    tenant: tenant.clone(),
                    principal: Principal::Jwt,
                });
            }
        }
        let digest = sha256(token.as_bytes());
        let mut found = None;
        for (d, tenant) in &self.tokens {
            if same(d, &digest) && found.is_none() {
                found = Some(tenant);
            }
        }
        found
            .map(|t| Caller {
                tenant: t.clone(),
                principal: Principal::Token,
            })
            .ok_or_else(|| unauthenticated("the bearer token is not known"))
    }

    /// The caller of Basic credentials (the Flight SQL handshake): user is the tenant's
    /// name, password one of its tokens.
    pub fn basic(&self, value: &str) -> Result<(Caller, String)> {
        let bad = || unauthenticated("the Basic credentials are not base64 of `tenant:token`");
        let encoded = strip_scheme(value, "basic").ok_or_else(bad)?;
        // Padded (RFC 7617) or not: the Go Flight SQL driver behind ADBC leaves the `=`
        // out.
        let encoded = encoded.trim().trim_end_matches('=');
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded)
            .map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (user, password) = text.split_once(':').ok_or_else(bad)?;
        let refused = || unauthenticated("the user name or password is not known");
        let caller = self.bearer(password).map_err(|_| refused())?;
        if &*caller.tenant.name != user {
            return Err(refused());
        }
        Ok((caller, password.to_string()))
    }

    /// Every tenant.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.by_name.values()
    }
}

/// The credentials after `scheme ` (case-insensitive), if the value has that scheme.
pub(crate) fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    (s.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
}

#[cfg(test)]
#[path = "tenants_tests.rs"]
mod tests;
