//! Typed parameters of requests: PoolService `Param` messages (prost decode of a
//! QueryRequest or ExecuteBatchRequest, then `convert::params`) and Flight SQL parameter
//! batches (Arrow columns of every supported type → `flight::params::rows`).
#![no_main]
#[path = "input.rs"]
mod input;

use arrow::array::*;
use arrow::datatypes::{i256, Field, Schema};
use dbpool_proto::v1 as pb;
use input::Input;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    if input.u8() & 1 == 0 {
        protobuf(input.rest());
    } else {
        arrow_batch(input);
    }
});

fn protobuf(bytes: &[u8]) {
    use dbpool_server::fuzzing::params;
    if let Ok(q) = pb::QueryRequest::decode(bytes) {
        if let Ok(ps) = params(&q.params) {
            assert_eq!(ps.len(), q.params.len());
        }
    }
    if let Ok(b) = pb::ExecuteBatchRequest::decode(bytes) {
        for s in &b.statements {
            if let Ok(ps) = params(&s.params) {
                assert_eq!(ps.len(), s.params.len());
            }
        }
    }
}

/// Up to 4 columns of up to 8 rows, each column's type and values from the input.
fn arrow_batch(mut input: Input) {
    let rows = (input.u8() % 9) as usize;
    let columns = 1 + (input.u8() % 4) as usize;
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in 0..columns {
        let Some(a) = column(&mut input, rows) else {
            return;
        };
        fields.push(Field::new(format!("c{c}"), a.data_type().clone(), true));
        arrays.push(a);
    }
    let Ok(batch) =
        arrow::record_batch::RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
    else {
        return;
    };
    if let Ok(out) = dbpool_server::fuzzing::param_rows(&batch) {
        assert_eq!(out.len(), rows);
        assert!(out.iter().all(|r| r.len() == columns));
    }
}

fn column(input: &mut Input, rows: usize) -> Option<ArrayRef> {
    let kind = input.u8() % 24;
    // A null in about one row of eight.
    let mut valid = Vec::with_capacity(rows);
    let mut ints = Vec::with_capacity(rows);
    let mut texts = Vec::with_capacity(rows);
    for _ in 0..rows {
        valid.push(input.u8() % 8 != 0);
        ints.push(input.i64());
        texts.push(input.bytes(16).to_vec());
    }
    let opt = |i: usize| valid[i].then_some(ints[i]);
    let n = 0..rows;
    let strs: Vec<Option<String>> = n
        .clone()
        .map(|i| valid[i].then(|| String::from_utf8_lossy(&texts[i]).into_owned()))
        .collect();
    let bins: Vec<Option<&[u8]>> = n
        .clone()
        .map(|i| valid[i].then_some(&texts[i][..]))
        .collect();
    Some(match kind {
        0 => Arc::new(NullArray::new(rows)),
        1 => Arc::new(
            n.map(|i| opt(i).map(|v| v & 1 == 1))
                .collect::<BooleanArray>(),
        ),
        2 => Arc::new(n.map(|i| opt(i).map(|v| v as i8)).collect::<Int8Array>()),
        3 => Arc::new(n.map(|i| opt(i).map(|v| v as i16)).collect::<Int16Array>()),
        4 => Arc::new(n.map(|i| opt(i).map(|v| v as i32)).collect::<Int32Array>()),
        5 => Arc::new(n.map(opt).collect::<Int64Array>()),
        6 => Arc::new(n.map(|i| opt(i).map(|v| v as u8)).collect::<UInt8Array>()),
        7 => Arc::new(n.map(|i| opt(i).map(|v| v as u16)).collect::<UInt16Array>()),
        8 => Arc::new(n.map(|i| opt(i).map(|v| v as u32)).collect::<UInt32Array>()),
        9 => Arc::new(n.map(|i| opt(i).map(|v| v as u64)).collect::<UInt64Array>()),
        10 => Arc::new(
            n.map(|i| opt(i).map(|v| f64::from_bits(v as u64) as f32))
                .collect::<Float32Array>(),
        ),
        11 => Arc::new(
            n.map(|i| opt(i).map(|v| f64::from_bits(v as u64)))
                .collect::<Float64Array>(),
        ),
        12 => Arc::new(StringArray::from(strs)),
        13 => Arc::new(LargeStringArray::from(strs)),
        14 => Arc::new(StringViewArray::from(strs)),
        15 => Arc::new(BinaryArray::from(bins)),
        16 => Arc::new(LargeBinaryArray::from(bins)),
        17 => Arc::new(BinaryViewArray::from(bins)),
        18 => {
            let tz = (input.u8() & 1 == 1).then(|| "UTC");
            match input.u8() % 4 {
                0 => Arc::new(
                    TimestampSecondArray::from(n.map(opt).collect::<Vec<_>>())
                        .with_timezone_opt(tz),
                ),
                1 => Arc::new(
                    TimestampMillisecondArray::from(n.map(opt).collect::<Vec<_>>())
                        .with_timezone_opt(tz),
                ),
                2 => Arc::new(
                    TimestampMicrosecondArray::from(n.map(opt).collect::<Vec<_>>())
                        .with_timezone_opt(tz),
                ),
                _ => Arc::new(
                    TimestampNanosecondArray::from(n.map(opt).collect::<Vec<_>>())
                        .with_timezone_opt(tz),
                ),
            }
        }
        19 => {
            let precision = 1 + input.u8() % 38;
            let scale = input.u8() as i8;
            let a = n
                .map(|i| opt(i).map(|v| v as i128 * v as i128))
                .collect::<Decimal128Array>();
            Arc::new(a.with_precision_and_scale(precision, scale).ok()?)
        }
        20 => {
            let precision = 1 + input.u8() % 76;
            let scale = input.u8() as i8;
            let a = n
                .map(|i| opt(i).map(|v| i256::from_i128(v as i128) * i256::from_i128(v as i128)))
                .collect::<Decimal256Array>();
            Arc::new(a.with_precision_and_scale(precision, scale).ok()?)
        }
        21 => Arc::new(n.map(|i| opt(i).map(|v| v as i32)).collect::<Date32Array>()),
        22 => Arc::new(n.map(opt).collect::<Date64Array>()),
        _ => match input.u8() % 5 {
            0 => Arc::new(
                n.map(|i| opt(i).map(|v| v as i32))
                    .collect::<Time32SecondArray>(),
            ),
            1 => Arc::new(
                n.map(|i| opt(i).map(|v| v as i32))
                    .collect::<Time32MillisecondArray>(),
            ),
            2 => Arc::new(n.map(opt).collect::<Time64MicrosecondArray>()),
            3 => Arc::new(n.map(opt).collect::<Time64NanosecondArray>()),
            // A type the decoder refuses.
            _ => Arc::new(n.map(opt).collect::<DurationSecondArray>()),
        },
    })
}
