//! Bearer JWTs (Kubernetes projected service-account tokens, OIDC ID tokens) checked
//! against a local JWKS file: signature, algorithm, `exp`/`nbf`, `iss`, `aud`, and the
//! claim naming the tenant. Verified tokens are cached by their SHA-256 until they expire.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dbpool_config::JwtConfig;
use dbpool_core::Error;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Verified tokens kept at most; when full, the cache is emptied.
const CACHE_CAPACITY: usize = 4096;
/// Longest header a token may have for `looks_like_jwt` (and the verifier) to read it.
const MAX_HEADER_CHARS: usize = 8192;
/// Longest `kid` or `alg` repeated in an error message.
const MAX_SHOWN: usize = 64;

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// The current time in unix seconds (the system clock; tests inject their own).
type Now = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Checks bearer JWTs against `[auth.jwt]`.
pub struct JwtVerifier {
    keys: Vec<VerifyingKey>,
    /// `iss`, `aud`, required claims and leeway; `algorithms` is set per token.
    validation: Validation,
    issuer: String,
    audience: String,
    /// `tenant_claim` as written, and split at `/`.
    tenant_claim: Option<(String, Vec<String>)>,
    leeway: u64,
    /// Verified tokens by SHA-256, each good until its `expires_at` (without leeway).
    cache: Mutex<HashMap<[u8; 32], JwtIdentity>>,
    now: Now,
}

/// Who a verified JWT says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtIdentity {
    /// The `sub` claim (e.g. `system:serviceaccount:shop:orders`).
    pub subject: String,
    /// The string at `tenant_claim`, when it is configured.
    pub tenant: Option<String>,
    /// The `exp` claim, unix seconds.
    pub expires_at: u64,
}

/// One public key of the JWKS and the algorithms a token signed by it may name.
struct VerifyingKey {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("tenant_claim", &self.tenant_claim.as_ref().map(|c| &c.0))
            .field("leeway_secs", &self.leeway)
            .finish_non_exhaustive()
    }
}

fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn refused(msg: impl Into<String>) -> Error {
    Error::Unauthenticated(msg.into())
}

/// `s` as it may appear in a message: printable ASCII, at most [`MAX_SHOWN`] characters.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_SHOWN)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().count() > MAX_SHOWN {
        out.push('…');
    }
    out
}

/// The JSON object a base64url segment decodes to, if it is one.
fn decode_segment(segment: &str) -> Option<Map<String, Value>> {
    if segment.is_empty() || segment.len() > MAX_HEADER_CHARS {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The algorithms a token signed by `jwk` may name, or why the key is not used.
fn key_algorithms(jwk: &Jwk) -> Result<Vec<Algorithm>, String> {
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => RSA_ALGORITHMS.to_vec(),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("an EC key on a curve other than P-256 or P-384".into()),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => return Err("an OKP key on a curve other than Ed25519".into()),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err("a symmetric (`oct`) key; only public keys verify tokens".into())
        }
    };
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("an encryption key (`use` is `enc`)".into());
    }
    let Some(alg) = jwk.common.key_algorithm else {
        return Ok(family);
    };
    let named = match alg {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        other => return Err(format!("its `alg` {other:?} is not a signature algorithm")),
    };
    if family.contains(&named) {
        Ok(vec![named])
    } else {
        Err(format!("its `alg` {named:?} does not fit its key type"))
    }
}

/// A string member of a JSON object, for messages about a key that did not parse.
fn member<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or("?")
}

/// The signing keys of the JWKS text `text` read from `file`. Keys that cannot verify
/// tokens (encryption keys, symmetric keys, unsupported curves) are skipped with a
/// warning; a JWKS without a usable key is an error.
fn parse_jwks(file: &Path, text: &str) -> Result<Vec<VerifyingKey>, String> {
    let f = file.display();
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "JWKS file {f}: not JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let Some(list) = doc.get("keys").and_then(Value::as_array) else {
        return Err(format!(
            "JWKS file {f}: not a JWKS (a JSON object with a `keys` array)"
        ));
    };
    let mut keys: Vec<VerifyingKey> = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        let kid = raw.get("kid").and_then(Value::as_str).map(str::to_owned);
        let name = match &kid {
            Some(k) => format!("key {i} (kid `{}`)", shown(k)),
            None => format!("key {i}"),
        };
        let usable = serde_json::from_value::<Jwk>(raw.clone())
            .map_err(|_| {
                format!(
                    "not a supported JWK (kty `{}`, crv `{}`, alg `{}`) or a malformed one",
                    shown(member(raw, "kty")),
                    shown(member(raw, "crv")),
                    shown(member(raw, "alg"))
                )
            })
            .and_then(|jwk| {
                let algorithms = key_algorithms(&jwk)?;
                let key = DecodingKey::from_jwk(&jwk)
                    .map_err(|_| "its key parameters are not valid base64url".to_string())?;
                Ok((algorithms, key))
            });
        match usable {
            Ok((algorithms, key)) => {
                if kid.is_some() && keys.iter().any(|k| k.kid == kid) {
                    return Err(format!("JWKS file {f}: {name} appears twice"));
                }
                keys.push(VerifyingKey {
                    kid,
                    algorithms,
                    key,
                });
            }
            Err(why) => tracing::warn!(file = %f, "JWKS {name} skipped: {why}"),
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "JWKS file {f}: no key that verifies signatures (RSA, EC P-256/P-384, Ed25519) \
             among its {} keys",
            list.len()
        ));
    }
    Ok(keys)
}

/// A numeric date claim (`exp`, `nbf`) in whole seconds.
fn date_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Error> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| refused(format!("JWT claim `{name}` is not a date (seconds)"))),
    }
}

impl JwtVerifier {
    /// Reads and parses the JWKS file of `cfg`. The error names the file and what is
    /// wrong, never key material.
    pub fn load(cfg: &JwtConfig) -> Result<JwtVerifier, String> {
        Self::load_with_clock(cfg, Arc::new(system_now))
    }

    fn load_with_clock(cfg: &JwtConfig, now: Now) -> Result<JwtVerifier, String> {
        let file = &cfg.jwks_file;
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("JWKS file {}: cannot read it: {e}", file.display()))?;
        let keys = parse_jwks(file, &text)?;
        // Placeholder algorithm: replaced by the token's (checked against its key).
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        // `exp` and `nbf` are checked here against `now` (jsonwebtoken reads the system
        // clock itself).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = cfg.leeway_secs;
        let tenant_claim = cfg
            .tenant_claim
            .as_ref()
            .map(|c| (c.clone(), c.split('/').map(str::to_owned).collect()));
        Ok(JwtVerifier {
            keys,
            validation,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            tenant_claim,
            leeway: cfg.leeway_secs,
            cache: Mutex::new(HashMap::new()),
            now,
        })
    }

    /// Whether a bearer token has the shape of a JWT (three '.'-separated base64url
    /// parts, the first decoding to a JSON header). Cheap, no verification.
    pub fn looks_like_jwt(token: &str) -> bool {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let b64url = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        };
        !payload.is_empty()
            && b64url(payload)
            && b64url(signature)
            && decode_segment(header).is_some()
    }

    /// Verifies signature (key chosen by `kid`; if the JWKS has one key and the token no
    /// kid, that key), algorithm from the JWK (never `none`, never HS* with a public key),
    /// `exp` (required), `nbf`, `iss`, `aud` (string or array) with leeway; returns the
    /// identity, with `tenant` the string at `tenant_claim` when that is configured.
    /// Errors are [`Error::Unauthenticated`] saying what failed, never echoing the token.
    pub fn verify(&self, token: &str) -> Result<JwtIdentity, Error> {
        let now = (self.now)();
        let digest = super::sha256(token.as_bytes());
        {
            let mut cache = self.cache.lock();
            if let Some(hit) = cache.get(&digest) {
                if now < hit.expires_at {
                    return Ok(hit.clone());
                }
                cache.remove(&digest);
            }
        }
        let identity = self.verify_uncached(token, now)?;
        if now < identity.expires_at {
            let mut cache = self.cache.lock();
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(digest, identity.clone());
        }
        Ok(identity)
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<JwtIdentity, Error> {
        let header = token
            .split('.')
            .next()
            .and_then(decode_segment)
            .ok_or_else(|| refused("JWT is malformed (its header is not base64url JSON)"))?;
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg_name.is_empty() || alg_name.eq_ignore_ascii_case("none") {
            return Err(refused("JWT is unsigned (`alg` is `none` or missing)"));
        }
        let key = self.key_for(&header)?;
        let alg = Algorithm::from_str(alg_name)
            .ok()
            .filter(|a| key.algorithms.contains(a))
            .ok_or_else(|| {
                refused(format!(
                    "JWT algorithm `{}` is not the one of its key ({})",
                    shown(alg_name),
                    key.algorithms
                        .iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let mut validation = self.validation.clone();
        validation.algorithms = vec![alg];
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| self.decode_error(e.kind()))?
            .claims;

        let exp = date_claim(&claims, "exp")?.ok_or_else(|| refused("JWT has no claim `exp`"))?;
        if exp.saturating_add(self.leeway) < now {
            return Err(refused("JWT expired"));
        }
        if let Some(nbf) = date_claim(&claims, "nbf")? {
            if nbf > now.saturating_add(self.leeway) {
                return Err(refused("JWT is not valid yet (`nbf` is in the future)"));
            }
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| refused("JWT claim `sub` is not a string"))?
            .to_owned();
        let tenant = match &self.tenant_claim {
            None => None,
            Some((name, path)) => Some(tenant_at(&claims, name, path)?),
        };
        Ok(JwtIdentity {
            subject,
            tenant,
            expires_at: exp,
        })
    }

    /// The key a token's header names by `kid`, or the only key when it names none.
    fn key_for(&self, header: &Map<String, Value>) -> Result<&VerifyingKey, Error> {
        match header.get("kid") {
            Some(Value::String(kid)) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                .ok_or_else(|| refused(format!("JWT key id `{}` is not in the JWKS", shown(kid)))),
            Some(_) => Err(refused("JWT key id (`kid`) is not a string")),
            None if self.keys.len() == 1 => Ok(&self.keys[0]),
            None => Err(refused(format!(
                "JWT has no key id (`kid`) and the JWKS has {} keys",
                self.keys.len()
            ))),
        }
    }

    /// What a failure of jsonwebtoken's decoding means for the caller.
    fn decode_error(&self, kind: &ErrorKind) -> Error {
        refused(match kind {
            ErrorKind::InvalidSignature => "JWT signature does not verify".to_string(),
            ErrorKind::InvalidIssuer => format!("JWT issuer is not `{}`", self.issuer),
            ErrorKind::InvalidAudience => format!("JWT audience is not `{}`", self.audience),
            ErrorKind::MissingRequiredClaim(c) => format!("JWT has no claim `{}`", shown(c)),
            ErrorKind::ExpiredSignature => "JWT expired".to_string(),
            ErrorKind::ImmatureSignature => {
                "JWT is not valid yet (`nbf` is in the future)".to_string()
            }
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                "JWT algorithm is not the one of its key".to_string()
            }
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => {
                "JWT key of the JWKS does not fit the token's algorithm".to_string()
            }
            _ => "JWT is malformed".to_string(),
        })
    }

    /// Tokens in the cache (tests).
    #[cfg(test)]
    fn cached(&self) -> usize {
        self.cache.lock().len()
    }
}

/// The string at `path` (nested objects) in `claims`; `name` is the path as configured.
fn tenant_at(claims: &Map<String, Value>, name: &str, path: &[String]) -> Result<String, Error> {
    let missing = || refused(format!("JWT has no claim `{name}`"));
    let (first, rest) = path.split_first().ok_or_else(missing)?;
    let mut v = claims.get(first).ok_or_else(missing)?;
    for step in rest {
        v = v.get(step).ok_or_else(missing)?;
    }
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| refused(format!("JWT claim `{name}` is not a string")))
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
