//! InfluxDB 1.x `/query?chunked=true` bodies: arbitrary bytes cut into reads at
//! input-chosen points through the incremental line reader (`chunked::Chunks`), each
//! object's schema chosen from its first series (`convert::Shape`) and every series
//! flattened into Arrow batches (`convert::Batcher`) as the query stream does.
#![no_main]
#[path = "input.rs"]
mod input;

use bytes::Bytes;
use dbpool_backends::influxdb::v1::chunked::{Chunks, Series};
use dbpool_backends::influxdb::v1::convert::{Batcher, Kind, Shape};
use futures::StreamExt;
use input::Input;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let batch_size = 1 + (input.u8() % 8) as usize;
    let select = input.u8() & 1 == 1;
    let typed = input.u8() & 1 == 1;
    // Reads of 1..=64 bytes, sizes from the input, the body the rest.
    let sizes: Vec<usize> = (0..8).map(|_| 1 + (input.u8() % 64) as usize).collect();
    let body = input.rest();
    let mut reads: Vec<reqwest::Result<Bytes>> = Vec::new();
    let (mut at, mut k) = (0, 0);
    while at < body.len() {
        let n = sizes[k % sizes.len()].min(body.len() - at);
        reads.push(Ok(Bytes::copy_from_slice(&body[at..at + n])));
        at += n;
        k += 1;
    }
    let mut chunks = Chunks::new(futures::stream::iter(reads).boxed());
    let mut batcher: Option<Batcher> = None;
    futures::executor::block_on(async {
        // Ends at the body's end or the first error, as the query stream does.
        while let Ok(Some(r)) = chunks.next().await {
            if r.error().is_some() {
                return;
            }
            let series: Vec<&Series> = r.results.iter().flat_map(|s| &s.series).collect();
            if batcher.is_none() {
                let Some(first) = series.first() else {
                    continue;
                };
                let mut fields = HashMap::new();
                if typed {
                    for (i, c) in first.columns.iter().enumerate() {
                        let kinds = [Kind::Float, Kind::Int, Kind::Str, Kind::Bool];
                        fields.insert(c.clone(), kinds[i % kinds.len()]);
                    }
                }
                batcher = Some(Batcher::new(
                    Shape::resolve(first, &series, &fields, select),
                    batch_size,
                ));
            }
            let b = batcher.as_mut().expect("set above");
            for s in &r.results {
                for series in &s.series {
                    match b.push(s.statement_id, series) {
                        Ok(batches) => assert!(batches.iter().all(|x| x.num_rows() == batch_size)),
                        Err(_) => return,
                    }
                }
            }
        }
        if let Some(b) = batcher.as_mut() {
            if let Ok(Some(last)) = b.flush() {
                assert!(last.num_rows() <= batch_size);
            }
        }
    });
});
