//! A server assembled from injected parts: a tiny in-test backend factory instead of the
//! real databases, its timers on paused tokio time, a panicking task as the server's
//! error, and config values out of range refused before anything starts.
mod common;

use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use dbpool_config::{BackendKind, Config, PoolConfig, ResolvedPool, Secret};
use dbpool_core::{
    Backend, BackendFactory, BatchOutcome, Executor, Param, PoolState, QueryStream, Result,
    Statement,
};
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_server::{Server, ServerError};
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the fake backend does when its pool is checked.
#[derive(Clone)]
enum Check {
    /// Reports each check on the channel and passes.
    Report(mpsc::UnboundedSender<Instant>),
    /// Panics: a bug in a background path.
    Panic,
}

/// Answers every query with one row, `n = 42`.
struct Fake {
    check: Check,
}

#[tonic::async_trait]
impl Executor for Fake {
    async fn query(&self, _: &str, _: Vec<Param>, _: usize) -> Result<QueryStream> {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![42]))])
                .expect("a valid batch");
        Ok(QueryStream {
            schema,
            batches: futures::stream::iter([Ok(batch)]).boxed(),
        })
    }

    async fn execute(&self, _: &str, _: Vec<Param>) -> Result<u64> {
        Ok(1)
    }
}

#[tonic::async_trait]
impl Backend for Fake {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    async fn execute_batch(&self, _: Vec<Statement>, _: bool) -> Result<BatchOutcome> {
        Ok(Vec::new())
    }

    async fn health_check(&self) -> Result<()> {
        match &self.check {
            Check::Report(tx) => {
                let _ = tx.send(Instant::now());
                Ok(())
            }
            Check::Panic => panic!("health check exploded"),
        }
    }

    fn state(&self) -> PoolState {
        PoolState {
            max_size: 4,
            ..PoolState::default()
        }
    }
}

/// Makes [`Fake`] backends and counts them.
struct FakeFactory {
    check: Check,
    created: AtomicUsize,
}

impl FakeFactory {
    fn new(check: Check) -> Arc<Self> {
        Arc::new(FakeFactory {
            check,
            created: AtomicUsize::new(0),
        })
    }
}

#[tonic::async_trait]
impl BackendFactory for FakeFactory {
    async fn create(&self, _: &str, _: &ResolvedPool) -> Result<Arc<dyn Backend>> {
        self.created.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Fake {
            check: self.check.clone(),
        }))
    }
}

/// A config with the one pool `fake` and the given health interval.
fn config(health_ms: u64) -> Config {
    let mut config = Config::default();
    config.server.health_check_interval_ms = health_ms;
    config.pools.insert(
        "fake".into(),
        PoolConfig {
            // Never opened: the fake factory makes the backend.
            url: Some(Secret::new("sqlite:///nonexistent/fake.db")),
            ..Default::default()
        },
    );
    config
}

/// The value of the only column of the only row of a `Query`.
async fn query_one(addr: std::net::SocketAddr) -> i64 {
    let mut c = PoolServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("the listener is bound before the server starts");
    let batches = common::query_ipc(&mut c, "fake", "SELECT n", vec![])
        .await
        .unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// The error a build of `config` over `factory` fails with.
async fn build_error(config: Config, factory: &Arc<FakeFactory>) -> ServerError {
    match Server::builder(config)
        .backend_factory(factory.clone())
        .build()
        .await
    {
        Ok(_) => panic!("the build was expected to fail"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_server_serves_pools_of_an_injected_backend_factory() {
    let (checks, mut checked) = mpsc::unbounded_channel();
    let factory = FakeFactory::new(Check::Report(checks));
    let server = Server::builder(config(60_000))
        .backend_factory(factory.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(factory.created.load(Ordering::Relaxed), 1);
    assert!(server.manager().get("fake").is_ok());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    // The first round of health checks runs at once, on the fake.
    checked
        .recv()
        .await
        .expect("the health task checked the pool");
    assert_eq!(query_one(addr).await, 42);
    stop.send(()).unwrap();
    serving.await.unwrap().expect("a clean stop");
}

#[tokio::test(start_paused = true)]
async fn health_checks_run_on_the_servers_clock() {
    let (checks, mut checked) = mpsc::unbounded_channel();
    let server = Server::builder(config(1_000))
        .backend_factory(FakeFactory::new(Check::Report(checks)))
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    for n in 0..4u32 {
        let at = checked.recv().await.unwrap();
        assert_eq!(at - start, Duration::from_secs(1) * n, "check {n}");
    }
    stop.send(()).unwrap();
    serving.await.unwrap().expect("a clean stop");
}

#[tokio::test]
async fn a_panicking_background_task_stops_the_server_with_an_error() {
    let server = Server::builder(config(60_000))
        .backend_factory(FakeFactory::new(Check::Panic))
        .build()
        .await
        .unwrap();
    let manager = server.manager().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // No shutdown signal: the panic alone must end `serve`.
    let e = server
        .serve(listener, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ServerError::TaskPanicked { task: "health", message }
            if message == "health check exploded"),
        "{e}"
    );
    assert!(
        manager.list().is_empty(),
        "the pools are closed on the way out"
    );
}

#[tokio::test]
async fn values_out_of_range_are_refused_before_anything_starts() {
    let factory = FakeFactory::new(Check::Panic);
    // 50 ms is below the 100 ms minimum.
    let e = build_error(config(50), &factory).await;
    assert!(
        matches!(&e, ServerError::Config(dbpool_config::Error::Invalid { key, .. })
            if key == "server.health_check_interval_ms"),
        "{e}"
    );
    // The default idle timeout above its cap.
    let mut idle = config(1_000);
    idle.server.limits.max_transaction_idle_timeout_ms = 1_000;
    idle.server.transaction_idle_timeout_ms = 5_000;
    let e = build_error(idle, &factory).await;
    assert!(
        e.to_string().contains("server.transaction_idle_timeout_ms"),
        "{e}"
    );
    assert_eq!(
        factory.created.load(Ordering::Relaxed),
        0,
        "no pool was made"
    );
}
