//! The reset of a PostgreSQL session a caller changed, before the connection is reused:
//! everything `DISCARD ALL` does but drop the daemon's own prepared statements, in one
//! round trip (two when SQL-level `PREPARE`d statements or listened channels are left).
//!
//! `DISCARD ALL` itself would also deallocate the statements the daemon prepared at the
//! protocol level: its statement cache (session.rs) and tokio-postgres's cached type
//! lookups, which cannot be cleared, would then name statements gone from the server.
//! So the reset is spelled out: `DEALLOCATE` only for statements made by SQL `PREPARE`
//! (`pg_prepared_statements.from_sql`), `DISCARD PLANS` so the daemon's statements are
//! planned again against the fresh session (a reset `search_path` changes what names
//! mean). A reset that fails leaves the connection to be closed (pool.rs).
use super::Manager;
use crate::exec::spawn_cleanup;
use crate::pool::Conn;
use tokio_postgres::{Client, SimpleQueryMessage};

/// What `DISCARD ALL` does (PostgreSQL's documentation lists it) but `DEALLOCATE ALL`
/// and `UNLISTEN *`; the last statement lists the follow-ups this session needs: a
/// `DEALLOCATE` per statement SQL `PREPARE` made, and `UNLISTEN *` only when something
/// listens (a hot standby refuses UNLISTEN, and never has listeners).
const RESET: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; \
     SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES; \
     SELECT 'DEALLOCATE ' || quote_ident(name) AS dbpool_reset_next \
     FROM pg_prepared_statements WHERE from_sql \
     UNION ALL SELECT 'UNLISTEN *' WHERE EXISTS (SELECT FROM pg_listening_channels())";

/// The column of the follow-up statements.
const NEXT_COLUMN: &str = "dbpool_reset_next";

/// Resets `client`'s session to that of a fresh connection.
pub(crate) async fn reset_session(client: &Client) -> Result<(), tokio_postgres::Error> {
    let reply = client.simple_query(RESET).await?;
    let next: String = reply
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r)
                if r.columns().first().map(|c| c.name()) == Some(NEXT_COLUMN) =>
            {
                r.get(0)
            }
            _ => None,
        })
        .map(|statement| format!("{statement};"))
        .collect();
    if !next.is_empty() {
        client.batch_execute(&next).await?;
    }
    Ok(())
}

/// The pool's reset (`PoolHandle::with_reset`): on a task of its own that holds the
/// connection, and the next caller's turn, until the session is clean.
pub(crate) fn reset(mut conn: Conn<Manager>) {
    spawn_cleanup(async move {
        match reset_session(&conn).await {
            Ok(()) => conn.keep(),
            Err(e) => tracing::warn!(error = %e, "session reset failed; connection closed"),
        }
    });
}
