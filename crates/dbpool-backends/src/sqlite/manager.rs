//! A bb8 manager for rusqlite connections (no maintained one exists); opening and
//! checking run on the blocking pool.
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::time::Duration;

/// Opens connections to one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteManager {
    /// Database file.
    pub path: PathBuf,
    /// How long a writer waits for the file lock before SQLITE_BUSY.
    pub busy_timeout: Duration,
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
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(conn)
        })
        .await
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?
    }

    async fn is_valid(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        conn.execute_batch("")
    }

    fn has_broken(&self, _conn: &mut Connection) -> bool {
        false
    }
}
