//! JWTs through the real server: a Kubernetes-style service-account token names its
//! tenant by a claim; an expired one, one for another audience or issuer, one signed by
//! another key are UNAUTHENTICATED; a JWT whose claim names no tenant is refused.
mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::tenants::*;
use dbpool_config::JwtConfig;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use tonic::Code;

const ISS: &str = "https://kubernetes.default.svc.cluster.local";

/// A P-256 key: its PKCS#8 (to sign) and its JWK (to verify).
fn key(kid: &str) -> (Vec<u8>, Value) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let p = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": kid,
                     "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..])});
    (pkcs8.as_ref().to_vec(), jwk)
}

fn sign(pkcs8: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    encode(&header, claims, &EncodingKey::from_ec_der(pkcs8)).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A projected service-account token of namespace `ns`, valid from now for `secs`.
fn claims(ns: &str, aud: &str, secs: i64) -> Value {
    let exp = now() as i64 + secs;
    json!({"iss": ISS, "sub": format!("system:serviceaccount:{ns}:app"), "aud": [aud],
           "iat": exp - 3600, "exp": exp, "kubernetes.io": {"namespace": ns}})
}

#[tokio::test]
async fn a_service_account_jwt_names_its_tenant_and_bad_ones_are_unauthenticated() {
    let (pkcs8, jwk) = key("k1");
    let (other_key, _) = key("k1");
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).unwrap();
    let s = TenantServer::start(
        &["shop_db", "other_db"],
        // `shop` has no principal of its own: the JWT's namespace claim names it.
        &[("ops", "pools = { other_db = \"write\" }\n")],
        |c| {
            c.tenants.insert(
                "shop".into(),
                toml::from_str("named_by_jwt_claim = true\npools = { shop_db = \"write\" }\n")
                    .unwrap(),
            );
            c.auth.jwt = Some(JwtConfig {
                jwks_file: jwks.clone(),
                issuer: ISS.into(),
                audience: "dbpool".into(),
                tenant_claim: Some("kubernetes.io/namespace".into()),
                leeway_secs: 5,
            });
        },
    )
    .await;
    let bearer = |t: String| Some(format!("Bearer {t}"));
    let mut good = s
        .client_with(bearer(sign(&pkcs8, "k1", &claims("shop", "dbpool", 600))))
        .await;
    exec(&mut good, "shop_db", "CREATE TABLE t (v INTEGER)")
        .await
        .unwrap();
    assert_eq!(listed(&mut good).await.unwrap(), ["shop_db"]);
    assert_eq!(
        query(&mut good, "other_db", "SELECT 1")
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let bad = [
        (
            "expired",
            sign(&pkcs8, "k1", &claims("shop", "dbpool", -60)),
        ),
        (
            "audience",
            sign(&pkcs8, "k1", &claims("shop", "vault", 600)),
        ),
        ("issuer", {
            let mut c = claims("shop", "dbpool", 600);
            c["iss"] = json!("https://evil.example");
            sign(&pkcs8, "k1", &c)
        }),
        (
            "signature",
            sign(&other_key, "k1", &claims("shop", "dbpool", 600)),
        ),
        (
            "tenant",
            sign(&pkcs8, "k1", &claims("nobody", "dbpool", 600)),
        ),
        // A tenant that did not opt in cannot be named by the claim (a namespace `ops`).
        (
            "not by claim",
            sign(&pkcs8, "k1", &claims("ops", "dbpool", 600)),
        ),
    ];
    for (what, jwt) in bad {
        let mut c = s.client_with(bearer(jwt.clone())).await;
        let e = query(&mut c, "shop_db", "SELECT 1").await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{what}: {e:?}");
        assert!(!e.message().contains(&jwt), "{what}: the token is echoed");
    }
    // Tokens still work beside JWTs.
    let mut ops = s.client("ops").await;
    exec(&mut ops, "other_db", "CREATE TABLE t (v INTEGER)")
        .await
        .unwrap();
}
