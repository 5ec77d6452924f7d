//! `target/debug/dbpool serve` (optionally with `--config <file>`) as a child process,
//! killed on drop, with its memory read from `/proc/<pid>/status`. Shared by the tests
//! that run the real binary (`bad_input`, `backpressure`) through `#[path]`.
#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tonic::transport::Channel;

/// The daemon binary: `$DBPOOL_BIN`, else `dbpool` beside this test's `deps/` folder.
fn binary() -> PathBuf {
    if let Ok(b) = std::env::var("DBPOOL_BIN") {
        return PathBuf::from(b);
    }
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>")
        .join("dbpool")
}

/// The daemon's log lines so far, and a signal for each new one.
#[derive(Default)]
struct Log {
    lines: Mutex<Vec<String>>,
    more: Condvar,
}

/// A running daemon.
pub struct Daemon {
    child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    log: Arc<Log>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts the daemon on a free port, with this TOML config if any (`listen` and
    /// `data_dir` are set here).
    pub fn start(config: Option<&str>) -> Daemon {
        let bin = binary();
        assert!(
            bin.is_file(),
            "{} not found: build it with `cargo build -p dbpool` (or set DBPOOL_BIN)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(&bin);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        if let Some(config) = config {
            let file = dir.path().join("dbpool.toml");
            std::fs::write(&file, config).unwrap();
            cmd.arg("--config").arg(file);
        }
        let mut child = cmd
            .arg("--data-dir")
            .arg(dir.path())
            .env("DBPOOL_LOG", "info")
            .env_remove("DBPOOL_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let log: Arc<Log> = Arc::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = log.clone();
        // Reads the log to its end (a full pipe would stall the daemon), keeping it for
        // failure messages; the "dbpool serving" line tells the port.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("dbpool serving") {
                    if let Some(a) = line.split("addr=").nth(1) {
                        let _ = addr_tx.send(a.split_whitespace().next().unwrap_or("").into());
                    }
                }
                lines.lines.lock().unwrap().push(line);
                lines.more.notify_all();
            }
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("dbpool did not start: {:?}", log.lines.lock().unwrap()));
        Daemon {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// A new client connection.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to dbpool ({e}): {}", self.log_tail()))
    }

    /// How the process ended, if it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// The last lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let log = self.log.lines.lock().unwrap();
        log[log.len().saturating_sub(30)..].join("\n")
    }

    /// The first log line that holds every one of `parts`, waiting up to `within` for the
    /// daemon to write it.
    pub fn wait_for_line(&self, parts: &[&str], within: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + within;
        let mut lines = self.log.lines.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return Some(l.clone());
            }
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            lines = self.log.more.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Resident memory now (`VmRSS` of `/proc/<pid>/status`), in bytes.
    pub fn rss(&self) -> u64 {
        self.memory("VmRSS")
    }

    /// A field of `/proc/<pid>/status` in bytes: `VmRSS` now, `VmHWM` the peak so far.
    pub fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_else(|e| panic!("dbpool is gone ({e}): {}", self.log_tail()));
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/<pid>/status"));
        kib * 1024
    }

    /// Resets the peak (`VmHWM`) to the current resident memory and returns that: the
    /// baseline of what follows.
    pub fn baseline(&self) -> u64 {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("reset the peak resident memory (clear_refs)");
        self.rss()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
