//! The every-type table of the PostgreSQL bulk-insert tests: its DDL and its rows as Arrow.
use crate::bulk_common::batch;
use arrow::array::*;
use std::sync::Arc;

pub const EVERY_TYPE: &str =
    "CREATE TABLE t (id int8, b bool, i2 int2, i4 int4, i8 int8, f4 float4,
    f8 float8, n numeric(12,3), t text, vc varchar(40), by bytea, d date, tm time, ts timestamp,
    tz timestamptz, iv interval, u uuid, j json, jb jsonb, ai int4[], at text[])";

/// Rows `start..start + n` of a table with every type; each column has NULLs.
pub fn every_type(start: usize, n: usize) -> RecordBatch {
    let rows = start..start + n;
    let null = |i: usize, k: usize| (i + k).is_multiple_of(7);
    let opt = |i: usize, k: usize, v: i64| (!null(i, k)).then_some(v);
    let id = Int64Array::from_iter_values(rows.clone().map(|i| i as i64));
    let b = BooleanArray::from_iter(rows.clone().map(|i| opt(i, 1, 0).map(|_| i % 3 == 0)));
    let i2 = Int16Array::from_iter(
        rows.clone()
            .map(|i| opt(i, 2, (i % 65_536) as i64 - 32_768).map(|v| v as i16)),
    );
    let i4 = Int32Array::from_iter(
        rows.clone()
            .map(|i| opt(i, 3, i as i64 * 2_147).map(|v| v as i32)),
    );
    let i8 = Int64Array::from_iter(
        rows.clone()
            .map(|i| opt(i, 4, (i as i64 - 500_000) * 9_007_199_254)),
    );
    let f4 = Float32Array::from_iter(rows.clone().map(|i| opt(i, 5, 0).map(|_| i as f32 * 0.25)));
    let f8 = Float64Array::from_iter(rows.clone().map(|i| {
        opt(i, 6, 0).map(|_| {
            if i == 10 {
                f64::INFINITY
            } else {
                i as f64 / 3.0
            }
        })
    }));
    let n = Decimal128Array::from_iter(
        rows.clone()
            .map(|i| opt(i, 0, 0).map(|_| (i as i128 - 500_000) * 1_999_999)),
    )
    .with_precision_and_scale(12, 3)
    .unwrap();
    let t = StringArray::from_iter(rows.clone().map(|i| {
        opt(i, 1, 0).map(|_| {
            if i % 11 == 0 {
                String::new()
            } else {
                format!("row {i} ünïcode")
            }
        })
    }));
    let vc = StringArray::from_iter(rows.clone().map(|i| opt(i, 2, 0).map(|_| format!("v{i}"))));
    let by = BinaryArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 3, 0).map(|_| vec![(i % 256) as u8; i % 5])),
    );
    let d = Date32Array::from_iter(
        rows.clone()
            .map(|i| opt(i, 4, (i % 100_000) as i64 - 50_000).map(|v| v as i32)),
    );
    let tm = Time64MicrosecondArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 5, (i as i64 * 1_234_567) % 86_400_000_000)),
    );
    let ts = TimestampMicrosecondArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 6, (i as i64 - 500_000) * 3_600_000_123)),
    );
    let tz = TimestampMicrosecondArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 0, i as i64 * 1_000_001 - 1_000_000_000_000)),
    )
    .with_timezone("UTC");
    let iv = DurationMicrosecondArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 1, (i as i64 - 500_000) * 1_000_003)),
    );
    let u = StringArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 2, 0).map(|_| format!("{i:08x}-0000-4000-8000-{:012x}", i * 7))),
    );
    let j = StringArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 3, 0).map(|_| format!("{{\"a\":{i}}}"))),
    );
    let jb = StringArray::from_iter(
        rows.clone()
            .map(|i| opt(i, 4, 0).map(|_| format!("{{\"a\": {i}}}"))),
    );
    let mut ai = ListBuilder::new(Int32Builder::new());
    let mut at = ListBuilder::new(StringBuilder::new());
    for i in rows.clone() {
        if null(i, 5) {
            ai.append_null();
        } else {
            for k in 0..i % 4 {
                ai.values()
                    .append_option((k != 1).then_some((i + k) as i32));
            }
            ai.append(true);
        }
        if null(i, 6) {
            at.append_null();
        } else {
            for k in 0..i % 3 {
                at.values().append_value(format!("{i}.{k}"));
            }
            at.append(true);
        }
    }
    batch(vec![
        ("id", Arc::new(id)),
        ("b", Arc::new(b)),
        ("i2", Arc::new(i2)),
        ("i4", Arc::new(i4)),
        ("i8", Arc::new(i8)),
        ("f4", Arc::new(f4)),
        ("f8", Arc::new(f8)),
        ("n", Arc::new(n)),
        ("t", Arc::new(t)),
        ("vc", Arc::new(vc)),
        ("by", Arc::new(by)),
        ("d", Arc::new(d)),
        ("tm", Arc::new(tm)),
        ("ts", Arc::new(ts)),
        ("tz", Arc::new(tz)),
        ("iv", Arc::new(iv)),
        ("u", Arc::new(u)),
        ("j", Arc::new(j)),
        ("jb", Arc::new(jb)),
        ("ai", Arc::new(ai.finish())),
        ("at", Arc::new(at.finish())),
    ])
}
