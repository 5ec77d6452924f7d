//! Pattern reads: `SCAN_KEYS`, `SCAN_STRINGS` and `SCAN_HASHES` walk the keyspace with
//! SCAN (never KEYS), fetch values with pipelines, and stream one row per key in
//! batches; memory stays bounded by one batch plus one SCAN chunk.
use super::columns::{decode, ColType};
use super::command::Command;
use super::reply::unique_name;
use super::{run, run_pipe, RedisSession};
use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, QueryStream, Result};
use futures::StreamExt;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;

/// Which pseudo-command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Keys,
    Strings,
    Hashes,
}

/// A parsed pattern read.
#[derive(Debug, Clone)]
pub struct Spec {
    kind: Kind,
    pattern: Vec<u8>,
    key_type: Option<Vec<u8>>,
    count: Option<u64>,
    fields: Option<Vec<(String, ColType)>>,
}

impl Spec {
    /// The pattern read `cmd` asks for, or `None` when it is an ordinary command.
    pub fn parse(cmd: &Command) -> Result<Option<Spec>> {
        let name = cmd.name();
        let kind = match name.as_str() {
            "SCAN_KEYS" => Kind::Keys,
            "SCAN_STRINGS" => Kind::Strings,
            "SCAN_HASHES" => Kind::Hashes,
            _ => return Ok(None),
        };
        let bad = |m: String| Error::invalid("sql", format!("{name}: {m}"));
        let mut args = cmd.args[1..].iter();
        let pattern = args
            .next()
            .ok_or_else(|| bad("a key pattern is required, e.g. \"user:*\"".into()))?
            .clone();
        let mut spec = Spec {
            kind,
            pattern,
            key_type: None,
            count: None,
            fields: None,
        };
        while let Some(opt) = args.next() {
            let opt = String::from_utf8_lossy(opt).to_ascii_uppercase();
            match (opt.as_str(), kind) {
                ("COUNT", _) => {
                    let n = args
                        .next()
                        .and_then(|n| std::str::from_utf8(n).ok()?.parse().ok());
                    spec.count = Some(
                        n.filter(|n| *n > 0)
                            .ok_or_else(|| bad("COUNT needs a positive number".into()))?,
                    );
                }
                ("TYPE", Kind::Keys) => {
                    spec.key_type = Some(
                        args.next()
                            .ok_or_else(|| bad("TYPE needs a type".into()))?
                            .clone(),
                    );
                }
                ("FIELDS", Kind::Hashes) => {
                    let fields = args.by_ref().map(|f| field_spec(f)).collect::<Vec<_>>();
                    if fields.is_empty() {
                        return Err(bad("FIELDS needs at least one field".into()));
                    }
                    spec.fields = Some(fields);
                }
                _ => return Err(bad(format!("unknown option `{opt}`"))),
            }
        }
        Ok(Some(spec))
    }

    /// The commands the read sends, for the pool's policy.
    pub fn commands(&self) -> &'static [&'static str] {
        match (self.kind, &self.fields) {
            (Kind::Keys, _) => &["SCAN"],
            (Kind::Strings, _) => &["SCAN", "MGET"],
            (Kind::Hashes, Some(_)) => &["SCAN", "HMGET"],
            (Kind::Hashes, None) => &["SCAN", "HGETALL"],
        }
    }

    fn scan_type(&self) -> Option<&[u8]> {
        match self.kind {
            Kind::Keys => self.key_type.as_deref(),
            Kind::Strings => Some(b"string"),
            Kind::Hashes => Some(b"hash"),
        }
    }
}

/// `name` or `name:type`; a suffix that is no type belongs to the name (`a:b`).
fn field_spec(f: &[u8]) -> (String, ColType) {
    let f = String::from_utf8_lossy(f).into_owned();
    match f.rsplit_once(':') {
        Some((name, t)) if !name.is_empty() => match ColType::parse(t) {
            Some(t) => (name.to_string(), t),
            None => (f, ColType::Utf8),
        },
        _ => (f, ColType::Utf8),
    }
}

/// The values of one key, before the columns are known.
enum Values {
    None,
    /// Aligned with the columns after `key`.
    Cells(Vec<Option<Vec<u8>>>),
    /// Every field of a hash (no FIELDS list).
    Pairs(Vec<(Vec<u8>, Vec<u8>)>),
}

struct Row {
    key: Vec<u8>,
    values: Values,
}

/// Walks SCAN and fetches values for the keys of each chunk.
struct Scanner {
    conn: RedisSession,
    spec: Spec,
    count: u64,
    cursor: Option<Vec<u8>>,
    rows: VecDeque<Row>,
}

impl Scanner {
    /// Up to `n` rows; fewer only when the scan is complete.
    async fn next_rows(&mut self, n: usize) -> Result<Vec<Row>> {
        while self.rows.len() < n {
            let Some(cursor) = self.cursor.take() else {
                break;
            };
            let mut scan = redis::cmd("SCAN");
            scan.arg(&cursor[..])
                .arg("MATCH")
                .arg(&self.spec.pattern[..])
                .arg("COUNT")
                .arg(self.spec.count.unwrap_or(self.count));
            if let Some(t) = self.spec.scan_type() {
                scan.arg("TYPE").arg(t);
            }
            let (next, keys): (Vec<u8>, Vec<Vec<u8>>) = run(&mut self.conn, &scan).await?;
            self.cursor = (next != b"0").then_some(next);
            if !keys.is_empty() {
                self.fetch(keys).await?;
            }
        }
        let n = n.min(self.rows.len());
        Ok(self.rows.drain(..n).collect())
    }

    async fn fetch(&mut self, keys: Vec<Vec<u8>>) -> Result<()> {
        match (self.spec.kind, &self.spec.fields) {
            (Kind::Keys, _) => self.rows.extend(keys.into_iter().map(|key| Row {
                key,
                values: Values::None,
            })),
            (Kind::Strings, _) => {
                let mut mget = redis::cmd("MGET");
                mget.arg(&keys);
                let values: Vec<Option<Vec<u8>>> = run(&mut self.conn, &mget).await?;
                for (key, v) in keys.into_iter().zip(values) {
                    // A key deleted since SCAN saw it is left out.
                    if v.is_some() {
                        self.rows.push_back(Row {
                            key,
                            values: Values::Cells(vec![v]),
                        });
                    }
                }
            }
            (Kind::Hashes, Some(fields)) => {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("HMGET").arg(&k[..]);
                    for (f, _) in fields {
                        pipe.arg(f);
                    }
                }
                let values: Vec<Vec<Option<Vec<u8>>>> = run_pipe(&mut self.conn, &pipe).await?;
                self.rows
                    .extend(keys.into_iter().zip(values).map(|(key, cells)| Row {
                        key,
                        values: Values::Cells(cells),
                    }));
            }
            (Kind::Hashes, None) => {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("HGETALL").arg(&k[..]);
                }
                let hashes: Vec<redis::Value> = run_pipe(&mut self.conn, &pipe).await?;
                for (key, hash) in keys.into_iter().zip(hashes) {
                    let pairs = hash_pairs(hash)?;
                    if !pairs.is_empty() {
                        self.rows.push_back(Row {
                            key,
                            values: Values::Pairs(pairs),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// The fields of an HGETALL reply: a RESP3 map or a flat RESP2 array.
fn hash_pairs(v: redis::Value) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    use redis::Value as V;
    let bytes = |v: V| match v {
        V::BulkString(b) => Ok(b),
        V::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(Error::Internal(format!("HGETALL replied {other:?}"))),
    };
    match v {
        V::Map(pairs) => pairs
            .into_iter()
            .map(|(f, v)| Ok((bytes(f)?, bytes(v)?)))
            .collect(),
        V::Array(items) => {
            let mut it = items.into_iter();
            let mut out = Vec::new();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                out.push((bytes(f)?, bytes(v)?));
            }
            Ok(out)
        }
        other => Err(Error::Internal(format!("HGETALL replied {other:?}"))),
    }
}

/// Columns after `key`: names, their types and, without FIELDS, nothing else.
type Columns = Vec<(String, ColType)>;

/// Reads the first batch and derives the columns from it (or from FIELDS).
async fn open(
    conn: RedisSession,
    spec: Spec,
    batch_size: usize,
    scan_count: u64,
) -> Result<(SchemaRef, Columns, Scanner, Vec<Row>)> {
    let mut s = Scanner {
        conn,
        count: scan_count,
        cursor: Some(b"0".to_vec()),
        rows: VecDeque::new(),
        spec,
    };
    let first = s.next_rows(batch_size).await?;
    let not_utf8 = |name: &[u8]| {
        first.iter().any(|r| match &r.values {
            Values::Cells(c) => c.iter().flatten().any(|v| std::str::from_utf8(v).is_err()),
            Values::Pairs(p) => p
                .iter()
                .any(|(f, v)| f == name && std::str::from_utf8(v).is_err()),
            Values::None => false,
        })
    };
    let text_or_binary = |name: &[u8]| {
        if not_utf8(name) {
            ColType::Binary
        } else {
            ColType::Utf8
        }
    };
    let columns: Columns = match (s.spec.kind, &s.spec.fields) {
        (Kind::Keys, _) => Vec::new(),
        (Kind::Strings, _) => vec![("value".into(), text_or_binary(b""))],
        (Kind::Hashes, Some(f)) => f.clone(),
        (Kind::Hashes, None) => {
            let names: BTreeSet<&[u8]> = first
                .iter()
                .flat_map(|r| match &r.values {
                    Values::Pairs(p) => p.iter().map(|(f, _)| &f[..]).collect(),
                    _ => Vec::new(),
                })
                .collect();
            names
                .into_iter()
                .map(|n| (String::from_utf8_lossy(n).into_owned(), text_or_binary(n)))
                .collect()
        }
    };
    let mut fields = vec![Field::new("key", DataType::Utf8, false)];
    let mut taken = vec!["key".to_string()];
    for (n, t) in &columns {
        let name = unique_name(&taken, n);
        taken.push(name.clone());
        fields.push(Field::new(name, t.arrow(), true));
    }
    Ok((Arc::new(Schema::new(fields)), columns, s, first))
}

/// The schema of a pattern read (from its first batch).
pub async fn schema(
    conn: RedisSession,
    spec: Spec,
    batch_size: usize,
    count: u64,
) -> Result<SchemaRef> {
    Ok(open(conn, spec, batch_size, count).await?.0)
}

/// Starts a pattern read: the first batch is read now, the rest streams from a task
/// that owns the connection.
pub async fn start(
    conn: RedisSession,
    spec: Spec,
    batch_size: usize,
    scan_count: u64,
) -> Result<QueryStream> {
    let batch_size = batch_size.max(1);
    let (schema, columns, mut scanner, first) = open(conn, spec, batch_size, scan_count).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let sch = schema.clone();
    tokio::spawn(async move {
        let mut rows = first;
        while !rows.is_empty() {
            if tx.send(to_batch(&sch, &columns, rows)).await.is_err() {
                return; // the caller went away
            }
            rows = match scanner.next_rows(batch_size).await {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
        }
    });
    Ok(QueryStream {
        schema,
        batches: ReceiverStream::new(rx).boxed(),
    })
}

fn to_batch(schema: &SchemaRef, columns: &Columns, rows: Vec<Row>) -> Result<RecordBatch> {
    let mut keys = Vec::with_capacity(rows.len());
    let mut cells: Vec<Vec<Option<Vec<u8>>>> = vec![Vec::with_capacity(rows.len()); columns.len()];
    for row in rows {
        let key = String::from_utf8(row.key)
            .map_err(|e| Error::invalid("sql", format!("key {:?} is not UTF-8", e.as_bytes())))?;
        match row.values {
            Values::None => {}
            Values::Cells(c) => {
                for (col, v) in cells.iter_mut().zip(c) {
                    col.push(v);
                }
            }
            Values::Pairs(pairs) => {
                for col in cells.iter_mut() {
                    col.push(None);
                }
                for (f, v) in pairs {
                    let f = String::from_utf8_lossy(&f);
                    let i = columns.iter().position(|(n, _)| *n == f).ok_or_else(|| {
                        Error::invalid(
                            "sql",
                            format!(
                                "hash `{key}` has field `{f}` that the first batch did not \
                                 have; list the columns with FIELDS f1 f2 …"
                            ),
                        )
                    })?;
                    *cells[i].last_mut().expect("pushed above") = Some(v);
                }
            }
        }
        keys.push(key);
    }
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from(keys.clone()))];
    for ((name, t), col) in columns.iter().zip(cells) {
        arrays.push(decode(name, *t, &keys, col)?);
    }
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        let p = |l: &str| Spec::parse(&Command::parse(l, vec![]).unwrap());
        assert!(p("GET k").unwrap().is_none());
        let s = p(r#"scan_hashes "user:*" COUNT 50 FIELDS id:int64 name a:b"#)
            .unwrap()
            .unwrap();
        assert_eq!(s.count, Some(50));
        assert_eq!(
            s.fields.unwrap(),
            vec![
                ("id".to_string(), ColType::Int64),
                ("name".to_string(), ColType::Utf8),
                ("a:b".to_string(), ColType::Utf8)
            ]
        );
        assert!(p("SCAN_HASHES").is_err());
        assert!(p("SCAN_KEYS x FIELDS a").is_err());
        assert!(p("SCAN_KEYS x COUNT 0").is_err());
        assert_eq!(
            p("SCAN_KEYS x TYPE list").unwrap().unwrap().scan_type(),
            Some(&b"list"[..])
        );
    }
}
