//! TLS to PostgreSQL through the daemon, against a private TLS-only server (`hostssl`
//! lines only) with certificates made by the test: a config-file pool with verify-full
//! and its CA file, a CreatePool pool with `sslmode=require`, `disable` refused by the
//! server, and a CreatePool request naming a file refused before anything reads it.
mod common;

use arrow::array::AsArray;
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_testkit::{CertUse, TempPgTls, TempPostgres, TestCa};
use tonic::Code;

/// Whether the session a query runs on is encrypted, as PostgreSQL sees it.
const SSL_SQL: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

type PoolClient = pb::pool_service_client::PoolServiceClient<tonic::transport::Channel>;

async fn session_ssl(c: &mut PoolClient, pool: &str) -> Result<bool, tonic::Status> {
    let batches = query_ipc(c, pool, SSL_SQL, vec![]).await?;
    Ok(batches[0].column(0).as_boolean().value(0))
}

fn create(id: &str, url: &str) -> pb::CreatePoolRequest {
    pb::CreatePoolRequest {
        pool_id: id.into(),
        url: url.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn pools_reach_a_tls_only_postgres_through_the_daemon() {
    let ca = TestCa::new("dbpool daemon test CA");
    let (cert_pem, key_pem) = ca.sign("server", &["127.0.0.1", "localhost"], CertUse::Server);
    let pg = TempPostgres::start_tls(&TempPgTls {
        cert_pem,
        key_pem,
        ca_pem: ca.pem(),
        hba: "hostssl all all 127.0.0.1/32 trust".into(),
    });
    let files = tempfile::tempdir().unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let base = format!("postgres://postgres@localhost:{}/postgres", pg.port);
    let verified = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        ca_file.display()
    );
    // The operator's pool may name the CA file.
    let server = TestServer::start(&[("verified", &verified)]).await;
    let mut c = server.pools().await;
    assert!(session_ssl(&mut c, "verified").await.unwrap());

    // A caller's pool may ask for TLS, opened at once (not lazy): encrypted too.
    let require = format!("{base}?sslmode=require");
    c.create_pool(create("required", &require)).await.unwrap();
    assert!(session_ssl(&mut c, "required").await.unwrap());

    // Plaintext: the server has no line for it, and says so.
    let e = c
        .create_pool(create("plain", &format!("{base}?sslmode=disable")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("no encryption"), "{e:?}");

    // A caller's pool may not name a file, existing or not, in its URL or backups; the
    // answer is the same and shows no path.
    let missing = files.path().join("missing.pem");
    let mut answers = Vec::new();
    for path in [&ca_file, &missing] {
        let named = format!("{base}?sslmode=verify-full&sslrootcert={}", path.display());
        for req in [
            create("named", &named),
            pb::CreatePoolRequest {
                backup_urls: vec![named.clone()],
                ..create("named", &require)
            },
        ] {
            let e = c.create_pool(req).await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
            assert!(
                e.message().contains("can only be set in the config file"),
                "{e:?}"
            );
            assert!(
                !e.message().contains(files.path().to_str().unwrap()),
                "{e:?}"
            );
            answers.push(e.message().to_string());
        }
    }
    assert!(answers[0].contains("url (sslrootcert)"), "{answers:?}");
    assert!(
        answers[1].contains("backup_urls[0] (sslrootcert)"),
        "{answers:?}"
    );
    assert_eq!(answers[0], answers[2]);
    assert_eq!(answers[1], answers[3]);
    let listed = c.list_pools(pb::ListPoolsRequest {}).await.unwrap();
    let ids: Vec<String> = listed
        .into_inner()
        .pools
        .into_iter()
        .map(|p| p.pool_id)
        .collect();
    assert!(
        !ids.iter().any(|id| id == "named" || id == "plain"),
        "{ids:?}"
    );
}
