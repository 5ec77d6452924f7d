//! Command policy and file paths are the operator's, end to end through the server:
//! CreatePool refuses a request's denylist, allowlist or CA file (the same answer whether
//! the file exists or not); a default Redis pool refuses FLUSHALL, CONFIG SET, DUMP and
//! scripts against the real Redis, which keeps its keys; a default InfluxDB pool refuses
//! DROP DATABASE and CREATE USER against the real InfluxDB, which keeps the database;
//! ListPools shows no secret query value.
//! The InfluxDB test needs DBPOOL_TEST_INFLUX_URL (scripts/influxdb.sh); it fails unset.
mod common;

use arrow::array::AsArray;
use common::*;
use dbpool_proto::v1 as pb;
use std::collections::HashMap;
use tonic::Code;

type PoolClient = pb::pool_service_client::PoolServiceClient<tonic::transport::Channel>;

fn redis_url() -> String {
    std::env::var("DBPOOL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

fn create(id: &str, url: &str, settings: &[(&str, &str)]) -> pb::CreatePoolRequest {
    pb::CreatePoolRequest {
        pool_id: id.into(),
        url: url.into(),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        lazy: true,
        ..Default::default()
    }
}

/// The status of a refused operator-only setting: INVALID_ARGUMENT naming the field.
fn assert_operator_only(e: &tonic::Status, field: &str) {
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains(field), "{e:?}");
    assert!(
        e.message().contains("can only be set in the config file"),
        "{e:?}"
    );
}

#[tokio::test]
async fn create_pool_refuses_operator_only_settings() {
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let redis = redis_url();
    for (key, value) in [("denied_commands", ""), ("allowed_commands", "CONFIG,EVAL")] {
        let e = c
            .create_pool(create("r", &redis, &[(key, value)]))
            .await
            .unwrap_err();
        assert_operator_only(&e, &format!("settings.{key}"));
    }
    // A CA file: one answer whether the file exists or not, and nothing about it.
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("ca.pem");
    std::fs::write(&real, "not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    let tls = redis.replacen("redis://", "rediss://", 1);
    let mut answers = Vec::new();
    for path in [&real, &missing, &dir.path().to_path_buf()] {
        let settings = [("tls_ca_file", path.to_str().unwrap())];
        let e = c
            .create_pool(create("r", &tls, &settings))
            .await
            .unwrap_err();
        assert_operator_only(&e, "settings.tls_ca_file");
        assert!(!e.message().contains(dir.path().to_str().unwrap()), "{e:?}");
        answers.push((e.code(), e.message().to_string()));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    // InfluxDB's statement policy and response cap; MSSQL's CA file in URL or ado string.
    for key in ["denied_statements", "allowed_statements", "max_chunk_bytes"] {
        let e = c
            .create_pool(create("i", "influxdb://127.0.0.1:1/db", &[(key, "1")]))
            .await
            .unwrap_err();
        assert_operator_only(&e, &format!("settings.{key}"));
    }
    let e = c
        .create_pool(create(
            "m",
            "mssql://sa:p@127.0.0.1:1/db?trust_server_certificate_ca=/etc/hostname",
            &[],
        ))
        .await
        .unwrap_err();
    assert_operator_only(&e, "url (trust_server_certificate_ca)");
    // Nothing was created; harmless settings still are accepted.
    let listed = c.list_pools(pb::ListPoolsRequest {}).await.unwrap();
    assert_eq!(listed.into_inner().pools.len(), 1, "only the default pool");
    c.create_pool(create("r", &redis, &[("scan_count", "50")]))
        .await
        .unwrap();
}

/// The default denylist against the real Redis: the key written first survives every
/// refused command, in a pipeline and MULTI/EXEC batch too.
#[tokio::test]
async fn default_redis_pool_refuses_admin_debug_and_data_moving_commands() {
    let server = TestServer::start(&[("r", &redis_url())]).await;
    let mut c = server.pools().await;
    let key = dbpool_testkit::unique_name("dbpool_policy");
    execute(&mut c, "r", &format!("SET {key} kept EX 60"))
        .await
        .unwrap();
    for cmd in [
        "FLUSHALL".to_string(),
        "flushdb".into(),
        "CONFIG SET maxmemory 1".into(),
        "CONFIG GET *".into(),
        format!("DUMP {key}"),
        format!("RESTORE {key}2 0 x"),
        format!("MIGRATE 127.0.0.1 1 {key} 0 1000"),
        format!("MOVE {key} 1"),
        format!("COPY {key} {key}3 DB 1"),
        "DEBUG SLEEP 0".into(),
        "SLOWLOG GET".into(),
        "MEMORY PURGE".into(),
        "EVAL \"return redis.call('FLUSHALL')\" 0".into(),
        "SCRIPT FLUSH".into(),
        "REPLICAOF 127.0.0.1 1".into(),
    ] {
        let e = execute(&mut c, "r", &cmd).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{cmd}: {e:?}");
    }
    // Each command of a batch is checked; in a transaction nothing is sent.
    let batch = |transaction| pb::ExecuteBatchRequest {
        pool_id: "r".into(),
        statements: ["DEL nothing_here", "FLUSHALL"]
            .map(|s| pb::Statement {
                sql: s.into(),
                params: vec![],
            })
            .to_vec(),
        transaction,
    };
    let e = c.execute_batch(batch(true)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let out = c.execute_batch(batch(false)).await.unwrap().into_inner();
    assert!(out.results[0].ok, "{out:?}");
    assert!(
        !out.results[1].ok && out.results[1].error.contains("FLUSHALL"),
        "{out:?}"
    );
    // A COPY within the database is allowed.
    assert_eq!(
        execute(&mut c, "r", &format!("COPY {key} {key}:copy"))
            .await
            .unwrap(),
        1
    );
    let got = query_ipc(&mut c, "r", &format!("GET {key}"), vec![])
        .await
        .unwrap();
    assert_eq!(got[0].column(0).as_string::<i32>().value(0), "kept");
    execute(&mut c, "r", &format!("DEL {key} {key}:copy"))
        .await
        .unwrap();
}

/// The default statement policy against the real InfluxDB: DROP DATABASE and user
/// administration are refused, also hidden after a `;`, and the database stays.
#[tokio::test]
async fn default_influx_pool_refuses_drop_database_and_create_user() {
    let base = std::env::var("DBPOOL_TEST_INFLUX_URL").unwrap_or_else(|_| {
        panic!("DBPOOL_TEST_INFLUX_URL is not set: `eval \"$(scripts/influxdb.sh start)\"`")
    });
    let db = dbpool_testkit::unique_name("dbpool_t");
    let server = TestServer::start_with(
        &[
            ("admin", base.as_str()),
            ("influx", &format!("{base}/{db}")),
        ],
        |c| {
            let admin = c.pools.get_mut("admin").unwrap();
            admin.settings.insert(
                "allowed_statements".into(),
                "CREATE DATABASE, DROP DATABASE".into(),
            );
        },
    )
    .await;
    let mut c = server.pools().await;
    execute(&mut c, "admin", &format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let user = dbpool_testkit::unique_name("u");
    for sql in [
        format!("DROP DATABASE {db}"),
        format!("drop /* hidden */ database \"{db}\""),
        format!("SHOW DATABASES; DROP DATABASE {db}"),
        format!("SELECT * FROM m WHERE t =~ /'/; DROP DATABASE {db}; SELECT '/"),
        format!("CREATE USER {user} WITH PASSWORD 'p' WITH ALL PRIVILEGES"),
        format!("GRANT ALL PRIVILEGES TO {user}"),
        "KILL QUERY 1".into(),
        format!("CREATE DATABASE {db}_other"),
    ] {
        let e = execute(&mut c, "influx", &sql).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{sql}: {e:?}");
        let e = query_ipc(&mut c, "influx", &sql, vec![]).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{sql}: {e:?}");
    }
    // Nothing of it ran: the database is there, the user is not.
    let dbs = column(&mut c, "SHOW DATABASES", "name").await;
    assert!(dbs.contains(&db), "{dbs:?}");
    assert!(!dbs.contains(&format!("{db}_other")), "{dbs:?}");
    let users = column(&mut c, "SHOW USERS", "user").await;
    assert!(!users.contains(&user), "{users:?}");
    // Points are the pool's own: writing and deleting them is allowed.
    assert_eq!(execute(&mut c, "influx", "m v=1 1").await.unwrap(), 1);
    execute(&mut c, "influx", "DROP MEASUREMENT m")
        .await
        .unwrap();
    execute(&mut c, "admin", &format!("DROP DATABASE {db}"))
        .await
        .unwrap();
}

/// One text column of an admin query's result.
async fn column(c: &mut PoolClient, sql: &str, name: &str) -> Vec<String> {
    let batches = query_ipc(c, "admin", sql, vec![]).await.unwrap();
    let mut out = Vec::new();
    for b in &batches {
        let col = b
            .column_by_name(name)
            .unwrap_or_else(|| panic!("{name} in {b:?}"));
        let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).unwrap();
        out.extend(col.as_string::<i32>().iter().flatten().map(String::from));
    }
    out
}

/// ListPools redacts every query value not known to be safe (`options=-c …` included)
/// and the password.
#[tokio::test]
async fn list_pools_shows_no_secret_query_value() {
    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let url = "postgres://postgres:pw_hidden@127.0.0.1:5432/postgres?sslmode=disable\
               &options=-c%20statement_timeout%3D424242&application_name=seen";
    c.create_pool(create("pg", url, &[])).await.unwrap();
    let pools = c
        .list_pools(pb::ListPoolsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pools;
    let pg = pools.iter().find(|p| p.pool_id == "pg").unwrap();
    assert_eq!(
        pg.redacted_url,
        "postgres://postgres:***@127.0.0.1:5432/postgres?sslmode=disable&options=***\
         &application_name=seen"
    );
}
