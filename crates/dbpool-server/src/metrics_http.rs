//! The Prometheus endpoint: `/metrics` on its own HTTP port (off unless
//! `server.metrics_listen` is set), read from the same counters as GetMetrics.
use dbpool_core::{HistogramSnapshot, PoolManager, PoolSnapshot};
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;
use tokio::net::TcpListener;

/// One label: name and value.
type Label = (&'static str, String);
type Labels = Vec<Label>;
/// One family's values for a pool (is it healthy, its counters): each with one label
/// of its own, or none.
type Values = fn(bool, &PoolSnapshot) -> Vec<(Option<Label>, Value<'_>)>;
/// A metric family: name, help, type and its values.
type FamilyDef = (&'static str, &'static str, MetricType, Values);

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

/// One value of a family, for one pool and label.
enum Value<'a> {
    Gauge(i64),
    Counter(u64),
    Histogram(&'a HistogramSnapshot),
}

/// A pool's id, whether it is healthy, and its counters.
type Pool = (String, bool, PoolSnapshot);

/// One label `key`=`value`.
fn by(key: &'static str, value: &str) -> Option<Label> {
    Some((key, value.to_string()))
}

/// A family's one unlabelled value.
fn one(v: Value<'_>) -> Vec<(Option<Label>, Value<'_>)> {
    vec![(None, v)]
}

/// Every family, in the order they are written.
const FAMILIES: [FamilyDef; 12] = {
    use MetricType::{Counter, Gauge, Histogram};
    [
        (
            "dbpool_pool_connections",
            "Open connections by state.",
            Gauge,
            |_, s| {
                vec![
                    (by("state", "idle"), Value::Gauge(s.state.idle as i64)),
                    (by("state", "in_use"), Value::Gauge(s.state.in_use() as i64)),
                ]
            },
        ),
        (
            "dbpool_pool_connections_max",
            "Configured maximum connections.",
            Gauge,
            |_, s| one(Value::Gauge(s.state.max_size as i64)),
        ),
        (
            "dbpool_pool_waiters",
            "Calls waiting for a connection.",
            Gauge,
            |_, s| one(Value::Gauge(s.state.waiters as i64)),
        ),
        (
            "dbpool_pool_healthy",
            "1 when the last health check reached the database.",
            Gauge,
            |h, _| one(Value::Gauge(h as i64)),
        ),
        (
            "dbpool_calls",
            "Calls started, by kind.",
            Counter,
            |_, s| {
                let each = s.calls.iter();
                each.map(|(k, n)| (by("kind", k.name()), Value::Counter(*n)))
                    .collect()
            },
        ),
        (
            "dbpool_errors",
            "Failed calls, by gRPC code.",
            Counter,
            |_, s| {
                let each = s.errors.iter();
                each.map(|(c, n)| (by("code", c), Value::Counter(*n)))
                    .collect()
            },
        ),
        (
            "dbpool_rows_streamed",
            "Rows sent to clients.",
            Counter,
            |_, s| one(Value::Counter(s.rows_streamed)),
        ),
        (
            "dbpool_streamed_bytes",
            "Arrow bytes of the record batches sent to clients.",
            Counter,
            |_, s| one(Value::Counter(s.bytes_streamed)),
        ),
        (
            "dbpool_acquire_timeouts",
            "Calls that found no free connection in time.",
            Counter,
            |_, s| one(Value::Counter(s.state.acquire_timeouts)),
        ),
        (
            "dbpool_connections_created",
            "Connections opened.",
            Counter,
            |_, s| one(Value::Counter(s.state.connections_created)),
        ),
        (
            "dbpool_acquire_wait_seconds",
            "Time calls waited for a connection.",
            Histogram,
            |_, s| one(Value::Histogram(&s.acquire_wait)),
        ),
        (
            "dbpool_call_duration_seconds",
            "Call durations by kind; queries until their stream ended.",
            Histogram,
            |_, s| {
                let each = s.durations.iter();
                each.map(|(k, h)| (by("kind", k.name()), Value::Histogram(h)))
                    .collect()
            },
        ),
    ]
};

/// One metric family: its descriptor, then for every pool its values, labelled `pool`
/// and, where given, one label of their own.
fn family(enc: &mut DescriptorEncoder, pools: &[Pool], def: &FamilyDef) -> fmt::Result {
    let (name, help, kind, values) = def;
    let mut m = enc.encode_descriptor(name, help, None, *kind)?;
    for (id, healthy, s) in pools {
        for (label, v) in values(*healthy, s) {
            let mut l: Labels = vec![("pool", id.clone())];
            l.extend(label);
            let mut e = m.encode_family(&l)?;
            match v {
                Value::Gauge(n) => e.encode_gauge(&n)?,
                Value::Counter(n) => e.encode_counter::<NoLabelSet, _, f64>(&n, None)?,
                Value::Histogram(h) => {
                    e.encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets(h), None)?
                }
            }
        }
    }
    Ok(())
}

impl prometheus_client::collector::Collector for PoolsCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let pools: Vec<Pool> = self
            .manager
            .list()
            .into_iter()
            .map(|e| (e.id.clone(), e.healthy(), e.snapshot()))
            .collect();
        for def in &FAMILIES {
            family(&mut enc, &pools, def)?;
        }
        Ok(())
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
