//! Reads: every reply shape, pattern reads, schemas, and how errors are classified.
use super::*;
use arrow::datatypes::DataType;
use dbpool_core::Error;
use std::collections::{BTreeMap, HashMap};

#[tokio::test]
async fn every_reply_shape_in_resp2_and_resp3() {
    let p = Prefix::new();
    let (s, h, z, l, bin, x) = (p.k("s"), p.k("h"), p.k("z"), p.k("l"), p.k("bin"), p.k("x"));
    direct(&[
        &["SET", &s, "héllo"],
        &["HSET", &h, "a", "1", "b", "two"],
        &["ZADD", &z, "1.5", "m1", "2", "m2"],
        &["RPUSH", &l, "x", "y", "z"],
        &["XADD", &x, "1-0", "a", "1"],
        &["XADD", &x, "2-0", "b", "2", "a", "3"],
    ]);
    for url in [base_url(), format!("{}?protocol=resp3", base_url())] {
        let b = backend_with(&url, &[]).await;
        // Scalar, string: one row `value`, Utf8.
        let r = table(&*b, &format!("GET \"{s}\""), vec![]).await;
        assert_eq!(
            (names(&r), strs(r.column(0))),
            (vec!["value".into()], vec![Some("héllo".into())])
        );
        // Integer → Int64; nil → NULL.
        let r = table(&*b, "STRLEN", vec![Param::String(s.clone())]).await;
        assert_eq!(
            r.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0),
            6
        );
        let r = table(&*b, "GET $1", vec![Param::String(p.k("missing"))]).await;
        assert_eq!((r.num_rows(), r.column(0).null_count()), (1, 1));
        // Binary: a value that is not UTF-8.
        b.execute(
            "SET $1 $2",
            vec![Param::String(bin.clone()), Param::Bytes(vec![0xff, 0, 1])],
        )
        .await
        .unwrap();
        let r = table(&*b, &format!("GET {bin}"), vec![]).await;
        assert_eq!(r.column(0).as_binary::<i32>().value(0), [0xff, 0, 1]);
        // Array: one row per element.
        let r = table(&*b, &format!("LRANGE {l} 0 -1"), vec![]).await;
        assert_eq!(
            strs(r.column(0)),
            ["x", "y", "z"].map(|s| Some(s.to_string()))
        );
        // Hash: field, value (a map in RESP3, pairs in RESP2).
        let r = table(&*b, &format!("HGETALL {h}"), vec![]).await;
        assert_eq!(names(&r), ["field", "value"]);
        let got: BTreeMap<_, _> = strs(r.column(0))
            .into_iter()
            .zip(strs(r.column(1)))
            .collect();
        assert_eq!(got[&Some("b".into())], Some("two".into()));
        // WITHSCORES: member, score as Float64.
        let r = table(&*b, &format!("zrange {z} 0 -1 withscores"), vec![]).await;
        assert_eq!(names(&r), ["member", "score"]);
        assert_eq!(strs(r.column(0)), [Some("m1".into()), Some("m2".into())]);
        let scores = r.column(1).as_primitive::<arrow::datatypes::Float64Type>();
        assert_eq!(scores.values().to_vec(), [1.5, 2.0]);
        // Stream entries: id plus the union of fields.
        let r = table(&*b, &format!("XRANGE {x} - +"), vec![]).await;
        assert_eq!(names(&r), ["id", "a", "b"]);
        assert_eq!(strs(r.column(1)), [Some("1".into()), Some("3".into())]);
        assert_eq!(strs(r.column(2)), [None, Some("2".into())]);
    }
    // RESP3 types: ZSCORE is a double in RESP3, a bulk string in RESP2.
    let r = table(&*backend().await, &format!("ZSCORE {z} m1"), vec![]).await;
    assert_eq!(r.schema().field(0).data_type(), &DataType::Utf8);
    let b3 = backend_with(&format!("{}?protocol=resp3", base_url()), &[]).await;
    let r = table(&*b3, &format!("ZSCORE {z} m1"), vec![]).await;
    assert_eq!(r.schema().field(0).data_type(), &DataType::Float64);
}

#[tokio::test]
async fn pattern_read_streams_100k_hashes_in_batches() {
    let p = Prefix::new();
    let n = 100_000;
    let client = redis::Client::open(base_url()).unwrap();
    let mut con = client.get_connection().unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("HSET")
                .arg(p.k(&format!("user:{i}")))
                .arg("id")
                .arg(i)
                .arg("name")
                .arg(format!("n{i}"))
                .arg("score")
                .arg(*i as f64 / 2.0);
        }
        pipe.exec(&mut con).unwrap();
    }
    direct(&[&["SET", &p.k("user:not-a-hash"), "x"]]);
    let b = backend().await;
    let pattern = format!("\"{}\"", p.k("user:*"));
    let got = batches(&*b, &format!("SCAN_HASHES {pattern}"), vec![], 8192).await;
    assert!(got.len() > 1, "{} batches", got.len());
    assert!(got.iter().all(|r| r.num_rows() <= 8192));
    assert_eq!(names(&got[0]), ["key", "id", "name", "score"]);
    let mut seen = HashMap::new();
    for r in &got {
        let (k, id, name, score) = (
            strs(r.column(0)),
            strs(r.column(1)),
            strs(r.column(2)),
            strs(r.column(3)),
        );
        for i in 0..r.num_rows() {
            let key = k[i].clone().unwrap();
            let want: usize = key.rsplit(':').next().unwrap().parse().unwrap();
            assert_eq!(id[i].as_deref(), Some(want.to_string().as_str()));
            assert_eq!(name[i], Some(format!("n{want}")));
            let score: f64 = score[i].as_deref().unwrap().parse().unwrap();
            assert_eq!(score, want as f64 / 2.0);
            assert!(seen.insert(want, ()).is_none(), "{key} twice");
        }
    }
    assert_eq!(seen.len(), n);
    // Typed FIELDS, through HMGET.
    let q = format!("SCAN_HASHES {pattern} COUNT 5000 FIELDS id:int64 score:float64 absent");
    let got = batches(&*b, &q, vec![], 30_000).await;
    assert!(got.len() > 1);
    let mut total = 0;
    for r in &got {
        assert_eq!(names(r), ["key", "id", "score", "absent"]);
        let id = r.column(1).as_primitive::<arrow::datatypes::Int64Type>();
        let score = r.column(2).as_primitive::<arrow::datatypes::Float64Type>();
        for i in 0..r.num_rows() {
            assert_eq!(score.value(i), id.value(i) as f64 / 2.0);
        }
        assert_eq!(r.column(3).null_count(), r.num_rows());
        total += r.num_rows();
    }
    assert_eq!(total, n);
    let keys = table(&*b, &format!("SCAN_KEYS {pattern} TYPE string"), vec![]).await;
    assert_eq!(strs(keys.column(0)), [Some(p.k("user:not-a-hash"))]);
}

#[tokio::test]
async fn pattern_read_refuses_fields_missing_from_the_first_batch() {
    let p = Prefix::new();
    direct(&[
        &["HSET", &p.k("h:1"), "a", "1"],
        &["HSET", &p.k("h:2"), "b", "2"],
        &["SET", &p.k("s:1"), "v1"],
    ]);
    let b = backend().await;
    let q = b
        .query(&format!("SCAN_HASHES {}", p.k("h:*")), vec![], 1)
        .await
        .unwrap();
    let r: Result<Vec<RecordBatch>, Error> = q.batches.try_collect().await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("FIELDS"), "{e}");
    let r = table(&*b, &format!("SCAN_STRINGS {}", p.k("s:*")), vec![]).await;
    assert_eq!(
        (names(&r), strs(r.column(1))),
        (vec!["key".into(), "value".into()], vec![Some("v1".into())])
    );
    let s = b
        .schema(&format!("SCAN_HASHES {} FIELDS a", p.k("h:*")), vec![])
        .await
        .unwrap();
    assert_eq!(s.fields().len(), 2);
    let s = b
        .schema(&format!("GET {}", p.k("s:1")), vec![])
        .await
        .unwrap();
    assert_eq!(s.field(0).name(), "value");
    let e = b
        .schema(&format!("INCR {}", p.k("n")), vec![])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e}");
}

#[tokio::test]
async fn errors_are_classified() {
    let p = Prefix::new();
    let b = backend().await;
    direct(&[&["SET", &p.k("s"), "x"]]);
    let e = b
        .execute(&format!("LPUSH {} y", p.k("s")), vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Database { code: Some(c), .. } if c == "WRONGTYPE"),
        "{e:?}"
    );
    // No reply within response_timeout_ms: DEADLINE_EXCEEDED; the pool carries on.
    let slow = backend_with(&base_url(), &[("response_timeout_ms", "100")]).await;
    let e = slow
        .execute(&format!("BLPOP {} 2", p.k("l")), vec![])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::StatementTimeout(_)), "{e}");
    slow.health_check().await.unwrap();
    let e = b.query("NOSUCHCOMMAND", vec![], 10).await.err().unwrap();
    assert_eq!(e.db_code(), Some("ERR"), "{e}");
    let down = backend_with("redis://127.0.0.1:1", &[]).await;
    let e = down.query("PING", vec![], 10).await.err().unwrap();
    assert!(matches!(e, Error::Unavailable { .. }), "{e}");
    let e = down.health_check().await.unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e}");
    let url = base_url().replacen("redis://", "redis://dbpool_nosuchuser:pw@", 1);
    let e = backend_with(&url, &[])
        .await
        .query("PING", vec![], 10)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, Error::AuthFailed(_)), "{e}");
    let cfg = PoolConfig {
        url: Some(Secret::new(base_url())),
        settings: [("scan_cnt".to_string(), "1".to_string())].into(),
        ..Default::default()
    };
    let e = Factory::default()
        .create("r", &cfg.resolve("").unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::InvalidArgument { field, .. } if field == "settings.scan_cnt"),
        "{e}"
    );
}
