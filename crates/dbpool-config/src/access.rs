//! Who may reach the daemon and what is written down about it: `[auth.jwt]` (JWTs
//! checked against a local JWKS file), `[audit]` (the audit log), and the rule that a
//! daemon without tenants serves loopback and Unix sockets only.
use crate::{Error, ListenAddr, Result, ServerConfig};
use serde::Deserialize;
use std::path::PathBuf;

/// `[auth]`: how callers prove who they are beyond tokens and certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `[auth.jwt]`: bearer JWTs (Kubernetes projected service-account tokens, OIDC).
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
}

/// `[auth.jwt]`: a bearer token that is a JWT is checked against these.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The JSON Web Key Set whose keys sign the tokens (e.g. the cluster's
    /// `/openid/v1/jwks`, saved to a file); read at start.
    pub jwks_file: PathBuf,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry (one of its audiences).
    pub audience: String,
    /// A claim naming the tenant (`/` separates nested objects, e.g.
    /// `kubernetes.io/namespace`); unset: the tenant whose `jwt_subjects` hold `sub`.
    #[serde(default)]
    pub tenant_claim: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_leeway() -> u64 {
    30
}

/// How much of a statement the audit log keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditStatements {
    /// The statement with its literals replaced by `?` (the default).
    #[default]
    Fingerprint,
    /// The whole SQL text (it may hold personal data).
    Full,
}

/// `[audit]`: one JSON line per call that changes something and per refused call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The file the lines are appended to, or `stdout`. A file is reopened on SIGHUP
    /// (after logrotate moved it).
    pub path: String,
    /// `fingerprint` (default) or `full`.
    #[serde(default)]
    pub statements: AuditStatements,
}

impl AuditConfig {
    /// Checks `[audit]`.
    pub fn validate(&self) -> Result<()> {
        if self.path.trim().is_empty() {
            return Err(Error::invalid(
                "audit.path",
                "is empty (a file or `stdout`)",
            ));
        }
        Ok(())
    }
}

impl JwtConfig {
    /// Checks `[auth.jwt]` (the JWKS file itself is read when the server starts).
    pub fn validate(&self) -> Result<()> {
        if self.issuer.is_empty() {
            return Err(Error::invalid("auth.jwt.issuer", "is empty"));
        }
        if self.audience.is_empty() {
            return Err(Error::invalid("auth.jwt.audience", "is empty"));
        }
        if let Some(c) = &self.tenant_claim {
            if c.is_empty() || c.split('/').any(str::is_empty) {
                return Err(Error::invalid(
                    "auth.jwt.tenant_claim",
                    "must be a claim name, nested objects separated by `/`",
                ));
            }
        }
        Ok(())
    }
}

/// The addresses that serve the API (`listen`, `extra_listen`) and reach beyond this
/// machine: TCP addresses that are not loopback.
pub fn exposed_addresses(server: &ServerConfig) -> Vec<String> {
    std::iter::once(&server.listen)
        .chain(&server.extra_listen)
        .filter(|a| matches!(ListenAddr::parse(a), Ok(ListenAddr::Tcp(t)) if !t.ip().is_loopback()))
        .cloned()
        .collect()
}

/// Refuses to serve the API beyond loopback with nobody to authenticate: with no
/// `[tenants]`, only loopback addresses and Unix sockets, unless
/// `server.allow_unauthenticated = true`.
pub fn check_exposure(server: &ServerConfig, has_tenants: bool) -> Result<()> {
    if has_tenants || server.allow_unauthenticated {
        return Ok(());
    }
    let exposed = exposed_addresses(server);
    if exposed.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        "server.listen",
        format!(
            "{} is reachable from other machines but no [tenants] are configured: anyone \
             reaching it could use every pool. Add a tenant with a token (`dbpool token` \
             prints one and its config line), e.g.\n  [tenants.app]\n  \
             token_sha256 = [\"<sha256 of the token in hex>\"]\n  admin = true\nand send \
             `authorization: Bearer <token>`; or listen on 127.0.0.1 or a Unix socket (health \
             probes can use server.probe_listen); or set server.allow_unauthenticated = true \
             to serve without authentication",
            exposed.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_tenants_only_loopback_and_sockets_serve() {
        let mut s = ServerConfig::default();
        check_exposure(&s, false).unwrap();
        s.extra_listen = vec!["unix:/tmp/x.sock".into(), "[::1]:7000".into()];
        check_exposure(&s, false).unwrap();
        s.listen = "0.0.0.0:50051".into();
        let e = check_exposure(&s, false).unwrap_err().to_string();
        assert!(
            e.contains("0.0.0.0:50051") && e.contains("token_sha256"),
            "{e}"
        );
        assert!(e.contains("allow_unauthenticated"), "{e}");
        check_exposure(&s, true).unwrap();
        s.allow_unauthenticated = true;
        check_exposure(&s, false).unwrap();
        // Health probes on their own port are no exposure of the API.
        let probes = ServerConfig {
            probe_listen: Some("0.0.0.0:50052".into()),
            ..Default::default()
        };
        check_exposure(&probes, false).unwrap();
    }

    #[test]
    fn jwt_and_audit_keys_are_checked() {
        let jwt: JwtConfig = toml::from_str(
            "jwks_file = \"/k.json\"\nissuer = \"i\"\naudience = \"dbpool\"\n\
             tenant_claim = \"kubernetes.io/namespace\"\n",
        )
        .unwrap();
        jwt.validate().unwrap();
        assert_eq!(jwt.leeway_secs, 30);
        let bad = JwtConfig {
            tenant_claim: Some("a//b".into()),
            ..jwt.clone()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tenant_claim"));
        let no_aud = JwtConfig {
            audience: String::new(),
            ..jwt
        };
        assert!(no_aud
            .validate()
            .unwrap_err()
            .to_string()
            .contains("audience"));
        let audit: AuditConfig = toml::from_str("path = \"stdout\"\n").unwrap();
        assert_eq!(audit.statements, AuditStatements::Fingerprint);
        audit.validate().unwrap();
    }
}
