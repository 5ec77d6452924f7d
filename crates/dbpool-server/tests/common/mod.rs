//! The real server in-process on 127.0.0.1:0, stopped when the fixture drops.
#![allow(dead_code)]
pub mod flight_sql;

use dbpool_config::{Config, PoolConfig, Secret};
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::transport::Channel;

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
        for _ in 0..50 {
            if let Ok(c) = Channel::from_shared(self.endpoint())
                .unwrap()
                .connect()
                .await
            {
                return c;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("server did not come up at {}", self.addr);
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
