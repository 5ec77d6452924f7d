//! Proto messages ↔ core types: parameters, pool configs and statuses.
use crate::bounds;
use dbpool_config::{Limits, PoolConfig, PoolOptions, PreparedStatements, ResetSessions, Secret};
use dbpool_core::{CallKind, Error, HistogramSnapshot, Param, PoolEntry, Result};
use dbpool_proto::v1 as pb;

/// Proto parameters → core parameters; `field` prefixes error messages.
pub fn params(ps: &[pb::Param], field: &str) -> Result<Vec<Param>> {
    ps.iter()
        .enumerate()
        .map(|(i, p)| {
            use pb::param::Value as V;
            Ok(match &p.value {
                None | Some(V::Null(_)) => Param::Null,
                Some(V::Bool(b)) => Param::Bool(*b),
                Some(V::Int64(v)) => Param::Int64(*v),
                Some(V::Double(v)) => Param::Double(*v),
                Some(V::String(s)) => Param::String(s.clone()),
                Some(V::Bytes(b)) => Param::Bytes(b.clone()),
                Some(V::Timestamp(t)) => {
                    if !(0..1_000_000_000).contains(&t.nanos) {
                        return Err(Error::invalid(
                            format!("{field}[{i}]"),
                            "timestamp nanos must be 0..=999999999",
                        ));
                    }
                    let us = t
                        .seconds
                        .checked_mul(1_000_000)
                        .and_then(|s| s.checked_add(i64::from(t.nanos) / 1000));
                    Param::TimestampMicros(us.ok_or_else(|| {
                        Error::invalid(format!("{field}[{i}]"), "timestamp out of range")
                    })?)
                }
                Some(V::Decimal(s)) => {
                    if !Param::validate_decimal(s) {
                        return Err(Error::invalid(
                            format!("{field}[{i}]"),
                            format!("`{}` is not a decimal number", dbpool_core::clip(s)),
                        ));
                    }
                    Param::Decimal(s.clone())
                }
            })
        })
        .collect()
}

fn opt<T: Default + PartialEq>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

/// Refuses oversized CreatePool fields before any of them is copied or parsed.
fn check_pool_request(r: &pb::CreatePoolRequest, l: &Limits) -> Result<()> {
    bounds::id(l, "pool_id", &r.pool_id)?;
    for (field, v) in [
        ("url", &r.url),
        ("db_type", &r.db_type),
        ("host", &r.host),
        ("database", &r.database),
        ("username", &r.username),
        ("password", &r.password),
    ] {
        bounds::connection_field(field, v)?;
    }
    bounds::pool_list("settings", r.settings.len())?;
    for (k, v) in &r.settings {
        bounds::connection_field("settings", k)?;
        bounds::connection_field("settings", v)?;
    }
    bounds::pool_list("backup_urls", r.backup_urls.len())?;
    for (i, u) in r.backup_urls.iter().enumerate() {
        bounds::connection_field(&format!("backup_urls[{i}]"), u)?;
    }
    if let Some(o) = &r.options {
        // A pool's default batch size is what a request with batch_size 0 gets.
        bounds::batch_size(l, "options.batch_size", o.batch_size)?;
    }
    Ok(())
}

/// A CreatePool request → a pool config (zero options take the defaults); out-of-range
/// fields are INVALID_ARGUMENT (the options' ranges are checked by `PoolOptions::validate`
/// when the pool is created).
pub fn pool_config(r: &pb::CreatePoolRequest, l: &Limits) -> Result<PoolConfig> {
    check_pool_request(r, l)?;
    let port = opt(r.port)
        .map(|p| {
            u16::try_from(p)
                .map_err(|_| Error::invalid("port", format!("{p} is out of range 1..=65535")))
        })
        .transpose()?;
    Ok(PoolConfig {
        url: opt(r.url.clone()).map(Secret::new),
        db_type: opt(r.db_type.clone()),
        host: opt(r.host.clone()),
        port,
        database: opt(r.database.clone()),
        username: opt(r.username.clone()),
        password: opt(r.password.clone()).map(Secret::new),
        password_env: None,
        // TLS comes in the URL's query (`?sslmode=…`); the fields are the config file's.
        sslmode: None,
        sslrootcert: None,
        sslcert: None,
        sslkey: None,
        settings: r.settings.clone().into_iter().collect(),
        backup_urls: r.backup_urls.iter().cloned().map(Secret::new).collect(),
        options: pool_options(&r.options.unwrap_or_default())?,
    })
}

/// The proto enum → the option; a number this build does not know is refused.
fn prepared_statements(v: i32) -> Result<PreparedStatements> {
    use pb::PreparedStatements as P;
    match P::try_from(v) {
        Ok(P::AutoUnspecified) => Ok(PreparedStatements::Auto),
        Ok(P::Named) => Ok(PreparedStatements::Named),
        Ok(P::Unnamed) => Ok(PreparedStatements::Unnamed),
        Err(_) => Err(Error::invalid(
            "options.prepared_statements",
            format!("{v} is not a PreparedStatements value (0 auto, 1 named, 2 unnamed)"),
        )),
    }
}

/// The proto enum → the option; a number this build does not know is refused.
fn reset_sessions(v: i32) -> Result<ResetSessions> {
    use pb::ResetSessions as R;
    match R::try_from(v) {
        Ok(R::AutoUnspecified) => Ok(ResetSessions::Auto),
        Ok(R::Always) => Ok(ResetSessions::Always),
        Err(_) => Err(Error::invalid(
            "options.reset_sessions",
            format!("{v} is not a ResetSessions value (0 auto, 1 always)"),
        )),
    }
}

/// One option's proto field ↔ its config value; a zero or unset field is the default.
trait WireOption<T>: Sized {
    /// The config value of a field of a CreatePool request.
    fn to_option(self, default: T) -> Result<T>;
    /// The field of a reply.
    fn from_option(v: &T) -> Self;
}

impl<T: Copy + Default + PartialEq> WireOption<T> for T {
    fn to_option(self, default: T) -> Result<T> {
        Ok(opt(self).unwrap_or(default))
    }
    fn from_option(v: &T) -> Self {
        *v
    }
}

/// A proto `optional`: unset is the default, zero is zero (`statement_cache_size` 0 is
/// "no cache").
impl WireOption<u32> for Option<u32> {
    fn to_option(self, default: u32) -> Result<u32> {
        Ok(self.unwrap_or(default))
    }
    fn from_option(v: &u32) -> Self {
        Some(*v)
    }
}

impl WireOption<PreparedStatements> for i32 {
    /// The enum's number; one this build does not know is refused.
    fn to_option(self, _: PreparedStatements) -> Result<PreparedStatements> {
        prepared_statements(self)
    }
    fn from_option(v: &PreparedStatements) -> Self {
        match v {
            PreparedStatements::Auto => pb::PreparedStatements::AutoUnspecified,
            PreparedStatements::Named => pb::PreparedStatements::Named,
            PreparedStatements::Unnamed => pb::PreparedStatements::Unnamed,
        }
        .into()
    }
}

impl WireOption<ResetSessions> for i32 {
    /// The enum's number; one this build does not know is refused.
    fn to_option(self, _: ResetSessions) -> Result<ResetSessions> {
        reset_sessions(self)
    }
    fn from_option(v: &ResetSessions) -> Self {
        match v {
            ResetSessions::Auto => pb::ResetSessions::AutoUnspecified,
            ResetSessions::Always => pb::ResetSessions::Always,
        }
        .into()
    }
}

/// The two directions of every pool option, made from dbpool-config's option table.
macro_rules! option_conversions {
    ($( $(#[$doc:meta])+ $name:ident: $ty:ty = $default:expr; )+) => {
        /// A CreatePool request's options → config options (zero or unset: the default).
        fn pool_options(o: &pb::PoolOptions) -> Result<PoolOptions> {
            let d = PoolOptions::default();
            Ok(PoolOptions {
                $( $name: WireOption::to_option(o.$name, d.$name)?, )+
            })
        }

        /// Options → proto.
        pub fn options(o: &PoolOptions) -> pb::PoolOptions {
            pb::PoolOptions {
                $( $name: WireOption::from_option(&o.$name), )+
            }
        }
    };
}

dbpool_config::pool_options!(option_conversions);

/// A pool's live status → proto.
pub fn status(e: &PoolEntry) -> pb::PoolStatus {
    let s = e.snapshot();
    let failover = e.backend.failover().unwrap_or_default();
    pb::PoolStatus {
        pool_id: e.id.clone(),
        size: s.state.size,
        idle: s.state.idle,
        in_use: s.state.in_use(),
        waiters: s.state.waiters,
        max_connections: s.state.max_size,
        healthy: e.healthy(),
        queries_total: s.calls_of(CallKind::Query),
        executes_total: s.calls_of(CallKind::Execute)
            + s.calls_of(CallKind::Batch)
            + s.calls_of(CallKind::BulkInsert),
        errors_total: s.errors_total(),
        connections_created_total: s.state.connections_created,
        acquire_timeouts_total: s.state.acquire_timeouts,
        circuit: s.state.circuit.name().to_string(),
        degraded: failover.degraded,
        serving: failover.serving.name(),
    }
}

/// A pool as listed: redacted URL, options, status.
pub fn info(e: &PoolEntry) -> pb::PoolInfo {
    pb::PoolInfo {
        pool_id: e.id.clone(),
        backend: e.config.kind.name().to_string(),
        redacted_url: e.config.redacted_url(),
        options: Some(options(&e.config.options)),
        status: Some(status(e)),
        redacted_backup_urls: e.config.redacted_backup_urls(),
    }
}

fn histogram(h: &HistogramSnapshot) -> pb::Histogram {
    pb::Histogram {
        upper_bounds: h.buckets.iter().map(|(b, _)| *b).collect(),
        cumulative_counts: h.buckets.iter().map(|(_, c)| *c).collect(),
        sum: h.sum,
        count: h.count,
    }
}

/// A pool's counters and histograms → proto.
pub fn metrics(e: &PoolEntry) -> pb::PoolMetrics {
    let s = e.snapshot();
    pb::PoolMetrics {
        pool_id: e.id.clone(),
        calls_total: s
            .calls
            .iter()
            .map(|(k, n)| (k.name().to_string(), *n))
            .collect(),
        errors_total: s.errors.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        rows_streamed_total: s.rows_streamed,
        bytes_streamed_total: s.bytes_streamed,
        acquire_wait_seconds: Some(histogram(&s.acquire_wait)),
        call_duration_seconds: s
            .durations
            .iter()
            .map(|(k, h)| (k.name().to_string(), histogram(h)))
            .collect(),
        acquire_timeouts_total: s.state.acquire_timeouts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_statements_round_trip_and_unknown_values_are_refused() {
        for (v, mode) in [
            (0, PreparedStatements::Auto),
            (1, PreparedStatements::Named),
            (2, PreparedStatements::Unnamed),
        ] {
            assert_eq!(prepared_statements(v).unwrap(), mode);
            let o = PoolOptions {
                prepared_statements: mode,
                ..Default::default()
            };
            assert_eq!(options(&o).prepared_statements, v);
        }
        let e = prepared_statements(7).unwrap_err();
        assert!(matches!(&e, Error::InvalidArgument { .. }), "{e:?}");
        assert!(e.to_string().contains("options.prepared_statements"), "{e}");
    }
}
