//! InfluxQL queries streamed as Arrow: `chunked=true` responses read chunk by chunk,
//! the schema fixed from the first series, rows sent on in batches as chunks arrive.
use super::chunked::{Chunks, Response, Series};
use super::convert::{Batcher, Kind, Shape};
use super::{quote_ident, Client};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, Param, QueryStream, Result};
use futures::StreamExt;
use std::collections::HashMap;
use tokio::sync::mpsc::Sender;
use tokio::sync::OwnedSemaphorePermit;
use tokio_stream::wrappers::ReceiverStream;

/// The first keyword of `sql`, upper-cased, skipping blank and `--` comment lines.
pub fn first_keyword(sql: &str) -> String {
    sql.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("--"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Starts `sql`; returns once the first series (or the end) arrived and the schema is
/// known. The stream holds the request slot until it ends or is dropped.
pub async fn start(
    client: &Client,
    sql: &str,
    params: Vec<Param>,
    batch_size: usize,
) -> Result<QueryStream> {
    if sql.trim().is_empty() {
        return Err(Error::invalid("sql", "is empty"));
    }
    client.cfg.policy.check(sql)?;
    let batch_size = batch_size.max(1);
    let slot = client.slot().await?;
    // A chunk is at most one batch of rows: memory stays at about two batches.
    let resp = client.post_query(sql, &params, Some(batch_size)).await?;
    let mut chunks = Chunks::with_max_line(resp.bytes_stream().boxed(), client.cfg.max_chunk_bytes);
    let mut pending = Vec::new();
    while let Some(r) = chunks.next().await? {
        if let Some(e) = r.error() {
            return Err(e);
        }
        let found = r.results.iter().any(|s| !s.series.is_empty());
        pending.push(r);
        if found {
            break;
        }
    }
    let series: Vec<&Series> = pending
        .iter()
        .flat_map(|r| &r.results)
        .flat_map(|s| &s.series)
        .collect();
    let shape = match series.first() {
        None => Shape::empty(),
        Some(first) => {
            let select = first_keyword(sql) == "SELECT";
            let fields = if select {
                field_types(client, &first.name).await?
            } else {
                HashMap::new()
            };
            Shape::resolve(first, &series, &fields, select)
        }
    };
    let batcher = Batcher::new(shape, batch_size);
    let schema = batcher.schema();
    // Two batches in flight at most: a slow reader slows the read from InfluxDB.
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(pump(slot, pending, chunks, batcher, tx));
    Ok(QueryStream {
        schema,
        batches: ReceiverStream::new(rx).boxed(),
    })
}

/// The field types of `measurement` (`SHOW FIELD KEYS`), on the caller's slot. A field
/// with different types in different shards is a float if any is, else its first type.
async fn field_types(client: &Client, measurement: &str) -> Result<HashMap<String, Kind>> {
    let mut out = HashMap::new();
    if client.cfg.database.is_empty() {
        return Ok(out);
    }
    let from = match client.cfg.retention_policy.as_str() {
        "" => quote_ident(measurement),
        rp => format!("{}.{}", quote_ident(rp), quote_ident(measurement)),
    };
    let r = match client
        .query_all(&format!("SHOW FIELD KEYS FROM {from}"), &[])
        .await
    {
        Ok(r) => r,
        // Anything but the server or the credentials failing: infer the types instead.
        Err(e) if e.is_connection_error() => return Err(e),
        Err(e) => {
            tracing::debug!(error = %e, measurement, "SHOW FIELD KEYS failed; inferring types");
            return Ok(out);
        }
    };
    for s in r.results.iter().flat_map(|s| &s.series) {
        for row in &s.values {
            let (Some(name), Some(kind)) = (
                row.first().and_then(|v| v.as_str()),
                row.get(1)
                    .and_then(|v| v.as_str())
                    .and_then(Kind::of_field_type),
            ) else {
                continue;
            };
            out.entry(name.to_string())
                .and_modify(|k| {
                    if kind == Kind::Float {
                        *k = Kind::Float
                    }
                })
                .or_insert(kind);
        }
    }
    Ok(out)
}

/// Flattens the pending and remaining chunks into batches; ends at the body's end, at
/// the first error (sent on) or as soon as the receiver goes away, also while InfluxDB
/// is still working on the next chunk: dropping the response closes the HTTP
/// connection, and InfluxDB stops a query whose client disconnected.
async fn pump(
    slot: OwnedSemaphorePermit,
    pending: Vec<Response>,
    mut chunks: Chunks,
    mut batcher: Batcher,
    tx: Sender<Result<RecordBatch>>,
) {
    let result = async {
        let mut pending = pending.into_iter();
        loop {
            let r = match pending.next() {
                Some(r) => r,
                None => {
                    let next = tokio::select! {
                        biased;
                        _ = tx.closed() => return Ok(()),
                        next = chunks.next() => next?,
                    };
                    match next {
                        Some(r) => r,
                        None => break,
                    }
                }
            };
            if let Some(e) = r.error() {
                return Err(e);
            }
            for s in &r.results {
                for series in &s.series {
                    for b in batcher.push(s.statement_id, series)? {
                        if tx.send(Ok(b)).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
        }
        if let Some(b) = batcher.flush()? {
            let _ = tx.send(Ok(b)).await;
        }
        Ok(())
    }
    .await;
    drop(chunks);
    drop(slot);
    if let Err(e) = result {
        let _ = tx.send(Err(e)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::first_keyword;

    #[test]
    fn keywords() {
        assert_eq!(first_keyword("\n -- hi\n  select * from m"), "SELECT");
        assert_eq!(first_keyword("SHOW DATABASES"), "SHOW");
        assert_eq!(first_keyword("  "), "");
    }
}
