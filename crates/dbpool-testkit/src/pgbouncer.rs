//! A private PgBouncer in transaction mode in front of the test PostgreSQL, for tests of
//! pools that reach their database through a transaction pooler: its own port, config
//! and auth file in a temp dir, run as the `postgres` user (PgBouncer refuses root).
use crate::as_postgres::{free_port, give_dir, is_root};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running PgBouncer; killed and its directory removed on drop.
pub struct PgBouncer {
    child: Child,
    dir: tempfile::TempDir,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

/// Server connections PgBouncer keeps per database and user.
pub const POOL_SIZE: u32 = 3;

fn binary() -> PathBuf {
    [
        "/usr/sbin/pgbouncer",
        "/usr/bin/pgbouncer",
        "/usr/local/bin/pgbouncer",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("pgbouncer is not installed (scripts/lib.sh ensure_tools installs it)")
}

/// The uid and gid of `postgres`, when running as root.
fn postgres_ids() -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if is_root() {
        Some((id("-u")?, id("-g")?))
    } else {
        None
    }
}

impl PgBouncer {
    /// Starts PgBouncer in transaction mode (pool of [`POOL_SIZE`] server connections
    /// per database) in front of the test PostgreSQL at 127.0.0.1:5432, trust auth, and
    /// waits until it accepts connections.
    pub fn start() -> PgBouncer {
        let dir = tempfile::Builder::new()
            .prefix("dbpool-pgbouncer-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let path = |f: &str| dir.path().join(f).display().to_string();
        std::fs::write(path("userlist.txt"), "\"postgres\" \"\"\n").expect("auth file");
        let ini = format!(
            "[databases]\n\
             * = host=127.0.0.1 port=5432 user=postgres\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {auth}\n\
             pool_mode = transaction\n\
             default_pool_size = {POOL_SIZE}\n\
             max_client_conn = 500\n\
             ignore_startup_parameters = extra_float_digits, options\n\
             logfile = {log}\n",
            auth = path("userlist.txt"),
            log = path("pgbouncer.log"),
        );
        std::fs::write(path("pgbouncer.ini"), ini).expect("config file");
        let mut cmd = Command::new(binary());
        cmd.arg(path("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = postgres_ids() {
            give_dir(dir.path());
            cmd.uid(uid).gid(gid);
        }
        let child = cmd.spawn().expect("start pgbouncer");
        let mut bouncer = PgBouncer { child, dir, port };
        bouncer.wait_ready();
        bouncer
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pgbouncer exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "pgbouncer did not listen within 20 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50)); // polling a port, with a deadline
        }
    }

    /// PgBouncer's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }

    /// A URL for `database` through PgBouncer, as user `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
