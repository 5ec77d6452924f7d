//! Where a tenant's own pools may point: every URL of a CreatePool (the primary and its
//! backups) must name a host and port of the tenant's `upstreams`, so the daemon cannot
//! be made a proxy to arbitrary addresses. URLs that could name another host in a way
//! this check would not see (libpq's `host`/`hostaddr` parameters, host lists, Unix
//! sockets) are refused for such tenants.
use super::Tenant;
use dbpool_config::{default_port, BackendKind, ResolvedPool, Upstream};
use dbpool_core::{Error, Result};

/// Pool settings that name a server besides the URL (SQL Server's `ado` string).
const HOST_SETTINGS: &[&str] = &["ado"];

/// Query parameters that name a host or port besides the URL's own.
const HOST_PARAMS: &[&str] = &["host", "hostaddr", "port", "server", "sslsni"];

/// The host and port `url` connects to, or why it cannot be told.
fn host_port(url: &str, kind: BackendKind) -> std::result::Result<(String, u16), String> {
    let parsed = url::Url::parse(url).map_err(|_| "is not a URL naming a host".to_string())?;
    // Drivers split user and host at the first `@` anywhere (tokio-postgres does), the
    // `url` crate at the last one before the path: with an `@` outside the user info the
    // two would connect to different hosts, so there may be only that one.
    let ats = url.matches('@').count();
    let in_userinfo = !parsed.username().is_empty() || parsed.password().is_some();
    if ats > 1 || (ats == 1 && !in_userinfo) || parsed.fragment().is_some() {
        return Err("holds `@` or `#` outside the user name and password".into());
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("names no host (a Unix socket or a host parameter)")?;
    if host.contains(',') {
        return Err("names several hosts".into());
    }
    if let Some((k, _)) = parsed
        .query_pairs()
        .find(|(k, _)| HOST_PARAMS.contains(&k.to_ascii_lowercase().as_str()))
    {
        return Err(format!("sets `{k}`, which could name another host"));
    }
    let host = host
        .trim_matches(|c| c == '[' || c == ']')
        .to_ascii_lowercase();
    Ok((host, parsed.port().unwrap_or_else(|| default_port(kind))))
}

/// Whether `upstream` allows a pool of `kind` at `host:port`.
fn allows(upstream: &Upstream, kind: BackendKind, host: &str, port: u16) -> bool {
    match upstream {
        Upstream::Sqlite => kind == BackendKind::Sqlite,
        Upstream::Host {
            kind: k,
            host: h,
            port: p,
        } => *k == kind && h == host && *p == port,
    }
}

/// Refuses (PERMISSION_DENIED) a pool that `tenant`, not an admin, may not create: a
/// URL outside its `upstreams`.
pub fn check(tenant: &Tenant, pool: &ResolvedPool) -> Result<()> {
    if tenant.admin {
        return Ok(());
    }
    let refuse = |field: &str, why: String| {
        Err(Error::PermissionDenied(format!(
            "tenant `{}` may not create this pool: {field} {why}",
            tenant.name
        )))
    };
    // Settings that name the server instead of the URL (SQL Server's ADO string).
    if let Some(key) = pool
        .settings
        .keys()
        .find(|k| HOST_SETTINGS.contains(&k.trim().to_ascii_lowercase().as_str()))
    {
        return refuse(&format!("settings.{key}"), "may name another server".into());
    }
    if pool.kind == BackendKind::Sqlite {
        if tenant.upstreams.contains(&Upstream::Sqlite) {
            return Ok(());
        }
        return refuse(
            "url",
            "is SQLite, which is not in the tenant's upstreams".into(),
        );
    }
    let urls = std::iter::once(("url".to_string(), &pool.url)).chain(
        pool.backup_urls
            .iter()
            .enumerate()
            .map(|(i, u)| (format!("backup_urls[{i}]"), u)),
    );
    for (field, url) in urls {
        let (host, port) = match host_port(url.expose(), pool.kind) {
            Ok(hp) => hp,
            Err(why) => return refuse(&field, why),
        };
        if !tenant
            .upstreams
            .iter()
            .any(|u| allows(u, pool.kind, &host, port))
        {
            return refuse(
                &field,
                format!(
                    "points at {}://{host}:{port}, which is not in the tenant's upstreams",
                    pool.kind.name()
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbpool_config::PoolConfig;

    fn tenant(upstreams: &str) -> Tenant {
        let c: dbpool_config::TenantConfig = toml::from_str(&format!(
            "token_env = \"T\"\ncreate_pools = true\nupstreams = [{upstreams}]\n"
        ))
        .unwrap();
        Tenant::new("t", &c)
    }

    fn pool(url: &str) -> ResolvedPool {
        let c = PoolConfig {
            url: Some(dbpool_config::Secret::new(url.to_string())),
            ..Default::default()
        };
        c.resolve("").unwrap()
    }

    fn refused(t: &Tenant, url: &str) -> String {
        match check(t, &pool(url)) {
            Err(Error::PermissionDenied(m)) => m,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn only_the_listed_hosts_ports_and_backends_are_allowed() {
        let t = tenant("\"postgresql://db.internal:5432\", \"redis://cache\"");
        check(&t, &pool("postgres://u:pw@DB.internal/app")).unwrap();
        check(&t, &pool("postgresql://u@db.internal:5432/other")).unwrap();
        check(&t, &pool("redis://cache:6379/0")).unwrap();
        let m = refused(&t, "postgres://u:pw@evil.example:5432/app");
        assert!(
            m.contains("postgresql://evil.example:5432") && !m.contains("pw"),
            "{m}"
        );
        refused(&t, "postgres://u@db.internal:6543/app");
        refused(&t, "redis://db.internal:5432");
        assert!(refused(&t, "postgres://u@db.internal/app?host=evil").contains("`host`"));
        assert!(refused(&t, "postgres://u@db.internal/app?hostaddr=10.0.0.1").contains("hostaddr"));
        assert!(refused(&t, "sqlite:///tmp/x.db").contains("SQLite"));
        // tokio-postgres reads user `db.internal`, host `evil.example` here.
        let differential = "postgresql://db.internal:5432/x@evil.example:6543/app";
        assert!(refused(&t, differential).contains("`@`"), "{differential}");
        refused(&t, "postgresql://u@db.internal:5432/x@evil");
        refused(&t, "postgresql://db.internal:5432/x#@evil");
        check(&t, &pool("postgresql://u:p@db.internal:5432/app")).unwrap();
        let mut ado = pool("postgresql://db.internal:5432/app");
        ado.settings
            .insert("ADO".into(), "Server=tcp:10.0.0.5,22".into());
        assert!(
            matches!(check(&t, &ado), Err(Error::PermissionDenied(m)) if m.contains("settings.ADO"))
        );
        check(&tenant("\"sqlite\""), &pool("sqlite:///tmp/x.db")).unwrap();
    }
}
