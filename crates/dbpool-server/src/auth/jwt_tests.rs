//! Tests of the JWT verifier: real EC P-256 and Ed25519 keys made here, a JWKS file in a
//! temporary directory, tokens signed with jsonwebtoken, time from an injected clock.
use super::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

const T0: u64 = 1_800_000_000;
const ISS: &str = "https://kubernetes.default.svc.cluster.local";
const SUB: &str = "system:serviceaccount:shop:orders";

/// A key pair: its private PKCS#8 for signing and its public JWK.
struct TestKey {
    alg: Algorithm,
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn ec_key(kid: &str) -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref(); // 0x04 || x || y
    assert_eq!(point.len(), 65);
    TestKey {
        alg: Algorithm::ES256,
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                    "x": b64(&point[1..33]), "y": b64(&point[33..])}),
    }
}

fn ed_key(kid: &str) -> TestKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    TestKey {
        alg: Algorithm::EdDSA,
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                    "x": b64(pair.public_key().as_ref())}),
    }
}

fn sign(key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = kid.map(str::to_owned);
    let enc = match key.alg {
        Algorithm::ES256 => EncodingKey::from_ec_der(&key.pkcs8),
        _ => EncodingKey::from_ed_der(&key.pkcs8),
    };
    encode(&header, claims, &enc).unwrap()
}

/// What a Kubernetes projected service-account token of namespace `shop` carries.
fn claims() -> Value {
    json!({"iss": ISS, "sub": SUB, "aud": ["dbpool", "vault"], "iat": T0 - 10, "nbf": T0 - 10,
           "exp": T0 + 600,
           "kubernetes.io": {"namespace": "shop", "serviceaccount": {"name": "orders"}}})
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().unwrap().remove(name);
    claims
}

/// A verifier over a JWKS of `keys` and a clock the test moves.
struct Fixture {
    _dir: tempfile::TempDir,
    clock: Arc<AtomicU64>,
    verifier: JwtVerifier,
}

fn config(file: PathBuf) -> JwtConfig {
    JwtConfig {
        jwks_file: file,
        issuer: ISS.into(),
        audience: "dbpool".into(),
        tenant_claim: Some("kubernetes.io/namespace".into()),
        leeway_secs: 30,
    }
}

fn write_jwks(dir: &tempfile::TempDir, keys: &[&Value]) -> PathBuf {
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, json!({ "keys": keys }).to_string()).unwrap();
    file
}

fn fixture_with(keys: &[&Value], tenant_claim: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(write_jwks(&dir, keys));
    cfg.tenant_claim = tenant_claim.map(str::to_owned);
    let clock = Arc::new(AtomicU64::new(T0));
    let c = clock.clone();
    let verifier =
        JwtVerifier::load_with_clock(&cfg, Arc::new(move || c.load(Ordering::SeqCst))).unwrap();
    Fixture {
        _dir: dir,
        clock,
        verifier,
    }
}

fn fixture(keys: &[&Value]) -> Fixture {
    fixture_with(keys, Some("kubernetes.io/namespace"))
}

/// The message of a refusal, which must be `Unauthenticated` and not repeat the token.
fn refusal(f: &Fixture, token: &str) -> String {
    match f.verifier.verify(token) {
        Err(Error::Unauthenticated(m)) => {
            assert!(!m.contains(token), "the message repeats the token: {m}");
            m
        }
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
}

fn shop() -> JwtIdentity {
    JwtIdentity {
        subject: SUB.into(),
        tenant: Some("shop".into()),
        expires_at: T0 + 600,
    }
}

#[test]
fn a_valid_token_gives_its_subject_and_nested_tenant() {
    let (ec, ed) = (ec_key("ec1"), ed_key("ed1"));
    let f = fixture(&[&ec.jwk, &ed.jwk]);
    assert_eq!(
        f.verifier
            .verify(&sign(&ec, Some("ec1"), &claims()))
            .unwrap(),
        shop()
    );
    // Ed25519, and `aud` as a single string.
    let t = sign(&ed, Some("ed1"), &with(claims(), "aud", json!("dbpool")));
    assert_eq!(f.verifier.verify(&t).unwrap(), shop());
}

#[test]
fn without_tenant_claim_the_tenant_is_none() {
    let ec = ec_key("ec1");
    let f = fixture_with(&[&ec.jwk], None);
    let t = sign(&ec, Some("ec1"), &without(claims(), "kubernetes.io"));
    let id = f.verifier.verify(&t).unwrap();
    assert_eq!((id.subject.as_str(), id.tenant), (SUB, None));
}

#[test]
fn expiry_and_not_before_allow_the_leeway_and_no_more() {
    let ec = ec_key("ec1");
    let f = fixture(&[&ec.jwk]);
    let expired = sign(&ec, Some("ec1"), &with(claims(), "exp", json!(T0 - 31)));
    assert_eq!(refusal(&f, &expired), "JWT expired");
    let in_leeway = sign(&ec, Some("ec1"), &with(claims(), "exp", json!(T0 - 29)));
    assert_eq!(f.verifier.verify(&in_leeway).unwrap().expires_at, T0 - 29);
    let early = sign(&ec, Some("ec1"), &with(claims(), "nbf", json!(T0 + 31)));
    assert!(refusal(&f, &early).contains("not valid yet"));
    let almost = sign(&ec, Some("ec1"), &with(claims(), "nbf", json!(T0 + 29)));
    f.verifier.verify(&almost).unwrap();
    let no_exp = sign(&ec, Some("ec1"), &without(claims(), "exp"));
    assert_eq!(refusal(&f, &no_exp), "JWT has no claim `exp`");
}

#[test]
fn another_audience_or_issuer_is_refused() {
    let ec = ec_key("ec1");
    let f = fixture(&[&ec.jwk]);
    let aud = sign(
        &ec,
        Some("ec1"),
        &with(claims(), "aud", json!(["vault", "api"])),
    );
    assert_eq!(refusal(&f, &aud), "JWT audience is not `dbpool`");
    let aud = sign(&ec, Some("ec1"), &with(claims(), "aud", json!("dbpool2")));
    assert_eq!(refusal(&f, &aud), "JWT audience is not `dbpool`");
    let iss = sign(
        &ec,
        Some("ec1"),
        &with(claims(), "iss", json!("https://evil")),
    );
    assert_eq!(refusal(&f, &iss), format!("JWT issuer is not `{ISS}`"));
    let no_aud = sign(&ec, Some("ec1"), &without(claims(), "aud"));
    assert_eq!(refusal(&f, &no_aud), "JWT has no claim `aud`");
    let no_iss = sign(&ec, Some("ec1"), &without(claims(), "iss"));
    assert_eq!(refusal(&f, &no_iss), "JWT has no claim `iss`");
}

#[test]
fn a_token_signed_by_another_key_or_naming_an_unknown_kid_is_refused() {
    let (ec, other) = (ec_key("ec1"), ec_key("ec1"));
    let f = fixture(&[&ec.jwk]);
    let forged = sign(&other, Some("ec1"), &claims());
    assert_eq!(refusal(&f, &forged), "JWT signature does not verify");
    let unknown = sign(&ec, Some("nope"), &claims());
    assert_eq!(
        refusal(&f, &unknown),
        "JWT key id `nope` is not in the JWKS"
    );
    // A tampered payload under a good signature.
    let good = sign(&ec, Some("ec1"), &claims());
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = b64(with(claims(), "sub", json!("root")).to_string().as_bytes());
    assert_eq!(
        refusal(&f, &parts.join(".")),
        "JWT signature does not verify"
    );
}

#[test]
fn the_kid_may_be_left_out_only_with_a_single_key() {
    let (ec, ed) = (ec_key("ec1"), ed_key("ed1"));
    let t = sign(&ec, None, &claims());
    assert_eq!(fixture(&[&ec.jwk]).verifier.verify(&t).unwrap(), shop());
    let two = fixture(&[&ec.jwk, &ed.jwk]);
    assert!(refusal(&two, &t).contains("no key id"));
}

#[test]
fn unsigned_and_hmac_tokens_are_refused() {
    let ec = ec_key("ec1");
    let f = fixture(&[&ec.jwk]);
    let body = b64(claims().to_string().as_bytes());
    for header in [json!({"alg": "none", "typ": "JWT"}), json!({"typ": "JWT"})] {
        let t = format!("{}.{body}.", b64(header.to_string().as_bytes()));
        assert!(JwtVerifier::looks_like_jwt(&t));
        assert!(refusal(&f, &t).contains("unsigned"));
    }
    // HS256 keyed with the public key's bytes (the classic confusion), with and
    // without a kid.
    let x = URL_SAFE_NO_PAD
        .decode(ec.jwk["x"].as_str().unwrap())
        .unwrap();
    for kid in [Some("ec1".to_string()), None] {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = kid;
        let t = encode(&h, &claims(), &EncodingKey::from_secret(&x)).unwrap();
        let m = refusal(&f, &t);
        assert!(
            m.contains("algorithm `HS256`") && m.contains("ES256"),
            "{m}"
        );
    }
    // An EC key's token claiming EdDSA.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("ec1".into());
    let t = encode(&h, &claims(), &EncodingKey::from_ec_der(&ec.pkcs8)).unwrap();
    let t = t.replacen(
        t.split('.').next().unwrap(),
        &b64(br#"{"alg":"EdDSA","kid":"ec1"}"#),
        1,
    );
    assert!(refusal(&f, &t).contains("algorithm `EdDSA`"));
}

#[test]
fn the_tenant_claim_must_be_a_string() {
    let ec = ec_key("ec1");
    let f = fixture(&[&ec.jwk]);
    let none = sign(&ec, Some("ec1"), &without(claims(), "kubernetes.io"));
    assert_eq!(
        refusal(&f, &none),
        "JWT has no claim `kubernetes.io/namespace`"
    );
    let flat = sign(
        &ec,
        Some("ec1"),
        &with(claims(), "kubernetes.io", json!("shop")),
    );
    assert_eq!(
        refusal(&f, &flat),
        "JWT has no claim `kubernetes.io/namespace`"
    );
    let number = json!({"namespace": 7});
    let t = sign(&ec, Some("ec1"), &with(claims(), "kubernetes.io", number));
    assert_eq!(
        refusal(&f, &t),
        "JWT claim `kubernetes.io/namespace` is not a string"
    );
    let no_sub = sign(&ec, Some("ec1"), &without(claims(), "sub"));
    assert_eq!(refusal(&f, &no_sub), "JWT has no claim `sub`");
}

#[test]
fn a_cached_token_is_served_until_it_expires() {
    let ec = ec_key("ec1");
    let mut f = fixture(&[&ec.jwk]);
    let t = sign(&ec, Some("ec1"), &claims());
    assert_eq!(f.verifier.verify(&t).unwrap(), shop());
    assert_eq!(f.verifier.cached(), 1);
    // Without keys only the cache can answer.
    let keys = std::mem::take(&mut f.verifier.keys);
    f.clock.store(T0 + 599, Ordering::SeqCst);
    assert_eq!(f.verifier.verify(&t).unwrap(), shop());
    // At `exp` the entry is dropped; the token is checked again (within the leeway
    // it still verifies, but is not cached again).
    f.clock.store(T0 + 610, Ordering::SeqCst);
    assert_eq!(refusal(&f, &t), "JWT key id `ec1` is not in the JWKS");
    assert_eq!(f.verifier.cached(), 0);
    f.verifier.keys = keys;
    assert_eq!(f.verifier.verify(&t).unwrap(), shop());
    assert_eq!(f.verifier.cached(), 0);
    f.clock.store(T0 + 631, Ordering::SeqCst);
    assert_eq!(refusal(&f, &t), "JWT expired");
}

#[test]
fn an_expired_cached_entry_is_refused() {
    let ec = ec_key("ec1");
    let f = fixture(&[&ec.jwk]);
    let t = sign(&ec, Some("ec1"), &claims());
    f.verifier.verify(&t).unwrap();
    assert_eq!(f.verifier.cached(), 1);
    f.clock.store(T0 + 700, Ordering::SeqCst);
    assert_eq!(refusal(&f, &t), "JWT expired");
    assert_eq!(f.verifier.cached(), 0);
}

#[test]
fn a_full_cache_is_emptied_before_the_next_entry() {
    let ec = ec_key("ec1");
    let f = fixture(&[&ec.jwk]);
    {
        let mut cache = f.verifier.cache.lock();
        for i in 0..CACHE_CAPACITY {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(k, shop());
        }
    }
    assert_eq!(f.verifier.cached(), CACHE_CAPACITY);
    f.verifier
        .verify(&sign(&ec, Some("ec1"), &claims()))
        .unwrap();
    assert_eq!(f.verifier.cached(), 1);
}

#[test]
fn load_errors_name_the_file_and_never_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.json");
    let e = JwtVerifier::load(&config(missing.clone())).unwrap_err();
    assert!(
        e.contains(&missing.display().to_string()) && e.contains("cannot read"),
        "{e}"
    );

    let file = dir.path().join("jwks.json");
    let cases: [(&str, &str); 4] = [
        ("{\"keys\": [", "not JSON"),
        ("[1, 2]", "not a JWKS"),
        (
            r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]}"#,
            "no key",
        ),
        (
            r#"{"keys": [{"kty": "EC", "crv": "P-521", "x": "AAAA", "y": "BBBB"}]}"#,
            "no key",
        ),
    ];
    for (text, what) in cases {
        std::fs::write(&file, text).unwrap();
        let e = JwtVerifier::load(&config(file.clone())).unwrap_err();
        assert!(
            e.contains(&file.display().to_string()) && e.contains(what),
            "{e}"
        );
        assert!(!e.contains("c2VjcmV0") && !e.contains("AAAA"), "{e}");
    }
    let ec = ec_key("same");
    write_jwks(&dir, &[&ec.jwk, &ec.jwk]);
    let e = JwtVerifier::load(&config(file.clone())).unwrap_err();
    assert!(e.contains("`same`") && e.contains("twice"), "{e}");
}

#[test]
fn keys_that_cannot_verify_are_skipped_and_rsa_keys_take_rsa_algorithms() {
    let ec = ec_key("ec1");
    let n = b64(&[0xc5; 256]);
    let rsa = json!({"kty": "RSA", "kid": "r1", "n": n, "e": "AQAB"});
    let rsa256 = json!({"kty": "RSA", "kid": "r2", "n": n, "e": "AQAB", "alg": "RS256"});
    let enc = json!({"kty": "RSA", "kid": "e1", "n": n, "e": "AQAB", "use": "enc"});
    let oct = json!({"kty": "oct", "kid": "h1", "k": "c2VjcmV0"});
    let f = fixture(&[&ec.jwk, &rsa, &rsa256, &enc, &oct]);
    let kids: Vec<_> = f
        .verifier
        .keys
        .iter()
        .map(|k| k.kid.clone().unwrap())
        .collect();
    assert_eq!(kids, ["ec1", "r1", "r2"]);
    assert_eq!(f.verifier.keys[1].algorithms, RSA_ALGORITHMS);
    assert_eq!(f.verifier.keys[2].algorithms, [Algorithm::RS256]);
    // An ES256 token naming an RSA key, and one naming the skipped symmetric key.
    let t = sign(&ec, Some("r2"), &claims());
    assert!(refusal(&f, &t).contains("algorithm `ES256` is not the one of its key (RS256)"));
    let t = sign(&ec, Some("h1"), &claims());
    assert_eq!(refusal(&f, &t), "JWT key id `h1` is not in the JWKS");
}

#[test]
fn looks_like_jwt_tells_jwts_from_opaque_tokens() {
    let ec = ec_key("ec1");
    assert!(JwtVerifier::looks_like_jwt(&sign(
        &ec,
        Some("ec1"),
        &claims()
    )));
    let hex = "3f9a1c0b7e5d24a68b1f0c3e9d7a5b2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b";
    assert!(!JwtVerifier::looks_like_jwt(hex));
    assert!(!JwtVerifier::looks_like_jwt("a.b.c"));
    assert!(!JwtVerifier::looks_like_jwt(""));
    let h = b64(br#"{"alg":"ES256"}"#);
    assert!(JwtVerifier::looks_like_jwt(&format!("{h}.e30.sig")));
    assert!(!JwtVerifier::looks_like_jwt(&format!("{h}.e30.sig.more")));
    assert!(!JwtVerifier::looks_like_jwt(&format!("{h}..sig")));
    assert!(!JwtVerifier::looks_like_jwt(&format!("{h}.e3 0.sig")));
}
