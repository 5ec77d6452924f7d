//! The audit log's writer thread: takes lines from a bounded queue, appends them through
//! a buffer that is flushed whenever the queue runs empty, and reopens its file when
//! asked (after logrotate moved it).
use dbpool_core::LogLimiter;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

/// At most one warning per this interval for each kind of writer trouble.
const LOG_INTERVAL: Duration = Duration::from_secs(10);
/// The write buffer: many lines per `write(2)` under load.
const BUFFER_BYTES: usize = 64 * 1024;

/// What the writer thread is sent.
pub(super) enum Msg {
    /// One JSON line, without its newline.
    Line(Vec<u8>),
    /// Write and flush everything before this, then answer.
    Flush(SyncSender<()>),
}

/// Opens an audit file for appending, created with mode 0600 (its lines name tenants,
/// peers and statements).
pub(super) fn open_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The writer thread's state.
pub(super) struct Writer {
    out: BufWriter<Box<dyn Write + Send>>,
    /// The file to reopen; `None` for stdout.
    path: Option<PathBuf>,
    /// Set by [`AuditLog::reopen`](super::AuditLog::reopen): reopen before the next line.
    reopen: Arc<AtomicBool>,
    write_log: LogLimiter,
    reopen_log: LogLimiter,
}

impl Writer {
    /// A writer appending to `out`, which is the file at `path` when there is one.
    pub(super) fn new(
        out: Box<dyn Write + Send>,
        path: Option<PathBuf>,
        reopen: Arc<AtomicBool>,
    ) -> Self {
        Writer {
            out: BufWriter::with_capacity(BUFFER_BYTES, out),
            path,
            reopen,
            write_log: LogLimiter::new(LOG_INTERVAL),
            reopen_log: LogLimiter::new(LOG_INTERVAL),
        }
    }

    /// Runs until every sender is gone, then flushes what is left.
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let msg = match rx.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Empty) => {
                    // Nothing waiting: put what is buffered on disk before sleeping.
                    self.flush();
                    match rx.recv() {
                        Ok(msg) => msg,
                        Err(_) => break,
                    }
                }
                Err(TryRecvError::Disconnected) => break,
            };
            match msg {
                Msg::Line(line) => self.write_line(&line),
                Msg::Flush(done) => {
                    self.flush();
                    // The caller may have given up waiting; nothing to do then.
                    let _ = done.send(());
                }
            }
        }
        self.flush();
    }

    fn write_line(&mut self, line: &[u8]) {
        if self.reopen.swap(false, Ordering::AcqRel) {
            self.reopen_file();
        }
        let written = self
            .out
            .write_all(line)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(e) = written {
            self.warn_write(&e);
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.out.flush() {
            self.warn_write(&e);
        }
    }

    /// Flushes the old file and appends to a new one at the path; if that cannot be
    /// opened, the old file keeps receiving the lines.
    fn reopen_file(&mut self) {
        let Some(path) = &self.path else { return };
        match open_file(path) {
            Ok(file) => {
                self.flush();
                self.out = BufWriter::with_capacity(BUFFER_BYTES, Box::new(file));
            }
            Err(e) => {
                if let Some(suppressed) = self.reopen_log.check() {
                    tracing::warn!(
                        path = %path.display(),
                        error = %e,
                        suppressed,
                        "cannot reopen the audit log; still writing to the old file"
                    );
                }
            }
        }
    }

    fn warn_write(&self, e: &io::Error) {
        if let Some(suppressed) = self.write_log.check() {
            tracing::warn!(error = %e, suppressed, "cannot write the audit log");
        }
    }
}
