//! TLS to PostgreSQL (`sslmode` & co.) against a private server of each test's own with
//! `ssl = on` and a `hostssl`-only pg_hba.conf, its CA, server and client certificates
//! made by the test (testkit `TestCa`, rcgen): every mode, the failures' messages and
//! types, client certificates, SCRAM and query cancellation over TLS, bad files.
use arrow::array::{Array, BooleanArray, Int64Array, StringArray};
use dbpool_backends::postgres::PgTlsFailure;
use dbpool_backends::Factory;
use dbpool_config::{PoolConfig, PoolOptions, Secret};
use dbpool_core::{Backend, BackendFactory, Error, UnavailableCause};
use dbpool_testkit::{CertUse, TempPgTls, TempPostgres, TestCa};
use futures::TryStreamExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A TLS-only PostgreSQL whose certificate names `names`, plus the test's files.
struct Fixture {
    pg: TempPostgres,
    ca: TestCa,
    files: tempfile::TempDir,
}

const HBA: &str = "hostssl all certuser 127.0.0.1/32 trust clientcert=verify-full\n\
                   hostssl all scramuser 127.0.0.1/32 scram-sha-256\n\
                   hostssl all all 127.0.0.1/32 trust";

impl Fixture {
    fn start(names: &[&str]) -> Fixture {
        let ca = TestCa::new("dbpool test CA");
        let (cert_pem, key_pem) = ca.sign("dbpool test server", names, CertUse::Server);
        let pg = TempPostgres::start_tls(&TempPgTls {
            cert_pem,
            key_pem,
            ca_pem: ca.pem(),
            hba: HBA.into(),
        });
        let files = tempfile::tempdir().unwrap();
        std::fs::write(files.path().join("ca.pem"), ca.pem()).unwrap();
        Fixture { pg, ca, files }
    }

    /// Writes `text` to a file of the test's and returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.files.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn ca_file(&self) -> String {
        self.files.path().join("ca.pem").display().to_string()
    }

    /// The server's URL for `user` on `host`, with `query`.
    fn url(&self, user: &str, host: &str, query: &str) -> String {
        format!("postgres://{user}@{host}:{}/postgres?{query}", self.pg.port)
    }
}

async fn backend(cfg: PoolConfig) -> Result<Arc<dyn Backend>, Error> {
    let cfg = PoolConfig {
        options: PoolOptions {
            acquire_timeout_ms: 10_000,
            breaker_threshold: 0,
            ..Default::default()
        },
        ..cfg
    };
    Factory::default()
        .create("tls", &cfg.resolve("").unwrap())
        .await
}

async fn url_backend(url: &str) -> Arc<dyn Backend> {
    backend(PoolConfig {
        url: Some(Secret::new(url)),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// `pg_stat_ssl.ssl` and `current_user` of the session a query runs on.
async fn session_ssl(b: &dyn Backend) -> Result<(bool, String), Error> {
    let sql = "SELECT ssl, current_user::text AS who FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    let q = b.query(sql, vec![], 10).await?;
    let batches: Vec<_> = q.batches.try_collect().await?;
    let r = &batches[0];
    let ssl = r.column(0).as_any().downcast_ref::<BooleanArray>().unwrap();
    let who = r.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    Ok((ssl.value(0), who.value(0).to_string()))
}

/// The TLS failure behind a connect error, by type.
fn tls_failure(e: &Error) -> &PgTlsFailure {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(f) = err.downcast_ref::<PgTlsFailure>() {
            return f;
        }
        cur = err.source();
    }
    panic!("no PgTlsFailure behind {e}");
}

#[tokio::test]
async fn require_verify_ca_and_verify_full_encrypt() {
    let f = Fixture::start(&["localhost", "127.0.0.1"]);
    let ca = f.ca_file();
    for (host, query) in [
        ("127.0.0.1", "sslmode=require".to_string()),
        ("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={ca}")),
        ("127.0.0.1", format!("sslmode=verify-full&sslrootcert={ca}")),
        ("localhost", format!("sslmode=verify-full&sslrootcert={ca}")),
        // Prefer takes TLS when the server offers it.
        ("127.0.0.1", String::new()),
    ] {
        let b = url_backend(&f.url("postgres", host, &query)).await;
        assert_eq!(
            session_ssl(&*b).await.unwrap(),
            (true, "postgres".to_string()),
            "{host} {query}"
        );
    }
    // The field form, as a config file writes it.
    let b = backend(PoolConfig {
        db_type: Some("postgresql".into()),
        host: Some("localhost".into()),
        port: Some(f.pg.port),
        username: Some("postgres".into()),
        sslmode: Some("verify-full".into()),
        sslrootcert: Some(ca.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(session_ssl(&*b).await.unwrap().0);
    // Statements with parameters and a write run over it too.
    assert_eq!(
        b.execute("SELECT $1::int", vec![dbpool_core::Param::Int64(7)])
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_password_is_checked_over_tls() {
    let f = Fixture::start(&["127.0.0.1"]);
    let admin = url_backend(&f.url("postgres", "127.0.0.1", "sslmode=require")).await;
    admin
        .execute("CREATE ROLE scramuser LOGIN PASSWORD 'tls-pw'", vec![])
        .await
        .unwrap();
    let query = format!("sslmode=verify-full&sslrootcert={}", f.ca_file());
    let b = url_backend(&f.url("scramuser:tls-pw", "127.0.0.1", &query)).await;
    assert_eq!(
        session_ssl(&*b).await.unwrap(),
        (true, "scramuser".to_string())
    );
    // SCRAM-SHA-256-PLUS: the exchange is bound to the TLS session (tls-server-end-point),
    // which `channel_binding=require` insists on.
    let bound = format!("{query}&channel_binding=require");
    let b = url_backend(&f.url("scramuser:tls-pw", "127.0.0.1", &bound)).await;
    assert_eq!(session_ssl(&*b).await.unwrap().1, "scramuser");
    let b = url_backend(&f.url("scramuser:wrong-pw", "127.0.0.1", &query)).await;
    let e = session_ssl(&*b).await.unwrap_err();
    assert!(matches!(e, Error::AuthFailed(_)), "{e:?}");
    assert!(!e.to_string().contains("wrong-pw"), "{e}");
}

/// How many `pg_sleep` statements run on the server, seen from `admin`'s session.
async fn sleeping(admin: &dyn Backend) -> i64 {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
               AND pid <> pg_backend_pid() AND starts_with(query, 'SELECT pg_sleep')";
    let q = admin.query(sql, vec![], 10).await.unwrap();
    let batches: Vec<_> = q.batches.try_collect().await.unwrap();
    let n = batches[0].column(0).as_any().downcast_ref::<Int64Array>();
    n.unwrap().value(0)
}

#[tokio::test]
async fn an_abandoned_statement_is_cancelled_over_tls() {
    let f = Fixture::start(&["127.0.0.1"]);
    let query = format!("sslmode=verify-full&sslrootcert={}", f.ca_file());
    let cfg = PoolConfig {
        url: Some(Secret::new(f.url("postgres", "127.0.0.1", &query))),
        options: PoolOptions {
            max_connections: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let b = Factory::default()
        .create("cancel", &cfg.resolve("").unwrap())
        .await
        .unwrap();
    let admin = url_backend(&f.url("postgres", "127.0.0.1", "sslmode=require")).await;
    let sleeper = {
        let b = b.clone();
        tokio::spawn(async move { b.execute("SELECT pg_sleep(60)", vec![]).await })
    };
    let admin_ref = &*admin;
    dbpool_testkit::wait_until(Duration::from_secs(10), "pg_sleep to run", || async move {
        sleeping(admin_ref).await > 0
    })
    .await;
    // The caller goes away: its statement is cancelled by a cancel request, which must
    // speak TLS like the pool. The pool's one connection comes back only once the
    // statement has ended, so a next call within seconds (not 60) proves the cancel.
    sleeper.abort();
    let next = tokio::time::timeout(Duration::from_secs(20), session_ssl(&*b)).await;
    let (ssl, _) = next
        .expect("the connection came back after the cancel")
        .unwrap();
    assert!(ssl);
    assert_eq!(sleeping(&*admin).await, 0);
}

#[tokio::test]
async fn disable_is_refused_by_a_hostssl_only_server() {
    let f = Fixture::start(&["127.0.0.1"]);
    let b = url_backend(&f.url("postgres", "127.0.0.1", "sslmode=disable")).await;
    let e = session_ssl(&*b).await.unwrap_err();
    // pg_hba.conf has no line for a plaintext connection: the server says so (28000).
    let text = e.to_string();
    assert!(matches!(e, Error::AuthFailed(_)), "{e:?}");
    assert!(
        text.contains("pg_hba.conf") && text.contains("no encryption"),
        "{text}"
    );
}

#[tokio::test]
async fn verify_full_with_the_wrong_ca_says_unknown_ca() {
    let f = Fixture::start(&["127.0.0.1"]);
    let other = TestCa::new("another CA");
    let wrong = f.file("wrong-ca.pem", &other.pem());
    for mode in ["verify-full", "verify-ca", "require"] {
        let query = format!("sslmode={mode}&sslrootcert={}", wrong.display());
        let b = url_backend(&f.url("postgres", "127.0.0.1", &query)).await;
        let e = session_ssl(&*b).await.unwrap_err();
        assert_eq!(
            e.unavailable_cause(),
            Some(UnavailableCause::Connect),
            "{e:?}"
        );
        assert!(matches!(tls_failure(&e), PgTlsFailure::UnknownCa(_)), "{e}");
        assert!(e.to_string().contains("unknown CA"), "{mode}: {e}");
    }
}

#[tokio::test]
async fn verify_full_with_another_host_name_says_host_name() {
    // A certificate for another name only: the chain is right, the name is not.
    let f = Fixture::start(&["db.example.invalid"]);
    let query = format!("sslmode=verify-full&sslrootcert={}", f.ca_file());
    let b = url_backend(&f.url("postgres", "127.0.0.1", &query)).await;
    let e = session_ssl(&*b).await.unwrap_err();
    assert_eq!(
        e.unavailable_cause(),
        Some(UnavailableCause::Connect),
        "{e:?}"
    );
    assert!(
        matches!(tls_failure(&e), PgTlsFailure::HostName { .. }),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("host name `127.0.0.1`") && text.contains("mismatch"),
        "{text}"
    );
    // verify-ca does not check the name.
    let query = format!("sslmode=verify-ca&sslrootcert={}", f.ca_file());
    let b = url_backend(&f.url("postgres", "127.0.0.1", &query)).await;
    assert!(session_ssl(&*b).await.unwrap().0);
}

#[tokio::test]
async fn a_client_certificate_is_accepted_where_clientcert_is_required() {
    let f = Fixture::start(&["127.0.0.1"]);
    let admin = url_backend(&f.url("postgres", "127.0.0.1", "sslmode=require")).await;
    admin
        .execute("CREATE ROLE certuser LOGIN", vec![])
        .await
        .unwrap();
    let (cert, key) = f.ca.sign("certuser", &[], CertUse::Client);
    let cert = f.file("client.pem", &cert);
    let key = f.file("client.key", &key);
    let ca = f.ca_file();
    let with_cert = format!(
        "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
        cert.display(),
        key.display()
    );
    let b = url_backend(&f.url("certuser", "127.0.0.1", &with_cert)).await;
    assert_eq!(
        session_ssl(&*b).await.unwrap(),
        (true, "certuser".to_string())
    );
    // Without a certificate the server refuses the user its pg_hba.conf line covers.
    let without = format!("sslmode=verify-full&sslrootcert={ca}");
    let b = url_backend(&f.url("certuser", "127.0.0.1", &without)).await;
    let e = session_ssl(&*b).await.unwrap_err();
    assert!(matches!(e, Error::AuthFailed(_)), "{e:?}");
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[tokio::test]
async fn prefer_falls_back_to_plaintext_and_require_names_the_refusal() {
    // A server without TLS (initdb's default): prefer connects in plaintext, as libpq.
    let plain = TempPostgres::start();
    let b = url_backend(&plain.url()).await;
    assert_eq!(
        session_ssl(&*b).await.unwrap(),
        (false, "postgres".to_string())
    );
    let b = url_backend(&format!("{}?sslmode=prefer", plain.url())).await;
    assert!(!session_ssl(&*b).await.unwrap().0);
    for mode in ["require", "verify-full&sslrootcert=system"] {
        let b = url_backend(&format!("{}?sslmode={mode}", plain.url())).await;
        let e = session_ssl(&*b).await.unwrap_err();
        assert_eq!(
            e.unavailable_cause(),
            Some(UnavailableCause::Connect),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("server does not support TLS"),
            "{mode}: {e}"
        );
    }
    // The machine's PostgreSQL, with TLS or without: prefer works either way.
    let b = url_backend(&dbpool_testkit::pg_base_url()).await;
    assert_eq!(session_ssl(&*b).await.unwrap().1, "postgres");
}

#[tokio::test]
async fn bad_files_name_the_key_and_never_their_content() {
    let files = tempfile::tempdir().unwrap();
    let junk = files.path().join("junk.pem");
    std::fs::write(&junk, "SECRET-CONTENT-NOT-PEM\n-----BEGIN SECRET-LINE").unwrap();
    let missing = files.path().join("missing.pem");
    let ok_ca = {
        let p = files.path().join("ca.pem");
        std::fs::write(&p, TestCa::new("x").pem()).unwrap();
        p
    };
    let base = "postgres://postgres@127.0.0.1:1/postgres?sslmode=verify-full";
    for (query, key) in [
        (format!("sslrootcert={}", missing.display()), "sslrootcert"),
        (format!("sslrootcert={}", junk.display()), "sslrootcert"),
        (
            format!(
                "sslrootcert={}&sslcert={}&sslkey={}",
                ok_ca.display(),
                junk.display(),
                ok_ca.display()
            ),
            "sslcert",
        ),
        (
            format!(
                "sslrootcert={}&sslcert={}&sslkey={}",
                ok_ca.display(),
                ok_ca.display(),
                junk.display()
            ),
            "sslkey",
        ),
    ] {
        let e = backend(PoolConfig {
            url: Some(Secret::new(format!("{base}&{query}"))),
            ..Default::default()
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("{query} was accepted"));
        let text = e.to_string();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        assert!(text.contains(key), "{query}: {text}");
        assert!(!text.contains("SECRET"), "{text}");
    }
    // Checked at resolve time, before any file is read: mode and key pairs.
    let e = PoolConfig {
        url: Some(Secret::new("postgres://h/db?sslmode=verify-everything")),
        ..Default::default()
    }
    .resolve("pools.p.")
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("pools.p.url") && e.contains("sslmode") && e.contains("verify-full"),
        "{e}"
    );
    let e = PoolConfig {
        url: Some(Secret::new("postgres://h/db")),
        sslcert: Some("/c.pem".into()),
        ..Default::default()
    }
    .resolve("pools.p.")
    .unwrap_err()
    .to_string();
    assert!(e.contains("pools.p.sslcert") && e.contains("sslkey"), "{e}");
}
