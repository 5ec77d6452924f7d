//! Redis command lines: redis-cli quoting (`"…"` with escapes, `'…'`), `$N` placeholders
//! bound to typed parameters or parameters appended, then the pool's command policy
//! (settings.denied_commands / allowed_commands parsed from the same input).
#![no_main]
#[path = "input.rs"]
mod input;

use dbpool_backends::redis::{Command, Settings};
use dbpool_config::PoolOptions;
use dbpool_core::Param;
use input::Input;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut params = Vec::new();
    for _ in 0..input.u8() % 4 {
        params.push(match input.u8() % 6 {
            0 => Param::Null,
            1 => Param::Bool(input.u8() & 1 == 1),
            2 => Param::Int64(input.i64()),
            3 => Param::Double(f64::from_bits(input.i64() as u64)),
            4 => Param::Bytes(input.bytes(16).to_vec()),
            _ => Param::String(input.string(16)),
        });
    }
    let mut settings = BTreeMap::new();
    if input.u8() & 1 == 1 {
        settings.insert("denied_commands".to_string(), input.string(32));
    }
    if input.u8() & 1 == 1 {
        settings.insert("allowed_commands".to_string(), input.string(32));
    }
    let line = String::from_utf8_lossy(input.rest());
    let n_params = params.len();
    let Ok(cmd) = Command::parse(&line, params) else {
        return;
    };
    // Never fewer arguments than the line has words plus appended parameters, never none.
    assert!(!cmd.args.is_empty());
    assert!(cmd.args.len() <= line.len() + n_params);
    let _ = (
        cmd.name(),
        cmd.sub(),
        cmd.has_flag("WITHSCORES"),
        cmd.to_cmd(),
    );
    if let Ok(s) = Settings::parse(&settings, &PoolOptions::default()) {
        let _ = s.policy.check(&cmd);
    }
});
