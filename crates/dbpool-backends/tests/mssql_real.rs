//! MSSQL backend against a real SQL Server, when DBPOOL_TEST_MSSQL_URL names one
//! (docs/mssql.md has the `docker run` line): the tests are ignored unless run with
//! `--ignored`, and then fail without it. Covers
//! what neither test server can: date/time types, money, xml, every parameter type and
//! the bulk load.
mod mssql_common;
use arrow::array::*;
use arrow::datatypes::*;
use dbpool_core::{Backend, BulkInsert, Error, InsertMode, Param, QueryStream};
use futures::StreamExt;
use mssql_common::*;
use std::sync::Arc;

/// The backend, or None (the test is skipped) when no real server is configured.
async fn real() -> Option<Arc<dyn Backend>> {
    let url = std::env::var("DBPOOL_TEST_MSSQL_URL")
        .expect("these tests need a real SQL Server: set DBPOOL_TEST_MSSQL_URL (docs/mssql.md)");
    Some(backend(&url).await)
}

/// Drops the test's table when it ends.
struct Table(Arc<dyn Backend>, String);

impl Drop for Table {
    fn drop(&mut self) {
        let (b, t) = (self.0.clone(), self.1.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(b.execute(&format!("DROP TABLE IF EXISTS {t}"), vec![]))
        })
        .join();
    }
}

#[tokio::test]
#[ignore = "needs a real SQL Server: DBPOOL_TEST_MSSQL_URL=... cargo test --test mssql_real -- --ignored"]
async fn date_time_money_xml_types() {
    let Some(b) = real().await else { return };
    let sql = "SELECT CAST('2024-02-29' AS date) AS d, CAST('13:45:30.1234567' AS time) AS t, \
       CAST('2024-02-29 13:45:30.1234567' AS datetime2) AS d2, \
       CAST('2024-02-29 13:45:30.123' AS datetime) AS dt, \
       CAST('2024-02-29 13:45:29' AS smalldatetime) AS sdt, \
       CAST('2024-02-29 13:45:30.5 +02:00' AS datetimeoffset) AS dto, \
       CAST(922337203685.4775 AS money) AS m, CAST(-1.5 AS smallmoney) AS sm, \
       CAST('<a>x</a>' AS xml) AS x, CAST(12.345 AS decimal(10,3)) AS n, \
       CAST(1.5 AS real) AS r, CAST(NULL AS datetime2) AS nul";
    let r = &collect(&*b, sql, vec![], 10).await.unwrap()[0];
    let ty = |n: &str| r.schema().field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("d"), DataType::Date32);
    assert_eq!(ty("t"), DataType::Time64(TimeUnit::Nanosecond));
    assert_eq!(ty("d2"), DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(
        ty("dto"),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(ty("m"), DataType::Decimal128(19, 4));
    assert_eq!(ty("n"), DataType::Decimal128(38, 3));
    assert_eq!(ty("r"), DataType::Float32);
    let v = |n: &str| r.column_by_name(n).unwrap().clone();
    assert_eq!(v("d").as_primitive::<Date32Type>().value(0), 19_782);
    assert_eq!(
        v("t").as_primitive::<Time64NanosecondType>().value(0),
        49_530_123_456_700
    );
    let day = 1_709_164_800_000_000i64; // 2024-02-29T00:00:00Z in µs
    let at = day + 49_530_000_000;
    let ts = |n: &str| v(n).as_primitive::<TimestampMicrosecondType>().value(0);
    assert_eq!(ts("d2"), at + 123_456, "the 100 ns digit is truncated");
    assert_eq!(ts("dt"), at + 123_333);
    assert_eq!(
        ts("sdt"),
        day + 49_500_000_000,
        "rounded to the minute by the server"
    );
    assert_eq!(ts("dto"), at - 7_200_000_000 + 500_000);
    assert_eq!(
        v("m").as_primitive::<Decimal128Type>().value_as_string(0),
        "922337203685.4775"
    );
    assert_eq!(
        v("sm").as_primitive::<Decimal128Type>().value_as_string(0),
        "-1.5000"
    );
    assert_eq!(v("x").as_string::<i32>().value(0), "<a>x</a>");
    assert_eq!(
        v("n").as_primitive::<Decimal128Type>().value_as_string(0),
        "12.345"
    );
    assert!(v("nul").is_null(0));
}

#[tokio::test]
#[ignore = "needs a real SQL Server: DBPOOL_TEST_MSSQL_URL=... cargo test --test mssql_real -- --ignored"]
async fn every_parameter_type() {
    let Some(b) = real().await else { return };
    let sql = "SELECT CAST(@P1 AS datetime2(6)) AS ts, @P2 AS d, @P3 AS f, @P4 AS bin, \
               CAST(@P5 AS date) AS s, @P6 AS n, @P7 AS i, @P8 AS bo";
    let params = vec![
        Param::TimestampMicros(1_709_214_330_123_456),
        Param::Decimal("-12.340".into()),
        Param::Double(2.5),
        Param::Bytes(vec![0, 1, 255]),
        Param::String("2024-02-29".into()),
        Param::Null,
        Param::Int64(i64::MIN),
        Param::Bool(false),
    ];
    let r = &collect(&*b, sql, params, 10).await.unwrap()[0];
    let v = |i: usize| r.column(i).clone();
    assert_eq!(
        v(0).as_primitive::<TimestampMicrosecondType>().value(0),
        1_709_214_330_123_456
    );
    assert_eq!(
        v(1).as_primitive::<Decimal128Type>().value_as_string(0),
        "-12.340"
    );
    assert_eq!(v(2).as_primitive::<Float64Type>().value(0), 2.5);
    assert_eq!(v(3).as_binary::<i32>().value(0), &[0, 1, 255]);
    assert_eq!(v(4).as_primitive::<Date32Type>().value(0), 19_782);
    assert!(v(5).is_null(0));
    assert_eq!(v(6).as_primitive::<Int64Type>().value(0), i64::MIN);
    assert!(!v(7).as_boolean().value(0));
    let n = b
        .execute(
            "DECLARE @t TABLE (a int); INSERT INTO @t VALUES (1), (2)",
            vec![],
        )
        .await;
    assert_eq!(n.unwrap(), 2);
}

fn frame() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("price", DataType::Decimal128(12, 2), true),
        Field::new("name", DataType::Utf8, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("day", DataType::Date32, true),
        Field::new("ok", DataType::Boolean, true),
        Field::new("raw", DataType::Binary, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(
                Decimal128Array::from(vec![Some(1999), None])
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
            ),
            Arc::new(StringArray::from(vec![Some("wörld"), None])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_709_214_330_123_456), None])
                    .with_timezone("UTC"),
            ),
            Arc::new(Date32Array::from(vec![Some(19_782), None])),
            Arc::new(BooleanArray::from(vec![Some(true), None])),
            Arc::new(BinaryArray::from(vec![Some(&[1u8, 2][..]), None])),
        ],
    )
    .unwrap()
}

async fn put(
    b: &dyn Backend,
    table: &str,
    mode: InsertMode,
    items: Vec<dbpool_core::Result<RecordBatch>>,
) -> dbpool_core::Result<u64> {
    let schema = frame().schema();
    let target = BulkInsert {
        table: table.into(),
        mode,
    };
    let batches = futures::stream::iter(items).boxed();
    b.bulk_insert(target, QueryStream { schema, batches }).await
}

#[tokio::test]
#[ignore = "needs a real SQL Server: DBPOOL_TEST_MSSQL_URL=... cargo test --test mssql_real -- --ignored"]
async fn bulk_load_round_trips() {
    let Some(b) = real().await else { return };
    let t = unique("bulk");
    let _drop = Table(b.clone(), t.clone());
    assert_eq!(
        put(&*b, &t, InsertMode::Create, vec![Ok(frame()), Ok(frame())])
            .await
            .unwrap(),
        4
    );
    let r = collect(
        &*b,
        &format!("SELECT * FROM {t} ORDER BY id, price"),
        vec![],
        100,
    )
    .await
    .unwrap();
    let r = &r[0];
    assert_eq!(r.num_rows(), 4);
    assert_eq!(
        r.column(1)
            .as_primitive::<Decimal128Type>()
            .value_as_string(1),
        "19.99"
    );
    assert_eq!(r.column(2).as_string::<i32>().value(1), "wörld");
    assert_eq!(
        r.column(3)
            .as_primitive::<TimestampMicrosecondType>()
            .value(1),
        1_709_214_330_123_456
    );
    // Replace starts over; a failing stream leaves the table as it was.
    assert_eq!(
        put(&*b, &t, InsertMode::Replace, vec![Ok(frame())])
            .await
            .unwrap(),
        2
    );
    let e = put(
        &*b,
        &t,
        InsertMode::Append,
        vec![Ok(frame()), Err(Error::invalid("stream", "client gave up"))],
    )
    .await;
    assert!(e.is_err());
    let r = collect(&*b, &format!("SELECT COUNT(*) AS n FROM {t}"), vec![], 10)
        .await
        .unwrap();
    assert_eq!(r[0].column(0).as_primitive::<Int32Type>().value(0), 2);
    // A field the table lacks is refused before any row goes out.
    let other = Arc::new(Schema::new(vec![Field::new("nope", DataType::Int64, true)]));
    let batch =
        RecordBatch::try_new(other.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let target = BulkInsert {
        table: t.clone(),
        mode: InsertMode::Append,
    };
    let e = b
        .bulk_insert(
            target,
            QueryStream {
                schema: other,
                batches: futures::stream::iter(vec![Ok(batch)]).boxed(),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { field, .. } if field == "nope"),
        "{e:?}"
    );
    b.health_check().await.unwrap();
}
