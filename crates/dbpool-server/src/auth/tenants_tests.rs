//! Tests of recognising callers: tokens (hashes, files, variables), Basic credentials,
//! certificate subjects.
use super::*;
use crate::conn::Transport;
use tonic::codegen::http::HeaderValue;

fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn config(text: &str) -> Config {
    dbpool_config::load_str(text, "t.toml").unwrap()
}

fn headers(auth: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_str(auth).unwrap());
    h
}

fn tenant_of(r: Result<Caller>) -> String {
    r.unwrap().tenant.name.to_string()
}

fn refusal(r: Result<Caller>) -> String {
    match r {
        Err(Error::Unauthenticated(m)) => m,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn tokens_from_hashes_files_and_variables_name_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, "# rotated\nold-token\n\n  new-token  \n").unwrap();
    std::env::set_var("DBPOOL_TEST_TENANTS_TOKEN", "env-token");
    let text = format!(
        "[tenants.a]\ntoken_sha256 = [\"{}\"]\n[tenants.b]\ntoken_file = \"{}\"\n\
         [tenants.c]\ntoken_env = \"DBPOOL_TEST_TENANTS_TOKEN\"\nsubjects = [\"CN=c\"]\n",
        hex(&sha256(b"hashed-token")),
        file.display()
    );
    let t = Tenants::from_config(&config(&text)).unwrap().unwrap();
    std::env::remove_var("DBPOOL_TEST_TENANTS_TOKEN");
    assert_eq!(
        tenant_of(t.authenticate(&headers("Bearer hashed-token"), None)),
        "a"
    );
    assert_eq!(
        tenant_of(t.authenticate(&headers("bearer old-token"), None)),
        "b"
    );
    assert_eq!(
        tenant_of(t.authenticate(&headers("Bearer new-token"), None)),
        "b"
    );
    assert_eq!(
        tenant_of(t.authenticate(&headers("Bearer env-token"), None)),
        "c"
    );
    let wrong = refusal(t.authenticate(&headers("Bearer nope"), None));
    assert_eq!(wrong, "the bearer token is not known");
    assert!(refusal(t.authenticate(&headers("Token x"), None)).contains("Bearer <token>"));
    assert!(refusal(t.authenticate(&HeaderMap::new(), None)).starts_with("no credentials"));
    let conn = ConnInfo {
        id: 1,
        peer: None,
        transport: Transport::Tls,
        client_subject: Some(Arc::from("CN=c")),
        memo: Arc::default(),
    };
    let by_cert = t.authenticate(&HeaderMap::new(), Some(&conn)).unwrap();
    assert_eq!(
        (&*by_cert.tenant.name, by_cert.principal),
        ("c", Principal::Certificate)
    );
    // A wrong bearer is refused even though the certificate would do.
    assert!(t
        .authenticate(&headers("Bearer nope"), Some(&conn))
        .is_err());
    // A connection's token is remembered; another value is checked afresh.
    let good = headers("Bearer new-token");
    assert!(conn.memo.get(b"Bearer new-token").is_none());
    assert_eq!(
        &*t.authenticate_on(&good, Some(&conn)).unwrap().tenant.name,
        "b"
    );
    assert_eq!(
        &*conn.memo.get(b"Bearer new-token").unwrap().tenant.name,
        "b"
    );
    assert!(t
        .authenticate_on(&headers("Bearer nope"), Some(&conn))
        .is_err());
    assert_eq!(
        &*t.authenticate_on(&good, Some(&conn)).unwrap().tenant.name,
        "b"
    );
}

#[test]
fn basic_credentials_are_tenant_and_token() {
    let text = format!(
        "[tenants.app]\ntoken_sha256 = [\"{}\"]\n[tenants.other]\ntoken_sha256 = [\"{}\"]\n",
        hex(&sha256(b"s3cret")),
        hex(&sha256(b"other"))
    );
    let t = Tenants::from_config(&config(&text)).unwrap().unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let (caller, token) = t.basic(&format!("Basic {}", b64("app:s3cret"))).unwrap();
    assert_eq!((&*caller.tenant.name, token.as_str()), ("app", "s3cret"));
    // Unpadded, as the Go driver behind ADBC sends it (10 bytes: two `=` left out).
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD.encode("app:s3cret");
    assert!(!raw.ends_with('='));
    assert_eq!(
        &*t.basic(&format!("Basic {raw}")).unwrap().0.tenant.name,
        "app"
    );
    for bad in [
        format!("Basic {}", b64("other:s3cret")),
        format!("Basic {}", b64("app:wrong")),
        format!("Basic {}", b64("app")),
        "Basic !!!".to_string(),
        "Bearer s3cret".to_string(),
    ] {
        let e = t.basic(&bad).unwrap_err();
        assert!(matches!(e, Error::Unauthenticated(_)), "{bad}: {e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}

#[test]
fn unreadable_token_sources_fail_the_start_naming_the_key() {
    let no_var = config("[tenants.a]\ntoken_env = \"DBPOOL_TEST_UNSET_VARIABLE\"\n");
    let e = Tenants::from_config(&no_var).unwrap_err();
    assert!(e.contains("tenants.a.token_env"), "{e}");
    let no_file = config("[tenants.a]\ntoken_file = \"/nonexistent/dbpool-token\"\n");
    let e = Tenants::from_config(&no_file).unwrap_err();
    assert!(e.contains("tenants.a.token_file"), "{e}");
    assert!(Tenants::from_config(&config("")).unwrap().is_none());
}
