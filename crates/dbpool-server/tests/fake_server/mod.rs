//! The real server over the testkit's fake backends on 127.0.0.1:0 (stopped when the
//! fixture drops), and a factory that puts the resilience layer around each fake as
//! the real factory does around a database.
#![allow(dead_code)]
use dbpool_config::{Config, PoolConfig, ResolvedPool, Secret};
use dbpool_core::{Backend, BackendFactory, Result};
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_server::{Server, ServerBuilder, ServerError};
use dbpool_testkit::{Fake, FakeFactory};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// A config with one PostgreSQL-kind pool per id (never connected: fakes serve them)
/// and health checks far apart, so they stay out of a test's way.
pub fn config(pools: &[&str]) -> Config {
    let mut config = Config::default();
    config.server.health_check_interval_ms = 3_600_000;
    for id in pools {
        config.pools.insert(
            id.to_string(),
            PoolConfig {
                url: Some(Secret::new(format!("postgres://fake/{id}"))),
                ..Default::default()
            },
        );
    }
    config
}

/// Wraps each fake in `dbpool_backends::resilience::wrap`, retry of reads included.
pub struct Resilient(pub FakeFactory);

#[tonic::async_trait]
impl BackendFactory for Resilient {
    async fn create(&self, pool_id: &str, pool: &ResolvedPool) -> Result<Arc<dyn Backend>> {
        let fake = self.0.create(pool_id, pool).await?;
        Ok(dbpool_backends::resilience::wrap(pool_id, pool, fake, None))
    }
}

/// A running server over fakes.
pub struct FakeServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The fakes of its pools.
    pub fakes: FakeFactory,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<std::result::Result<(), ServerError>>>,
}

impl FakeServer {
    /// Serves the pools of `config` over plain fakes; `parts` adds the hooks under test.
    pub async fn start(
        config: Config,
        parts: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> FakeServer {
        let fakes = FakeFactory::new();
        Self::start_over(config, Arc::new(fakes.clone()), fakes, parts).await
    }

    /// Serves the pools of `config` over `factory`, which makes its backends from `fakes`.
    pub async fn start_over(
        config: Config,
        factory: Arc<dyn BackendFactory>,
        fakes: FakeFactory,
        parts: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> FakeServer {
        let server = parts(Server::builder(config).backend_factory(factory))
            .build()
            .await
            .expect("the server builds over fakes");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        FakeServer {
            addr,
            fakes,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// The fake behind pool `id`.
    pub fn fake(&self, id: &str) -> Fake {
        self.fakes.get(id)
    }

    /// A channel to the server (bound before it started: the connection is accepted).
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .expect("connect to the server")
    }

    /// A PoolService client.
    pub async fn pools(&self) -> PoolServiceClient<Channel> {
        PoolServiceClient::new(self.channel().await)
    }

    /// A Flight client.
    pub async fn flight(&self) -> arrow_flight::FlightClient {
        arrow_flight::FlightClient::new(self.channel().await)
    }

    /// Stops the server and waits until it has stopped cleanly.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let handle = self.handle.take().unwrap();
        handle.await.unwrap().expect("a clean stop");
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Runs one statement on `pool`, or inside transaction `tx` when it is not empty;
/// returns the rows affected.
pub async fn execute(
    c: &mut PoolServiceClient<Channel>,
    pool: &str,
    tx: &str,
    sql: &str,
) -> std::result::Result<u64, tonic::Status> {
    let r = c
        .execute(pb::ExecuteRequest {
            pool_id: pool.into(),
            sql: sql.into(),
            transaction_id: tx.into(),
            ..Default::default()
        })
        .await?;
    Ok(r.into_inner().rows_affected)
}
