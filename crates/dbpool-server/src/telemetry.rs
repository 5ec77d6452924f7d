//! OpenTelemetry traces: W3C trace context taken from gRPC metadata, one span per RPC
//! (its parent the caller's span) and one per database call, exported over OTLP when
//! the standard `OTEL_*` variables ask for it.
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
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

/// Installs the W3C trace-context propagator (`traceparent`, `tracestate`).
pub fn init_propagation() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

/// The span of one RPC, child of the trace context the caller sent, if any; none when
/// the server makes no per-call spans (`call_spans` off: only traces use them, and
/// making them was ~6 % of the daemon's instructions on a small query, so a server
/// turns them off when no OTLP exporter is configured).
pub fn rpc_span(req: &http::Request<()>, call_spans: bool) -> tracing::Span {
    if !call_spans {
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
            assert!(!rpc_span(&req, true).is_none());
            assert!(rpc_span(&req, false).is_none());
        });
    }
}
