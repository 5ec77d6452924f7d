//! What the tests' private servers (temp_pg.rs, pgbouncer.rs) share: a free port, and
//! running as the `postgres` user when the tests run as root (both servers refuse root).
use std::path::Path;
use std::process::Command;

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Gives `dir` to the `postgres` user when running as root, so a server run as that
/// user can write in it.
pub(crate) fn give_dir(dir: &Path) {
    if !is_root() {
        return;
    }
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "chown of {} to postgres", dir.display());
}
