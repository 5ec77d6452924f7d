//! Seeded random mutations of valid Arrow IPC (a batch of every common type) fed through
//! the decoder DoPut uses: none may panic, and every batch it accepts must be valid Arrow.
//! The same inputs go through arrow-flight's own stream decoder, for comparison.
use arrow::array::*;
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::*;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::{DictionaryHandling, FlightDataEncoderBuilder};
use arrow_flight::FlightData;
use dbpool_server::fuzzing::{decode_framed, frame, IpcLimits};
use futures::{StreamExt, TryStreamExt};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

const MUTATIONS: usize = 10_000;
const LIMITS: IpcLimits = IpcLimits {
    max_fields: 65_535,
    max_dictionary_bytes: 64 << 20,
    max_bufferless_rows: 65_536,
};

/// Rows `0..n` in every common type, with nulls.
fn batch(n: usize) -> RecordBatch {
    let ids: Vec<i64> = (0..n as i64).collect();
    let null = |i: &i64| i % 7 != 3;
    let opt = |i: &i64| null(i).then_some(*i);
    let text: Vec<Option<String>> = ids
        .iter()
        .map(|i| null(i).then(|| format!("text-{i}-{}", "é".repeat((*i % 5) as usize))))
        .collect();
    let bin: Vec<Option<Vec<u8>>> = ids
        .iter()
        .map(|i| null(i).then(|| vec![*i as u8; (*i % 20) as usize]))
        .collect();
    let list = ListArray::from_iter_primitive::<Int32Type, _, _>(
        ids.iter()
            .map(|i| null(i).then(|| vec![Some(*i as i32), None])),
    );
    let large_list = LargeListArray::from_iter_primitive::<Int64Type, _, _>(
        ids.iter().map(|i| Some(vec![Some(*i); (*i % 3) as usize])),
    );
    let dict: DictionaryArray<Int32Type> = ids
        .iter()
        .map(|i| null(i).then(|| ["red", "green", "blue"][(*i % 3) as usize]))
        .collect();
    let structs = StructArray::from(vec![
        (
            Arc::new(Field::new("a", DataType::Int32, true)),
            Arc::new(Int32Array::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v as i32)),
            )) as ArrayRef,
        ),
        (
            Arc::new(Field::new("b", DataType::Utf8, true)),
            Arc::new(StringArray::from(text.clone())) as ArrayRef,
        ),
    ]);
    let fixed_list = FixedSizeListArray::from_iter_primitive::<Int16Type, _, _>(
        ids.iter().map(|i| Some(vec![Some(*i as i16), None])),
        2,
    );
    let offsets = OffsetBuffer::new(ScalarBuffer::from(vec![0i32; n + 1]));
    let empty_lists = ListArray::new(
        Arc::new(Field::new_list_field(DataType::Utf8, true)),
        offsets,
        Arc::new(StringArray::from(Vec::<String>::new())),
        None,
    );
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "i8",
            Arc::new(Int8Array::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v as i8)),
            )),
        ),
        (
            "i16",
            Arc::new(Int16Array::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v as i16)),
            )),
        ),
        (
            "i32",
            Arc::new(Int32Array::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v as i32)),
            )),
        ),
        ("i64", Arc::new(Int64Array::from_iter(ids.iter().map(opt)))),
        (
            "u8",
            Arc::new(UInt8Array::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v as u8)),
            )),
        ),
        (
            "u64",
            Arc::new(UInt64Array::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v as u64)),
            )),
        ),
        (
            "f32",
            Arc::new(Float32Array::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v as f32 / 3.0)),
            )),
        ),
        (
            "f64",
            Arc::new(Float64Array::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v as f64 / 7.0)),
            )),
        ),
        (
            "bool",
            Arc::new(BooleanArray::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v % 2 == 0)),
            )),
        ),
        ("utf8", Arc::new(StringArray::from(text.clone()))),
        ("large_utf8", Arc::new(LargeStringArray::from(text.clone()))),
        (
            "utf8_view",
            Arc::new(StringViewArray::from_iter(text.clone())),
        ),
        ("binary", Arc::new(BinaryArray::from_iter(bin.clone()))),
        (
            "binary_view",
            Arc::new(BinaryViewArray::from_iter(bin.clone())),
        ),
        (
            "fixed_binary",
            Arc::new(
                FixedSizeBinaryArray::try_from_iter(ids.iter().map(|i| i.to_le_bytes())).unwrap(),
            ),
        ),
        ("list", Arc::new(list)),
        ("large_list", Arc::new(large_list)),
        ("fixed_list", Arc::new(fixed_list)),
        ("empty_lists", Arc::new(empty_lists)),
        ("struct", Arc::new(structs)),
        ("dict", Arc::new(dict)),
        ("null", Arc::new(NullArray::new(n))),
        (
            "dec128",
            Arc::new(
                Decimal128Array::from_iter(ids.iter().map(|i| opt(i).map(|v| v as i128 * 1001)))
                    .with_precision_and_scale(20, 3)
                    .unwrap(),
            ),
        ),
        (
            "dec256",
            Arc::new(
                Decimal256Array::from_iter(
                    ids.iter()
                        .map(|i| opt(i).map(|v| i256::from_i128(v as i128 * -7))),
                )
                .with_precision_and_scale(40, 2)
                .unwrap(),
            ),
        ),
        (
            "ts",
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    ids.iter().map(|i| opt(i).map(|v| v * 1_000_003)),
                )
                .with_timezone("UTC"),
            ),
        ),
        (
            "date",
            Arc::new(Date32Array::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v as i32)),
            )),
        ),
        (
            "time",
            Arc::new(Time64MicrosecondArray::from_iter(
                ids.iter().map(|i| opt(i).map(|v| v * 1000)),
            )),
        ),
        (
            "duration",
            Arc::new(DurationNanosecondArray::from_iter(ids.iter().map(opt))),
        ),
    ];
    RecordBatch::try_from_iter(cols).unwrap()
}

/// Schema, dictionary and two batches, as a Flight client sends them.
fn messages() -> Vec<FlightData> {
    let (a, b) = (batch(40), batch(17));
    encode(vec![a, b])
}

/// What a Flight client sends for `batches`, dictionaries as dictionary messages.
fn encode(batches: Vec<RecordBatch>) -> Vec<FlightData> {
    let s = FlightDataEncoderBuilder::new()
        .with_dictionary_handling(DictionaryHandling::Resend)
        .build(futures::stream::iter(batches.into_iter().map(Ok)));
    futures::executor::block_on(s.try_collect()).unwrap()
}

/// Small deterministic generator (xorshift64*), so a failure can be replayed by seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random mutation of one message's header or body.
fn mutate(msgs: &mut Vec<FlightData>, rng: &mut Rng) {
    let m = rng.below(msgs.len());
    if rng.below(10) == 0 {
        // Message-level: drop, duplicate or swap.
        match rng.below(3) {
            0 => {
                msgs.remove(m);
            }
            1 => msgs.insert(m, msgs[m].clone()),
            _ => {
                let other = rng.below(msgs.len());
                msgs.swap(m, other);
            }
        }
        return;
    }
    let header = rng.below(2) == 0;
    let mut bytes = if header {
        msgs[m].data_header.to_vec()
    } else {
        msgs[m].data_body.to_vec()
    };
    if bytes.is_empty() {
        bytes.push(0);
    }
    match rng.below(5) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        2 => {
            // A length or offset field: an aligned 4- or 8-byte word set to an edge value.
            let edges: [u64; 8] = [0, 1, 7, 0xFF, 0x7FFF_FFFF, 0xFFFF_FFFF, u64::MAX, 1 << 40];
            let v = edges[rng.below(edges.len())].to_le_bytes();
            let w = if rng.below(2) == 0 { 4 } else { 8 };
            let at = rng.below(bytes.len() / w) * w;
            let end = (at + w).min(bytes.len());
            bytes[at..end].copy_from_slice(&v[..end - at]);
        }
        3 => {
            let at = rng.below(bytes.len() + 1);
            let n = 1 + rng.below(16);
            let fill: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, fill);
        }
        _ => {
            let at = rng.below(bytes.len());
            let n = (1 + rng.below(16)).min(bytes.len() - at);
            bytes.drain(at..at + n);
        }
    }
    if header {
        msgs[m].data_header = bytes.into();
    } else {
        msgs[m].data_body = bytes.into();
    }
}

#[derive(Default, Debug)]
struct Tally {
    panics: usize,
    accepted_invalid: usize,
    accepted_batches: usize,
    rejected: usize,
}

fn valid(b: &RecordBatch) -> bool {
    b.columns()
        .iter()
        .all(|c| c.to_data().validate_full().is_ok())
}

/// arrow-flight's stream decoder (what DoPut used before), for the "before" numbers.
fn arrow_flight_decode(msgs: &[FlightData]) -> Vec<Result<RecordBatch, String>> {
    let input = futures::stream::iter(Vec::from(msgs).into_iter().map(Ok));
    let s = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(input);
    futures::executor::block_on(s.map(|r| r.map_err(|e| e.to_string())).collect())
}

#[test]
fn mutated_ipc_never_panics_and_nothing_invalid_is_accepted() {
    let base = messages();
    assert!(base.len() >= 4, "schema, dictionary, two batches");
    // Seeds for the fuzz target (fuzz/fuzz_targets/flight_ipc.rs), when asked for.
    if let Ok(dir) = std::env::var("DBPOOL_FUZZ_SEEDS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/every_type"), frame(&base)).unwrap();
    }
    // The unmutated stream decodes to the original batches.
    let ok = decode_framed(&frame(&base), LIMITS);
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].as_ref().unwrap(), &batch(40));
    assert_eq!(ok[1].as_ref().unwrap(), &batch(17));

    let (mut ours, mut theirs) = (Tally::default(), Tally::default());
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    for _ in 0..MUTATIONS {
        let mut msgs = base.clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut msgs, &mut rng);
        }
        let framed = frame(&msgs);
        match catch_unwind(AssertUnwindSafe(|| decode_framed(&framed, LIMITS))) {
            Err(_) => {
                ours.panics += 1;
                let path = std::env::temp_dir().join(format!("flight_ipc_panic_{}", ours.panics));
                let _ = std::fs::write(&path, &framed);
                eprintln!("dbpool decoder panicked; input saved to {}", path.display());
            }
            Ok(out) => {
                for r in out {
                    match r {
                        Ok(b) if valid(&b) => ours.accepted_batches += 1,
                        Ok(_) => ours.accepted_invalid += 1,
                        Err(_) => ours.rejected += 1,
                    }
                }
            }
        }
        match catch_unwind(AssertUnwindSafe(|| arrow_flight_decode(&msgs))) {
            Err(_) => theirs.panics += 1,
            Ok(out) => {
                for r in out {
                    match r {
                        Ok(b) if valid(&b) => theirs.accepted_batches += 1,
                        Ok(_) => theirs.accepted_invalid += 1,
                        Err(_) => theirs.rejected += 1,
                    }
                }
            }
        }
    }
    println!(
        "{MUTATIONS} mutated streams; dbpool decoder: {ours:?}; arrow-flight decoder: {theirs:?}"
    );
    assert_eq!(ours.panics, 0, "{ours:?}");
    assert_eq!(ours.accepted_invalid, 0, "{ours:?}");
    assert!(
        ours.rejected > MUTATIONS / 4,
        "the mutations must mostly break something: {ours:?}"
    );
}

#[test]
fn bounds_on_fields_rows_and_dictionaries_are_enforced() {
    let base = messages();
    let tight = |f: fn(&mut IpcLimits)| {
        let mut l = LIMITS;
        f(&mut l);
        decode_framed(&frame(&base), l)
    };
    let err = |r: Vec<Result<RecordBatch, dbpool_core::Error>>| {
        r.into_iter()
            .find_map(Result::err)
            .expect("an error")
            .to_string()
    };
    let e = err(tight(|l| l.max_fields = 10));
    assert!(
        e.contains("flight_data[0]") && e.contains("more than 10 fields"),
        "{e}"
    );
    let e = err(tight(|l| l.max_dictionary_bytes = 8));
    assert!(
        e.contains("flight_data[1]") && e.contains("dictionaries"),
        "{e}"
    );
    // A batch claiming more rows than its body holds in bits, only Null columns.
    let nulls =
        RecordBatch::try_from_iter(vec![("n", Arc::new(NullArray::new(10)) as ArrayRef)]).unwrap();
    let mut msgs = encode(vec![nulls]);
    let ok = decode_framed(&frame(&msgs), LIMITS);
    assert_eq!(ok[0].as_ref().unwrap().num_rows(), 10);
    // Rewrite the lengths (10: the batch's, the field node's) to 2^40 in the header.
    let mut h = msgs[1].data_header.to_vec();
    let mut changed = 0;
    for w in h.chunks_exact_mut(8) {
        if w == 10i64.to_le_bytes() {
            w.copy_from_slice(&(1i64 << 40).to_le_bytes());
            changed += 1;
        }
    }
    assert!(changed >= 1, "the length in the header");
    msgs[1].data_header = h.into();
    let e = err(decode_framed(&frame(&msgs), LIMITS));
    assert!(
        e.contains("flight_data[1]") && e.contains("1099511627776 rows"),
        "{e}"
    );
}
