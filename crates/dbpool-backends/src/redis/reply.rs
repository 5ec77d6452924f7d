//! A Redis reply as an Arrow table: scalars one row `value`, arrays one row per element,
//! maps `field`/`value`, `WITHSCORES` `member`/`score`, stream entries `id` + fields.
//! The same shapes come out of RESP2 and RESP3 (docs/redis.md has the table).
use super::command::Command;
use super::error;
use arrow::array::{ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, Result};
use redis::Value;
use std::sync::Arc;

/// The table of one command's reply.
pub fn to_batch(cmd: &Command, reply: Value) -> Result<RecordBatch> {
    let reply = unwrap_attr(reply);
    let name = cmd.name();
    let scores = name.starts_with('Z')
        && (cmd.has_flag("WITHSCORES") || name == "ZPOPMIN" || name == "ZPOPMAX");
    let reply = if scores {
        match pairs_of(reply) {
            Ok(pairs) => return score_table(pairs),
            Err(v) => v,
        }
    } else {
        reply
    };
    let is_map = matches!(reply, Value::Map(_))
        || name == "HGETALL"
        || (name == "HRANDFIELD" && cmd.has_flag("WITHVALUES"))
        || (name == "CONFIG" && cmd.sub().as_deref() == Some("GET"));
    let reply = if is_map {
        match pairs_of(reply) {
            Ok(pairs) => {
                let (fields, values) = pairs.into_iter().unzip();
                return table(vec![("field".into(), fields), ("value".into(), values)]);
            }
            Err(v) => v,
        }
    } else {
        reply
    };
    let reply = if name == "XRANGE" || name == "XREVRANGE" {
        match entries(reply) {
            Ok(batch) => return batch,
            Err(v) => v,
        }
    } else {
        reply
    };
    match reply {
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            table(vec![("value".into(), items)])
        }
        scalar => table(vec![("value".into(), vec![scalar])]),
    }
}

/// What `execute` reports for a reply: the integer (0 when negative), OK and other
/// strings 1, nil 0, booleans 1/0, aggregates their length.
pub fn affected(v: &Value) -> u64 {
    match v {
        Value::Int(n) => (*n).max(0) as u64,
        Value::Nil => 0,
        Value::Boolean(b) => u64::from(*b),
        Value::Array(a) | Value::Set(a) | Value::Push { data: a, .. } => a.len() as u64,
        Value::Map(m) => m.len() as u64,
        Value::Attribute { data, .. } => affected(data),
        _ => 1,
    }
}

fn unwrap_attr(v: Value) -> Value {
    match v {
        Value::Attribute { data, .. } => unwrap_attr(*data),
        v => v,
    }
}

/// Pairs from a RESP3 map, an array of two-element arrays, or a flat RESP2 array of
/// even length; anything else is handed back.
fn pairs_of(v: Value) -> std::result::Result<Vec<(Value, Value)>, Value> {
    match v {
        Value::Map(pairs) => Ok(pairs),
        Value::Array(items) => {
            let nested = items
                .iter()
                .all(|i| matches!(i, Value::Array(p) if p.len() == 2));
            if nested && !items.is_empty() {
                return Ok(items
                    .into_iter()
                    .map(|i| match i {
                        Value::Array(mut p) => {
                            let b = p.pop().unwrap_or_default();
                            (p.pop().unwrap_or_default(), b)
                        }
                        _ => unreachable!("checked above"),
                    })
                    .collect());
            }
            let flat = items.len() % 2 == 0 && !items.iter().any(is_aggregate);
            if !flat {
                return Err(Value::Array(items));
            }
            let mut it = items.into_iter();
            let mut pairs = Vec::new();
            while let (Some(a), Some(b)) = (it.next(), it.next()) {
                pairs.push((a, b));
            }
            Ok(pairs)
        }
        other => Err(other),
    }
}

fn is_aggregate(v: &Value) -> bool {
    matches!(
        v,
        Value::Array(_) | Value::Set(_) | Value::Map(_) | Value::Push { .. }
    )
}

fn score_table(pairs: Vec<(Value, Value)>) -> Result<RecordBatch> {
    let (members, scores): (Vec<Value>, Vec<Value>) = pairs.into_iter().unzip();
    let scores = scores
        .into_iter()
        .map(|s| match unwrap_attr(s) {
            Value::Double(f) => Ok(Some(f)),
            Value::Int(i) => Ok(Some(i as f64)),
            Value::Nil => Ok(None),
            Value::BulkString(b) => parse_f64(&b).map(Some),
            Value::SimpleString(s) => parse_f64(s.as_bytes()).map(Some),
            other => Err(Error::Internal(format!("a score reply of {other:?}"))),
        })
        .collect::<Result<Float64Array>>()?;
    let member = column(members)?;
    let schema = Schema::new(vec![
        Field::new("member", member.data_type().clone(), true),
        Field::new("score", DataType::Float64, true),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![member, Arc::new(scores)],
    )?)
}

fn parse_f64(b: &[u8]) -> Result<f64> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Internal(format!("score {:?} is not a number", bytes_text(b))))
}

/// Stream entries `[[id, [f, v, …]], …]` as `id` plus one column per field, in the
/// order fields first appear; anything else is handed back.
fn entries(v: Value) -> std::result::Result<Result<RecordBatch>, Value> {
    let Value::Array(items) = v else {
        return Err(v);
    };
    let ok = items.iter().all(|e| {
        matches!(e, Value::Array(p) if p.len() == 2
            && matches!(p[1], Value::Array(_) | Value::Map(_)))
    });
    if !ok {
        return Err(Value::Array(items));
    }
    let mut ids = Vec::with_capacity(items.len());
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut cols: Vec<Vec<Value>> = Vec::new();
    for (row, e) in items.into_iter().enumerate() {
        let Value::Array(mut p) = e else {
            unreachable!("checked above")
        };
        let fields = p.pop().unwrap_or_default();
        ids.push(p.pop().unwrap_or_default());
        let pairs = pairs_of(fields).unwrap_or_default();
        for (f, v) in pairs {
            let f = text_of(&f);
            let i = match names.iter().position(|n| *n == f) {
                Some(i) => i,
                None => {
                    names.push(f);
                    cols.push(vec![Value::Nil; row]);
                    names.len() - 1
                }
            };
            cols[i].resize(row, Value::Nil);
            cols[i].push(v);
        }
        for c in &mut cols {
            c.resize(row + 1, Value::Nil);
        }
    }
    let mut all = vec![("id".to_string(), ids)];
    all.extend(
        names
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .zip(cols),
    );
    Ok(table(all))
}

/// `name`, or `name_` (`name__`, …) when an earlier column has it: a field called `id`
/// next to a stream's `id` column, or `key` in a pattern read.
pub fn unique_name(taken: &[String], name: &str) -> String {
    let mut name = name.to_string();
    while taken.contains(&name) {
        name.push('_');
    }
    name
}

/// A batch of named columns of reply values, each typed by `column`.
fn table(cols: Vec<(String, Vec<Value>)>) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(cols.len());
    let mut arrays = Vec::with_capacity(cols.len());
    let mut taken = Vec::with_capacity(cols.len());
    for (name, values) in cols {
        let array = column(values)?;
        let name = unique_name(&taken, &name);
        taken.push(name.clone());
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// One column of reply values: Int64 when all are integers, Float64 when numbers,
/// Boolean when booleans, Utf8 when text, Binary when any string is not UTF-8; mixed or
/// nested values become their text (aggregates as JSON). Nil is NULL.
pub fn column(values: Vec<Value>) -> Result<ArrayRef> {
    let values: Vec<Value> = values.into_iter().map(unwrap_attr).collect();
    if let Some(Value::ServerError(e)) = values.iter().find(|v| matches!(v, Value::ServerError(_)))
    {
        return Err(error::server(e));
    }
    let present = || values.iter().filter(|v| !matches!(v, Value::Nil));
    if present().next().is_some() && present().all(|v| matches!(v, Value::Int(_))) {
        let a: Int64Array = values.iter().map(as_int).collect();
        return Ok(Arc::new(a));
    }
    if present().next().is_some()
        && present().all(|v| matches!(v, Value::Int(_) | Value::Double(_)))
    {
        let a: Float64Array = values
            .iter()
            .map(|v| match v {
                Value::Double(f) => Some(*f),
                other => as_int(other).map(|i| i as f64),
            })
            .collect();
        return Ok(Arc::new(a));
    }
    if present().next().is_some() && present().all(|v| matches!(v, Value::Boolean(_))) {
        let a: BooleanArray = values
            .iter()
            .map(|v| match v {
                Value::Boolean(b) => Some(*b),
                _ => None,
            })
            .collect();
        return Ok(Arc::new(a));
    }
    let texts: Vec<Option<Vec<u8>>> = values
        .iter()
        .map(|v| (!matches!(v, Value::Nil)).then(|| text_of(v)))
        .collect();
    if texts
        .iter()
        .flatten()
        .all(|t| std::str::from_utf8(t).is_ok())
    {
        let a: StringArray = texts
            .iter()
            .map(|t| {
                t.as_deref()
                    .map(|b| std::str::from_utf8(b).expect("checked"))
            })
            .collect();
        return Ok(Arc::new(a));
    }
    let a: BinaryArray = texts.iter().map(|t| t.as_deref()).collect();
    Ok(Arc::new(a))
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

/// The bytes of a scalar, or the JSON text of an aggregate.
fn text_of(v: &Value) -> Vec<u8> {
    match v {
        Value::BulkString(b) => b.clone(),
        Value::SimpleString(s) => s.clone().into_bytes(),
        Value::Okay => b"OK".to_vec(),
        Value::VerbatimString { text, .. } => text.clone().into_bytes(),
        Value::Int(i) => i.to_string().into_bytes(),
        Value::Double(f) => f.to_string().into_bytes(),
        Value::Boolean(b) => b.to_string().into_bytes(),
        Value::BigNumber(n) => big_number(n).into_bytes(),
        other => json(other).to_string().into_bytes(),
    }
}

#[allow(clippy::ptr_arg)] // the driver's BigNumber is `Vec<u8>` without num-bigint
fn big_number(n: &Vec<u8>) -> String {
    String::from_utf8_lossy(n).into_owned()
}

fn bytes_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A reply as JSON, for values nested too deep for a column (bytes that are not UTF-8
/// are replaced lossily).
fn json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Int(i) => J::from(*i),
        Value::Double(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Boolean(b) => J::Bool(*b),
        Value::Array(a) | Value::Set(a) | Value::Push { data: a, .. } => {
            J::Array(a.iter().map(json).collect())
        }
        Value::Map(pairs) => {
            let keys: Option<Vec<String>> = pairs
                .iter()
                .map(|(k, _)| String::from_utf8(text_of(k)).ok())
                .collect();
            match keys {
                Some(keys) => J::Object(
                    keys.into_iter()
                        .zip(pairs.iter().map(|(_, v)| json(v)))
                        .collect(),
                ),
                None => J::Array(
                    pairs
                        .iter()
                        .map(|(k, v)| J::Array(vec![json(k), json(v)]))
                        .collect(),
                ),
            }
        }
        Value::Attribute { data, .. } => json(data),
        Value::ServerError(e) => J::String(e.to_string()),
        scalar => J::String(bytes_text(&text_of(scalar))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    fn cmd(line: &str) -> Command {
        Command::parse(line, vec![]).unwrap()
    }
    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn shapes() {
        let b = to_batch(&cmd("GET k"), Value::Nil).unwrap();
        assert_eq!(
            (b.num_rows(), b.schema().field(0).name().as_str()),
            (1, "value")
        );
        assert!(b.column(0).is_null(0));
        let flat = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]);
        let b = to_batch(&cmd("HGETALL h"), flat.clone()).unwrap();
        assert_eq!(b.schema().field(1).name(), "value");
        assert_eq!(b.num_rows(), 2);
        let b = to_batch(&cmd("ZRANGE z 0 -1 WITHSCORES"), flat.clone()).unwrap();
        assert_eq!(b.schema().field(1).data_type(), &DataType::Float64);
        let b = to_batch(&cmd("LRANGE l 0 -1"), flat).unwrap();
        assert_eq!(b.num_rows(), 4);
        let mixed = Value::Array(vec![
            Value::Int(1),
            bulk("x"),
            Value::Array(vec![bulk("y")]),
        ]);
        let b = to_batch(&cmd("X"), mixed).unwrap();
        let s = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((s.value(0), s.value(2)), ("1", "[\"y\"]"));
        let bin = Value::Array(vec![Value::BulkString(vec![0xff]), bulk("a")]);
        let b = to_batch(&cmd("MGET a b"), bin).unwrap();
        assert_eq!(b.schema().field(0).data_type(), &DataType::Binary);
    }

    #[test]
    fn stream_entries() {
        let e = |id: &str, f: &[&str]| {
            Value::Array(vec![
                bulk(id),
                Value::Array(f.iter().map(|s| bulk(s)).collect()),
            ])
        };
        let reply = Value::Array(vec![e("1-0", &["a", "1"]), e("2-0", &["b", "2", "a", "3"])]);
        let b = to_batch(&cmd("XRANGE s - +"), reply).unwrap();
        let names: Vec<_> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["id", "a", "b"]);
        assert!(b.column(2).is_null(0));
    }
}
