//! The JSON of `/query` and an incremental reader of its `chunked=true` form: one JSON
//! object per line, parsed as each line completes, so memory holds one chunk at a time.
use super::error::transport;
use bytes::Bytes;
use dbpool_core::{Error, Result};
use futures::stream::BoxStream;
use futures::StreamExt;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One response object (the whole body, or one chunk of a chunked body).
#[derive(Debug, Deserialize)]
pub struct Response {
    /// One entry per statement (several per statement when chunked).
    #[serde(default)]
    pub results: Vec<StatementResult>,
    /// A request-level error.
    pub error: Option<String>,
}

/// (Part of) the result of one statement.
#[derive(Debug, Deserialize)]
pub struct StatementResult {
    /// Position of the statement in the query, from 0.
    #[serde(default)]
    pub statement_id: usize,
    /// Series of this part.
    #[serde(default)]
    pub series: Vec<Series>,
    /// Why the statement failed, reported with HTTP 200.
    pub error: Option<String>,
}

/// (Part of) one series: a measurement and tag set with its rows.
#[derive(Debug, Deserialize)]
pub struct Series {
    /// Measurement name (for SHOW statements, what is shown).
    #[serde(default)]
    pub name: String,
    /// The `GROUP BY` tags of this series.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Column names; `time` first for SELECT.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Rows, one value per column.
    #[serde(default)]
    pub values: Vec<Vec<serde_json::Value>>,
}

impl Response {
    /// The first error of the response, request-level or of a statement.
    pub fn error(&self) -> Option<Error> {
        if let Some(e) = &self.error {
            return Some(super::error::in_body(e.clone()));
        }
        self.results
            .iter()
            .find_map(|r| r.error.clone().map(super::error::in_body))
    }
}

/// Parses one response object.
pub fn parse(bytes: &[u8]) -> Result<Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
        let head = super::error::excerpt(&head);
        Error::Internal(format!("malformed InfluxDB response ({e}): {head}"))
    })
}

/// Bytes one response object (a whole body, or one line of a chunked one) may have
/// when the pool does not set `max_chunk_bytes`.
pub const DEFAULT_MAX_CHUNK_BYTES: usize = 64 * 1024 * 1024;

/// A response object longer than the pool's `max_chunk_bytes`.
pub fn too_large(max: usize) -> Error {
    Error::ResourceExhausted(format!(
        "an InfluxDB response object is larger than settings.max_chunk_bytes ({max} bytes); \
         ask for fewer rows per batch (batch_size) or raise the setting"
    ))
}

/// Reads a chunked `/query` body line by line.
pub struct Chunks {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    buf: Vec<u8>,
    /// Bytes of `buf` known to hold no newline.
    scanned: usize,
    /// Longest line buffered: one endless line must not take all memory.
    max_line: usize,
}

impl Chunks {
    /// Wraps a response body; lines up to `DEFAULT_MAX_CHUNK_BYTES`.
    #[cfg(test)]
    pub fn new(body: BoxStream<'static, reqwest::Result<Bytes>>) -> Self {
        Self::with_max_line(body, DEFAULT_MAX_CHUNK_BYTES)
    }

    /// Wraps a response body; a line longer than `max_line` bytes is an error.
    pub fn with_max_line(
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        max_line: usize,
    ) -> Self {
        Chunks {
            body,
            buf: Vec::new(),
            scanned: 0,
            max_line,
        }
    }

    /// The next chunk, `None` at the end of the body.
    pub async fn next(&mut self) -> Result<Option<Response>> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
                let end = self.scanned + pos;
                let parsed = if self.buf[..end].iter().all(u8::is_ascii_whitespace) {
                    None
                } else {
                    Some(parse(&self.buf[..end]))
                };
                self.buf.drain(..=end);
                self.scanned = 0;
                match parsed {
                    Some(r) => return r.map(Some),
                    None => continue,
                }
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max_line {
                return Err(too_large(self.max_line));
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(e)) => return Err(transport(e)),
                None if self.buf.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                // The last object may come without a newline.
                None => {
                    let r = parse(&self.buf);
                    self.buf.clear();
                    self.scanned = 0;
                    return r.map(Some);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(parts: &[&'static str]) -> Chunks {
        let parts: Vec<reqwest::Result<Bytes>> = parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect();
        Chunks::new(futures::stream::iter(parts).boxed())
    }

    #[tokio::test]
    async fn objects_split_across_reads_and_lines() {
        let mut r = reader(&[
            r#"{"results":[{"statement_id":0,"series":[{"name":"m","tags":{"h":"a"},"col"#,
            r#"umns":["time","v"],"values":[[1,2.5]]}]}]}"#,
            "\n\n{\"results\":[{\"statement_id\":1,\"error\":\"boom\"}]}\n",
            r#"{"error":"last, no newline"}"#,
        ]);
        let a = r.next().await.unwrap().unwrap();
        let s = &a.results[0].series[0];
        assert_eq!((s.name.as_str(), s.tags["h"].as_str()), ("m", "a"));
        assert_eq!(s.values[0][1].as_f64(), Some(2.5));
        assert!(a.error().is_none());
        let b = r.next().await.unwrap().unwrap();
        assert!(
            matches!(b.error(), Some(Error::Database { message, code: None }) if message == "boom")
        );
        let c = r.next().await.unwrap().unwrap();
        assert!(c.error().is_some());
        assert!(r.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_endless_line_is_cut_off() {
        let parts = futures::stream::repeat_with(|| Ok(Bytes::from(vec![b'x'; 1024])));
        let mut r = Chunks::with_max_line(parts.boxed(), 10_000);
        assert!(matches!(r.next().await, Err(Error::ResourceExhausted(_))));
        assert!(r.buf.len() <= 10_000 + 1024);
    }

    #[tokio::test]
    async fn garbage_is_an_error() {
        let mut r = reader(&["<html>\n"]);
        assert!(matches!(r.next().await, Err(Error::Internal(_))));
    }
}
