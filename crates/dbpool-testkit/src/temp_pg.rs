//! A private PostgreSQL server for tests that stop and start their database (health
//! flips, restarts) or need TLS: initdb in a temp dir, on its own port, run as the
//! `postgres` user.
use crate::as_postgres::{free_port, give_dir, is_root};
use std::path::PathBuf;
use std::process::Command;

/// A PostgreSQL cluster of the test's own; stopped and removed on drop.
pub struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

fn pg_bin() -> PathBuf {
    let root = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .max()
        .expect("a PostgreSQL version directory");
    root.join("bin")
}

/// Runs a PostgreSQL tool as the `postgres` user (the server refuses to run as root).
fn as_postgres(bin: &std::path::Path, tool: &str, args: &[&str]) {
    let tool = bin.join(tool);
    let out = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&tool)
            .args(args)
            .output()
    } else {
        Command::new(&tool).args(args).output()
    }
    .unwrap_or_else(|e| panic!("running {}: {e}", tool.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        tool.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// TLS of a private server (`ssl = on`): its certificate, key and the CA that checks
/// client certificates, as PEM, and the whole of its pg_hba.conf.
pub struct TempPgTls {
    /// The server's certificate chain (PEM).
    pub cert_pem: String,
    /// The server's private key (PEM).
    pub key_pem: String,
    /// The CA of client certificates (`ssl_ca_file`, PEM).
    pub ca_pem: String,
    /// pg_hba.conf, e.g. `hostssl` lines only (a `local` line is added for pg_ctl).
    pub hba: String,
}

impl TempPostgres {
    /// Creates and starts the cluster (trust auth, user `postgres`).
    pub fn start() -> TempPostgres {
        Self::start_with(None)
    }

    /// Creates and starts a cluster that speaks TLS, with `tls`'s files and pg_hba.conf.
    pub fn start_tls(tls: &TempPgTls) -> TempPostgres {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&TempPgTls>) -> TempPostgres {
        let dir = tempfile::Builder::new()
            .prefix("dbpool-pg-")
            .tempdir()
            .unwrap();
        give_dir(dir.path());
        let bin = pg_bin();
        let data = dir.path().join("data");
        as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        if let Some(tls) = tls {
            write_tls(&data, tls);
            give_dir(dir.path());
        }
        let pg = TempPostgres {
            dir,
            bin,
            port: free_port(),
        };
        pg.start_server();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn start_server(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", &self.data(), "-o", &opts, "-l", &log, "-w", "start"],
        );
    }

    /// Stops the server (fast shutdown: connections are terminated).
    pub fn stop(&self) {
        as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", &self.data(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        self.start_server();
    }

    /// A URL for the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// Writes the server's TLS files and pg_hba.conf into the data directory and turns
/// `ssl` on.
fn write_tls(data: &std::path::Path, tls: &TempPgTls) {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(data.join("server.crt"), &tls.cert_pem).unwrap();
    std::fs::write(data.join("ca.crt"), &tls.ca_pem).unwrap();
    let key = data.join("server.key");
    std::fs::write(&key, &tls.key_pem).unwrap();
    // PostgreSQL refuses a key that others may read.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let hba = format!("local all all trust\n{}\n", tls.hba);
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .unwrap();
    conf.write_all(
        b"\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\n",
    )
    .unwrap();
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let tool = self.bin.join("pg_ctl");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(tool)
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}
