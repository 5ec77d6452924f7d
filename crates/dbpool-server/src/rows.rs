//! Query results for JSON users: record batches as google.protobuf.Struct rows.
use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type,
    UInt32Type, UInt8Type,
};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dbpool_core::Result;
use prost_types::{value::Kind, Struct, Value};

/// One Struct per row; column name → value. Integers and floats become JSON numbers
/// (int64 beyond 2^53 loses precision in JSON, as everywhere), booleans booleans,
/// text strings, NULL null, and every other type its Arrow display form (RFC 3339
/// timestamps, ISO durations, decimal text, hex bytes).
pub fn to_structs(batch: &RecordBatch) -> Result<Vec<Struct>> {
    let schema = batch.schema();
    let opts = FormatOptions::default().with_null("");
    let mut rows: Vec<Struct> = (0..batch.num_rows()).map(|_| Struct::default()).collect();
    for (col, field) in batch.columns().iter().zip(schema.fields()) {
        let fmt = ArrayFormatter::try_new(col.as_ref(), &opts)?;
        for (r, row) in rows.iter_mut().enumerate() {
            let kind = if col.is_null(r) {
                Kind::NullValue(0)
            } else {
                value(col.as_ref(), r)
                    .unwrap_or_else(|| Kind::StringValue(fmt.value(r).to_string()))
            };
            row.fields
                .insert(field.name().clone(), Value { kind: Some(kind) });
        }
    }
    Ok(rows)
}

fn value(col: &dyn Array, r: usize) -> Option<Kind> {
    let n = |v: f64| Some(Kind::NumberValue(v));
    match col.data_type() {
        DataType::Boolean => Some(Kind::BoolValue(col.as_boolean().value(r))),
        DataType::Int8 => n(col.as_primitive::<Int8Type>().value(r) as f64),
        DataType::Int16 => n(col.as_primitive::<Int16Type>().value(r) as f64),
        DataType::Int32 => n(col.as_primitive::<Int32Type>().value(r) as f64),
        DataType::Int64 => n(col.as_primitive::<Int64Type>().value(r) as f64),
        DataType::UInt8 => n(col.as_primitive::<UInt8Type>().value(r) as f64),
        DataType::UInt16 => n(col.as_primitive::<UInt16Type>().value(r) as f64),
        DataType::UInt32 => n(col.as_primitive::<UInt32Type>().value(r) as f64),
        DataType::Float32 => n(col.as_primitive::<Float32Type>().value(r) as f64),
        DataType::Float64 => n(col.as_primitive::<Float64Type>().value(r)),
        DataType::Utf8 => Some(Kind::StringValue(
            col.as_string::<i32>().value(r).to_string(),
        )),
        _ => None,
    }
}
