//! InfluxQL JSON → Arrow: the schema chosen from the first series and the measurement's
//! field keys, and builders that flatten every series into rows of bounded batches.
//!
//! Columns: `_measurement`, then the series' `GROUP BY` tags (both dictionary-encoded:
//! constant within a series), then the series' own columns. JSON carries no field types
//! and prints the float 1.0 as `1`, so a column named like a field key takes the key's
//! type (`SHOW FIELD KEYS`); anything else is inferred from the first chunk's values.
use super::chunked::Series;
use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use dbpool_core::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Name of the column holding the series' measurement.
pub const MEASUREMENT: &str = "_measurement";

/// What a value column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `time`, nanoseconds since the epoch (the query asks for `epoch=ns`).
    Time,
    /// float fields, and numbers of unknown origin.
    Float,
    /// integer fields, `count` and the numbers of SHOW statements.
    Int,
    /// string fields and tags selected as columns.
    Str,
    /// boolean fields.
    Bool,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Time => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            Kind::Float => DataType::Float64,
            Kind::Int => DataType::Int64,
            Kind::Str => DataType::Utf8,
            Kind::Bool => DataType::Boolean,
        }
    }

    /// The Arrow kind of an InfluxDB field type (`SHOW FIELD KEYS`).
    pub fn of_field_type(t: &str) -> Option<Kind> {
        Some(match t {
            "float" => Kind::Float,
            "integer" | "unsigned" => Kind::Int,
            "string" => Kind::Str,
            "boolean" => Kind::Bool,
            _ => return None,
        })
    }
}

/// The fixed columns of a result.
#[derive(Debug)]
pub struct Shape {
    /// The Arrow schema.
    pub schema: SchemaRef,
    tags: Vec<String>,
    values: Vec<(String, Kind)>,
}

/// Chooses the kind of value column `name` from its field type and sample values.
fn choose(name: &str, field: Option<Kind>, sample: &[&Value], select: bool) -> Kind {
    if name == "time" && select {
        return Kind::Time;
    }
    let (mut text, mut boolean, mut frac, mut int) = (false, false, false, false);
    for v in sample {
        match v {
            Value::Null => {}
            Value::Bool(_) => boolean = true,
            Value::Number(n) if n.is_f64() => frac = true,
            Value::Number(_) => int = true,
            _ => text = true,
        }
    }
    let numbers = frac || int;
    match field {
        // An integer field aggregated into floats (`mean(i) AS i`) follows the values.
        Some(Kind::Int) if frac => return Kind::Float,
        Some(k @ (Kind::Float | Kind::Int)) if !text && !boolean => return k,
        Some(Kind::Str) if !numbers && !boolean => return Kind::Str,
        Some(Kind::Bool) if !numbers && !text => return Kind::Bool,
        _ => {}
    }
    if text {
        Kind::Str
    } else if boolean && !numbers {
        Kind::Bool
    } else if frac {
        Kind::Float
    } else if int && (!select || name == "count" || name.starts_with("count_")) {
        Kind::Int
    } else if int || select {
        // A whole number of unknown origin may be a float printed without fraction.
        Kind::Float
    } else {
        Kind::Str
    }
}

impl Shape {
    /// The shape of a result from its first series, the series read so far (`sample`)
    /// and the field types of its measurement. `select`: the query is a SELECT.
    pub fn resolve(
        first: &Series,
        sample: &[&Series],
        fields: &HashMap<String, Kind>,
        select: bool,
    ) -> Shape {
        let tags: Vec<String> = first.tags.keys().cloned().collect();
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        // Nullable: some SHOW statements (SHOW QUERIES) return series without a name.
        let mut schema = vec![Field::new(MEASUREMENT, dict.clone(), true)];
        schema.extend(tags.iter().map(|t| Field::new(t, dict.clone(), true)));
        let mut values = Vec::new();
        for (j, name) in first.columns.iter().enumerate() {
            let column: Vec<&Value> = sample
                .iter()
                .filter(|s| s.columns.get(j) == Some(name))
                .flat_map(|s| s.values.iter().filter_map(move |row| row.get(j)))
                .collect();
            let kind = choose(name, fields.get(name).copied(), &column, select);
            schema.push(Field::new(name, kind.data_type(), true));
            values.push((name.clone(), kind));
        }
        Shape {
            schema: Arc::new(Schema::new(schema)),
            tags,
            values,
        }
    }

    /// A result without series: no columns at all.
    pub fn empty() -> Shape {
        Shape {
            schema: Arc::new(Schema::empty()),
            tags: vec![],
            values: vec![],
        }
    }
}

enum Builder {
    Dict(StringDictionaryBuilder<Int32Type>),
    Time(TimestampNanosecondBuilder),
    Float(Float64Builder),
    Int(Int64Builder),
    Str(StringBuilder),
    Bool(BooleanBuilder),
}

impl Builder {
    fn new(kind: Option<Kind>, cap: usize) -> Builder {
        match kind {
            None => Builder::Dict(StringDictionaryBuilder::new()),
            Some(Kind::Time) => {
                Builder::Time(TimestampNanosecondBuilder::with_capacity(cap).with_timezone("UTC"))
            }
            Some(Kind::Float) => Builder::Float(Float64Builder::with_capacity(cap)),
            Some(Kind::Int) => Builder::Int(Int64Builder::with_capacity(cap)),
            Some(Kind::Str) => Builder::Str(StringBuilder::with_capacity(cap, cap * 8)),
            Some(Kind::Bool) => Builder::Bool(BooleanBuilder::with_capacity(cap)),
        }
    }

    /// Appends a JSON value; the message says what did not fit.
    fn push(&mut self, v: Option<&Value>) -> std::result::Result<(), String> {
        let v = v.unwrap_or(&Value::Null);
        let bad = || Err(format!("value {v} does not fit"));
        match (self, v) {
            (Builder::Dict(b), Value::Null) => b.append_null(),
            // No name, or a series without this tag.
            (Builder::Dict(b), Value::String(s)) if s.is_empty() => b.append_null(),
            (Builder::Dict(b), Value::String(s)) => b.append_value(s),
            (Builder::Time(b), Value::Null) => b.append_null(),
            (Builder::Time(b), Value::Number(n)) => match n.as_i64() {
                Some(t) => b.append_value(t),
                None => return bad(),
            },
            (Builder::Float(b), Value::Null) => b.append_null(),
            (Builder::Float(b), Value::Number(n)) => b.append_option(n.as_f64()),
            (Builder::Int(b), Value::Null) => b.append_null(),
            (Builder::Int(b), Value::Number(n)) => match n.as_i64() {
                Some(i) => b.append_value(i),
                None => {
                    return Err(format!(
                        "value {v} does not fit Int64 (the column was typed from the field's \
                         type or the first rows; alias the expression to change that)"
                    ))
                }
            },
            (Builder::Str(b), Value::Null) => b.append_null(),
            (Builder::Str(b), Value::String(s)) => b.append_value(s),
            (Builder::Str(b), other) => b.append_value(other.to_string()),
            (Builder::Bool(b), Value::Null) => b.append_null(),
            (Builder::Bool(b), Value::Bool(x)) => b.append_value(*x),
            _ => return bad(),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Dict(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Builder::Dict(b) => b.len(),
            Builder::Time(b) => b.len(),
            Builder::Float(b) => b.len(),
            Builder::Int(b) => b.len(),
            Builder::Str(b) => b.len(),
            Builder::Bool(b) => b.len(),
        }
    }
}

/// Flattens series into record batches of `batch_size` rows.
pub struct Batcher {
    shape: Shape,
    builders: Vec<Builder>,
    batch_size: usize,
}

impl Batcher {
    /// Builders for `shape`.
    pub fn new(shape: Shape, batch_size: usize) -> Batcher {
        let batch_size = batch_size.max(1);
        let cap = batch_size.min(65_536);
        let builders = std::iter::repeat_n(None, 1 + shape.tags.len())
            .chain(shape.values.iter().map(|(_, k)| Some(*k)))
            .map(|k| Builder::new(k, cap))
            .collect();
        Batcher {
            shape,
            builders,
            batch_size,
        }
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.shape.schema.clone()
    }

    /// Appends the rows of `s`, returning the batches that filled up.
    pub fn push(&mut self, statement: usize, s: &Series) -> Result<Vec<RecordBatch>> {
        let shape_error = |what: String| {
            Error::Unsupported(format!(
                "statement {statement}, series `{}`: {what}; the result's columns were fixed by \
                 its first series ({}), so run statements with other columns separately",
                s.name,
                self.shape
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        if let Some(t) = s.tags.keys().find(|t| !self.shape.tags.contains(t)) {
            return Err(shape_error(format!("tag `{t}` is not a column")));
        }
        // Position of each value column in this series' rows.
        let mut at = vec![None; self.shape.values.len()];
        for (j, c) in s.columns.iter().enumerate() {
            match self.shape.values.iter().position(|(n, _)| n == c) {
                Some(i) => at[i] = Some(j),
                None => return Err(shape_error(format!("column `{c}` is new"))),
            }
        }
        let name = Value::String(s.name.clone());
        let tags: Vec<Value> = self
            .shape
            .tags
            .iter()
            .map(|t| {
                s.tags
                    .get(t)
                    .map_or(Value::Null, |v| Value::String(v.clone()))
            })
            .collect();
        let n_tags = tags.len();
        let mut done = Vec::new();
        for row in &s.values {
            self.builders[0].push(Some(&name)).expect("strings fit");
            for (b, t) in self.builders[1..=n_tags].iter_mut().zip(&tags) {
                b.push(Some(t)).expect("strings fit");
            }
            for (i, b) in self.builders[1 + n_tags..].iter_mut().enumerate() {
                b.push(at[i].and_then(|j| row.get(j))).map_err(|m| {
                    Error::Unsupported(format!("column `{}`: {m}", self.shape.values[i].0))
                })?;
            }
            if self.builders[0].len() >= self.batch_size {
                done.push(self.finish()?);
            }
        }
        Ok(done)
    }

    /// The rows not yet returned, if any.
    pub fn flush(&mut self) -> Result<Option<RecordBatch>> {
        if self.builders.first().is_none_or(|b| b.len() == 0) {
            return Ok(None);
        }
        self.finish().map(Some)
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let columns = self.builders.iter_mut().map(Builder::finish).collect();
        Ok(RecordBatch::try_new(self.shape.schema.clone(), columns)?)
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
