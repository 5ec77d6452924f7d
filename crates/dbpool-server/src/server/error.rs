//! Why a server could not start, or stopped with an error.

/// Why the server could not start or stopped with an error. The binary exits non-zero
/// on any of them.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid (a value out of range, naming its key).
    #[error("config: {0}")]
    Config(#[from] dbpool_config::Error),
    /// A configured pool is invalid.
    #[error("pool `{id}`: {source}")]
    Pool {
        /// The pool id.
        id: String,
        /// What is wrong.
        source: dbpool_core::Error,
    },
    /// The tenants' credentials (token files and variables, the JWKS file) or the
    /// audit log could not be read or opened; the message names the key, never a token.
    #[error("access: {0}")]
    Access(String),
    /// The gRPC transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The daemon's port could not be opened.
    #[error(transparent)]
    Listen(#[from] crate::ListenError),
    /// `[server.tls]` could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::TlsError),
    /// The health-probe port (`server.probe_listen`) could not listen.
    #[error("probe port {0}: {1}")]
    Probe(String, std::io::Error),
    /// The metrics endpoint could not listen.
    #[error("metrics endpoint {0}: {1}")]
    Metrics(String, std::io::Error),
    /// Reflection could not be built.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A task of the server panicked: the server stopped (gracefully, as on a signal).
    #[error("the {task} task panicked: {message}")]
    TaskPanicked {
        /// Which task: `grpc`, `health`, `metrics`, `probes`, `tls` or `reaper`.
        task: &'static str,
        /// The panic's message.
        message: String,
    },
}
