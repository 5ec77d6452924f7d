//! The real server in-process on 127.0.0.1:0, stopped when the fixture drops; waiting
//! for a pool's status or health to change (polled with a deadline: no event tells it).
#![allow(dead_code)]
pub mod bulk;
pub mod flight_sql;
pub mod tenants;

use dbpool_config::{Config, PoolConfig, Secret};
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
// Not every test file uses every helper.
#[allow(unused_imports)]
pub use dbpool_testkit::{try_wait_for, wait_for, wait_until, wait_until_sync};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// How long a test waits for an event before it fails: long enough for a loaded machine
/// (only a failing test waits it out).
pub const WAIT: Duration = Duration::from_secs(30);

/// A running server.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub handle: Option<tokio::task::JoinHandle<Result<(), dbpool_server::ServerError>>>,
    /// The server's Flight state (prepared statements), to watch and reap.
    pub flight_state: Arc<dbpool_server::FlightState>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts with these pools (the embedded default when empty).
    pub async fn start(pools: &[(&str, &str)]) -> TestServer {
        Self::start_with(pools, |_| {}).await
    }

    /// Starts after `tweak` adjusted the config.
    pub async fn start_with(pools: &[(&str, &str)], tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        config.server.health_check_interval_ms = 200;
        for (id, url) in pools {
            config.pools.insert(
                id.to_string(),
                PoolConfig {
                    url: Some(Secret::new(*url)),
                    ..Default::default()
                },
            );
        }
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = dbpool_server::Server::builder(config)
            .build()
            .await
            .expect("the test server builds");
        let flight_state = server.flight_state().clone();
        let handle = tokio::spawn(server.serve(listener, async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            stop: Some(tx),
            handle: Some(handle),
            flight_state,
            _dir: dir,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        let endpoint = Channel::from_shared(self.endpoint()).unwrap();
        let what = format!("the server to come up at {}", self.addr);
        wait_for(WAIT, &what, || {
            let endpoint = endpoint.clone();
            async move { endpoint.connect().await.ok() }
        })
        .await
    }

    pub async fn pools(&self) -> PoolServiceClient<Channel> {
        PoolServiceClient::new(self.channel().await)
    }

    pub async fn flight(&self) -> arrow_flight::FlightClient {
        arrow_flight::FlightClient::new(self.channel().await)
    }

    /// Signals shutdown and returns the server task.
    pub fn shutdown(&mut self) -> tokio::task::JoinHandle<Result<(), dbpool_server::ServerError>> {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A pool's status now.
pub async fn pool_status(c: &mut PoolServiceClient<Channel>, pool: &str) -> pb::PoolStatus {
    c.get_pool_status(pb::GetPoolStatusRequest {
        pool_id: pool.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

/// Waits until `pool`'s status satisfies `cond` (a connection came back, a call holds
/// one, the circuit closed) and returns that status; panics naming `what` after `WAIT`.
pub async fn wait_status(
    c: &PoolServiceClient<Channel>,
    pool: &str,
    what: &str,
    cond: impl Fn(&pb::PoolStatus) -> bool,
) -> pb::PoolStatus {
    let cond = &cond;
    wait_for(WAIT, what, || {
        let mut c = c.clone();
        async move {
            let s = pool_status(&mut c, pool).await;
            cond(&s).then_some(s)
        }
    })
    .await
}

/// Sessions of `client`'s database (other than its own) running a statement that starts
/// with `sql` right now.
pub async fn running(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'active' AND pid <> pg_backend_pid() AND starts_with(query, $1)",
            &[&sql],
        )
        .await
        .unwrap()
        .get(0)
}

/// Waits until a statement that starts with `sql` runs on `db` (a call reached the
/// database, rather than merely holding a connection, which a health check also does).
pub async fn wait_running(db: &dbpool_testkit::PgDb, sql: &str) {
    let client = db.client().await;
    let what = format!("`{sql}` to run on the database");
    wait_until(WAIT, &what, || async { running(&client, sql).await > 0 }).await
}

/// The health status of `service` (`""` for the daemon, `dbpool.pool.<id>` for a pool).
pub async fn health(server: &TestServer, service: &str) -> Result<i32, tonic::Status> {
    let mut h = HealthClient::new(server.channel().await);
    h.check(HealthCheckRequest {
        service: service.into(),
    })
    .await
    .map(|r| r.into_inner().status)
}

/// Waits until `service` reports `want`; panics after `WAIT`.
pub async fn wait_health(server: &TestServer, service: &str, want: ServingStatus) {
    let what = format!("health of {service:?} to become {want:?}");
    wait_until(WAIT, &what, || async {
        health(server, service).await.ok() == Some(want as i32)
    })
    .await
}

/// A parameter message.
pub fn p_int(v: i64) -> pb::Param {
    pb::Param {
        value: Some(pb::param::Value::Int64(v)),
    }
}

/// A text parameter message.
pub fn p_str(v: &str) -> pb::Param {
    pb::Param {
        value: Some(pb::param::Value::String(v.into())),
    }
}

/// Runs a Query with Arrow IPC and decodes the concatenated chunks.
pub async fn query_ipc(
    c: &mut PoolServiceClient<Channel>,
    pool: &str,
    sql: &str,
    params: Vec<pb::Param>,
) -> Result<Vec<arrow::record_batch::RecordBatch>, tonic::Status> {
    let mut stream = c
        .query(pb::QueryRequest {
            pool_id: pool.into(),
            sql: sql.into(),
            params,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(msg) = stream.message().await? {
        match msg.payload {
            Some(pb::query_response::Payload::ArrowIpc(b)) => bytes.extend(b),
            other => panic!("unexpected payload {other:?}"),
        }
    }
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    Ok(reader.map(|b| b.unwrap()).collect())
}

/// Begins a transaction with the default options on `pool`; its id.
pub async fn begin(c: &mut PoolServiceClient<Channel>, pool: &str) -> String {
    c.begin_transaction(pb::BeginTransactionRequest {
        pool_id: pool.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .transaction_id
}

/// The request that commits or rolls back transaction `tx`.
pub fn end(tx: &str) -> pb::EndTransactionRequest {
    pb::EndTransactionRequest {
        transaction_id: tx.into(),
    }
}

/// Creates pool `id` at `url` with one connection, so every call shares it.
pub async fn create_pool_of_one(
    c: &mut PoolServiceClient<Channel>,
    id: &str,
    url: &str,
) -> Result<pb::PoolInfo, tonic::Status> {
    c.create_pool(pb::CreatePoolRequest {
        pool_id: id.into(),
        url: url.into(),
        options: Some(pb::PoolOptions {
            max_connections: 1,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().pool.unwrap_or_default())
}

/// Runs one statement on `pool`; the rows it affected.
pub async fn execute(
    c: &mut PoolServiceClient<Channel>,
    pool: &str,
    sql: &str,
) -> Result<u64, tonic::Status> {
    c.execute(pb::ExecuteRequest {
        pool_id: pool.into(),
        sql: sql.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().rows_affected)
}
