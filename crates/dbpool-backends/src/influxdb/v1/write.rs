//! `execute` (InfluxQL statements or line protocol, told apart by shape) and bulk insert
//! (record batches as line protocol, POSTed `write_batch_lines` lines at a time).
use super::query::first_keyword;
use super::{quote_ident, Client};
use crate::influxdb::bulk::{Plan, Target};
use dbpool_core::{BulkInsert, Error, InsertMode, Param, QueryStream, Result};
use futures::StreamExt;

/// Statement keywords of InfluxQL 1.x (the parser's own list).
const KEYWORDS: &[&str] = &[
    "SELECT", "DELETE", "SHOW", "CREATE", "DROP", "EXPLAIN", "GRANT", "REVOKE", "ALTER", "SET",
    "KILL",
];

/// Whether `text` is InfluxQL: it starts with a statement keyword and its second word
/// has no `=` (line protocol's `drop value=1` is a point of measurement `drop`).
pub fn is_influxql(text: &str) -> bool {
    let keyword = first_keyword(text);
    if !KEYWORDS.contains(&keyword.as_str()) {
        return false;
    }
    let second = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("--"))
        .and_then(|l| l.split_whitespace().nth(1));
    !second.is_some_and(|w| w.contains('='))
}

/// Runs InfluxQL (rows: points written by `SELECT … INTO`, else 0) or writes line
/// protocol in the pool's precision (rows: the points sent).
pub async fn execute(client: &Client, text: &str, params: &[Param]) -> Result<u64> {
    if text.trim().is_empty() {
        return Err(Error::invalid("sql", "is empty"));
    }
    let influxql = is_influxql(text);
    if influxql {
        client.cfg.policy.check(text)?;
    }
    let _slot = client.slot().await?;
    if influxql {
        let r = client.query_all(text, params).await?;
        // SELECT … INTO answers with a `result` series: [time, written].
        let written = r
            .results
            .iter()
            .flat_map(|s| &s.series)
            .filter(|s| s.columns.iter().any(|c| c == "written"))
            .flat_map(|s| {
                let j = s.columns.iter().position(|c| c == "written").unwrap_or(0);
                s.values.iter().filter_map(move |row| row.get(j)?.as_u64())
            })
            .sum();
        return Ok(written);
    }
    if !params.is_empty() {
        return Err(Error::invalid(
            "params",
            "line protocol takes no parameters (only InfluxQL statements do)",
        ));
    }
    let points = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count() as u64;
    client
        .write(text.to_string(), &client.cfg.precision)
        .await?;
    Ok(points)
}

/// Adds to an error how many rows went in before it: bulk insert is not atomic.
fn after(e: Error, written: u64) -> Error {
    if written == 0 {
        return e;
    }
    e.noted(&format!(" ({written} rows were written before this error)"))
}

/// Whether the measurement has any series.
async fn exists(client: &Client, measurement: &str) -> Result<bool> {
    let _slot = client.slot().await?;
    let r = client
        .query_all(
            &format!(
                "SHOW MEASUREMENTS WITH MEASUREMENT = {}",
                quote_ident(measurement)
            ),
            &[],
        )
        .await?;
    Ok(r.results
        .iter()
        .flat_map(|s| &s.series)
        .any(|s| !s.values.is_empty()))
}

/// Writes the batches into `target.table` (see `Target` for its syntax); `Create`
/// refuses an existing measurement, `Replace` drops it first. Returns the points
/// written (rows whose fields are all NULL are skipped).
pub async fn bulk_insert(client: &Client, target: BulkInsert, rows: QueryStream) -> Result<u64> {
    let QueryStream {
        schema,
        mut batches,
    } = rows;
    let t = Target::parse(&target.table, &client.cfg)?;
    let plan = Plan::new(&t, &schema)?;
    if client.cfg.database.is_empty() {
        return Err(Error::invalid(
            "url",
            "bulk insert needs a database: add it to the pool URL (influxdb://host:8086/db)",
        ));
    }
    match target.mode {
        InsertMode::Append => {}
        InsertMode::Create => {
            if exists(client, &t.measurement).await? {
                return Err(Error::Database {
                    message: format!("measurement `{}` already exists", t.measurement),
                    code: None,
                });
            }
        }
        InsertMode::Replace => {
            let drop = format!("DROP MEASUREMENT {}", quote_ident(&t.measurement));
            // The operator may have denied dropping: replace must not get round it.
            client.cfg.policy.check(&drop)?;
            let _slot = client.slot().await?;
            client.query_all(&drop, &[]).await?;
        }
    }
    let per_post = client.cfg.write_batch_lines;
    let (mut buf, mut lines, mut written, mut seen) = (String::new(), 0usize, 0u64, 0u64);
    let post = |body: String| async move {
        // A slot per POST: a slow sender does not hold one while the client uploads.
        let _slot = client.slot().await?;
        client.write(body, "ns").await
    };
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(|e| after(e, written))?;
        let rows = plan.prepare(&batch, seen).map_err(|e| after(e, written))?;
        for row in 0..batch.num_rows() {
            if rows
                .write_row(row, &mut buf)
                .map_err(|e| after(e, written))?
            {
                lines += 1;
            }
            if lines == per_post {
                post(std::mem::take(&mut buf))
                    .await
                    .map_err(|e| after(e, written))?;
                written += lines as u64;
                lines = 0;
            }
        }
        seen += batch.num_rows() as u64;
    }
    if lines > 0 {
        post(buf).await.map_err(|e| after(e, written))?;
        written += lines as u64;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::is_influxql;

    #[test]
    fn statements_and_line_protocol_by_shape() {
        for q in [
            "CREATE DATABASE x",
            "drop measurement m",
            "  SELECT * INTO b FROM a",
            "SET PASSWORD FOR u = 'p'",
            "-- note\nDELETE FROM m WHERE time < now()",
            "SHOW DATABASES",
        ] {
            assert!(is_influxql(q), "{q}");
        }
        for l in [
            "cpu,host=a value=1 1",
            "drop value=1",
            "create,x=1 f=2",
            "select f=1i",
            "m f=1\nm f=2",
        ] {
            assert!(!is_influxql(l), "{l}");
        }
    }
}
