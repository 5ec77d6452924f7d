//! Where the daemon's port is: a TCP address or a Unix domain socket (`unix:/path`),
//! the socket file's mode, the TCP port of the health probes, and `[server.tls]`.
use crate::{Error, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The prefix of a Unix domain socket in `server.listen` / `--listen`.
pub const UNIX_PREFIX: &str = "unix:";

/// The longest socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The mode of the socket file when `server.unix_socket_mode` is not set: owner and
/// group may connect (a sidecar's app shares the pod's `fsGroup`), others not.
pub const DEFAULT_UNIX_SOCKET_MODE: u32 = 0o660;

/// A parsed `server.listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address, `host:port` with a literal IP.
    Tcp(SocketAddr),
    /// A Unix domain socket at this path (`unix:/run/dbpool/dbpool.sock`).
    Unix(PathBuf),
}

impl ListenAddr {
    /// Parses `host:port` or `unix:/path`; the error says what is wrong with it.
    pub fn parse(text: &str) -> std::result::Result<ListenAddr, String> {
        if let Some(path) = text.strip_prefix(UNIX_PREFIX) {
            // `unix:///path` (a URL) names the same file as `unix:/path`.
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/run/dbpool/dbpool.sock".into());
            }
            if path.len() > MAX_SOCKET_PATH {
                return Err(format!(
                    "socket path is {} bytes; the kernel takes at most {MAX_SOCKET_PATH}",
                    path.len()
                ));
            }
            if path.contains('\0') {
                return Err("socket path holds a NUL byte".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        text.parse::<SocketAddr>()
            .map(ListenAddr::Tcp)
            .map_err(|e| format!("not an address (host:port or unix:/path): {e}"))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "{UNIX_PREFIX}{}", p.display()),
        }
    }
}

/// Parses a file mode written in octal (`"0660"`, `"660"`, `"0o660"`): permission bits
/// only, at most `0777`.
pub fn parse_mode(text: &str) -> std::result::Result<u32, String> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    let mode = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("`{text}` is not an octal mode like \"0660\""))?;
    if digits.is_empty() || mode > 0o777 {
        return Err(format!(
            "`{text}` is not a permission mode (0000..=0777; no setuid, setgid or sticky bits)"
        ));
    }
    Ok(mode)
}

/// `[server.tls]`: TLS on the daemon's port. The files are PEM and are read again when
/// they change (cert-manager rotates them) without a restart.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// CA certificates (PEM) that sign client certificates. When set, every client must
    /// present a certificate they sign (mutual TLS).
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

/// Checks `listen`, `unix_socket_mode`, `probe_listen` and `[server.tls]` of `[server]`.
pub(crate) fn validate(s: &crate::ServerConfig) -> Result<()> {
    let bad = |k: &str, m: String| Err(Error::invalid(format!("server.{k}"), m));
    let listen = match ListenAddr::parse(&s.listen) {
        Ok(l) => l,
        Err(m) => return bad("listen", m),
    };
    for (i, extra) in s.extra_listen.iter().enumerate() {
        let addr = match ListenAddr::parse(extra) {
            Ok(a) => a,
            Err(m) => return bad("extra_listen", format!("entry {i} `{extra}`: {m}")),
        };
        if addr == listen
            || s.extra_listen[..i]
                .iter()
                .any(|e| ListenAddr::parse(e) == Ok(addr.clone()))
        {
            return bad(
                "extra_listen",
                format!("entry {i} `{extra}` is listed twice"),
            );
        }
    }
    if let Some(mode) = &s.unix_socket_mode {
        if let Err(m) = parse_mode(mode) {
            return bad("unix_socket_mode", m);
        }
    }
    if let Some(p) = &s.probe_listen {
        if let Err(e) = p.parse::<SocketAddr>() {
            return bad("probe_listen", format!("not a TCP address: {e}"));
        }
        if matches!(&listen, ListenAddr::Tcp(a) if p.parse::<SocketAddr>().ok() == Some(*a)) {
            return bad(
                "probe_listen",
                "is the same address as server.listen".into(),
            );
        }
    }
    if let Some(tls) = &s.tls {
        for (key, path) in [("cert_file", &tls.cert_file), ("key_file", &tls.key_file)] {
            if path.as_os_str().is_empty() {
                return bad(&format!("tls.{key}"), "must name a PEM file".into());
            }
        }
        if tls
            .client_ca_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return bad("tls.client_ca_file", "must name a PEM file".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_str;

    #[test]
    fn listen_takes_an_address_or_a_socket_path() {
        assert_eq!(
            ListenAddr::parse("127.0.0.1:5").unwrap(),
            ListenAddr::Tcp("127.0.0.1:5".parse().unwrap())
        );
        let unix = ListenAddr::parse("unix:/run/dbpool/d.sock").unwrap();
        assert_eq!(unix, ListenAddr::Unix("/run/dbpool/d.sock".into()));
        assert_eq!(unix.to_string(), "unix:/run/dbpool/d.sock");
        assert_eq!(
            ListenAddr::parse("unix:///x.sock").unwrap(),
            ListenAddr::Unix("/x.sock".into())
        );
        assert!(ListenAddr::parse("unix:")
            .unwrap_err()
            .contains("socket path"));
        let long = format!("unix:/{}", "a".repeat(120));
        assert!(ListenAddr::parse(&long)
            .unwrap_err()
            .contains("at most 107"));
        assert!(ListenAddr::parse("localhost")
            .unwrap_err()
            .contains("unix:/path"));
    }

    #[test]
    fn socket_modes_are_octal_permission_bits() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("0999").unwrap_err().contains("octal"));
        assert!(parse_mode("4777").unwrap_err().contains("setuid"));
        assert!(parse_mode("").is_err());
    }

    #[test]
    fn bad_listen_keys_name_key_and_line() {
        let e = load_str("[server]\nunix_socket_mode = \"0888\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server.unix_socket_mode") && e.contains("f.toml:2"),
            "{e}"
        );
        let e = load_str("[server]\nlisten = \"unix:\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.listen") && e.contains("f.toml:2"), "{e}");
        let e = load_str(
            "[server]\nextra_listen = [\"unix:/a\", \"unix:/a\"]\n",
            "f.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("server.extra_listen") && e.contains("twice"),
            "{e}"
        );
        let e = load_str("[server]\nprobe_listen = \"unix:/x\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.probe_listen"), "{e}");
        let text = "[server]\nlisten = \"unix:/tmp/d.sock\"\nunix_socket_mode = \"0600\"\n\
                    probe_listen = \"0.0.0.0:50052\"\n[server.tls]\ncert_file = \"/c.pem\"\n\
                    key_file = \"/k.pem\"\n";
        let cfg = load_str(text, "f.toml").unwrap();
        assert_eq!(
            cfg.server.listen_addr().unwrap(),
            ListenAddr::Unix("/tmp/d.sock".into())
        );
        assert_eq!(cfg.server.socket_mode(), 0o600);
        let tls = cfg.server.tls.unwrap();
        assert_eq!(
            (tls.cert_file.to_str(), tls.client_ca_file),
            (Some("/c.pem"), None)
        );
        let e = load_str("[server.tls]\ncert_file = \"/c.pem\"\n", "f.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key_file"), "{e}");
    }
}
