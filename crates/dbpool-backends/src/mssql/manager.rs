//! The bb8 manager for tiberius 0.12: TCP (or the SQL Server Browser for a named
//! instance), TLS and login under a connect timeout, one redirect followed, and a
//! `broken` flag so connections left mid-stream are closed instead of reused.
use super::config::Settings;
use std::ops::{Deref, DerefMut};
use tiberius::error::{Error, IoErrorKind};
use tiberius::{Client, SqlBrowser};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// The tiberius client over tokio TCP.
pub type TdsClient = Client<Compat<TcpStream>>;

/// A pooled SQL Server connection.
#[derive(Debug)]
pub struct MssqlConn {
    client: TdsClient,
    /// Set when the connection is in an unknown state (I/O error, a result left
    /// unread, a statement timeout): the pool closes it instead of handing it out.
    pub broken: bool,
    /// Set while a transaction that changed the isolation level is open: its end
    /// restores the session's default before the connection is reused.
    pub isolated: bool,
}

impl Deref for MssqlConn {
    type Target = TdsClient;
    fn deref(&self) -> &TdsClient {
        &self.client
    }
}

impl DerefMut for MssqlConn {
    fn deref_mut(&mut self) -> &mut TdsClient {
        &mut self.client
    }
}

/// Opens SQL Server connections for bb8.
#[derive(Debug)]
pub struct Manager {
    settings: Settings,
}

impl Manager {
    /// A manager for these settings; connects lazily.
    pub fn new(settings: Settings) -> Self {
        Manager { settings }
    }

    async fn tcp(&self, config: &tiberius::Config) -> Result<TcpStream, Error> {
        if self.settings.named_instance {
            return TcpStream::connect_named(config).await;
        }
        let tcp = TcpStream::connect(config.get_addr()).await?;
        tcp.set_nodelay(true)?;
        Ok(tcp)
    }

    async fn open(&self) -> Result<MssqlConn, Error> {
        let config = self.settings.config.clone();
        let tcp = self.tcp(&config).await?;
        let client = match Client::connect(config.clone(), tcp.compat_write()).await {
            Ok(c) => c,
            // Azure SQL gateways redirect once to the database's node.
            Err(Error::Routing { host, port }) => {
                let mut config = config;
                config.host(&host);
                config.port(port);
                let tcp = TcpStream::connect(config.get_addr()).await?;
                tcp.set_nodelay(true)?;
                Client::connect(config, tcp.compat_write()).await?
            }
            Err(e) => return Err(e),
        };
        Ok(MssqlConn {
            client,
            broken: false,
            isolated: false,
        })
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = MssqlConn;
    type Error = Error;

    async fn connect(&self) -> Result<MssqlConn, Error> {
        let limit = self.settings.connect_timeout;
        match tokio::time::timeout(limit, self.open()).await {
            Ok(r) => r,
            Err(_) => Err(Error::Io {
                kind: IoErrorKind::TimedOut,
                message: format!("connecting took longer than the connect timeout ({limit:?})"),
            }),
        }
    }

    async fn is_valid(&self, conn: &mut MssqlConn) -> Result<(), Error> {
        conn.client
            .simple_query("SELECT 1")
            .await?
            .into_row()
            .await?;
        Ok(())
    }

    fn has_broken(&self, conn: &mut MssqlConn) -> bool {
        conn.broken
    }
}
