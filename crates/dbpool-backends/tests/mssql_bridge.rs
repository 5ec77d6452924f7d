//! MSSQL backend against pysqlbridge (scripts/mssql-servers.sh): TLS inside TDS, SQL
//! logins, CSV-typed reads, parameters, several result sets, server errors and numbers.
mod mssql_common;
use arrow::array::*;
use arrow::datatypes::{DataType, TimeUnit};
use dbpool_config::PoolOptions;
use dbpool_core::{Error, Param};
use mssql_common::*;
use std::sync::Arc;

fn with(url: &str, from: &str, to: &str) -> String {
    assert!(url.contains(from), "{url} has no {from}");
    url.replacen(from, to, 1)
}

#[tokio::test]
async fn reads_csv_types_over_tls() {
    let b = backend(&bridge()).await;
    let r = collect(
        &*b,
        "SELECT id, name, score FROM people ORDER BY id",
        vec![],
        100,
    )
    .await
    .unwrap();
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r.num_rows(), 3);
    let col = |n: &str| r.column_by_name(n).unwrap().clone();
    assert_eq!(
        &col("id"),
        &(Arc::new(Int32Array::from(vec![1, 2, 3])) as ArrayRef)
    );
    assert_eq!(
        &col("name"),
        &(Arc::new(StringArray::from(vec![
            "Ada Lovelace",
            "Grace Hopper",
            "Edsger Dijkstra"
        ])) as ArrayRef)
    );
    assert_eq!(
        &col("score"),
        &(Arc::new(Float64Array::from(vec![Some(99.5), Some(87.25), None])) as ArrayRef)
    );
}

#[tokio::test]
async fn every_encrypt_level_the_server_offers() {
    // `on` is `required`; `off` encrypts the login only.
    for level in ["on", "off"] {
        let url = with(&bridge(), "encrypt=required", &format!("encrypt={level}"));
        let b = backend(&url).await;
        let r = collect(&*b, "SELECT COUNT(*) AS n FROM people", vec![], 10)
            .await
            .unwrap();
        assert_eq!(r[0].num_rows(), 1, "encrypt={level}");
    }
    // Without trust_server_certificate the bridge's self-signed certificate is refused.
    let url = with(&bridge(), "&trust_server_certificate=true", "");
    let b = backend(&url).await;
    let e = b.health_check().await.unwrap_err();
    assert!(
        matches!(&e, Error::Unavailable { message: m, .. } if m.contains("certificate")),
        "{e:?}"
    );
}

#[tokio::test]
async fn cast_types() {
    let b = backend(&bridge()).await;
    // The bridge encodes int, float, bit, datetime and text (tinyint and smallint go out
    // as int, money as float); these arrive as such.
    let sql = "SELECT CAST(1 AS bit) AS b, CAST(200 AS tinyint) AS t, CAST(-3 AS smallint) AS s, \
               CAST('2024-02-29T13:45:30' AS datetime) AS dt, \
               CAST(1234.5 AS money) AS m, \
               CAST('x' AS varchar(3)) AS vc, CAST(NULL AS int) AS n";
    let r = &collect(&*b, sql, vec![], 10).await.unwrap()[0];
    let types: Vec<DataType> = r
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        vec![
            DataType::Boolean,
            DataType::Int32,
            DataType::Int32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Float64,
            DataType::Utf8,
            DataType::Int32,
        ]
    );
    assert!(r.column(0).as_boolean().value(0));
    assert_eq!(
        r.column(1)
            .as_primitive::<arrow::datatypes::Int32Type>()
            .value(0),
        200
    );
    assert_eq!(
        r.column(2)
            .as_primitive::<arrow::datatypes::Int32Type>()
            .value(0),
        -3
    );
    let ts = r
        .column(3)
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
    assert_eq!(ts.value(0), 1_709_214_330_000_000);
    assert_eq!(
        r.column(4)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0),
        1234.5
    );
    assert_eq!(r.column(5).as_string::<i32>().value(0), "x");
    assert!(r.column(6).is_null(0));
}

#[tokio::test]
async fn parameters_and_batches() {
    let b = backend(&bridge()).await;
    let r = collect(
        &*b,
        "SELECT name FROM people WHERE id >= @P1 AND name <> @P2 ORDER BY id",
        vec![Param::Int64(2), Param::String("nobody".into())],
        1,
    )
    .await
    .unwrap();
    // batch_size 1: one batch per row.
    assert_eq!(
        r.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
        vec![1, 1]
    );
    assert_eq!(
        r[1].column(0).as_string::<i32>().value(0),
        "Edsger Dijkstra"
    );
}

#[tokio::test]
async fn only_the_first_result_set_is_returned() {
    let b = backend(&bridge()).await;
    let r = collect(&*b, "SELECT 1 AS a; SELECT 'x' AS b, 2 AS c", vec![], 10)
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].schema().field(0).name(), "a");
    assert_eq!(
        r[0].column(0)
            .as_primitive::<arrow::datatypes::Int32Type>()
            .value(0),
        1
    );
}

#[tokio::test]
async fn server_errors_keep_number_and_message() {
    let b = backend(&bridge()).await;
    let e = collect(&*b, "SELECT * FROM no_such_table", vec![], 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Database { code: Some(c), message } if c == "208" && message.contains("no_such_table")),
        "{e:?}"
    );
    let e = collect(&*b, "RAISERROR('boom', 16, 1)", vec![], 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Database { code: Some(c), message } if c == "50000" && message == "boom"),
        "{e:?}"
    );
    // An error after the first result set still ends its stream.
    let e = collect(&*b, "SELECT 1 AS a; RAISERROR('late', 16, 1)", vec![], 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Database { message, .. } if message == "late"),
        "{e:?}"
    );
    // The pool's connection is fine afterwards.
    b.health_check().await.unwrap();
}

#[tokio::test]
async fn login_failure_is_auth_failed() {
    let url = with(&bridge(), "reader-Pw1", "wrong-password");
    let b = backend(&url).await;
    let e = b.health_check().await.unwrap_err();
    assert!(
        matches!(&e, Error::AuthFailed(m) if m.contains("18456")),
        "{e:?}"
    );
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("mssql://u:p@127.0.0.1:{port}/?encrypt=required");
    let b = backend(&url).await;
    let e = b.health_check().await.unwrap_err();
    assert!(matches!(&e, Error::Unavailable { .. }), "{e:?}");
}

#[tokio::test]
async fn ado_string_with_the_login_from_the_url() {
    let url = url::Url::parse(&bridge()).unwrap();
    let ado = format!(
        "Server=tcp:127.0.0.1,{};Encrypt=true;TrustServerCertificate=true;Application Name=ado-test",
        url.port().unwrap()
    );
    let pool = "mssql://reader:reader-Pw1@localhost/";
    let b = backend_with(pool, &[("ado", &ado)], PoolOptions::default())
        .await
        .unwrap();
    let r = collect(&*b, "SELECT COUNT(*) AS n FROM people", vec![], 10)
        .await
        .unwrap();
    assert_eq!(r[0].num_rows(), 1);
    let e = backend_with(
        pool,
        &[("ado", "Server=tcp:h,1;Authentication=ActiveDirectoryMSI")],
        PoolOptions::default(),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(&e, Error::InvalidArgument { field, message } if field.starts_with("settings.ado") && message.contains("Azure AD")),
        "{e:?}"
    );
}

#[tokio::test]
async fn catalog_metadata() {
    let b = backend(&bridge()).await;
    let tables = b.list_tables().await.unwrap();
    assert!(
        tables
            .iter()
            .any(|t| t.name == "people" && t.kind == "TABLE"),
        "{tables:?}"
    );
    let s = b.table_schema("dbo", "people").await.unwrap();
    let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "name", "score", "retired"]);
    assert_eq!(s.field(2).data_type(), &DataType::Float64);
}

#[tokio::test]
async fn statement_timeout_closes_the_connection() {
    // A long T-SQL loop keeps the bridge busy; the pool's (client-side) timeout closes
    // the connection, which stops it, and the next call gets a fresh one.
    let options = PoolOptions {
        max_connections: 1,
        statement_timeout_ms: 300,
        ..Default::default()
    };
    let b = backend_with(&bridge(), &[], options).await.unwrap();
    let slow = "DECLARE @i int = 0\nWHILE @i < 3000000 SET @i = @i + 1\nSELECT @i AS i";
    let started = std::time::Instant::now();
    let e = b.query(slow, vec![], 10).await.err().unwrap();
    assert!(matches!(&e, Error::StatementTimeout(_)), "{e:?}");
    let e = b.execute(slow, vec![]).await.unwrap_err();
    assert!(matches!(&e, Error::StatementTimeout(_)), "{e:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let r = collect(&*b, "SELECT COUNT(*) AS n FROM people", vec![], 10)
        .await
        .unwrap();
    assert_eq!(r[0].num_rows(), 1);
}
