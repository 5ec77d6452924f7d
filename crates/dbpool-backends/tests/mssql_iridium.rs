//! MSSQL backend against iridium_server (scripts/mssql-servers.sh): typed reads of the
//! types it encodes correctly, writes, all-or-nothing batches, interactive transactions,
//! describe without keeping writes, the pool after abandoned streams, a dirty session
//! closed rather than handed on.
mod mssql_common;
use arrow::array::*;
use arrow::datatypes::*;
use dbpool_config::PoolOptions;
use dbpool_core::{
    BulkInsert, Error, InsertMode, Isolation, Param, QueryStream, Statement, TxOptions,
};
use dbpool_testkit::wait_until_sync;
use futures::{StreamExt, TryStreamExt};
use mssql_common::*;
use std::sync::Arc;

async fn count(b: &dyn dbpool_core::Backend, table: &str) -> i64 {
    let r = collect(b, &format!("SELECT COUNT(*) AS n FROM {table}"), vec![], 10)
        .await
        .unwrap();
    r[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn every_type_with_value_and_null() {
    let srv = iridium().await;
    let b = backend(&srv.url).await;
    let t = unique("types");
    b.execute(
        &format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, b bit, ti tinyint, si smallint, bi bigint, \
             f float, d decimal(10,2), sm smallmoney, c char(3), nc nchar(3), nv nvarchar(20), \
             bin binary(3), vb varbinary(10), u uniqueidentifier)"
        ),
        vec![],
    )
    .await
    .unwrap();
    b.execute(
        &format!(
            "INSERT INTO {t} VALUES (1, 1, 200, -3, 4503599627370497, 2.25, -1234.56, -1.5, \
             'ab', N'x', N'wörld', 0x0102, 0xff, '6F9619FF-8B86-D011-B42D-00C04FC964FF')"
        ),
        vec![],
    )
    .await
    .unwrap();
    b.execute(&format!("INSERT INTO {t} (id) VALUES (2)"), vec![])
        .await
        .unwrap();
    let r = collect(&*b, &format!("SELECT * FROM {t} ORDER BY id"), vec![], 100)
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r.num_rows(), 2);
    let col = |n: &str| r.column_by_name(n).unwrap().clone();
    let expect = |n: &str, a: ArrayRef| assert_eq!(&col(n), &a, "column {n}");
    expect("id", Arc::new(Int32Array::from(vec![1, 2])));
    expect("b", Arc::new(BooleanArray::from(vec![Some(true), None])));
    expect("ti", Arc::new(UInt8Array::from(vec![Some(200), None])));
    expect("si", Arc::new(Int16Array::from(vec![Some(-3), None])));
    expect(
        "bi",
        Arc::new(Int64Array::from(vec![Some(4_503_599_627_370_497), None])),
    );
    expect("f", Arc::new(Float64Array::from(vec![Some(2.25), None])));
    let dec = |v: Option<i128>, p: u8, s: i8| -> ArrayRef {
        Arc::new(
            Decimal128Array::from(vec![v, None])
                .with_precision_and_scale(p, s)
                .unwrap(),
        )
    };
    // Decimal128(38, declared scale): tiberius does not expose the declared precision.
    expect("d", dec(Some(-123_456), 38, 2));
    expect("sm", dec(Some(-15_000), 19, 4));
    expect("c", Arc::new(StringArray::from(vec![Some("ab "), None])));
    expect("nc", Arc::new(StringArray::from(vec![Some("x  "), None])));
    expect("nv", Arc::new(StringArray::from(vec![Some("wörld"), None])));
    expect(
        "bin",
        Arc::new(BinaryArray::from(vec![Some(&[1u8, 2, 0][..]), None])),
    );
    expect(
        "vb",
        Arc::new(BinaryArray::from(vec![Some(&[255u8][..]), None])),
    );
    expect(
        "u",
        Arc::new(StringArray::from(vec![
            Some("6F9619FF-8B86-D011-B42D-00C04FC964FF"),
            None,
        ])),
    );
}

#[tokio::test]
async fn parameters_bind_typed() {
    let srv = iridium().await;
    let b = backend(&srv.url).await;
    let t = unique("params");
    b.execute(
        &format!("CREATE TABLE {t} (i bigint, s nvarchar(10), f bit, n int)"),
        vec![],
    )
    .await
    .unwrap();
    let p = vec![
        Param::Int64(-5_000_000_000),
        Param::String("it's".into()),
        Param::Bool(true),
        Param::Null,
    ];
    b.execute(&format!("INSERT INTO {t} VALUES (@P1, @P2, @P3, @P4)"), p)
        .await
        .unwrap();
    let r = collect(
        &*b,
        &format!("SELECT * FROM {t} WHERE i = @P1"),
        vec![Param::Int64(-5_000_000_000)],
        10,
    )
    .await
    .unwrap();
    let r = &r[0];
    assert_eq!(r.num_rows(), 1);
    assert_eq!(
        r.column(0).as_primitive::<Int64Type>().value(0),
        -5_000_000_000
    );
    assert_eq!(r.column(1).as_string::<i32>().value(0), "it's");
    assert!(r.column(2).as_boolean().value(0));
    assert!(r.column(3).is_null(0));
    // A bad decimal never reaches the server.
    let e = b
        .query("SELECT @P1", vec![Param::Decimal("1e5".into())], 10)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::InvalidArgument { field, .. } if field == "params[0]"),
        "{e:?}"
    );
}

#[tokio::test]
async fn batches_are_all_or_nothing() {
    let srv = iridium().await;
    let b = backend(&srv.url).await;
    let t = unique("batch");
    b.execute(&format!("CREATE TABLE {t} (id int PRIMARY KEY)"), vec![])
        .await
        .unwrap();
    let st = |sql: String| Statement {
        sql,
        params: vec![],
    };
    let e = b
        .execute_batch(
            vec![
                st(format!("INSERT INTO {t} VALUES (1)")),
                st(format!("INSERT INTO {t} VALUES (1)")),
            ],
            true,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::BatchStatement { index: 1, .. }),
        "{e:?}"
    );
    assert_eq!(count(&*b, &t).await, 0, "the first insert was rolled back");
    // Without a transaction each statement stands alone.
    let out = b
        .execute_batch(
            vec![
                st(format!("INSERT INTO {t} VALUES (1)")),
                st(format!("INSERT INTO {t} VALUES (1)")),
                st(format!("INSERT INTO {t} VALUES (2)")),
            ],
            false,
        )
        .await
        .unwrap();
    assert!(out[0].outcome.is_ok() && out[1].outcome.is_err() && out[2].outcome.is_ok());
    assert!(out[1].outcome.as_ref().unwrap_err().db_code().is_some());
    assert_eq!(count(&*b, &t).await, 2);
}

#[tokio::test]
async fn interactive_transactions() {
    let srv = iridium().await;
    let b = backend(&srv.url).await;
    let t = unique("tx");
    b.execute(
        &format!("CREATE TABLE {t} (id int PRIMARY KEY, n nvarchar(10))"),
        vec![],
    )
    .await
    .unwrap();
    let ins = |id: i64| {
        (
            format!("INSERT INTO {t} VALUES (@P1, @P2)"),
            vec![Param::Int64(id), Param::String(format!("r{id}"))],
        )
    };

    let tx = b.begin(TxOptions::default()).await.unwrap();
    let (sql, p) = ins(1);
    tx.execute(&sql, p).await.unwrap();
    // Reads inside see the write; describing does not keep a second one.
    let q = tx
        .query(&format!("SELECT n FROM {t}"), vec![], 10)
        .await
        .unwrap();
    let rows: Vec<RecordBatch> = q.batches.try_collect().await.unwrap();
    assert_eq!(rows[0].column(0).as_string::<i32>().value(0), "r1");
    tx.commit().await.unwrap();
    assert_eq!(count(&*b, &t).await, 1);

    let tx = b
        .begin(TxOptions {
            isolation: Isolation::Serializable,
            read_only: false,
        })
        .await
        .unwrap();
    let (sql, p) = ins(2);
    tx.execute(&sql, p).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(count(&*b, &t).await, 1);
    assert!(tx.commit().await.is_err(), "the transaction has ended");

    // Dropped without an end: rolled back on the way back to the pool.
    let tx = b.begin(TxOptions::default()).await.unwrap();
    let (sql, p) = ins(3);
    tx.execute(&sql, p).await.unwrap();
    drop(tx);
    let back = || b.state().in_use() == 0;
    let within = std::time::Duration::from_secs(10);
    wait_until_sync(within, "the rolled-back connection back in the pool", back).await;
    assert_eq!(count(&*b, &t).await, 1);

    let ro = TxOptions {
        read_only: true,
        ..Default::default()
    };
    assert!(matches!(
        b.begin(ro).await.err().unwrap(),
        Error::Unsupported(_)
    ));
}

#[tokio::test]
async fn describe_keeps_no_writes() {
    let srv = iridium().await;
    let b = backend(&srv.url).await;
    let t = unique("describe");
    b.execute(
        &format!("CREATE TABLE {t} (id int, d decimal(9,3))"),
        vec![],
    )
    .await
    .unwrap();
    b.execute(&format!("INSERT INTO {t} VALUES (1, 2.5)"), vec![])
        .await
        .unwrap();
    let s = b
        .schema(&format!("SELECT id, d FROM {t}"), vec![])
        .await
        .unwrap();
    assert_eq!(s.field(1).data_type(), &DataType::Decimal128(38, 3));
    let s = b
        .schema(&format!("INSERT INTO {t} VALUES (2, 1)"), vec![])
        .await
        .unwrap();
    assert!(s.fields().is_empty());
    assert_eq!(count(&*b, &t).await, 1, "describe rolled the insert back");
}

#[tokio::test]
async fn abandoned_streams_leave_the_pool_usable() {
    let options = PoolOptions {
        max_connections: 1,
        ..Default::default()
    };
    let srv = iridium().await;
    let b = backend_with(&srv.url, &[], options).await.unwrap();
    let t = unique("stream");
    b.execute(&format!("CREATE TABLE {t} (id int)"), vec![])
        .await
        .unwrap();
    for i in 0..50 {
        b.execute(&format!("INSERT INTO {t} VALUES ({i})"), vec![])
            .await
            .unwrap();
    }
    let mut q = b
        .query(&format!("SELECT id FROM {t}"), vec![], 5)
        .await
        .unwrap();
    let first = q.batches.next().await.unwrap().unwrap();
    assert_eq!(first.num_rows(), 5);
    drop(q);
    // The only connection was left mid-result: it is closed and replaced, not reused.
    let r = collect(&*b, &format!("SELECT id FROM {t}"), vec![], 100)
        .await
        .unwrap();
    assert_eq!(r.iter().map(|b| b.num_rows()).sum::<usize>(), 50);
    assert_eq!(count(&*b, &t).await, 50);
}

#[tokio::test]
async fn bulk_insert_failure_leaves_nothing_behind() {
    // iridium marks no column writable, so tiberius's INSERT BULK has no columns and
    // the server refuses it: the `create` that came before must be rolled back.
    let srv = iridium().await;
    let b = backend(&srv.url).await;
    let t = unique("bulk");
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap();
    let target = BulkInsert {
        table: t.clone(),
        mode: InsertMode::Create,
    };
    let r = b
        .bulk_insert(
            target,
            QueryStream {
                schema,
                batches: futures::stream::iter(vec![Ok(batch)]).boxed(),
            },
        )
        .await;
    assert!(
        matches!(&r, Err(Error::Database { code: Some(_), .. })),
        "{r:?}"
    );
    let e = collect(&*b, &format!("SELECT * FROM {t}"), vec![], 10)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Database { code: Some(c), .. } if c == "208"),
        "{e:?}"
    );
}

#[tokio::test]
async fn catalog_metadata() {
    let srv = iridium().await;
    let b = backend(&srv.url).await;
    let t = unique("meta");
    b.execute(
        &format!("CREATE TABLE {t} (k1 int, k2 int, v nvarchar(5), PRIMARY KEY (k1, k2))"),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(b.catalog_name().await.unwrap(), "dbpool_test");
    assert!(b.list_schemas().await.unwrap().contains(&"dbo".to_string()));
    let tables = b.list_tables().await.unwrap();
    assert!(tables
        .iter()
        .any(|x| x.name == t && x.db_schema == "dbo" && x.kind == "TABLE"));
    assert_eq!(b.primary_keys("dbo", &t).await.unwrap(), ["k1", "k2"]);
}

/// Issue 17: SQL that changes the session (a SET option, a #temp table) marks the
/// connection, which the pool closes instead of handing on (tiberius cannot send TDS's
/// reset-connection flag); clean statements keep their connection.
#[tokio::test]
async fn a_dirty_session_is_not_handed_on() {
    let srv = iridium().await;
    let one = PoolOptions {
        max_connections: 1,
        ..PoolOptions::default()
    };
    let b = backend_with(&srv.url, &[], one).await.unwrap();
    let created = || b.state().connections_created;
    collect(&*b, "SELECT 1 AS a", vec![], 10).await.unwrap();
    let base = created();
    collect(&*b, "SELECT 2 AS a", vec![], 10).await.unwrap();
    assert_eq!(created(), base, "a clean connection is reused");
    b.execute("SET NOCOUNT ON", vec![]).await.unwrap();
    collect(&*b, "SELECT 3 AS a", vec![], 10).await.unwrap();
    assert_eq!(created(), base + 1, "the dirty connection was handed on");
    let t = format!("#{}", unique("tmp"));
    // On its own connection (a transaction's) the temp table is there...
    let tx = b.begin(TxOptions::default()).await.unwrap();
    tx.execute(&format!("CREATE TABLE {t} (a int)"), vec![])
        .await
        .unwrap();
    let q = tx.query(&format!("SELECT a FROM {t}"), vec![], 10).await;
    let rows: Vec<RecordBatch> = q.unwrap().batches.try_collect().await.unwrap();
    assert_eq!(rows.iter().map(|r| r.num_rows()).sum::<usize>(), 0);
    tx.commit().await.unwrap();
    collect(&*b, "SELECT 4 AS a", vec![], 10).await.unwrap();
    let msg = "the transaction's connection was handed on";
    assert_eq!(created(), base + 2, "{msg}");
    // ... and for the next caller it is gone.
    b.execute(&format!("CREATE TABLE {t} (a int)"), vec![])
        .await
        .unwrap();
    let gone = collect(&*b, &format!("SELECT a FROM {t}"), vec![], 10).await;
    assert!(gone.is_err(), "caller A's temp table reached caller B");
    assert_eq!(created(), base + 3);
}
