//! W3C trace context from a client becomes the parent of the server's RPC span, whose
//! child is the database call's span (in-memory exporter of the OpenTelemetry SDK).
mod common;

use common::*;
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::prelude::*;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";

#[tokio::test]
async fn client_trace_context_is_the_parent_of_the_server_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(dbpool_server::telemetry::layer(&provider))
        .init();

    let server = TestServer::start(&[]).await;
    let mut c = server.pools().await;
    let mut req = tonic::Request::new(dbpool_proto::v1::ExecuteRequest {
        pool_id: "default".into(),
        sql: "CREATE TABLE traced (id INTEGER)".into(),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE}-{PARENT}-01").parse().unwrap(),
    );
    c.execute(req).await.unwrap();
    drop(server);
    // The simple exporter takes each span as it ends: the RPC's ends after its answer.
    let ended = |name: &str| {
        let spans = exporter.get_finished_spans().unwrap();
        spans.iter().any(|s| s.name == name)
    };
    let both = || ended("dbpool.v1.PoolService/Execute") && ended("execute default");
    wait_until_sync(WAIT, "the RPC's and the database call's spans", both).await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let trace = TraceId::from_hex(TRACE).unwrap();
    let rpc = spans
        .iter()
        .find(|s| s.name == "dbpool.v1.PoolService/Execute")
        .unwrap_or_else(|| {
            panic!(
                "no RPC span in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(rpc.span_context.trace_id(), trace);
    assert_eq!(rpc.parent_span_id, SpanId::from_hex(PARENT).unwrap());
    assert!(rpc.parent_span_is_remote);
    let db = spans
        .iter()
        .find(|s| s.name == "execute default")
        .expect("the database call's span");
    assert_eq!(db.span_context.trace_id(), trace);
    assert_eq!(db.parent_span_id, rpc.span_context.span_id());
    let attr = |k: &str| {
        db.attributes
            .iter()
            .find(|kv| kv.key.as_str() == k)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attr("pool").as_deref(), Some("default"));
    assert_eq!(attr("backend").as_deref(), Some("sqlite"));
    // SQL text is left out unless `server.trace_sql` is on.
    assert_eq!(attr("db.statement"), None);
}
