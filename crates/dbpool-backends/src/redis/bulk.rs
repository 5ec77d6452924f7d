//! Bulk insert into Redis: a DataFrame into hashes or strings (one key per row from a
//! key template) or into one list or stream, written in pipelines of bounded size.
use super::error;
use super::settings::Settings;
use super::target::{parse_target, Kind, Part, Target};
use super::{run_pipe, RedisSession};
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use dbpool_core::normalize::normalize_rows;
use dbpool_core::{BulkInsert, Error, InsertMode, QueryStream, Result};
use futures::StreamExt;
use redis::Value;

/// Rows per pipeline: one round trip each, and bounded request size.
const CHUNK: usize = 1000;

/// One batch's columns as Redis values.
struct Cells<'a> {
    columns: &'a [ArrayRef],
    formatters: Vec<ArrayFormatter<'a>>,
    names: Vec<&'a str>,
}

impl<'a> Cells<'a> {
    fn new(batch: &'a RecordBatch, options: &'a FormatOptions<'a>) -> Result<Self> {
        Ok(Cells {
            columns: batch.columns(),
            formatters: batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), options))
                .collect::<std::result::Result<_, _>>()?,
            names: batch
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect(),
        })
    }

    /// The value of a cell as Redis stores it; `None` for NULL. Text and bytes as they
    /// are, booleans `1`/`0`, floats in shortest round-trip form, the rest as Arrow
    /// displays it (ISO 8601 dates and times).
    fn get(&self, col: usize, row: usize) -> Option<Vec<u8>> {
        let a = &self.columns[col];
        if a.is_null(row) {
            return None;
        }
        Some(match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(row).as_bytes().to_vec(),
            DataType::Binary => a.as_binary::<i32>().value(row).to_vec(),
            DataType::Boolean => if a.as_boolean().value(row) {
                b"1"
            } else {
                b"0"
            }
            .to_vec(),
            DataType::Float64 => {
                let v = a.as_primitive::<arrow::datatypes::Float64Type>().value(row);
                v.to_string().into_bytes()
            }
            DataType::Float32 => {
                let v = a.as_primitive::<arrow::datatypes::Float32Type>().value(row);
                v.to_string().into_bytes()
            }
            _ => self.formatters[col].value(row).to_string().into_bytes(),
        })
    }

    fn required(&self, col: usize, row: usize, base: usize) -> Result<Vec<u8>> {
        self.get(col, row).ok_or_else(|| {
            Error::invalid(
                self.names[col],
                format!("row {} is NULL, which Redis cannot store here", base + row),
            )
        })
    }

    fn key(&self, parts: &[Part], row: usize, base: usize) -> Result<Vec<u8>> {
        let mut key = Vec::new();
        for p in parts {
            match p {
                Part::Lit(l) => key.extend_from_slice(l),
                Part::Col(i) => key.extend(self.required(*i, row, base)?),
            }
        }
        Ok(key)
    }
}

/// Writes `rows` into the target; returns the rows written. Each batch is checked and
/// encoded before any of it is sent, but Redis has no rollback: an error stops the
/// insert with the chunks before it written (docs/redis.md).
pub async fn bulk_insert(
    mut conn: RedisSession,
    settings: &Settings,
    target: BulkInsert,
    rows: QueryStream,
) -> Result<u64> {
    let QueryStream {
        schema,
        mut batches,
    } = normalize_rows(rows)?;
    let t = parse_target(&target.table, &schema, settings.bulk_ttl)?;
    let mut used = vec![match t.kind {
        Kind::Hash => "HSET",
        Kind::Str => "SET",
        Kind::List => "RPUSH",
        Kind::Stream => "XADD",
    }];
    match target.mode {
        InsertMode::Create => used.push("EXISTS"),
        InsertMode::Replace if t.kind != Kind::Str => used.push("DEL"),
        _ => {}
    }
    if t.ttl.is_some() {
        used.push("EXPIRE");
    }
    settings.policy.check_names(&used)?;
    let single = matches!(t.kind, Kind::List | Kind::Stream);
    let single_key = if single { t.key_literal() } else { Vec::new() };
    if single && target.mode == InsertMode::Create {
        refuse_existing(&mut conn, vec![single_key.clone()]).await?;
    }
    let mut pending_del = single && target.mode == InsertMode::Replace;
    let mut written = 0usize;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        for start in (0..batch.num_rows()).step_by(CHUNK) {
            let end = (start + CHUNK).min(batch.num_rows());
            let del = std::mem::take(&mut pending_del).then_some(&single_key[..]);
            let (mut pipe, rows, keys) = encode_chunk(
                &t,
                target.mode,
                &batch,
                start..end,
                written,
                del,
                &single_key,
            )?;
            if target.mode == InsertMode::Create && !single {
                refuse_existing(&mut conn, keys).await?;
            }
            if !rows.is_empty() {
                send(&mut conn, &mut pipe, &rows).await?;
            }
        }
        written += batch.num_rows();
    }
    let mut tail = redis::pipe();
    if pending_del {
        tail.cmd("DEL").arg(&single_key);
    }
    if let (true, Some(ttl)) = (single && written > 0, t.ttl) {
        tail.cmd("EXPIRE").arg(&single_key).arg(ttl);
    }
    if tail.cmd_iter().next().is_some() {
        let n = tail.cmd_iter().count();
        send(&mut conn, &mut tail, &vec![written; n]).await?;
    }
    Ok(written as u64)
}

/// The pipeline of rows `range` of a batch whose first row is row `base` of the insert,
/// the row of each command, and the keys written; `del` is deleted first (Replace).
fn encode_chunk(
    t: &Target,
    mode: InsertMode,
    batch: &RecordBatch,
    range: std::ops::Range<usize>,
    base: usize,
    del: Option<&[u8]>,
    single_key: &[u8],
) -> Result<(redis::Pipeline, Vec<usize>, Vec<Vec<u8>>)> {
    let options = FormatOptions::default();
    let cells = Cells::new(batch, &options)?;
    let mut pipe = redis::pipe();
    let mut rows = Vec::new();
    if let Some(key) = del {
        pipe.cmd("DEL").arg(key);
        rows.push(base + range.start);
    }
    let mut keys = Vec::new();
    for row in range {
        let values: Vec<(usize, Option<Vec<u8>>)> =
            t.values.iter().map(|&c| (c, cells.get(c, row))).collect();
        let n = pipe_row(
            t, mode, &cells, &mut pipe, &mut keys, single_key, row, base, values,
        )?;
        rows.extend(std::iter::repeat_n(base + row, n));
    }
    Ok((pipe, rows, keys))
}

/// Adds the commands of one row; returns how many.
#[allow(clippy::too_many_arguments)]
fn pipe_row(
    t: &Target,
    mode: InsertMode,
    cells: &Cells<'_>,
    pipe: &mut redis::Pipeline,
    keys: &mut Vec<Vec<u8>>,
    single_key: &[u8],
    row: usize,
    base: usize,
    values: Vec<(usize, Option<Vec<u8>>)>,
) -> Result<usize> {
    let name = |c: usize| cells.names[c];
    let present: Vec<(usize, Vec<u8>)> = values
        .into_iter()
        .filter_map(|(c, v)| v.map(|v| (c, v)))
        .collect();
    let mut n = 0;
    match t.kind {
        Kind::Hash => {
            let key = cells.key(&t.key, row, base)?;
            if mode == InsertMode::Replace {
                pipe.cmd("DEL").arg(&key);
                n += 1;
            }
            if !present.is_empty() {
                pipe.cmd("HSET").arg(&key);
                for (c, v) in &present {
                    pipe.arg(name(*c)).arg(v);
                }
                n += 1;
                if let Some(ttl) = t.ttl {
                    pipe.cmd("EXPIRE").arg(&key).arg(ttl);
                    n += 1;
                }
            }
            keys.push(key);
        }
        Kind::Str => {
            let key = cells.key(&t.key, row, base)?;
            let value = cells.required(t.values[0], row, base)?;
            pipe.cmd("SET").arg(&key).arg(value);
            if let Some(ttl) = t.ttl {
                pipe.arg("EX").arg(ttl);
            }
            keys.push(key);
            n += 1;
        }
        Kind::List => {
            let value = cells.required(t.values[0], row, base)?;
            pipe.cmd("RPUSH").arg(single_key).arg(value);
            n += 1;
        }
        Kind::Stream => {
            if present.is_empty() {
                return Err(Error::invalid(
                    "stream",
                    format!(
                        "row {} is all NULL; a stream entry needs a field",
                        base + row
                    ),
                ));
            }
            pipe.cmd("XADD").arg(single_key).arg("*");
            for (c, v) in &present {
                pipe.arg(name(*c)).arg(v);
            }
            n += 1;
        }
    }
    Ok(n)
}

/// Mode Create: refuses when any of `keys` exists (checked before each chunk is sent).
async fn refuse_existing(conn: &mut RedisSession, keys: Vec<Vec<u8>>) -> Result<()> {
    let mut pipe = redis::pipe();
    for k in &keys {
        pipe.cmd("EXISTS").arg(k);
    }
    let found: Vec<i64> = run_pipe(conn, &pipe).await?;
    match found.iter().position(|n| *n > 0) {
        Some(i) => Err(Error::invalid(
            "table",
            format!(
                "key `{}` exists; mode Create writes only new keys",
                String::from_utf8_lossy(&keys[i])
            ),
        )),
        None => Ok(()),
    }
}

/// Sends a pipeline; the first error reply fails the insert, naming its row.
async fn send(conn: &mut RedisSession, pipe: &mut redis::Pipeline, rows: &[usize]) -> Result<()> {
    pipe.ignore_errors();
    let replies: Vec<Value> = run_pipe(conn, pipe).await?;
    for (i, r) in replies.iter().enumerate() {
        if let Value::ServerError(e) = r {
            return Err(match error::server(e) {
                Error::Database { message, code } => Error::Database {
                    message: format!("row {}: {message}", rows[i]),
                    code,
                },
                other => other,
            });
        }
    }
    Ok(())
}
