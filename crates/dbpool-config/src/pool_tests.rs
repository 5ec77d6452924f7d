//! Tests of pool configs: fields into URLs, backup URLs, TLS keys, errors naming keys.
use super::*;

#[test]
fn fields_become_a_url() {
    let cfg = PoolConfig {
        db_type: Some("postgresql".into()),
        host: Some("db".into()),
        port: Some(6543),
        database: Some("app".into()),
        username: Some("u".into()),
        password: Some(Secret::new("p@ss")),
        ..Default::default()
    };
    let r = cfg.resolve("pools.x.").unwrap();
    assert_eq!(r.kind, BackendKind::Postgres);
    assert_eq!(r.url.expose(), "postgres://u:p%40ss@db:6543/app");
    assert_eq!(r.redacted_url(), "postgres://u:***@db:6543/app");
    assert!(!format!("{cfg:?}{r:?}").contains("p@ss"));
}

#[test]
fn backup_urls_are_resolved_and_redacted() {
    let cfg = PoolConfig {
        url: Some(Secret::new("postgres://u:primary-pw@db1/app")),
        backup_urls: vec![
            Secret::new("postgresql://u:backup-pw@db2:5433/app"),
            Secret::new("pg://db3/app"),
        ],
        ..Default::default()
    };
    let r = cfg.resolve("pools.x.").unwrap();
    assert_eq!(r.backup_urls.len(), 2);
    assert_eq!(
        r.backup_urls[0].expose(),
        "postgresql://u:backup-pw@db2:5433/app"
    );
    assert_eq!(
        r.redacted_backup_urls(),
        ["postgresql://u:***@db2:5433/app", "pg://db3/app"]
    );
    let shown = format!("{cfg:?}{r:?}");
    assert!(shown.contains("postgresql://u:***@db2:5433/app"), "{shown}");
    assert!(!shown.contains("backup-pw") && !shown.contains("primary-pw"));
}

#[test]
fn bad_backup_urls_name_the_key() {
    let with = |url: &str, backup: &str| PoolConfig {
        url: Some(Secret::new(url)),
        backup_urls: vec![Secret::new(backup)],
        ..Default::default()
    };
    let e = with("redis://r:6379/0", "redis://r2:6379/0")
        .resolve("pools.r.")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pools.r.backup_urls") && e.contains("PostgreSQL pools only"),
        "{e}"
    );
    let e = with("postgres://db/app", "mysql://u:secret-pw@db2/app")
        .resolve("pools.p.")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pools.p.backup_urls") && e.contains("backup 1") && e.contains("mysql"),
        "{e}"
    );
    assert!(!e.contains("secret-pw"), "{e}");
    let e = with("postgres://db/app", "postgres://db2:notaport/app")
        .resolve("pools.p.")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pools.p.backup_urls") && e.contains("not a valid URL"),
        "{e}"
    );
}

#[test]
fn backup_urls_in_a_file() {
    let text = "[pools.pg]\nurl = \"postgres://db1/app\"\nbackup_urls = [\"postgres://u:pw@db2/app\", \"postgres://db3/app\"]\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.toml");
    std::fs::write(&path, text).unwrap();
    // The file as the daemon loads it (through the env-override merge).
    let cfg = crate::load(Some(&path)).unwrap();
    let r = cfg.pools["pg"].resolve("pools.pg.").unwrap();
    assert_eq!(
        r.redacted_backup_urls(),
        ["postgres://u:***@db2/app", "postgres://db3/app"]
    );
    let text =
        "[pools.lite]\nurl = \"sqlite:///tmp/x.db\"\nbackup_urls = [\"sqlite:///tmp/y.db\"]\n";
    let e = crate::load_str(text, "f.toml").unwrap_err().to_string();
    assert!(
        e.contains("f.toml:3") && e.contains("pools.lite.backup_urls"),
        "{e}"
    );
}

#[test]
fn tls_fields_join_every_url_that_does_not_set_them() {
    let cfg = PoolConfig {
        db_type: Some("postgresql".into()),
        host: Some("db".into()),
        sslmode: Some("verify-full".into()),
        sslrootcert: Some("/etc/ca dir/ca.pem".into()),
        backup_urls: vec![
            Secret::new("postgres://db2/postgres"),
            Secret::new("postgres://db3/postgres?sslmode=require#x"),
        ],
        ..Default::default()
    };
    let r = cfg.resolve("pools.x.").unwrap();
    assert_eq!(
        r.url.expose(),
        "postgres://db:5432/postgres?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem"
    );
    let (_, tls) = crate::PgTls::split(r.url.expose()).unwrap();
    assert_eq!(
        tls.root_cert,
        Some(crate::RootCert::File("/etc/ca dir/ca.pem".into()))
    );
    assert!(r.backup_urls[0]
        .expose()
        .ends_with("?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem"));
    assert_eq!(
        r.backup_urls[1].expose(),
        "postgres://db3/postgres?sslmode=require&sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem#x"
    );
}

#[test]
fn bad_tls_values_name_their_key() {
    let with = |f: fn(&mut PoolConfig)| {
        let mut cfg = PoolConfig {
            url: Some(Secret::new("postgres://db/app")),
            ..Default::default()
        };
        f(&mut cfg);
        cfg.resolve("pools.p.").unwrap_err().to_string()
    };
    let e = with(|c| c.sslmode = Some("verify".into()));
    assert!(
        e.contains("pools.p.sslmode") && e.contains("unknown mode"),
        "{e}"
    );
    let e = with(|c| c.sslkey = Some("/k.pem".into()));
    assert!(e.contains("pools.p.sslkey") && e.contains("sslcert"), "{e}");
    let e = with(|c| c.sslmode = Some("verify-ca".into()));
    assert!(
        e.contains("pools.p.sslrootcert") && e.contains("system"),
        "{e}"
    );
    let e = with(|c| c.url = Some(Secret::new("postgres://u:pw@db/app?sslmode=on")));
    assert!(
        e.contains("pools.p.url") && e.contains("sslmode") && !e.contains("pw"),
        "{e}"
    );
    let e = with(|c| c.backup_urls = vec![Secret::new("postgres://db2/app?sslcert=/c")]);
    assert!(
        e.contains("pools.p.backup_urls") && e.contains("backup 1: sslcert"),
        "{e}"
    );
    let e = with(|c| {
        c.url = Some(Secret::new("redis://r/0"));
        c.sslmode = Some("require".into());
    });
    assert!(
        e.contains("pools.p.sslmode") && e.contains("PostgreSQL pools only"),
        "{e}"
    );
}

#[test]
fn unknown_scheme_names_the_key() {
    let cfg = PoolConfig {
        url: Some(Secret::new("mysql://x")),
        ..Default::default()
    };
    let e = cfg.resolve("pools.m.").unwrap_err().to_string();
    assert!(e.contains("pools.m.url") && e.contains("mysql"), "{e}");
}
