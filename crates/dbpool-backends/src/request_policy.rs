//! What only the operator may set: settings that weaken a pool's command policy or name
//! a file on the daemon's machine are refused when they come from a CreatePool request.
//!
//! A caller who could set `denied_commands = ""` would turn a pool into a FLUSHALL
//! button, and one who could name a CA file would make the daemon read any path it can
//! and, from the differing errors, tell whether a file exists. Pools of the config file
//! (the operator's) are not checked here.
use dbpool_config::{BackendKind, PoolConfig, ResolvedPool};
use dbpool_core::{Error, Result};
use std::path::Path;

/// Settings a request may not set, per backend: command policy and file paths.
fn operator_only_settings(kind: BackendKind) -> &'static [&'static str] {
    match kind {
        BackendKind::Redis => &["denied_commands", "allowed_commands", "tls_ca_file"],
        // max_chunk_bytes: how much memory one response may take is the operator's too.
        BackendKind::Influxdb => &["denied_statements", "allowed_statements", "max_chunk_bytes"],
        // Set by the server itself for every SQLite pool a request creates.
        BackendKind::Sqlite => &["confine_to_dir"],
        _ => &[],
    }
}

/// MSSQL URL query parameters (lower case) that name a file the driver reads.
#[cfg(feature = "mssql")]
const MSSQL_URL_FILE_PARAMS: &[&str] = &["trust_server_certificate_ca"];

/// Keys of an MSSQL `ado` connection string (lower case, spaces removed) that name a
/// file the driver reads.
#[cfg(feature = "mssql")]
const MSSQL_ADO_FILE_KEYS: &[&str] = &["trustservercertificateca"];

fn refused(field: impl Into<String>) -> Error {
    Error::invalid(field, "can only be set in the config file")
}

/// Refuses, with INVALID_ARGUMENT naming the field, every operator-only setting of a
/// pool that a CreatePool request asks for. The same message whatever the value is, so
/// nothing about the daemon's files is revealed.
pub fn check_request_pool(pool: &ResolvedPool) -> Result<()> {
    let settings = operator_only_settings(pool.kind);
    for key in pool.settings.keys() {
        let norm = key.trim().to_ascii_lowercase();
        if settings.contains(&norm.as_str()) {
            return Err(refused(format!("settings.{}", key.trim())));
        }
    }
    #[cfg(feature = "mssql")]
    if pool.kind == BackendKind::Mssql {
        check_mssql_files(pool)?;
    }
    if pool.kind == BackendKind::Postgres {
        check_pg_files(pool)?;
    }
    Ok(())
}

/// The pool's URLs with the field names a caller knows them by.
fn urls(pool: &ResolvedPool) -> impl Iterator<Item = (String, &dbpool_config::Secret)> {
    std::iter::once(("url".to_string(), &pool.url)).chain(
        pool.backup_urls
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("backup_urls[{i}]"), u)),
    )
}

/// Refuses the TLS files of a PostgreSQL pool's URLs (`sslrootcert`, `sslcert`,
/// `sslkey`; `sslrootcert=system` names none): before anything reads them, so a caller
/// learns nothing about the daemon's files. `sslmode` itself is the caller's to choose.
fn check_pg_files(pool: &ResolvedPool) -> Result<()> {
    for (field, url) in urls(pool) {
        if let Some(k) = dbpool_config::pg_tls_file_keys(url.expose()).first() {
            return Err(refused(format!("{field} ({k})")));
        }
    }
    Ok(())
}

/// Confines the SQLite pool of a CreatePool request to `data_dir`: its file resolves
/// inside (INVALID_ARGUMENT naming `url` or `database` otherwise, before anything is
/// created), the URL is rewritten to that path, and the setting `confine_to_dir` makes
/// each connection refuse ATTACH outside and extension loading (sqlite/confine.rs).
/// Other backends are left as they are.
pub fn confine_request_pool(
    cfg: &mut PoolConfig,
    resolved: &ResolvedPool,
    data_dir: &Path,
) -> Result<()> {
    if resolved.kind != BackendKind::Sqlite {
        return Ok(());
    }
    #[cfg(feature = "sqlite")]
    {
        use crate::sqlite::confine::{confined_path, CONFINE_SETTING};
        let field = if cfg.url.as_ref().is_some_and(|u| !u.is_empty()) {
            "url"
        } else {
            "database"
        };
        // A URL without a path fails when the pool is built (after the duplicate-id
        // check), with its own message; the setting confines it all the same.
        if let Ok(path) = crate::sqlite::path_of(resolved.url.expose()) {
            let inside =
                confined_path(&path, data_dir).map_err(|why| Error::invalid(field, why))?;
            cfg.url = Some(dbpool_config::Secret::new(format!(
                "sqlite://{}",
                inside.display()
            )));
        }
        cfg.settings
            .insert(CONFINE_SETTING.to_string(), data_dir.display().to_string());
        Ok(())
    }
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = (cfg, data_dir);
        Ok(())
    }
}

/// Refuses the CA file of an MSSQL pool's URLs (primary and backups) and `ado` string.
#[cfg(feature = "mssql")]
fn check_mssql_files(pool: &ResolvedPool) -> Result<()> {
    for (field, url) in urls(pool) {
        // An unparsable URL is refused by the backend itself, with the reason.
        let Ok(u) = url::Url::parse(url.expose()) else {
            continue;
        };
        for (k, _) in u.query_pairs() {
            if MSSQL_URL_FILE_PARAMS.contains(&k.to_ascii_lowercase().as_str()) {
                return Err(refused(format!("{field} ({k})")));
            }
        }
    }
    if let Some(ado) = pool.settings.get("ado") {
        for k in ado_keys(ado) {
            let norm: String = k.chars().filter(|c| !c.is_whitespace()).collect();
            if MSSQL_ADO_FILE_KEYS.contains(&norm.as_str()) {
                return Err(refused(format!("settings.ado ({k})")));
            }
        }
    }
    Ok(())
}

/// The keys of an ADO.NET string, lower case. Deliberately looser than the driver's
/// parser (every `key=` of every `;`-part, quoted values included): a key hidden in a
/// quoted value is refused too rather than missed.
#[cfg(feature = "mssql")]
fn ado_keys(ado: &str) -> Vec<String> {
    ado.split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(k, _)| {
            k.trim()
                .trim_start_matches(['"', '\'', '{'])
                .to_ascii_lowercase()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbpool_config::{PoolConfig, Secret};

    fn pool(url: &str, settings: &[(&str, &str)], backups: &[&str]) -> ResolvedPool {
        PoolConfig {
            url: Some(Secret::new(url)),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            backup_urls: backups.iter().map(|u| Secret::new(*u)).collect(),
            ..Default::default()
        }
        .resolve("")
        .unwrap()
    }

    fn field(r: Result<()>) -> String {
        match r {
            Err(Error::InvalidArgument { field, message }) => {
                assert_eq!(message, "can only be set in the config file");
                field
            }
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn redis_policy_and_files_are_the_operators() {
        let url = "redis://127.0.0.1:6379/0";
        for key in ["denied_commands", "allowed_commands", "tls_ca_file"] {
            for value in ["", "CONFIG,EVAL", "/etc/passwd", "/no/such/file"] {
                let p = pool(url, &[(key, value)], &[]);
                assert_eq!(field(check_request_pool(&p)), format!("settings.{key}"));
            }
        }
        let p = pool(url, &[(" Denied_Commands ", "")], &[]);
        assert_eq!(field(check_request_pool(&p)), "settings.Denied_Commands");
        // Harmless settings pass.
        let p = pool(url, &[("scan_count", "10"), ("bulk_ttl_seconds", "5")], &[]);
        check_request_pool(&p).unwrap();
    }

    #[test]
    fn influx_policy_is_the_operators() {
        let url = "influxdb://127.0.0.1:8086/db";
        for key in ["denied_statements", "allowed_statements", "max_chunk_bytes"] {
            let p = pool(url, &[(key, "DROP DATABASE")], &[]);
            assert_eq!(field(check_request_pool(&p)), format!("settings.{key}"));
        }
        check_request_pool(&pool(url, &[("precision", "s")], &[])).unwrap();
    }

    #[cfg(feature = "mssql")]
    #[test]
    fn mssql_ca_files_are_the_operators() {
        let ok = "mssql://sa:p@127.0.0.1:1433/db?encrypt=on";
        check_request_pool(&pool(ok, &[], &[])).unwrap();
        let bad = "mssql://sa:p@127.0.0.1:1433/db?Trust_Server_Certificate_CA=/etc/passwd";
        assert_eq!(
            field(check_request_pool(&pool(bad, &[], &[]))),
            "url (Trust_Server_Certificate_CA)"
        );
        // Backups are PostgreSQL's only today; should MSSQL get them, they are checked.
        let mut with_backups = pool(ok, &[], &[]);
        with_backups.backup_urls = vec![Secret::new(ok), Secret::new(bad)];
        assert_eq!(
            field(check_request_pool(&with_backups)),
            "backup_urls[1] (Trust_Server_Certificate_CA)"
        );
        let ado = "Server=tcp:h,1433;User Id=sa;Password=p;TrustServerCertificateCA=/x";
        assert_eq!(
            field(check_request_pool(&pool(ok, &[("ado", ado)], &[]))),
            "settings.ado (trustservercertificateca)"
        );
        let ado = "Server=h;Password=\"a;Trust Server CertificateCA=/x\"";
        assert!(check_request_pool(&pool(ok, &[("ado", ado)], &[])).is_err());
    }

    #[test]
    fn postgres_tls_files_are_the_operators() {
        for ok in [
            "postgres://u@127.0.0.1/db?sslmode=disable",
            "postgres://u@127.0.0.1/db?sslmode=verify-full&sslrootcert=system",
        ] {
            check_request_pool(&pool(ok, &[], &[ok])).unwrap();
        }
        for key in ["sslrootcert", "sslcert", "sslkey"] {
            for value in ["/etc/passwd", "/no/such/file"] {
                let other = if key == "sslcert" {
                    "sslkey"
                } else {
                    "sslcert"
                };
                let q = if key == "sslrootcert" {
                    format!("{key}={value}")
                } else {
                    format!("{key}={value}&{other}={value}")
                };
                let bad = format!("postgres://u@127.0.0.1/db?sslmode=require&{q}");
                let f = field(check_request_pool(&pool(&bad, &[], &[])));
                assert!(f.starts_with("url (ssl"), "{f}");
                let ok = "postgres://u@127.0.0.1/db";
                let f = field(check_request_pool(&pool(ok, &[], &[ok, &bad])));
                assert!(f.starts_with("backup_urls[1] (ssl"), "{f}");
            }
        }
    }
}
