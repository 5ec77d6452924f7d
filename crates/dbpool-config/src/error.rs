//! Errors of configuration loading and validation.

/// What went wrong in a configuration, naming the key and, when known, the line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read config file {path}: {message}")]
    Io {
        /// Path of the file.
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// The TOML did not parse or did not match the schema (unknown key, wrong type).
    #[error("{path}: {message}")]
    Parse {
        /// Path of the file, or "<string>".
        path: String,
        /// toml's message, which names the key, line and column.
        message: String,
    },
    /// A value parsed but is not allowed.
    #[error("{location}invalid value for `{key}`: {message}")]
    Invalid {
        /// Dotted key, e.g. `pools.pg.max_connections`.
        key: String,
        /// "file:line: " when known, else empty.
        location: String,
        /// Why the value is rejected.
        message: String,
    },
}

impl Error {
    /// An invalid value of `key` with no line information.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            key: key.into(),
            location: String::new(),
            message: message.into(),
        }
    }
}

/// Result of configuration functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
