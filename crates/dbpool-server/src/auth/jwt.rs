//! Bearer JWTs checked against `[auth.jwt]` (placeholder until the verifier lands).
use dbpool_core::Error;

/// Checks bearer JWTs against `[auth.jwt]`.
pub struct JwtVerifier;

/// Who a verified JWT says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    /// `sub`.
    pub subject: String,
    /// The value of the tenant claim.
    pub tenant: Option<String>,
    /// `exp`, unix seconds.
    pub expires_at: u64,
}

impl JwtVerifier {
    /// Reads the JWKS file.
    pub fn load(cfg: &dbpool_config::JwtConfig) -> Result<JwtVerifier, String> {
        Err(format!(
            "{}: JWT checking is not built yet",
            cfg.jwks_file.display()
        ))
    }

    /// Whether a token has the shape of a JWT.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3
    }

    /// Verifies a JWT.
    pub fn verify(&self, _token: &str) -> Result<JwtIdentity, Error> {
        Err(Error::Unauthenticated(
            "JWT checking is not built yet".into(),
        ))
    }
}
