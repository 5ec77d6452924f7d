//! Fuzzes the Arrow IPC decoder every DoPut goes through (bulk insert, Flight SQL ingest,
//! prepared-statement parameters): input is a sequence of framed FlightData messages
//! (`u32` header length, header, `u32` body length, body). It must never panic, and
//! every batch it accepts must pass arrow's full validation.
#![no_main]
use arrow::array::Array;
use dbpool_server::fuzzing::{decode_framed, IpcLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: IpcLimits = IpcLimits {
    max_fields: 65_535,
    max_dictionary_bytes: 64 << 20,
    max_bufferless_rows: 65_536,
};

fuzz_target!(
    // libfuzzer-sys aborts on every panic, even one caught; the decoder catches arrow's
    // known assertion in `Buffer::typed_data` (see `last_defence` in ipc_in.rs), as the
    // server does. This hook reports a caught panic without aborting, and a panic
    // escaping `decode_framed` still aborts (libfuzzer-sys catches it and aborts).
    init: std::panic::set_hook(Box::new(|info| eprintln!("caught in the decoder: {info}"))),
    |data: &[u8]| {
        for batch in decode_framed(data, LIMITS).into_iter().flatten() {
            for c in batch.columns() {
                // Why: an accepted batch that is not valid Arrow would reach a backend.
                c.to_data()
                    .validate_full()
                    .expect("the decoder accepted an invalid array");
            }
        }
    }
);
