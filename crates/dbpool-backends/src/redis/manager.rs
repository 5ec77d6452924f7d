//! The bb8 manager of Redis connections: redis-rs multiplexed tokio connections opened
//! with our connect and response timeouts (bb8-redis hard-codes redis-rs's 1 s / 500 ms).
use super::settings::Settings;
use dbpool_core::{Error, Result};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

/// Opens connections to one Redis server.
pub struct RedisManager {
    client: Client,
    config: AsyncConnectionConfig,
}

impl std::fmt::Debug for RedisManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the password.
        f.write_str("RedisManager")
    }
}

/// A pooled connection, and whether a failed call left it unfit to be reused.
pub struct RedisConn {
    /// The driver's connection.
    pub conn: MultiplexedConnection,
    /// Set while a request waits for its reply and after an I/O error or timeout; bb8
    /// closes a connection that comes back with it set. A call dropped mid-request (the
    /// caller's deadline passed, it cancelled) thus never hands the connection on with a
    /// reply still due or the server still blocked in the abandoned command (`BLPOP`);
    /// closing it is also what makes Redis drop that command.
    pub broken: bool,
}

impl RedisManager {
    /// A manager for `url` (`redis://` or `rediss://`); does not connect.
    pub fn new(url: &str, settings: &Settings) -> Result<Self> {
        let bad = |e: RedisError| Error::invalid("url", format!("not a Redis URL: {e}"));
        let client = match &settings.tls_ca_file {
            Some(path) => {
                if !url.starts_with("rediss://") {
                    return Err(Error::invalid(
                        "settings.tls_ca_file",
                        "only applies to rediss:// URLs",
                    ));
                }
                // One message whether the file is missing, unreadable or a directory: a
                // caller must not learn which paths exist. The operator's log has why.
                let pem = std::fs::read(path).map_err(|e| {
                    tracing::warn!(path = %path, error = %e, "settings.tls_ca_file cannot be read");
                    Error::invalid(
                        "settings.tls_ca_file",
                        "the CA file cannot be read (the daemon's log says why)",
                    )
                })?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                Client::build_with_tls(url, certs).map_err(bad)?
            }
            None => Client::open(url).map_err(bad)?,
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(settings.response_timeout);
        Ok(RedisManager { client, config })
    }
}

impl bb8::ManageConnection for RedisManager {
    type Connection = RedisConn;
    type Error = RedisError;

    async fn connect(&self) -> Result<RedisConn, RedisError> {
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        Ok(RedisConn {
            conn,
            broken: false,
        })
    }

    async fn is_valid(&self, c: &mut RedisConn) -> Result<(), RedisError> {
        redis::cmd("PING").query_async::<()>(&mut c.conn).await
    }

    fn has_broken(&self, c: &mut RedisConn) -> bool {
        c.broken
    }
}
