//! Configuration text and pool URLs: `load_str` on arbitrary TOML; a pool given as a URL
//! or as fields (host, port, database, user, password, backup URLs) through
//! `PoolConfig::resolve`, and `redact_url` on arbitrary URLs, whose output must never
//! hold the password; a CreatePool request decoded from the same bytes through the
//! server's request → config mapping.
#![no_main]
#[path = "input.rs"]
mod input;

use dbpool_config::{redact_url, PoolConfig, Secret};
use dbpool_proto::v1 as pb;
use input::Input;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    match input.u8() % 4 {
        0 => {
            let _ = dbpool_config::load_str(&String::from_utf8_lossy(input.rest()), "fuzz.toml");
        }
        1 => {
            let url = String::from_utf8_lossy(input.rest()).into_owned();
            redacts(&url);
            let cfg = PoolConfig {
                url: Some(Secret::new(url.clone())),
                backup_urls: vec![Secret::new(url)],
                ..Default::default()
            };
            if let Ok(r) = cfg.resolve("pools.f.") {
                let _ = (r.redacted_url(), r.redacted_backup_urls());
            }
        }
        2 => {
            let db_types = ["postgresql", "sqlite", "mssql", "redis", "influxdb", "pg"];
            let cfg = PoolConfig {
                db_type: Some(db_types[input.u8() as usize % db_types.len()].to_string()),
                host: Some(input.string(64)),
                port: Some(u16::from_le_bytes([input.u8(), input.u8()])),
                database: Some(input.string(64)),
                username: Some(input.string(32)),
                password: Some(Secret::new(input.string(32))),
                ..Default::default()
            };
            if let Ok(r) = cfg.resolve("pools.f.") {
                redacts(r.url.expose());
            }
        }
        _ => {
            if let Ok(req) = pb::CreatePoolRequest::decode(input.rest()) {
                if let Ok(cfg) = dbpool_server::fuzzing::pool_config(&req) {
                    let _ = cfg.resolve("");
                }
            }
        }
    }
});

/// The redacted form of a URL with a password never shows that password, unless the
/// rest of the URL (its query, say) holds the same text, which redaction keeps.
fn redacts(url: &str) {
    let shown = redact_url(url);
    let Ok(mut u) = url::Url::parse(url) else {
        return;
    };
    let Some(p) = u.password().map(str::to_string) else {
        return;
    };
    if u.set_password(None).is_err() {
        return;
    }
    // Short passwords (`a`) occur elsewhere by chance; compare with the URL without one.
    if p.len() >= 8 && !redact_url(u.as_str()).contains(&p) {
        assert!(!shown.contains(&p), "password shown: {url} → {shown}");
    }
}
