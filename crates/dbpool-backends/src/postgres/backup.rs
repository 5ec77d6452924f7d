//! PostgreSQL as a failover backup: opened with `default_transaction_read_only`, and its
//! refusal of a write (SQLSTATE 25006) read as the pool's read-only degraded mode.
use crate::resilience::ReadOnlyBackup;
use dbpool_core::Error;

/// PostgreSQL's SQLSTATE for "cannot execute … in a read-only transaction".
const READ_ONLY_SQLSTATE: &str = "25006";

/// The session option that makes every transaction of a backup read-only.
const READ_ONLY_OPTION: &str = "-c default_transaction_read_only=on";

/// How failover opens PostgreSQL backups and recognises their refusals.
pub const READ_ONLY: ReadOnlyBackup = ReadOnlyBackup {
    url: read_only_url,
    refused_write,
};

/// A backup URL whose sessions refuse writes, even one sent through Query.
fn read_only_url(url: &str) -> String {
    with_pg_option(url, READ_ONLY_OPTION)
}

/// Whether a backup refused a write because it is read-only.
fn refused_write(e: &Error) -> bool {
    e.db_code() == Some(READ_ONLY_SQLSTATE)
}

/// Adds `option` to the `options` parameter of a PostgreSQL URL, keeping the URL's own.
/// Spaces are written `%20`: tokio-postgres percent-decodes values but keeps `+`.
fn with_pg_option(url: &str, option: &str) -> String {
    let encoded = option.replace(' ', "%20").replace('=', "%3D");
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut found = false;
    let mut parts: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some(("options", own)) => {
                found = true;
                format!("options={own}%20{encoded}")
            }
            _ => p.to_string(),
        })
        .collect();
    if !found {
        parts.push(format!("options={encoded}"));
    }
    format!("{base}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::failover::backup_pool;
    use dbpool_config::Secret;

    #[test]
    fn backups_open_read_only_and_keep_their_own_options() {
        let url = read_only_url("postgres://u:p@db/app");
        assert_eq!(
            url,
            "postgres://u:p@db/app?options=-c%20default_transaction_read_only%3Don"
        );
        let url = read_only_url("postgres://db/app?sslmode=disable&options=-c%20search_path%3Dx");
        assert_eq!(
            url,
            "postgres://db/app?sslmode=disable&options=-c%20search_path%3Dx%20-c%20default_transaction_read_only%3Don"
        );
    }

    #[test]
    fn tokio_postgres_reads_the_options() {
        let pool = dbpool_config::PoolConfig {
            url: Some(Secret::new("postgres://db/app")),
            backup_urls: vec![Secret::new(
                "postgres://u:pw@db2/app?options=-c%20search_path%3Dx",
            )],
            options: dbpool_config::PoolOptions {
                min_connections: 2,
                ..Default::default()
            },
            ..Default::default()
        }
        .resolve("")
        .unwrap();
        let b = backup_pool(&pool, 1, &READ_ONLY).unwrap();
        assert_eq!(b.options.min_connections, 0);
        assert!(b.backup_urls.is_empty());
        let pg: tokio_postgres::Config = b.url.expose().parse().unwrap();
        assert_eq!(
            pg.get_options(),
            Some("-c search_path=x -c default_transaction_read_only=on")
        );
        assert_eq!(pg.get_password(), Some(&b"pw"[..]));
    }

    #[test]
    fn a_read_only_refusal_is_told_by_its_sqlstate() {
        let refusal = Error::Database {
            message: "cannot execute INSERT in a read-only transaction".into(),
            code: Some(READ_ONLY_SQLSTATE.into()),
        };
        assert!(refused_write(&refusal));
        let other = Error::Database {
            message: "relation \"x\" does not exist".into(),
            code: Some("42P01".into()),
        };
        assert!(!refused_write(&other));
    }
}
