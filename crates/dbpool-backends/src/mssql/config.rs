//! Connection settings of an MSSQL pool: the `mssql://` URL, or an ADO.NET connection
//! string in the pool setting `ado`, into a tiberius `Config` (docs/mssql.md).
use dbpool_config::ResolvedPool;
use dbpool_core::{Error, Result};
use std::time::Duration;
use tiberius::{AuthMethod, Config, EncryptionLevel};

/// Everything the connection manager needs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The driver's config (host, port, login, TLS, database, application name).
    pub config: Config,
    /// Resolve the port of a named instance through the SQL Server Browser first.
    pub named_instance: bool,
    /// Limit on opening one connection (TCP, TLS and login).
    pub connect_timeout: Duration,
}

const WINDOWS_AUTH: &str = "Windows and Azure AD authentication are not supported \
     (only SQL Server logins: user and password)";

/// URL parameters that ask for Windows or Azure AD authentication.
const WINDOWS_KEYS: [&str; 4] = [
    "authentication",
    "integrated_security",
    "integratedsecurity",
    "trusted_connection",
];

/// Reads the pool's URL (or its `ado` setting) into connection settings.
pub fn settings(pool_id: &str, cfg: &ResolvedPool) -> Result<Settings> {
    for key in cfg.settings.keys() {
        if key != "ado" {
            return Err(Error::invalid(
                format!("settings.{key}"),
                "unknown MSSQL setting (known: ado)",
            ));
        }
    }
    let url = url::Url::parse(cfg.url.expose())
        .map_err(|e| Error::invalid("url", format!("not a valid mssql:// URL: {e}")))?;
    let default_timeout = cfg.options.acquire_timeout().min(Duration::from_secs(10));
    let mut s = match cfg.settings.get("ado") {
        Some(ado) => from_ado(ado, &url, default_timeout)?,
        None => from_url(&url, default_timeout)?,
    };
    let app_keys = [
        "application_name",
        "app_name",
        "applicationname",
        "application name",
    ];
    let named = match cfg.settings.get("ado") {
        Some(ado) => ado_pairs(ado)
            .iter()
            .any(|(k, _)| app_keys.contains(&k.as_str())),
        None => url
            .query_pairs()
            .any(|(k, _)| app_keys.contains(&&*k.to_ascii_lowercase())),
    };
    if !named {
        s.config.application_name(format!("dbpool:{pool_id}"));
    }
    Ok(s)
}

/// Percent-decoding of URL user info and path (the url crate leaves them encoded).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encryption(value: &str, key: &str) -> Result<EncryptionLevel> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "off" | "false" | "no" | "optional" => EncryptionLevel::Off,
        // tiberius's `On` panics when the server refuses TLS; `Required` fails cleanly
        // and encrypts the whole session just the same.
        "on" | "true" | "yes" | "required" | "mandatory" => EncryptionLevel::Required,
        "not_supported" | "none" | "danger_plaintext" => EncryptionLevel::NotSupported,
        other => {
            return Err(Error::invalid(
                key,
                format!("encrypt `{other}`: expected off, on, required or not_supported"),
            ))
        }
    })
}

fn boolean(value: &str, key: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        other => Err(Error::invalid(key, format!("`{other}` is not a boolean"))),
    }
}

fn from_url(url: &url::Url, connect_timeout: Duration) -> Result<Settings> {
    let mut c = Config::new();
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::invalid("url", "the URL names no host"))?;
    c.host(host.trim_start_matches('[').trim_end_matches(']'));
    if let Some(port) = url.port() {
        c.port(port);
    }
    let db = decode(url.path().trim_start_matches('/'));
    if !db.is_empty() {
        c.database(db);
    }
    for (k, _) in url.query_pairs() {
        let key = k.to_ascii_lowercase();
        if WINDOWS_KEYS.contains(&key.as_str()) {
            return Err(Error::invalid(format!("url ({k})"), WINDOWS_AUTH));
        }
    }
    if url.username().is_empty() {
        return Err(Error::invalid(
            "url",
            format!("a SQL Server login (user and password) is required; {WINDOWS_AUTH}"),
        ));
    }
    c.authentication(AuthMethod::sql_server(
        decode(url.username()),
        decode(url.password().unwrap_or("")),
    ));
    c.encryption(EncryptionLevel::Required);
    let mut s = Settings {
        config: c,
        named_instance: false,
        connect_timeout,
    };
    // tiberius panics when both trust settings are given: refuse the pair first.
    let trust_all = url.query_pairs().any(|(k, v)| {
        matches!(
            k.to_ascii_lowercase().as_str(),
            "trust_server_certificate" | "trustservercertificate"
        ) && boolean(&v, "").unwrap_or(false)
    });
    let trust_ca = url
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("trust_server_certificate_ca"));
    if trust_all && trust_ca {
        return Err(Error::invalid(
            "url (trust_server_certificate_ca)",
            "cannot be combined with trust_server_certificate=true",
        ));
    }
    for (k, v) in url.query_pairs() {
        let key = format!("url ({k})");
        match k.to_ascii_lowercase().as_str() {
            "encrypt" => s.config.encryption(encryption(&v, &key)?),
            "trust_server_certificate" | "trustservercertificate" => {
                if boolean(&v, &key)? {
                    s.config.trust_cert();
                }
            }
            "trust_server_certificate_ca" => {
                check_ca_file(&key, &v)?;
                s.config.trust_cert_ca(v.to_string())
            }
            "instance" | "instance_name" => {
                s.config.instance_name(v.to_string());
                s.named_instance = true;
            }
            "application_name" | "app_name" | "applicationname" => {
                s.config.application_name(v.to_string())
            }
            "connect_timeout" => s.connect_timeout = seconds(&v, &key)?,
            "application_intent" => s.config.readonly(v.eq_ignore_ascii_case("readonly")),
            other => {
                return Err(Error::invalid(
                    key,
                    format!(
                        "unknown parameter `{other}` (known: encrypt, trust_server_certificate, \
                         trust_server_certificate_ca, instance, application_name, \
                         connect_timeout, application_intent)"
                    ),
                ))
            }
        }
    }
    // An explicit port wins over the instance name, as in SQL Server's own clients;
    // without one the SQL Server Browser (UDP 1434) tells the instance's port.
    s.named_instance &= url.port().is_none();
    Ok(s)
}

/// The CA file must be readable when the pool is created (the driver reads it at each
/// connect and would report its own reason). One message whether it is missing,
/// unreadable or not a file: a caller must not learn which paths exist; the log says why.
fn check_ca_file(field: &str, path: &str) -> Result<()> {
    let readable = std::fs::File::open(path)
        .and_then(|f| f.metadata())
        .and_then(|m| match m.is_file() {
            true => Ok(()),
            false => Err(std::io::Error::other("not a regular file")),
        });
    readable.map_err(|e| {
        tracing::warn!(path, error = %e, "{field}: the CA file cannot be read");
        Error::invalid(
            field,
            "the CA file cannot be read (the daemon's log says why)",
        )
    })
}

fn seconds(v: &str, key: &str) -> Result<Duration> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| Error::invalid(key, format!("`{v}` is not a number of seconds > 0")))
}

/// The `key=value` pairs of an ADO.NET string, keys lower-cased; quoted values
/// (`"…"`, `'…'`, `{…}`) may hold `;`.
pub fn ado_pairs(s: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = s;
    while !rest.trim().is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let after = after.trim_start();
        let close = match after.chars().next() {
            Some('"') => Some('"'),
            Some('\'') => Some('\''),
            Some('{') => Some('}'),
            _ => None,
        };
        let (value, next) = match close.and_then(|c| after[1..].find(c).map(|i| (c, i))) {
            Some((_, i)) => {
                let v = &after[1..1 + i];
                let tail = &after[2 + i..];
                (v.to_string(), tail.split_once(';').map_or("", |t| t.1))
            }
            None => match after.split_once(';') {
                Some((v, t)) => (v.trim().to_string(), t),
                None => (after.trim().to_string(), ""),
            },
        };
        pairs.push((key.trim().to_ascii_lowercase(), value));
        rest = next;
    }
    pairs
}

fn from_ado(ado: &str, url: &url::Url, connect_timeout: Duration) -> Result<Settings> {
    let pairs = ado_pairs(ado);
    let get = |names: &[&str]| {
        pairs
            .iter()
            .find(|(k, _)| names.contains(&k.as_str()))
            .map(|(_, v)| v.clone())
    };
    for (k, v) in &pairs {
        let windows = match k.as_str() {
            "integrated security" | "integratedsecurity" | "trusted_connection" => {
                boolean(v, "settings.ado").unwrap_or(true) || v.eq_ignore_ascii_case("sspi")
            }
            "authentication" => true,
            _ => false,
        };
        if windows {
            return Err(Error::invalid(format!("settings.ado ({k})"), WINDOWS_AUTH));
        }
    }
    let trust_all = get(&["trustservercertificate"])
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "yes"));
    if trust_all && get(&["trustservercertificateca"]).is_some() {
        return Err(Error::invalid(
            "settings.ado (TrustServerCertificateCA)",
            "cannot be combined with TrustServerCertificate=true",
        ));
    }
    if let Some(ca) = get(&["trustservercertificateca"]) {
        check_ca_file("settings.ado (TrustServerCertificateCA)", &ca)?;
    }
    // The driver panics on some combinations it does not report as errors (both trust
    // settings, which the check above catches when our reading of the string agrees
    // with its parser's): a panic here must not take down the caller's request.
    let parsed = std::panic::catch_unwind(|| Config::from_ado_string(ado)).map_err(|_| {
        Error::invalid(
            "settings.ado",
            "the driver refused this connection string (contradicting settings)",
        )
    })?;
    let mut c = parsed
        .map_err(|e| Error::invalid("settings.ado", format!("not an ADO.NET string: {e}")))?;
    if get(&["encrypt"]).is_none() {
        c.encryption(EncryptionLevel::Required);
    }
    let user = get(&["uid", "username", "user", "user id"]);
    if user.is_none() {
        // The login may come from the pool's URL or username/password fields.
        if url.username().is_empty() {
            return Err(Error::invalid(
                "settings.ado",
                format!("a SQL Server login (User Id and Password) is required; {WINDOWS_AUTH}"),
            ));
        }
        let password = match get(&["password", "pwd"]) {
            Some(p) => p,
            None => decode(url.password().unwrap_or("")),
        };
        c.authentication(AuthMethod::sql_server(decode(url.username()), password));
    }
    let timeout = match get(&["connect timeout", "connection timeout", "connecttimeout"]) {
        Some(v) => seconds(&v, "settings.ado (Connect Timeout)")?,
        None => connect_timeout,
    };
    let server = get(&[
        "server",
        "data source",
        "address",
        "addr",
        "network address",
    ]);
    let named_instance = server.is_some_and(|s| s.contains('\\') && !s.contains(','));
    Ok(Settings {
        config: c,
        named_instance,
        connect_timeout: timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbpool_config::{PoolOptions, Secret};

    #[test]
    fn both_trust_settings_are_an_error_not_a_panic() {
        let url = "mssql://sa:p@h/db?trust_server_certificate=true&trust_server_certificate_ca=/x";
        let e = settings("p", &pool(url, None)).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { field, .. } if field == "url (trust_server_certificate_ca)"),
            "{e}"
        );
        let ado = "Server=h;User Id=sa;Password=p;TrustServerCertificate=yes;\
                   TrustServerCertificateCA=/x";
        let e = settings("p", &pool("mssql://h", Some(ado))).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidArgument { field, .. } if field.starts_with("settings.ado"))
        );
    }

    #[test]
    fn an_unreadable_ca_file_does_not_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "pem").unwrap();
        let url = |p: &std::path::Path| {
            format!(
                "mssql://sa:p@h/db?trust_server_certificate_ca={}",
                p.display()
            )
        };
        settings("p", &pool(&url(&ca), None)).unwrap();
        let missing = dir.path().join("missing.pem");
        let messages: Vec<String> = [missing.as_path(), dir.path()]
            .iter()
            .map(|p| settings("p", &pool(&url(p), None)).unwrap_err().to_string())
            .collect();
        assert_eq!(messages[0], messages[1]);
        assert!(
            !messages[0].contains(&dir.path().display().to_string()),
            "{messages:?}"
        );
        let ado = format!(
            "Server=h;User Id=sa;Password=p;TrustServerCertificateCA={}",
            missing.display()
        );
        let e = settings("p", &pool("mssql://h", Some(&ado))).unwrap_err();
        assert!(e.to_string().contains("cannot be read"), "{e}");
    }

    fn pool(url: &str, ado: Option<&str>) -> ResolvedPool {
        ResolvedPool {
            kind: dbpool_config::BackendKind::Mssql,
            url: Secret::new(url),
            options: PoolOptions::default(),
            settings: ado
                .map(|a| [("ado".to_string(), a.to_string())].into())
                .unwrap_or_default(),
            backup_urls: Vec::new(),
        }
    }

    #[test]
    fn url_form() {
        let s = settings(
            "p",
            &pool(
                "mssql://sa:p%40ss@db:1444/sales?encrypt=off&trust_server_certificate=true&instance=X",
                None,
            ),
        )
        .unwrap();
        let dbg = format!("{:?}", s.config);
        assert!(
            dbg.contains("\"db\"") && dbg.contains("1444") && dbg.contains("sales"),
            "{dbg}"
        );
        assert!(
            dbg.contains("encryption: Off") && dbg.contains("TrustAll"),
            "{dbg}"
        );
        assert!(dbg.contains("dbpool:p"), "{dbg}");
        assert!(!s.named_instance, "an explicit port wins over the instance");
        let s = settings("p", &pool("mssql://sa@db/?instance=X", None)).unwrap();
        assert!(s.named_instance);
    }

    #[test]
    fn windows_auth_is_refused_by_name() {
        for (url, ado, field) in [
            (
                "mssql://h/db?authentication=ActiveDirectoryPassword",
                None,
                "url (authentication)",
            ),
            (
                "mssql://sa@h/db?integrated_security=true",
                None,
                "url (integrated_security)",
            ),
            (
                "mssql://localhost/",
                Some("Server=tcp:h,1433;Integrated Security=SSPI"),
                "settings.ado (integrated security)",
            ),
        ] {
            let e = settings("p", &pool(url, ado)).unwrap_err();
            assert!(
                matches!(&e, Error::InvalidArgument { field: f, message } if f == field && message.contains("Windows")),
                "{e:?}"
            );
        }
        let e = settings("p", &pool("mssql://h/db", None)).unwrap_err();
        assert!(e.to_string().contains("login"), "{e}");
    }

    #[test]
    fn ado_form_takes_the_login_from_the_url_when_it_has_none() {
        let ado = "Server=tcp:10.0.0.5,1435;Database=sales;Encrypt=true;\
                   TrustServerCertificate=true;Application Name=\"a;b\"";
        let s = settings("p", &pool("mssql://app:pw@localhost:1433/", Some(ado))).unwrap();
        let dbg = format!("{:?}", s.config);
        assert!(
            dbg.contains("10.0.0.5") && dbg.contains("1435") && dbg.contains("\"app\""),
            "{dbg}"
        );
        assert!(
            dbg.contains("encryption: Required") && dbg.contains("a;b"),
            "{dbg}"
        );
        assert_eq!(
            ado_pairs("A=1; b = '2;3' ;c={x}")[1],
            ("b".into(), "2;3".into())
        );
        let e = settings("p", &pool("mssql://localhost/", Some("Server=h")));
        assert!(e.is_err());
        let e = settings("p", &pool("mssql://u@h/", None).clone());
        assert!(e.is_ok());
        let mut bad = pool("mssql://u@h/", None);
        bad.settings.insert("colour".into(), "x".into());
        assert!(
            matches!(settings("p", &bad), Err(Error::InvalidArgument { field, .. }) if field == "settings.colour")
        );
    }
}
