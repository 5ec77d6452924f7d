//! The daemon's listening socket: TCP, or a Unix domain socket whose file gets its mode
//! before anyone can connect, replaces a stale file left by a daemon that died, refuses
//! to start over a live one, and is removed when the server stops.
use dbpool_config::{ListenAddr, ServerConfig};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::net::{TcpListener, UnixListener};

/// Connections waiting in the kernel's queue of the Unix socket (tokio's TCP default).
const UNIX_BACKLOG: i32 = 1024;

/// Why the daemon's port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Binding the address failed (in use, no permission, no such directory).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `server.listen`.
        addr: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `server.listen` is neither `host:port` nor `unix:/path`.
    #[error(transparent)]
    Config(#[from] dbpool_config::Error),
    /// Another process answers on the socket file: a second daemon must not take it.
    #[error("cannot listen on {0}: a process is already listening on this socket")]
    InUse(String),
    /// Something that is not a socket is at the path; it is left alone.
    #[error("cannot listen on {0}: the path exists and is not a socket")]
    NotASocket(String),
}

/// The port a server serves on.
pub enum Listener {
    /// A TCP port.
    Tcp(TcpListener),
    /// A Unix domain socket; its file goes when this (or what it becomes) is dropped.
    Unix(UnixListener, SocketFile),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

impl Listener {
    /// Opens `server.listen` (with `server.unix_socket_mode` for a socket).
    pub async fn bind(server: &ServerConfig) -> Result<Listener, ListenError> {
        Listener::bind_addr(&server.listen_addr()?, server.socket_mode()).await
    }

    /// Opens each of `server.extra_listen`.
    pub async fn bind_extra(server: &ServerConfig) -> Result<Vec<Listener>, ListenError> {
        let mut out = Vec::new();
        for text in &server.extra_listen {
            let addr = dbpool_config::ListenAddr::parse(text)
                .map_err(|m| dbpool_config::Error::invalid("server.extra_listen", m))?;
            out.push(Listener::bind_addr(&addr, server.socket_mode()).await?);
        }
        Ok(out)
    }

    /// Opens `addr`; a socket file gets `mode`.
    pub async fn bind_addr(addr: &ListenAddr, mode: u32) -> Result<Listener, ListenError> {
        match addr {
            ListenAddr::Tcp(a) => TcpListener::bind(a)
                .await
                .map(Listener::Tcp)
                .map_err(|source| ListenError::Bind {
                    addr: addr.to_string(),
                    source,
                }),
            ListenAddr::Unix(path) => bind_unix(path, mode),
        }
    }

    /// The listening socket, for the accept loop, and the socket file to remove when
    /// the server stops.
    pub(crate) fn into_parts(self) -> (Accepting, Option<SocketFile>) {
        match self {
            Listener::Tcp(l) => (Accepting::Tcp(l), None),
            Listener::Unix(l, f) => (Accepting::Unix(l), Some(f)),
        }
    }

    /// Where it listens, as `server.listen` writes it (`127.0.0.1:50051`, `unix:/p`).
    pub fn addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Listener::Unix(_, f) => ListenAddr::Unix(f.path.clone()).to_string(),
        }
    }
}

/// A listening socket without its file (see [`Listener::into_parts`]).
pub(crate) enum Accepting {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix domain socket.
    Unix(UnixListener),
}

/// The socket file a Unix listener created; removed on drop if it is still the one
/// this server made (a later daemon may have replaced it).
pub struct SocketFile {
    path: PathBuf,
    /// (device, inode) of the file at bind time.
    id: (u64, u64),
}

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove the socket file");
            }
        }
    }
}

/// Binds `path` with `mode`: the mode is set between bind and listen, so no client can
/// connect while the file still has the umask's permissions.
fn bind_unix(path: &Path, mode: u32) -> Result<Listener, ListenError> {
    let name = || ListenAddr::Unix(path.to_path_buf()).to_string();
    let bind_err = |source| ListenError::Bind {
        addr: name(),
        source,
    };
    clear_stale(path, &name())?;
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)
        .map_err(bind_err)?;
    let addr = socket2::SockAddr::unix(path).map_err(bind_err)?;
    socket.bind(&addr).map_err(bind_err)?;
    let meta = std::fs::symlink_metadata(path).map_err(bind_err)?;
    let file = SocketFile {
        path: path.to_path_buf(),
        id: (meta.dev(), meta.ino()),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(bind_err)?;
    socket.listen(UNIX_BACKLOG).map_err(bind_err)?;
    socket.set_nonblocking(true).map_err(bind_err)?;
    let std_listener = std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(socket));
    let listener = UnixListener::from_std(std_listener).map_err(bind_err)?;
    Ok(Listener::Unix(listener, file))
}

/// Removes a socket file nobody answers on (its daemon died without removing it);
/// refuses a live one and anything that is not a socket.
fn clear_stale(path: &Path, name: &str) -> Result<(), ListenError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ListenError::Bind {
                addr: name.into(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket(name.into()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(ListenError::InUse(name.into())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale socket file (nothing listens on it)");
            std::fs::remove_file(path).map_err(|source| ListenError::Bind {
                addr: name.into(),
                source,
            })
        }
        Err(source) => Err(ListenError::Bind {
            addr: name.into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &Path, mode: Option<&str>) -> ServerConfig {
        ServerConfig {
            listen: format!("unix:{}", path.display()),
            unix_socket_mode: mode.map(String::from),
            ..ServerConfig::default()
        }
    }

    #[tokio::test]
    async fn a_socket_gets_its_mode_and_goes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let l = Listener::bind(&config(&path, Some("0600"))).await.unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(l.addr(), format!("unix:{}", path.display()));
        drop(l);
        assert!(!path.exists(), "the socket file is removed");
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        // A socket file whose listener is gone: what a killed daemon leaves.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = Listener::bind(&config(&path, None)).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660, "the default mode");
        let e = Listener::bind(&config(&path, None)).await.err().unwrap();
        assert!(matches!(e, ListenError::InUse(_)), "{e}");
        assert!(e.to_string().contains("already listening"), "{e}");
        assert!(path.exists(), "the live daemon's socket stays");
        drop(live);
        let plain = dir.path().join("file");
        std::fs::write(&plain, b"data").unwrap();
        let e = Listener::bind(&config(&plain, None)).await.err().unwrap();
        assert!(matches!(e, ListenError::NotASocket(_)), "{e}");
        assert_eq!(
            std::fs::read(&plain).unwrap(),
            b"data",
            "a file is left alone"
        );
    }
}
