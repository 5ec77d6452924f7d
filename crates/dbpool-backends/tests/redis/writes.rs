//! Writes: execute replies, pipelines and MULTI/EXEC, bulk insert, the denylist.
use super::*;
use arrow::datatypes::{DataType, Field, Schema};
use dbpool_core::{BulkInsert, Error, InsertMode, QueryStream, Statement};

#[tokio::test]
async fn execute_reports_integers_ok_and_nil() {
    let p = Prefix::new();
    let b = backend().await;
    let (a, c) = (p.k("a"), p.k("c"));
    assert_eq!(b.execute(&format!("SET {a} 1"), vec![]).await.unwrap(), 1);
    assert_eq!(
        b.execute(&format!("SET {a} 1 NX"), vec![]).await.unwrap(),
        0
    );
    assert_eq!(
        b.execute(&format!("INCRBY {a} 41"), vec![]).await.unwrap(),
        42
    );
    assert_eq!(
        b.execute("SET $1 'quoted value'", vec![Param::String(c.clone())])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        b.execute(&format!("DEL {a} {c} {}", p.k("none")), vec![])
            .await
            .unwrap(),
        2
    );
    let e = b
        .execute(&format!("SCAN_KEYS \"{}*\"", p.0), vec![])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    let e = b.begin(Default::default()).await.err().unwrap();
    assert!(
        matches!(&e, Error::Unsupported(m) if m.contains("execute_batch")),
        "{e}"
    );
    b.health_check().await.unwrap();
}

fn st(sql: String) -> Statement {
    Statement {
        sql,
        params: vec![],
    }
}

#[tokio::test]
async fn pipeline_reports_each_outcome_and_multi_exec_names_the_failing_index() {
    let p = Prefix::new();
    let b = backend().await;
    let (a, t, u) = (p.k("a"), p.k("t"), p.k("u"));
    let out = b
        .execute_batch(
            vec![
                st(format!("SET {a} 1")),
                st(format!("INCR {a}")),
                st(format!("LPUSH {a} x")),
                st("FLUSHALL".into()),
                st(format!("INCR {a}")),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(out[0].outcome.as_ref().unwrap(), &1);
    assert_eq!(out[1].outcome.as_ref().unwrap(), &2);
    assert_eq!(
        out[2].outcome.as_ref().unwrap_err().db_code(),
        Some("WRONGTYPE")
    );
    assert!(matches!(out[3].outcome, Err(Error::PermissionDenied(_))));
    assert_eq!(out[4].outcome.as_ref().unwrap(), &3);
    // MULTI/EXEC: a runtime error names its index; Redis keeps the other commands' effects.
    let tx = vec![
        st(format!("SET {t} 1")),
        st(format!("LPUSH {t} x")),
        st(format!("INCR {t}")),
    ];
    let e = b.execute_batch(tx, true).await.unwrap_err();
    assert!(matches!(&e, Error::BatchStatement { index: 1, .. }), "{e}");
    assert_eq!(e.db_code(), Some("WRONGTYPE"));
    let r = table(&*b, &format!("GET {t}"), vec![]).await;
    assert_eq!(strs(r.column(0)), [Some("2".into())]);
    // A command refused while queueing (wrong arity) aborts everything: EXECABORT.
    let tx = vec![st(format!("SET {u} 1")), st(format!("SET {u}"))];
    let e = b.execute_batch(tx, true).await.unwrap_err();
    assert!(matches!(&e, Error::BatchStatement { index: 1, .. }), "{e}");
    assert_eq!(b.execute(&format!("EXISTS {u}"), vec![]).await.unwrap(), 0);
    // A denied command fails the transaction before anything is sent.
    let tx = vec![st(format!("SET {u} 1")), st("KEYS *".into())];
    let e = b.execute_batch(tx, true).await.unwrap_err();
    assert!(
        matches!(&e, Error::BatchStatement { index: 1, source } if matches!(**source, Error::PermissionDenied(_))),
        "{e}"
    );
    assert_eq!(b.execute(&format!("EXISTS {u}"), vec![]).await.unwrap(), 0);
    let ok = b
        .execute_batch(
            vec![st(format!("SET {u} 5")), st(format!("INCRBY {u} 5"))],
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        ok.iter()
            .map(|r| *r.outcome.as_ref().unwrap())
            .collect::<Vec<_>>(),
        [1, 10]
    );
}

fn frame() -> (Arc<Schema>, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("score", DataType::Float64, true),
        Field::new("ok", DataType::Boolean, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![Some("ann"), None, Some("cé {x}")])),
            Arc::new(Float64Array::from(vec![Some(0.1), Some(-2.5e300), None])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ],
    )
    .unwrap();
    (schema, batch)
}

async fn insert(
    b: &dyn Backend,
    table: String,
    mode: InsertMode,
    schema: Arc<Schema>,
    batch: RecordBatch,
) -> Result<u64, Error> {
    let stream = futures::stream::iter(vec![Ok(batch)]);
    let batches = Box::pin(stream);
    b.bulk_insert(BulkInsert { table, mode }, QueryStream { schema, batches })
        .await
}

#[tokio::test]
async fn bulk_insert_round_trips_hashes_lists_streams_and_strings() {
    let p = Prefix::new();
    let b = backend().await;
    let (schema, batch) = frame();
    let target = format!("{}user:{{id}} TTL 600", p.0);
    let n = insert(
        &*b,
        target.clone(),
        InsertMode::Append,
        schema.clone(),
        batch.clone(),
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    let q = format!(
        "SCAN_HASHES {}user:* FIELDS id:int64 name score:float64 ok:bool",
        p.0
    );
    let r = table(&*b, &q, vec![]).await;
    let order = arrow::compute::sort_to_indices(r.column(1), None, None).unwrap();
    let sorted = arrow::compute::take_record_batch(&r, &order).unwrap();
    for (i, f) in schema.fields().iter().enumerate() {
        assert_eq!(sorted.column(i + 1), batch.column(i), "column {}", f.name());
    }
    let ttl = b
        .execute(&format!("TTL {}user:1", p.0), vec![])
        .await
        .unwrap();
    assert!((1..=600).contains(&ttl), "{ttl}");
    // Create refuses existing keys; Replace drops fields that the new row does not have.
    let e = insert(
        &*b,
        target.clone(),
        InsertMode::Create,
        schema.clone(),
        batch.clone(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("exists"), "{e}");
    direct(&[&["HSET", &p.k("user:1"), "stale", "x"]]);
    insert(
        &*b,
        target,
        InsertMode::Replace,
        schema.clone(),
        batch.clone(),
    )
    .await
    .unwrap();
    let r = table(&*b, &format!("HGETALL {}user:1", p.0), vec![]).await;
    assert_eq!(r.num_rows(), 4);
    // A list: one value column; a stream: entries with the columns as fields.
    let ids = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![5, 6, 7]))],
    )
    .unwrap();
    let list = format!("list:{}l", p.0);
    insert(
        &*b,
        list.clone(),
        InsertMode::Append,
        ids.schema(),
        ids.clone(),
    )
    .await
    .unwrap();
    insert(&*b, list, InsertMode::Replace, ids.schema(), ids.clone())
        .await
        .unwrap();
    let r = table(&*b, &format!("LRANGE {}l 0 -1", p.0), vec![]).await;
    assert_eq!(
        strs(r.column(0)),
        ["5", "6", "7"].map(|s| Some(s.to_string()))
    );
    insert(
        &*b,
        format!("stream:{}ev", p.0),
        InsertMode::Create,
        schema.clone(),
        batch.clone(),
    )
    .await
    .unwrap();
    let r = table(&*b, &format!("XRANGE {}ev - +", p.0), vec![]).await;
    assert_eq!(names(&r), ["id", "id_", "name", "score", "ok"]);
    assert_eq!(
        strs(r.column(2)),
        [Some("ann".into()), None, Some("cé {x}".into())]
    );
    // Strings: the key from a template, the one other column the value.
    let kv = batch.project(&[0, 1]).unwrap();
    let n = insert(
        &*b,
        format!("string:{}name:{{id}}", p.0),
        InsertMode::Append,
        kv.schema(),
        kv.slice(0, 1),
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    let r = table(&*b, &format!("GET {}name:1", p.0), vec![]).await;
    assert_eq!(strs(r.column(0)), [Some("ann".into())]);
    let e = insert(
        &*b,
        format!("string:{}name:{{id}}", p.0),
        InsertMode::Append,
        kv.schema(),
        kv,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { field, .. } if field == "name"),
        "{e}"
    );
}

#[tokio::test]
async fn denylist_default_and_overrides() {
    let p = Prefix::new();
    let b = backend().await;
    for cmd in [
        "FLUSHALL",
        "flushdb",
        "KEYS *",
        "CONFIG GET maxmemory",
        "EVAL 'return 1' 0",
    ] {
        let e = b.query(cmd, vec![], 10).await.err().unwrap();
        assert!(matches!(e, Error::PermissionDenied(_)), "{cmd}: {e}");
    }
    let e = b.execute("MULTI", vec![]).await.unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    let b = backend_with(
        &base_url(),
        &[
            ("denied_commands", "DEL, config|set, HGETALL"),
            ("allowed_commands", ""),
        ],
    )
    .await;
    let e = b
        .execute(&format!("DEL {}", p.k("x")), vec![])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
    let r = table(&*b, "CONFIG GET maxmemory", vec![]).await;
    assert_eq!(names(&r), ["field", "value"]);
    // Pattern reads and bulk inserts obey the policy for the commands they send.
    let e = b
        .query(&format!("SCAN_HASHES {}*", p.0), vec![], 10)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
    let (schema, batch) = frame();
    let e = insert(
        &*b,
        format!("{}u:{{id}}", p.0),
        InsertMode::Replace,
        schema,
        batch,
    )
    .await;
    assert!(matches!(e, Err(Error::PermissionDenied(_))), "{e:?}");
    let b = backend_with(&base_url(), &[("allowed_commands", "KEYS")]).await;
    direct(&[&["SET", &p.k("k"), "1"]]);
    let r = table(&*b, &format!("KEYS {}*", p.0), vec![]).await;
    assert_eq!(strs(r.column(0)), [Some(p.k("k"))]);
}
