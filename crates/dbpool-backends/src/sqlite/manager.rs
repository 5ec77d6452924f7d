//! A bb8 manager for rusqlite connections (no maintained one exists); opening and
//! checking run on the blocking pool.
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Opens connections to one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteManager {
    /// Database file.
    pub path: PathBuf,
    /// How long a writer waits for the file lock before SQLITE_BUSY.
    pub busy_timeout: Duration,
    /// The directory a pool created at run time is confined to (confine.rs): ATTACH
    /// outside it and extension loading are refused on every connection.
    pub confine_to: Option<PathBuf>,
}

/// Puts the file in WAL mode. Switching a new file needs an exclusive lock for which
/// SQLite does not wait (no busy handler): connections opened together on a fresh file
/// (`min_connections`) got "database is locked" and failed the first calls. Retried
/// until `patience` runs out; on a file already in WAL mode it succeeds at once.
fn wal(conn: &Connection, patience: Duration) -> Result<(), rusqlite::Error> {
    let deadline = Instant::now() + patience;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

impl bb8::ManageConnection for SqliteManager {
    type Connection = Connection;
    type Error = rusqlite::Error;

    async fn connect(&self) -> Result<Connection, rusqlite::Error> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI;
            let conn = Connection::open_with_flags(&this.path, flags)?;
            conn.busy_timeout(this.busy_timeout)?;
            // WAL lets readers run beside the one writer.
            wal(&conn, this.busy_timeout)?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            if let Some(dir) = this.confine_to {
                super::confine::install(&conn, dir)?;
            }
            Ok(conn)
        })
        .await
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
    }

    async fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.execute_batch("")
    }

    /// A connection still inside a transaction never goes back to the pool: dropping
    /// it closes it, which rolls the transaction back (the last net of issue 15).
    fn has_broken(&self, conn: &mut Connection) -> bool {
        !conn.is_autocommit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb8::ManageConnection;

    /// Connections opened together on fresh files all open, and the file ends in WAL mode.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_opened_together_on_a_new_file_all_open() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..20 {
            let manager = SqliteManager {
                path: dir.path().join(format!("fresh-{round}.db")),
                busy_timeout: Duration::from_secs(5),
                confine_to: None,
            };
            let opens: Vec<_> = (0..8)
                .map(|_| {
                    let m = manager.clone();
                    tokio::spawn(async move { m.connect().await })
                })
                .collect();
            for open in opens {
                let conn = open
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"));
                let mode: String = conn
                    .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(mode, "wal");
            }
        }
    }
}
