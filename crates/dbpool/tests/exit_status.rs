//! The daemon's exit status: a server that cannot run exits non-zero and says why.
use std::process::Command;

#[test]
fn a_value_out_of_range_fails_the_start_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dbpool.toml");
    // Once raised to 100 ms without a word; now refused.
    std::fs::write(&config, "[server]\nhealth_check_interval_ms = 50\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dbpool"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("DBPOOL_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success(), "exit status {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.health_check_interval_ms") && stderr.contains("at least 100"),
        "{stderr}"
    );
}
