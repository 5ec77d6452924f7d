//! Unit tests of the bulk-insert plan and row encoding.
use super::*;
use arrow::array::{
    BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
    StringDictionaryBuilder, TimestampMillisecondArray, UInt64Array,
};
use arrow::datatypes::{Field, Int32Type};
use dbpool_config::{PoolConfig, Secret};
use std::sync::Arc;

fn cfg(settings: &[(&str, &str)]) -> InfluxConfig {
    let c = PoolConfig {
        url: Some(Secret::new("influxdb://h/db")),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    InfluxConfig::from_pool(&c.resolve("").unwrap()).unwrap()
}

fn lines(plan: &Plan, batch: &RecordBatch) -> Result<String> {
    let rows = plan.prepare(batch, 0)?;
    let mut out = String::new();
    for r in 0..batch.num_rows() {
        rows.write_row(r, &mut out)?;
    }
    Ok(out)
}

#[test]
fn target_syntax_overrides_settings() {
    let c = cfg(&[("tag_columns", "host"), ("time_column", "ts")]);
    let t = Target::parse("cpu", &c).unwrap();
    assert_eq!(
        (t.tags.clone(), t.time.as_str()),
        (vec!["host".to_string()], "ts")
    );
    let t = Target::parse("cpu load?tags=a,%20b&time=at", &c).unwrap();
    assert_eq!(t.measurement, "cpu load");
    assert_eq!(t.tags, ["a", "b"]);
    assert_eq!(t.time, "at");
    assert_eq!(
        Target::parse("m?tags=", &c).unwrap().tags,
        Vec::<String>::new()
    );
    let t = Target::parse("m?tag=a%2Cb&tags=c,d", &c).unwrap();
    assert_eq!(t.tags, ["a,b", "c", "d"]);
    assert!(Target::parse("m?tagz=a", &c).is_err());
    assert!(Target::parse("#m", &c).is_err());
}

#[test]
fn rows_become_escaped_lines_without_nulls() {
    let mut dict = StringDictionaryBuilder::<Int32Type>::new();
    dict.append_value("eu west");
    dict.append_null();
    dict.append_value("ü=1,2");
    let schema = Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("host", DataType::Utf8, true),
        Field::new("region", dict.finish().data_type().clone(), true),
        Field::new("f", DataType::Float64, true),
        Field::new("i", DataType::Int32, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("g f", DataType::Float32, true),
        Field::new("u", DataType::UInt64, true),
    ]);
    let mut dict = StringDictionaryBuilder::<Int32Type>::new();
    dict.append_value("eu west");
    dict.append_null();
    dict.append_value("ü=1,2");
    let batch = RecordBatch::try_new(
        Arc::new(schema.clone()),
        vec![
            Arc::new(TimestampMillisecondArray::from(vec![1, 2, 3]).with_timezone("UTC")),
            Arc::new(StringArray::from(vec![Some("a"), Some(""), None])),
            Arc::new(dict.finish()),
            Arc::new(Float64Array::from(vec![Some(1.0), None, Some(f64::NAN)])),
            Arc::new(Int32Array::from(vec![Some(-3), None, None])),
            Arc::new(StringArray::from(vec![Some(r#"a "q" \ z"#), None, None])),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(Float32Array::from(vec![Some(0.1), None, None])),
            Arc::new(UInt64Array::from(vec![Some(7), None, None])),
        ],
    )
    .unwrap();
    let t = Target::parse("my m,x?tags=host,region&time=ts", &cfg(&[])).unwrap();
    let plan = Plan::new(&t, &schema).unwrap();
    assert_eq!(
        lines(&plan, &batch).unwrap(),
        "my\\ m\\,x,host=a,region=eu\\ west f=1.0,i=-3i,s=\"a \\\"q\\\" \\\\ z\",b=true,g\\ f=0.1,u=7i 1000000\n\
         my\\ m\\,x,region=ü\\=1\\,2 b=false 3000000\n"
    );
}

#[test]
fn plan_refuses_what_cannot_be_written() {
    let schema = |fields: Vec<Field>| Schema::new(fields);
    let t = Target::parse("m?tags=h", &cfg(&[])).unwrap();
    let time = Field::new("time", DataType::Int64, false);
    // No time column.
    let e = Plan::new(&t, &schema(vec![Field::new("h", DataType::Utf8, true)])).unwrap_err();
    assert!(e.to_string().contains("time column `time`"), "{e}");
    // Only time and tags.
    let e = Plan::new(
        &t,
        &schema(vec![time.clone(), Field::new("h", DataType::Utf8, true)]),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no field column"), "{e}");
    // A field type line protocol has not.
    let e = Plan::new(
        &t,
        &schema(vec![
            time.clone(),
            Field::new("h", DataType::Utf8, true),
            Field::new("d", DataType::Date32, true),
        ]),
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument { field, .. } if field == "d"),
        "{e}"
    );
}

#[test]
fn values_that_cannot_be_written_name_column_and_row() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("time", DataType::Int64, true),
        Field::new("h", DataType::Utf8, true),
        Field::new("v", DataType::Float64, true),
        Field::new("u", DataType::UInt64, true),
    ]));
    let t = Target::parse("m?tags=h", &cfg(&[])).unwrap();
    let plan = Plan::new(&t, &schema).unwrap();
    let batch = |time: Option<i64>, h: &str, v: f64, u: u64| {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(1), time])),
                Arc::new(StringArray::from(vec!["ok", h])),
                Arc::new(Float64Array::from(vec![1.0, v])),
                Arc::new(UInt64Array::from(vec![1, u])),
            ],
        )
        .unwrap()
    };
    let err = |b: RecordBatch| lines(&plan, &b).unwrap_err().to_string();
    assert!(err(batch(None, "x", 1.0, 1)).contains("row 1: the time is NULL"));
    assert!(err(batch(Some(2), "a\nb", 1.0, 1)).contains("line break"));
    assert!(err(batch(Some(2), r"C:\", 1.0, 1)).contains("backslash"));
    assert!(err(batch(Some(2), "x", f64::INFINITY, 1)).contains("infinite"));
    assert!(err(batch(Some(2), "x", 1.0, u64::MAX)).contains("does not fit"));
    assert_eq!(
        lines(&plan, &batch(Some(2), "x", 2.5, 3)).unwrap(),
        "m,h=ok v=1.0,u=1i 1\nm,h=x v=2.5,u=3i 2\n"
    );
}

#[test]
fn every_time_type_becomes_nanoseconds() {
    use arrow::array::{Date32Array, Date64Array, TimestampSecondArray};
    let cases: Vec<(ArrayRef, &str)> = vec![
        (Arc::new(Date32Array::from(vec![1])), "86400000000000"),
        (Arc::new(Date64Array::from(vec![2])), "2000000"),
        (Arc::new(TimestampSecondArray::from(vec![3])), "3000000000"),
        (Arc::new(Int64Array::from(vec![4])), "4"),
    ];
    for (time, want) in cases {
        let batch = RecordBatch::try_from_iter(vec![
            ("time", time),
            ("v", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
        ])
        .unwrap();
        let t = Target::parse("m", &cfg(&[])).unwrap();
        let plan = Plan::new(&t, &batch.schema()).unwrap();
        assert_eq!(lines(&plan, &batch).unwrap(), format!("m v=1i {want}\n"));
    }
    let far = RecordBatch::try_from_iter(vec![
        (
            "time",
            Arc::new(TimestampSecondArray::from(vec![i64::MAX / 10])) as ArrayRef,
        ),
        ("v", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
    ])
    .unwrap();
    let plan = Plan::new(&Target::parse("m", &cfg(&[])).unwrap(), &far.schema()).unwrap();
    assert!(lines(&plan, &far)
        .unwrap_err()
        .to_string()
        .contains("64-bit nanoseconds"));
}
