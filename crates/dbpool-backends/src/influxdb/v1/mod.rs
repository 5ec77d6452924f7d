//! The InfluxDB 1.x HTTP API (`/query`, `/write`, `/ping`) behind one pooled reqwest
//! client. At most `max_connections` requests run at once: each holds a slot of a
//! semaphore, a streamed query until its stream ends or is dropped.
pub mod chunked;
pub mod convert;
pub mod error;
pub mod query;
pub mod write;

use super::config::InfluxConfig;
use chunked::Response;
use dbpool_config::PoolOptions;
use dbpool_core::{Error, Param, PoolState, Result};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A pool of request slots in front of one InfluxDB 1.x server.
pub struct Client {
    http: reqwest::Client,
    /// The pool's URL and settings.
    pub cfg: InfluxConfig,
    slots: Arc<Semaphore>,
    waiters: AtomicU32,
    timeouts: AtomicU64,
    options: PoolOptions,
}

/// Counts a caller waiting for a slot until it has one or gives up (also on cancel).
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Client {
    /// Builds the HTTP client; connects lazily.
    pub fn new(pool_id: &str, cfg: InfluxConfig, options: &PoolOptions) -> Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(format!(
                "dbpool/{} (pool {pool_id})",
                env!("CARGO_PKG_VERSION")
            ))
            .connect_timeout(cfg.connect_timeout)
            // A redirect is an error naming its status: following it would make the pool
            // a proxy to wherever the server (or whoever answers) points.
            .redirect(reqwest::redirect::Policy::none())
            // Keep-alive connections: as many as requests may run at once.
            .pool_max_idle_per_host(options.max_connections as usize)
            .pool_idle_timeout(PoolOptions::optional(options.idle_timeout_ms))
            .build()
            .map_err(|e| Error::Internal(format!("building the HTTP client: {e}")))?;
        Ok(Client {
            http,
            cfg,
            slots: Arc::new(Semaphore::new(options.max_connections as usize)),
            waiters: AtomicU32::new(0),
            timeouts: AtomicU64::new(0),
            options: options.clone(),
        })
    }

    /// Takes a request slot, waiting at most the acquire timeout. A free slot is taken
    /// at once; beyond `max_waiters` callers already waiting, the call is refused at once
    /// (the bounded queue every pool has).
    pub async fn slot(&self) -> Result<OwnedSemaphorePermit> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(p);
        }
        if self.waiters.fetch_add(1, Relaxed) >= self.options.max_waiters {
            self.waiters.fetch_sub(1, Relaxed);
            return Err(Error::ResourceExhausted(format!(
                "{} calls are already waiting for a connection (max_waiters)",
                self.options.max_waiters
            )));
        }
        let _waiting = Waiting(&self.waiters);
        let timeout = self.options.acquire_timeout();
        match tokio::time::timeout(timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(Error::ShuttingDown("the pool is closed".into())),
            Err(_) => {
                self.timeouts.fetch_add(1, Relaxed);
                Err(Error::AcquireTimeout(timeout))
            }
        }
    }

    /// Slots as connections: `size` is max_connections, `idle` the free slots.
    pub fn state(&self) -> PoolState {
        let max = self.options.max_connections;
        PoolState {
            size: max,
            idle: (self.slots.available_permits() as u32).min(max),
            waiters: self.waiters.load(Relaxed),
            max_size: max,
            // reqwest opens and reuses HTTP connections internally and does not say.
            connections_created: 0,
            acquire_timeouts: self.timeouts.load(Relaxed),
            ..PoolState::default()
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> Result<reqwest::RequestBuilder> {
        let url = self
            .cfg
            .base
            .join(path)
            .map_err(|e| Error::Internal(format!("joining `{path}`: {e}")))?;
        let mut req = self.http.request(method, url);
        if let Some(user) = &self.cfg.user {
            req = req.basic_auth(user, self.cfg.password.as_ref());
        }
        if let Some(t) = self.cfg.request_timeout {
            req = req.timeout(t);
        }
        Ok(req)
    }

    /// Sends `req`; a non-2xx status becomes the error its body describes, of which at
    /// most `ERROR_BODY_CAP` bytes are read; a 3xx is not followed.
    async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let resp = req.send().await.map_err(error::transport)?;
        let code = resp.status();
        if code.is_success() {
            return Ok(resp);
        }
        if code.is_redirection() {
            return Err(error::redirect(code.as_u16()));
        }
        // A failed read leaves what was read: the status still tells what happened.
        let body = match read_capped(resp, ERROR_BODY_CAP).await {
            Ok((body, _)) => body,
            Err(_) => Vec::new(),
        };
        Err(error::status(code.as_u16(), &body))
    }

    /// POSTs InfluxQL to `/query` (POST: management statements need it), with times as
    /// nanoseconds; `chunk_size` asks for a chunked (line by line) response.
    pub async fn post_query(
        &self,
        sql: &str,
        params: &[Param],
        chunk_size: Option<usize>,
    ) -> Result<reqwest::Response> {
        Self::send(self.query_request(sql, params, chunk_size)?).await
    }

    // Not async: form_urlencoded's Serializer is not Send.
    fn query_request(
        &self,
        sql: &str,
        params: &[Param],
        chunk_size: Option<usize>,
    ) -> Result<reqwest::RequestBuilder> {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("epoch", "ns");
        if !self.cfg.database.is_empty() {
            query.append_pair("db", &self.cfg.database);
        }
        if !self.cfg.retention_policy.is_empty() {
            query.append_pair("rp", &self.cfg.retention_policy);
        }
        if let Some(n) = chunk_size {
            query.append_pair("chunked", "true");
            query.append_pair("chunk_size", &n.to_string());
        }
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("q", sql);
        if !params.is_empty() {
            form.append_pair("params", &params_json(params)?);
        }
        Ok(self
            .request(reqwest::Method::POST, &format!("query?{}", query.finish()))?
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.finish()))
    }

    /// Runs InfluxQL with a small result, read whole; errors in the body are errors.
    pub async fn query_all(&self, sql: &str, params: &[Param]) -> Result<Response> {
        let resp = self.post_query(sql, params, None).await?;
        let max = self.cfg.max_chunk_bytes;
        let (body, complete) = read_capped(resp, max).await?;
        if !complete {
            return Err(chunked::too_large(max));
        }
        let r = chunked::parse(&body)?;
        match r.error() {
            Some(e) => Err(e),
            None => Ok(r),
        }
    }

    /// POSTs line protocol to `/write` with `precision`.
    pub async fn write(&self, body: String, precision: &str) -> Result<()> {
        if self.cfg.database.is_empty() {
            return Err(Error::invalid(
                "url",
                "writing needs a database: add it to the pool URL (influxdb://host:8086/db)",
            ));
        }
        let path = {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("db", &self.cfg.database);
            if !self.cfg.retention_policy.is_empty() {
                query.append_pair("rp", &self.cfg.retention_policy);
            }
            query.append_pair("precision", precision);
            format!("write?{}", query.finish())
        };
        let req = self.request(reqwest::Method::POST, &path)?.body(body);
        Self::send(req).await.map(drop)
    }

    /// `/ping` (the server is up), then `SHOW DATABASES` (the credentials work: /ping
    /// does not check them).
    pub async fn health(&self) -> Result<()> {
        let _slot = self.slot().await?;
        Self::send(self.request(reqwest::Method::GET, "ping")?).await?;
        self.query_all("SHOW DATABASES", &[]).await.map(drop)
    }
}

/// Most bytes of an error response read: enough for any message InfluxDB writes, and
/// what the caller sees of it is a short excerpt anyway.
pub const ERROR_BODY_CAP: usize = 64 * 1024;

/// Reads a body chunk by chunk, at most `cap` bytes; whether it ended within them.
/// The rest is never read: dropping the response closes the connection.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(error::transport)? {
        if out.len() + chunk.len() > cap {
            out.extend_from_slice(&chunk[..cap - out.len()]);
            return Ok((out, false));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((out, true))
}

/// Positional parameters as InfluxQL bound parameters: `$1`, `$2`, … in the query.
fn params_json(params: &[Param]) -> Result<String> {
    use serde_json::Value;
    let mut map = serde_json::Map::new();
    for (i, p) in params.iter().enumerate() {
        let field = || format!("params[{i}]");
        let v = match p {
            Param::Null => Value::Null,
            Param::Bool(b) => Value::Bool(*b),
            Param::Int64(n) => Value::from(*n),
            Param::Double(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .ok_or_else(|| Error::invalid(field(), "NaN and infinity cannot be bound"))?,
            Param::String(s) => Value::String(s.clone()),
            Param::Decimal(d) => d
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| Error::invalid(field(), format!("`{d}` is not a number")))?,
            // InfluxQL compares `time` with RFC 3339 strings.
            Param::TimestampMicros(us) => chrono::DateTime::from_timestamp_micros(*us)
                .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
                .ok_or_else(|| Error::invalid(field(), "timestamp out of range"))?,
            Param::Bytes(_) => {
                return Err(Error::invalid(field(), "InfluxQL has no binary values"))
            }
        };
        map.insert((i + 1).to_string(), v);
    }
    Ok(Value::Object(map).to_string())
}

/// InfluxQL identifier quoting: `"a \"b\""`.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_become_numbered_bound_parameters() {
        let j = params_json(&[
            Param::String("a".into()),
            Param::Int64(3),
            Param::TimestampMicros(1_500_000),
            Param::Null,
        ])
        .unwrap();
        assert_eq!(
            j,
            r#"{"1":"a","2":3,"3":"1970-01-01T00:00:01.500Z","4":null}"#
        );
        assert!(params_json(&[Param::Bytes(vec![1])]).is_err());
        assert!(params_json(&[Param::Double(f64::NAN)]).is_err());
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }
}
