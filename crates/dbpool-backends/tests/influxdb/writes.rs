//! Writes against the real server: line-protocol escaping round trips, bulk insert
//! read back equal, Create/Replace, auth failures and request slots.
use super::*;

#[tokio::test]
async fn escaping_round_trips_through_the_server() {
    let db = InfluxDb::create().await;
    let b = db.backend(&[]).await;
    let tags = [
        "a b,c=d",
        r#"q"uote"#,
        r"back\slash",
        r"x\,y",
        "日本語 ü",
        "=lead",
    ];
    let texts = [
        r#"say "hi""#,
        r"C:\dir\",
        "two\nlines",
        "ü , = \\\" end",
        "",
        "plain",
    ];
    let schema = Arc::new(Schema::new(vec![
        Field::new("time", DataType::Int64, false),
        Field::new("tag key,=", DataType::Utf8, false),
        Field::new("field \"key\"", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(1..=tags.len() as i64)),
            Arc::new(StringArray::from(tags.to_vec())),
            Arc::new(StringArray::from(texts.to_vec())),
        ],
    )
    .unwrap();
    let m = "mé as,ure=ment";
    // `tag=` names one column (commas allowed), `tags=` a comma-separated list.
    let target = BulkInsert {
        table: format!("{m}?tag=tag%20key%2C%3D"),
        mode: InsertMode::Create,
    };
    let n = b
        .bulk_insert(
            target.clone(),
            QueryStream {
                schema: schema.clone(),
                batches: Box::pin(futures::stream::iter([Ok(batch.clone())])),
            },
        )
        .await
        .unwrap();
    assert_eq!(n, 6);
    let r = one(&*b, "SELECT * FROM \"mé as,ure=ment\"").await;
    assert_eq!(strings(&r, "_measurement"), vec![Some(m.to_string()); 6]);
    let want = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    assert_eq!(strings(&r, "tag key,="), want(&tags));
    assert_eq!(strings(&r, "field \"key\""), want(&texts));

    // Create refuses an existing measurement; Replace drops it first.
    let e = b
        .bulk_insert(
            target,
            QueryStream {
                schema: schema.clone(),
                batches: Box::pin(futures::stream::empty()),
            },
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let replace = BulkInsert {
        table: m.into(),
        mode: InsertMode::Replace,
    };
    let first = RecordBatch::try_new(
        schema.clone(),
        batch.columns().iter().map(|c| c.slice(0, 1)).collect(),
    )
    .unwrap();
    b.bulk_insert(
        replace,
        QueryStream {
            schema,
            batches: Box::pin(futures::stream::iter([Ok(first)])),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        one(&*b, "SELECT * FROM \"mé as,ure=ment\"")
            .await
            .num_rows(),
        1
    );

    // Line protocol through execute uses the same escapes.
    b.execute(r#"w\ x\,y,t\=k=v\ 1 s="a\"b\\c" 7"#, vec![])
        .await
        .unwrap();
    let r = one(&*b, r#"SELECT * FROM "w x,y""#).await;
    assert_eq!(strings(&r, "t=k"), want(&["v 1"]));
    assert_eq!(strings(&r, "s"), want(&[r#"a"b\c"#]));
}

#[tokio::test]
async fn bulk_insert_then_read_back_equal() {
    let db = InfluxDb::create().await;
    let b = db
        .backend(&[("tag_columns", "host"), ("time_column", "at")])
        .await;
    let at = TimestampNanosecondArray::from(vec![1_000, 2_000, 3_000, 4_000]).with_timezone("UTC");
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("at", Arc::new(at)),
        (
            "host",
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("b"),
                None,
                Some("a"),
            ])),
        ),
        (
            "f",
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                None,
                Some(-2.5),
                Some(3.25),
            ])),
        ),
        (
            "i",
            Arc::new(Int64Array::from(vec![
                None,
                Some(i64::MIN),
                Some(7),
                Some(0),
            ])),
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![
                Some("x"),
                Some("y"),
                None,
                Some("ü"),
            ])),
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                None,
            ])),
        ),
    ];
    let batch =
        RecordBatch::try_from_iter_with_nullable(cols.iter().map(|(n, a)| (n, a.clone(), true)))
            .unwrap();
    let all_null = RecordBatch::try_new(
        batch.schema(),
        batch
            .columns()
            .iter()
            .map(|c| arrow::array::new_null_array(c.data_type(), 1))
            .collect(),
    )
    .unwrap();
    let target = BulkInsert {
        table: "points".into(),
        mode: InsertMode::Append,
    };
    let n = b
        .bulk_insert(
            target,
            QueryStream {
                schema: batch.schema(),
                batches: Box::pin(futures::stream::iter([Ok(batch.clone())])),
            },
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    let r = one(&*b, "SELECT time, host, f, i, s, b FROM points").await;
    assert_eq!(
        r.column_by_name("time")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>()
            .values(),
        &[1_000, 2_000, 3_000, 4_000]
    );
    for (name, want) in &cols[1..] {
        assert_eq!(r.column_by_name(name).unwrap(), want, "column {name}");
    }
    // A row whose fields are all NULL is no point: skipped, not counted. Its NULL time
    // is never looked at.
    let target = BulkInsert {
        table: "points".into(),
        mode: InsertMode::Append,
    };
    let n = b
        .bulk_insert(
            target,
            QueryStream {
                schema: batch.schema(),
                batches: Box::pin(futures::stream::iter([Ok(all_null)])),
            },
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn auth_failures_and_slots() {
    let url = env_url("DBPOOL_TEST_INFLUX_AUTH_URL");
    let good = backend_with(&url, ADMIN, 1).await;
    good.health_check().await.unwrap();
    let (head, tail) = url.split_once("://").unwrap();
    let (_, host) = tail.rsplit_once('@').unwrap();
    let wrong = backend_with(&format!("{head}://dbpool_admin:wrong@{host}"), ADMIN, 1).await;
    assert!(matches!(
        wrong
            .query("SHOW DATABASES", vec![], 10)
            .await
            .err()
            .unwrap(),
        Error::AuthFailed(_)
    ));
    assert!(matches!(
        wrong.execute("CREATE DATABASE nope", vec![]).await,
        Err(Error::AuthFailed(_))
    ));
    let anonymous = backend_with(&format!("{head}://{host}"), &[], 1).await;
    assert!(matches!(
        anonymous.health_check().await,
        Err(Error::AuthFailed(_))
    ));

    // One slot: a stream holds it until it is read to the end or dropped.
    let name = dbpool_testkit::unique_name("dbpool_t");
    good.execute(&format!("CREATE DATABASE {name}"), vec![])
        .await
        .unwrap();
    let db = backend_with(&format!("{url}/{name}"), &[], 1).await;
    let points: Vec<String> = (0..10).map(|i| format!("m v={i} {i}")).collect();
    assert_eq!(db.execute(&points.join("\n"), vec![]).await.unwrap(), 10);
    let before = db.state();
    assert_eq!((before.size, before.idle, before.max_size), (1, 1, 1));
    let q = db.query("SELECT v FROM m", vec![], 1).await.unwrap();
    assert_eq!(db.state().idle, 0);
    let e = db.query("SELECT v FROM m", vec![], 1).await.err().unwrap();
    assert!(matches!(e, Error::AcquireTimeout(_)), "{e:?}");
    assert_eq!(db.state().acquire_timeouts, 1);
    drop(q);
    // The slot is let go by the aborted request's task: wait for it, not for a moment.
    let back = || db.state().idle == 1;
    dbpool_testkit::wait_until_sync(Duration::from_secs(10), "the slot back", back).await;
    good.execute(&format!("DROP DATABASE {name}"), vec![])
        .await
        .unwrap();
}
