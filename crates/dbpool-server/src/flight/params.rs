//! Arrow parameter batches (Flight SQL prepared statement binding) → our Params.
use arrow::array::{Array, AsArray};
use arrow::datatypes::*;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dbpool_core::{Error, Param, Result};

/// One `Vec<Param>` per row of the batch, columns in order.
pub fn rows(batch: &RecordBatch) -> Result<Vec<Vec<Param>>> {
    let mut out: Vec<Vec<Param>> = (0..batch.num_rows())
        .map(|_| Vec::with_capacity(batch.num_columns()))
        .collect();
    for (c, col) in batch.columns().iter().enumerate() {
        for (r, row) in out.iter_mut().enumerate() {
            row.push(
                value(col.as_ref(), r)
                    .map_err(|m| Error::invalid(format!("parameters[{c}]"), m))?,
            );
        }
    }
    Ok(out)
}

fn value(a: &dyn Array, r: usize) -> std::result::Result<Param, String> {
    if a.is_null(r) {
        return Ok(Param::Null);
    }
    let text = || -> std::result::Result<String, String> {
        let f = ArrayFormatter::try_new(a, &FormatOptions::default()).map_err(|e| e.to_string())?;
        Ok(f.value(r).to_string())
    };
    Ok(match a.data_type() {
        DataType::Null => Param::Null,
        DataType::Boolean => Param::Bool(a.as_boolean().value(r)),
        DataType::Int8 => Param::Int64(a.as_primitive::<Int8Type>().value(r) as i64),
        DataType::Int16 => Param::Int64(a.as_primitive::<Int16Type>().value(r) as i64),
        DataType::Int32 => Param::Int64(a.as_primitive::<Int32Type>().value(r) as i64),
        DataType::Int64 => Param::Int64(a.as_primitive::<Int64Type>().value(r)),
        DataType::UInt8 => Param::Int64(a.as_primitive::<UInt8Type>().value(r) as i64),
        DataType::UInt16 => Param::Int64(a.as_primitive::<UInt16Type>().value(r) as i64),
        DataType::UInt32 => Param::Int64(a.as_primitive::<UInt32Type>().value(r) as i64),
        DataType::UInt64 => Param::Int64(
            i64::try_from(a.as_primitive::<UInt64Type>().value(r))
                .map_err(|_| "uint64 value out of int64 range")?,
        ),
        DataType::Float32 => Param::Double(a.as_primitive::<Float32Type>().value(r) as f64),
        DataType::Float64 => Param::Double(a.as_primitive::<Float64Type>().value(r)),
        DataType::Utf8 => Param::String(a.as_string::<i32>().value(r).to_string()),
        DataType::LargeUtf8 => Param::String(a.as_string::<i64>().value(r).to_string()),
        DataType::Utf8View => Param::String(a.as_string_view().value(r).to_string()),
        DataType::Binary => Param::Bytes(a.as_binary::<i32>().value(r).to_vec()),
        DataType::LargeBinary => Param::Bytes(a.as_binary::<i64>().value(r).to_vec()),
        DataType::BinaryView => Param::Bytes(a.as_binary_view().value(r).to_vec()),
        // Seconds and milliseconds beyond ±292,000 years overflow microseconds (found by
        // the `params` fuzz target: the multiplication panicked in a debug build).
        DataType::Timestamp(unit, _) => Param::TimestampMicros(
            match unit {
                TimeUnit::Second => a
                    .as_primitive::<TimestampSecondType>()
                    .value(r)
                    .checked_mul(1_000_000),
                TimeUnit::Millisecond => a
                    .as_primitive::<TimestampMillisecondType>()
                    .value(r)
                    .checked_mul(1_000),
                TimeUnit::Microsecond => {
                    Some(a.as_primitive::<TimestampMicrosecondType>().value(r))
                }
                TimeUnit::Nanosecond => Some(
                    a.as_primitive::<TimestampNanosecondType>()
                        .value(r)
                        .div_euclid(1_000),
                ),
            }
            .ok_or("timestamp out of range (microseconds since 1970 must fit int64)")?,
        ),
        DataType::Decimal128(..) | DataType::Decimal256(..) => Param::Decimal(text()?),
        // Dates, times, durations and the rest: their text, which the database parses.
        DataType::Date32 | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_) => {
            Param::String(text()?)
        }
        other => {
            return Err(format!(
                "parameters of Arrow type {other} are not supported"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, TimestampMillisecondArray, TimestampSecondArray};
    use std::sync::Arc;

    fn one_column(a: ArrayRef) -> RecordBatch {
        RecordBatch::try_from_iter([("p", a)]).unwrap()
    }

    /// The `params` fuzz target's crash (fuzz/corpus/params/timestamp_second_overflow):
    /// seconds/milliseconds whose microseconds overflow.
    #[test]
    fn timestamps_out_of_range_are_invalid_not_a_panic() {
        for a in [
            Arc::new(TimestampSecondArray::from(vec![i64::MAX])) as ArrayRef,
            Arc::new(TimestampSecondArray::from(vec![i64::MIN / 999_999])),
            Arc::new(TimestampMillisecondArray::from(vec![i64::MIN])),
        ] {
            let e = rows(&one_column(a)).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidArgument { field, message }
                    if field == "parameters[0]" && message.contains("out of range")),
                "{e:?}"
            );
        }
        let ok = rows(&one_column(Arc::new(TimestampSecondArray::from(vec![
            -1,
            9_223_372_036_854,
        ]))))
        .unwrap();
        assert_eq!(
            ok,
            vec![
                vec![Param::TimestampMicros(-1_000_000)],
                vec![Param::TimestampMicros(9_223_372_036_854_000_000)]
            ]
        );
    }
}
