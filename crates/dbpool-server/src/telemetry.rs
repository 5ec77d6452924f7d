//! OpenTelemetry traces: W3C trace context taken from gRPC metadata, one span per RPC
//! (its parent the caller's span) and one per database call, exported over OTLP when
//! the standard `OTEL_*` variables ask for it.
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use tonic::codegen::http;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Reads propagation headers out of gRPC metadata.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Whether the per-call spans (`grpc`, `db`) are made. Only traces use them (the log
/// layer leaves them out), and creating, entering and closing them was ~6 % of the
/// daemon's instructions on a small query, so the daemon turns them off when no OTLP
/// exporter is configured. On by default.
static CALL_SPANS: AtomicBool = AtomicBool::new(true);

/// Turns the per-call spans on (traces are exported) or off (they would go nowhere).
pub fn set_call_spans(on: bool) {
    CALL_SPANS.store(on, Relaxed);
}

/// Whether per-call spans are made (see [`set_call_spans`]).
pub fn call_spans() -> bool {
    CALL_SPANS.load(Relaxed)
}

/// Installs the W3C trace-context propagator (`traceparent`, `tracestate`).
pub fn init_propagation() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

/// The span of one RPC, child of the trace context the caller sent, if any.
pub fn rpc_span(req: &http::Request<()>) -> tracing::Span {
    if !call_spans() {
        return tracing::Span::none();
    }
    let path = req.uri().path();
    let span = tracing::info_span!(
        "grpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.method = %path,
    );
    let parent =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(req.headers())));
    let _ = span.set_parent(parent);
    span
}

/// An OTLP (gRPC) trace pipeline when `OTEL_EXPORTER_OTLP_ENDPOINT`,
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_TRACES_EXPORTER=otlp` is set; the
/// exporter reads the other standard `OTEL_*` variables itself.
pub fn otlp_from_env() -> Result<Option<SdkTracerProvider>, opentelemetry_otlp::ExporterBuildError>
{
    let wanted = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v == "otlp");
    if !wanted {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .build(),
    ))
}

/// The tracing layer that turns spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("dbpool"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_spans_can_be_turned_off() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let req = http::Request::builder()
                .uri("/dbpool.v1.PoolService/Query")
                .body(())
                .unwrap();
            assert!(!rpc_span(&req).is_none(), "on by default");
            set_call_spans(false);
            let off = rpc_span(&req);
            set_call_spans(true);
            assert!(off.is_none());
            assert!(!rpc_span(&req).is_none());
        });
    }
}
