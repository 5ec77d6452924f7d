//! Unit tests of schema choice and series flattening.
use super::*;
use crate::influxdb::v1::chunked::parse;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, TimestampNanosecondType};

fn series(json: &str) -> Vec<Series> {
    let r = parse(json.as_bytes()).unwrap();
    r.results.into_iter().flat_map(|s| s.series).collect()
}

#[test]
fn field_keys_decide_numbers_and_values_the_rest() {
    let s = series(
        r#"{"results":[{"statement_id":0,"series":[{"name":"cpu",
        "columns":["time","f","i","s","b","host","mean","count","x"],
        "values":[[1,1,2,"a",true,"h1",2,3,null],[2,null,null,null,null,null,2.5,4,null]]}]}]}"#,
    );
    let fields: HashMap<String, Kind> = [
        ("f", Kind::Float),
        ("i", Kind::Int),
        ("s", Kind::Str),
        ("b", Kind::Bool),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let refs: Vec<&Series> = s.iter().collect();
    let shape = Shape::resolve(&s[0], &refs, &fields, true);
    let types: Vec<String> = shape
        .schema
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect();
    assert_eq!(
        types,
        [
            "_measurement:Dictionary(Int32, Utf8)",
            "time:Timestamp(ns, \"UTC\")",
            "f:Float64",
            "i:Int64",
            "s:Utf8",
            "b:Boolean",
            "host:Utf8",
            "mean:Float64",
            "count:Int64",
            "x:Float64",
        ]
    );
    let mut b = Batcher::new(shape, 10);
    assert!(b.push(0, &s[0]).unwrap().is_empty());
    let batch = b.flush().unwrap().unwrap();
    assert_eq!(batch.num_rows(), 2);
    let t = batch.column(1).as_primitive::<TimestampNanosecondType>();
    assert_eq!((t.value(0), t.value(1)), (1, 2));
    assert_eq!(batch.column(2).as_primitive::<Float64Type>().value(0), 1.0);
    assert!(batch.column(3).is_null(1));
    assert_eq!(batch.column(3).as_primitive::<Int64Type>().value(0), 2);
    assert!(b.flush().unwrap().is_none());
}

#[test]
fn show_statements_keep_whole_numbers_and_strings() {
    let s = series(
        r#"{"results":[{"series":[{"name":"shards","columns":["id","database","empty"],
        "values":[[1,"db",null]]}]}]}"#,
    );
    let refs: Vec<&Series> = s.iter().collect();
    let shape = Shape::resolve(&s[0], &refs, &HashMap::new(), false);
    let types: Vec<&DataType> = shape
        .schema
        .fields()
        .iter()
        .map(|f| f.data_type())
        .collect();
    assert_eq!(
        types[1..],
        [&DataType::Int64, &DataType::Utf8, &DataType::Utf8]
    );
}

#[test]
fn group_by_series_flatten_into_tag_columns_and_batches() {
    let s = series(
        r#"{"results":[{"statement_id":0,"series":[
        {"name":"m","tags":{"host":"a","dc":""},"columns":["time","v"],"values":[[1,1],[2,2],[3,3]]},
        {"name":"m","tags":{"host":"b","dc":"x"},"columns":["time","v"],"values":[[4,4.5]]}]}]}"#,
    );
    let refs: Vec<&Series> = s.iter().collect();
    let mut fields = HashMap::new();
    fields.insert("v".to_string(), Kind::Int);
    let shape = Shape::resolve(&s[0], &refs, &fields, true);
    // An integer field whose sample has a fraction (mean(v) AS v) becomes a float.
    assert_eq!(shape.schema.field(4).data_type(), &DataType::Float64);
    assert_eq!(shape.schema.field(1).name(), "dc");
    let mut b = Batcher::new(shape, 2);
    let mut batches = b.push(0, &s[0]).unwrap();
    batches.extend(b.push(0, &s[1]).unwrap());
    batches.extend(b.flush().unwrap());
    assert_eq!(
        batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
        [2, 2]
    );
    let last = &batches[1];
    let host = arrow::compute::cast(last.column(2), &DataType::Utf8).unwrap();
    assert_eq!(host.as_string::<i32>().value(1), "b");
    let dc = arrow::compute::cast(last.column(1), &DataType::Utf8).unwrap();
    assert!(dc.is_null(0), "an empty tag is NULL");
    assert_eq!(dc.as_string::<i32>().value(1), "x");
}

#[test]
fn a_series_of_another_shape_or_type_is_an_error() {
    let s = series(
        r#"{"results":[{"series":[{"name":"m","columns":["time","count"],"values":[[1,2]]},
        {"name":"m","columns":["time","other"],"values":[[1,2]]},
        {"name":"m","columns":["time","count"],"values":[[1,2.5]]}]}]}"#,
    );
    let refs: Vec<&Series> = s[..1].iter().collect();
    let mut b = Batcher::new(Shape::resolve(&s[0], &refs, &HashMap::new(), true), 10);
    b.push(0, &s[0]).unwrap();
    let e = b.push(1, &s[1]).unwrap_err().to_string();
    assert!(e.contains("column `other` is new"), "{e}");
    let e = b.push(0, &s[2]).unwrap_err().to_string();
    assert!(e.contains("does not fit Int64"), "{e}");
}
