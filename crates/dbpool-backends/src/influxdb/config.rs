//! The pool's URL (`influxdb://user:pass@host:8086/db`) and `settings`, parsed once into
//! what every InfluxDB API version needs: where, who, which database, write defaults.
use super::policy::StatementPolicy;
use dbpool_config::ResolvedPool;
use dbpool_core::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// Settings keys this backend knows; any other key is refused (a typo must not pass).
const KNOWN: &[&str] = &[
    "api",
    "retention_policy",
    "precision",
    "tag_columns",
    "time_column",
    "write_batch_lines",
    "connect_timeout_ms",
    "denied_statements",
    "allowed_statements",
    "max_chunk_bytes",
];

/// Most lines per `/write` POST (its body is buffered whole).
const MAX_WRITE_BATCH_LINES: u64 = 100_000;

/// Everything the pool's URL and settings say, validated.
#[derive(Clone)]
pub struct InfluxConfig {
    /// `http://host:port/prefix/` or `https://…`; API paths are joined onto it.
    pub base: url::Url,
    /// User name for basic auth, if any.
    pub user: Option<String>,
    /// Password for basic auth, if any; never printed.
    pub password: Option<String>,
    /// Database of queries and writes (the URL path); empty: none.
    pub database: String,
    /// Retention policy of writes and `SHOW FIELD KEYS` (empty: the default one).
    pub retention_policy: String,
    /// Timestamp precision of line protocol sent through `execute`.
    pub precision: String,
    /// Columns of a bulk insert written as tags (unless the target names its own).
    pub tag_columns: Vec<String>,
    /// Column of a bulk insert holding the timestamp (unless the target names its own).
    pub time_column: String,
    /// Lines per `/write` request of a bulk insert.
    pub write_batch_lines: usize,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout, streaming included (`statement_timeout_ms`; None: none).
    pub request_timeout: Option<Duration>,
    /// Which statements the pool may run (the operator's settings).
    pub policy: StatementPolicy,
    /// Largest response object read: a whole `/query` body, or one line of a chunked one.
    pub max_chunk_bytes: usize,
}

impl std::fmt::Debug for InfluxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxConfig")
            .field("base", &self.base.as_str())
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("retention_policy", &self.retention_policy)
            .finish_non_exhaustive()
    }
}

fn bad_url(m: impl Into<String>) -> Error {
    Error::invalid("url", m)
}

/// Percent-decodes a URL part (`+` stays `+`: it is no space outside query strings).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl InfluxConfig {
    /// Parses and checks the URL and settings of `cfg`.
    pub fn from_pool(cfg: &ResolvedPool) -> Result<Self> {
        let raw = url::Url::parse(cfg.url.expose())
            .map_err(|e| bad_url(format!("not a valid URL: {e}")))?;
        let scheme = match raw.scheme() {
            "influxdb" => "http",
            "influxdbs" => "https",
            s => {
                return Err(bad_url(format!(
                    "scheme `{s}` is not influxdb or influxdbs"
                )))
            }
        };
        let host = raw
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad_url("no host"))?;
        let port = raw.port().unwrap_or(8086);
        // The last path segment is the database; any before it are a proxy prefix.
        let mut segments: Vec<&str> = raw.path().split('/').filter(|s| !s.is_empty()).collect();
        let database = segments.pop().map(decode).unwrap_or_default();
        let mut prefix = segments.join("/");
        if !prefix.is_empty() {
            prefix.push('/');
        }
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let base = url::Url::parse(&format!("{scheme}://{host}:{port}/{prefix}"))
            .map_err(|e| bad_url(format!("bad host or path: {e}")))?;
        let user = (!raw.username().is_empty()).then(|| decode(raw.username()));
        let password = raw.password().map(decode);

        // URL query parameters first, settings override them.
        let mut opts: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in raw.query_pairs() {
            let key = if k == "rp" { "retention_policy" } else { &*k };
            if !matches!(key, "retention_policy" | "precision") {
                return Err(bad_url(format!(
                    "unknown query parameter `{k}` (known: retention_policy, rp, precision)"
                )));
            }
            opts.insert(key.to_string(), v.into_owned());
        }
        for (k, v) in &cfg.settings {
            if !KNOWN.contains(&k.as_str()) {
                return Err(Error::invalid(
                    format!("settings.{k}"),
                    format!("unknown InfluxDB setting (known: {})", KNOWN.join(", ")),
                ));
            }
            opts.insert(k.clone(), v.clone());
        }
        let get = |k: &str| opts.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());

        if let Some(api) = get("api") {
            if api != "v1" {
                return Err(Error::Unsupported(format!(
                    "InfluxDB API `{api}`: only v1 (InfluxQL over /query and /write) is implemented"
                )));
            }
        }
        let precision = match get("precision").unwrap_or("ns") {
            "ns" | "n" => "ns",
            "us" | "u" | "µ" => "u",
            "ms" => "ms",
            "s" => "s",
            "m" => "m",
            "h" => "h",
            other => {
                return Err(Error::invalid(
                    "settings.precision",
                    format!("`{other}` is not one of ns, us, ms, s, m, h"),
                ))
            }
        }
        .to_string();
        let number = |k: &str, default: u64| -> Result<u64> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::invalid(format!("settings.{k}"), "must be a positive integer")
                }),
            }
        };
        let default_connect = cfg.options.acquire_timeout().min(Duration::from_secs(10));
        Ok(InfluxConfig {
            base,
            user,
            password,
            database,
            retention_policy: get("retention_policy").unwrap_or("").to_string(),
            precision,
            tag_columns: get("tag_columns").map(split_list).unwrap_or_default(),
            time_column: get("time_column").unwrap_or("time").to_string(),
            write_batch_lines: match number("write_batch_lines", 5000)? {
                // One POST's body is buffered whole: keep it bounded.
                n @ 1..=MAX_WRITE_BATCH_LINES => n as usize,
                _ => {
                    return Err(Error::invalid(
                        "settings.write_batch_lines",
                        format!("must be at most {MAX_WRITE_BATCH_LINES}"),
                    ))
                }
            },
            connect_timeout: Duration::from_millis(number(
                "connect_timeout_ms",
                default_connect.as_millis() as u64,
            )?),
            request_timeout: dbpool_config::PoolOptions::optional(cfg.options.statement_timeout_ms),
            policy: StatementPolicy::parse(&cfg.settings)?,
            max_chunk_bytes: usize::try_from(number(
                "max_chunk_bytes",
                super::v1::chunked::DEFAULT_MAX_CHUNK_BYTES as u64,
            )?)
            .map_err(|_| Error::invalid("settings.max_chunk_bytes", "is too large"))?,
        })
    }
}

/// `a, b ,c` → `["a", "b", "c"]`, empty items dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbpool_config::{PoolConfig, Secret};

    fn parse(url: &str, settings: &[(&str, &str)]) -> Result<InfluxConfig> {
        let cfg = PoolConfig {
            url: Some(Secret::new(url)),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        InfluxConfig::from_pool(&cfg.resolve("").unwrap())
    }

    #[test]
    fn url_forms() {
        let c = parse("influxdb://u%40x:p%2Fw+@db.local/metrics", &[]).unwrap();
        assert_eq!(c.base.as_str(), "http://db.local:8086/");
        assert_eq!(c.user.as_deref(), Some("u@x"));
        assert_eq!(c.password.as_deref(), Some("p/w+"));
        assert_eq!(c.database, "metrics");
        assert_eq!(c.precision, "ns");
        assert_eq!(c.write_batch_lines, 5000);
        assert!(!format!("{c:?}").contains("p/w"));

        let c = parse("influxdbs://h:9999/proxy/influx/my%20db?rp=week", &[]).unwrap();
        assert_eq!(c.base.as_str(), "https://h:9999/proxy/influx/");
        assert_eq!(c.database, "my db");
        assert_eq!(c.retention_policy, "week");
        assert!(c.user.is_none());

        let c = parse("influxdb://h", &[]).unwrap();
        assert_eq!(c.database, "");
    }

    #[test]
    fn settings_override_and_validate() {
        let c = parse(
            "influxdb://h/db?precision=s",
            &[
                ("precision", "ms"),
                ("tag_columns", "host, region,"),
                ("time_column", "ts"),
                ("write_batch_lines", "10"),
            ],
        )
        .unwrap();
        assert_eq!(c.precision, "ms");
        assert_eq!(c.tag_columns, ["host", "region"]);
        assert_eq!(c.time_column, "ts");
        assert_eq!(c.write_batch_lines, 10);
        let e = parse("influxdb://h/db", &[("tag_column", "x")]).unwrap_err();
        assert!(e.to_string().contains("settings.tag_column"), "{e}");
        assert!(parse("influxdb://h/db?foo=1", &[]).is_err());
        assert!(parse("influxdb://h/db", &[("precision", "d")]).is_err());
        assert!(parse("influxdb://h/db", &[("write_batch_lines", "0")]).is_err());
        assert!(parse("influxdb://h/db", &[("write_batch_lines", "100001")]).is_err());
        assert!(parse("influxdb://h/db", &[("max_chunk_bytes", "0")]).is_err());
        let c = parse("influxdb://h/db", &[("max_chunk_bytes", "4096")]).unwrap();
        assert_eq!(c.max_chunk_bytes, 4096);
        assert!(matches!(
            parse("influxdb://h/db", &[("api", "v2")]),
            Err(Error::Unsupported(_))
        ));
    }
}
