//! The Prometheus endpoint: `/metrics` on its own HTTP port (off unless
//! `server.metrics_listen` is set), read from the same counters as GetMetrics.
use dbpool_core::{HistogramSnapshot, PoolManager};
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;
use tokio::net::TcpListener;

type Labels = Vec<(&'static str, String)>;
/// A per-pool gauge: name, help, value.
type GaugeDef = (
    &'static str,
    &'static str,
    fn(&dbpool_core::PoolSnapshot, bool) -> i64,
);
/// A per-pool counter: name, help, value.
type CounterDef = (
    &'static str,
    &'static str,
    fn(&dbpool_core::PoolSnapshot) -> u64,
);

/// Reads every pool at scrape time: nothing to keep in step when pools come and go.
struct PoolsCollector {
    manager: Arc<PoolManager>,
}

impl fmt::Debug for PoolsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PoolsCollector")
    }
}

/// Per-bucket counts with `+Inf`, as the encoder wants them, from a cumulative snapshot.
fn buckets(h: &HistogramSnapshot) -> Vec<(f64, u64)> {
    let mut prev = 0;
    let mut out: Vec<(f64, u64)> = h
        .buckets
        .iter()
        .map(|(b, c)| {
            let n = c - prev;
            prev = *c;
            (*b, n)
        })
        .collect();
    out.push((f64::INFINITY, h.count - prev));
    out
}

/// One metric family: a descriptor and a value per label set.
fn family<F>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    mut each: F,
) -> fmt::Result
where
    F: FnMut(&mut prometheus_client::encoding::MetricEncoder) -> fmt::Result,
{
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    each(&mut m)
}

impl prometheus_client::collector::Collector for PoolsCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let pools: Vec<_> = self
            .manager
            .list()
            .into_iter()
            .map(|e| (e.id.clone(), e.healthy(), e.snapshot()))
            .collect();
        let pool = |id: &str| -> Labels { vec![("pool", id.to_string())] };
        family(
            &mut enc,
            "dbpool_pool_connections",
            "Open connections by state.",
            MetricType::Gauge,
            |m| {
                for (id, _, s) in &pools {
                    for (state, n) in [("idle", s.state.idle), ("in_use", s.state.in_use())] {
                        let l: Labels = vec![("pool", id.clone()), ("state", state.to_string())];
                        m.encode_family(&l)?.encode_gauge(&(n as i64))?;
                    }
                }
                Ok(())
            },
        )?;
        let gauges: [GaugeDef; 3] = [
            (
                "dbpool_pool_connections_max",
                "Configured maximum connections.",
                |s, _| s.state.max_size as i64,
            ),
            (
                "dbpool_pool_waiters",
                "Calls waiting for a connection.",
                |s, _| s.state.waiters as i64,
            ),
            (
                "dbpool_pool_healthy",
                "1 when the last health check reached the database.",
                |_, h| h as i64,
            ),
        ];
        for (name, help, f) in gauges {
            family(&mut enc, name, help, MetricType::Gauge, |m| {
                for (id, healthy, s) in &pools {
                    m.encode_family(&pool(id))?.encode_gauge(&f(s, *healthy))?;
                }
                Ok(())
            })?;
        }
        family(
            &mut enc,
            "dbpool_calls",
            "Calls started, by kind.",
            MetricType::Counter,
            |m| {
                for (id, _, s) in &pools {
                    for (kind, n) in &s.calls {
                        let l: Labels =
                            vec![("pool", id.clone()), ("kind", kind.name().to_string())];
                        m.encode_family(&l)?
                            .encode_counter::<NoLabelSet, _, f64>(n, None)?;
                    }
                }
                Ok(())
            },
        )?;
        family(
            &mut enc,
            "dbpool_errors",
            "Failed calls, by gRPC code.",
            MetricType::Counter,
            |m| {
                for (id, _, s) in &pools {
                    for (code, n) in &s.errors {
                        let l: Labels = vec![("pool", id.clone()), ("code", code.to_string())];
                        m.encode_family(&l)?
                            .encode_counter::<NoLabelSet, _, f64>(n, None)?;
                    }
                }
                Ok(())
            },
        )?;
        let counters: [CounterDef; 4] = [
            ("dbpool_rows_streamed", "Rows sent to clients.", |s| {
                s.rows_streamed
            }),
            (
                "dbpool_streamed_bytes",
                "Arrow bytes of the record batches sent to clients.",
                |s| s.bytes_streamed,
            ),
            (
                "dbpool_acquire_timeouts",
                "Calls that found no free connection in time.",
                |s| s.state.acquire_timeouts,
            ),
            ("dbpool_connections_created", "Connections opened.", |s| {
                s.state.connections_created
            }),
        ];
        for (name, help, f) in counters {
            family(&mut enc, name, help, MetricType::Counter, |m| {
                for (id, _, s) in &pools {
                    m.encode_family(&pool(id))?
                        .encode_counter::<NoLabelSet, _, f64>(&f(s), None)?;
                }
                Ok(())
            })?;
        }
        family(
            &mut enc,
            "dbpool_acquire_wait_seconds",
            "Time calls waited for a connection.",
            MetricType::Histogram,
            |m| {
                for (id, _, s) in &pools {
                    let h = &s.acquire_wait;
                    m.encode_family(&pool(id))?.encode_histogram::<NoLabelSet>(
                        h.sum,
                        h.count,
                        &buckets(h),
                        None,
                    )?;
                }
                Ok(())
            },
        )?;
        family(
            &mut enc,
            "dbpool_call_duration_seconds",
            "Call durations by kind; queries until their stream ended.",
            MetricType::Histogram,
            |m| {
                for (id, _, s) in &pools {
                    for (kind, h) in &s.durations {
                        let l: Labels =
                            vec![("pool", id.clone()), ("kind", kind.name().to_string())];
                        m.encode_family(&l)?.encode_histogram::<NoLabelSet>(
                            h.sum,
                            h.count,
                            &buckets(h),
                            None,
                        )?;
                    }
                }
                Ok(())
            },
        )
    }
}

/// The metrics in OpenMetrics text.
pub fn render(manager: &Arc<PoolManager>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(PoolsCollector {
        manager: manager.clone(),
    }));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String");
    out
}

/// Serves `/metrics` on `listener` until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    manager: Arc<PoolManager>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let manager = manager.clone();
            async move {
                (
                    [(
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    render(&manager),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}
